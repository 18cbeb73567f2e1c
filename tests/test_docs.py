"""The docs: rule documentation generated from code, and a README and docs/ pages that stay true.

Rule docstrings say what and why; Options and Targets are generated from code. The README's
commands are the ones CI runs, its example output is what that command prints, its links and the
docs' links lead somewhere, the layer table in docs/how-it-works.md is the layout test's, and the
TOML snippets load.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_layout import LAYERS

from cnnlint.check import all_rules, find_rule, validate_selectors
from cnnlint.cli import main
from cnnlint.config import ToolConfig
from cnnlint.docs import render_markdown, rule_text, target_settings
from cnnlint.profile import builtin_profile_names, load_profile

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "rules.md"
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
HAND_WRITTEN = ("What it flags", "Why", "Example", "Use instead")
GENERATED = ("Options", "Targets")
FIXED_CODES = {
    "CL001": "partial-trace", "CL002": "unused-suppression", "CL003": "stale-baseline-entry",
    "CL101": "unequal-channel-width", "CL102": "excessive-group-conv", "CL103": "fragmented-block",
    "CL104": "elementwise-heavy", "CL201": "channel-misaligned", "CL301": "depthwise-on-accelerator",
    "CL302": "low-channel-separable", "CL303": "large-kernel-on-gpu", "CL304": "unsupported-op",
    "CL401": "dense-concat", "CL402": "reparameterizable-branches", "CL501": "memory-bound-hotspot",
}  # fmt: skip


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_docstring_has_the_hand_written_sections_only(rule):
    lines = rule.doc.splitlines()
    for section in HAND_WRITTEN:
        assert section in lines, f"{rule.code} docstring lacks '{section}'"
    for section in GENERATED:
        assert section not in lines, (
            f"{rule.code} docstring has a hand-written '{section}' section; it is generated "
            "from the Options model and the profiles"
        )


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_every_option_has_a_description(rule):
    for name, field in rule.options_model.model_fields.items():
        assert field.description, f"{rule.code} option {name} has no Field(description=...)"


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_rule_text_generates_options_and_targets(rule):
    text = rule_text(rule)
    assert text.startswith(rule.doc.strip().splitlines()[0])
    for name, field in rule.options_model.model_fields.items():
        assert name in text and field.description.split()[0] in text
    targets = text.split("\nTargets")[1]
    for name in builtin_profile_names():
        assert f"\n    {name} " in targets


def test_targets_section_follows_the_profile(tmp_path: Path) -> None:
    rule = find_rule("CL102")
    path = tmp_path / "quiet.toml"
    path.write_text(
        'extends = "t4"\nname = "quiet"\n\n[rules.CL102]\nenabled = false\nmin_groups = 16\n'
        'why = "grouped convs are measured fast here"\n',
        encoding="utf-8",
    )
    (row,) = target_settings(rule, [load_profile(str(path))])
    assert (row.target, row.state, row.why) == ("quiet", "off", "grouped convs are measured fast here")
    assert row.changed_options == {"min_groups": 16}
    (base,) = target_settings(rule, [load_profile("t4")])
    assert base.state == rule.severity and base.changed_options == {} and base.why == ""


def test_rule_codes_and_names_are_the_fixed_ones():
    # A released code keeps its name (configs, suppressions and baselines name rules by either);
    # a new rule joins this table when it is released.
    for code, name in FIXED_CODES.items():
        assert find_rule(code).name == name, f"{code} was {name!r}: a released rule keeps its name"


def test_docs_rules_md_is_generated_from_the_code():
    if not DOCS.exists():
        pytest.fail("docs/rules.md is missing: run `cnnlint rules --format markdown > docs/rules.md`")
    assert DOCS.read_text() == render_markdown(), (
        "docs/rules.md is stale: run `cnnlint rules --format markdown > docs/rules.md`"
    )


def test_docs_name_every_target_from_the_profile_directory():
    text = render_markdown()
    for name in builtin_profile_names():
        assert f"\n| {name} | " in text


# ---------------------------------------------------------------------------- README and docs/
_FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```", re.M | re.S)
_LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_VENV = "python -m venv .venv && . .venv/bin/activate && "


def _blocks(text: str, lang: str) -> list[str]:
    return [m["body"] for m in _FENCE.finditer(text) if m["lang"] == lang]


def _prose(text: str) -> str:
    """The text outside code: fenced blocks and inline code spans removed."""
    return re.sub(r"`[^`\n]*`", "", _FENCE.sub("", text))


def _anchors(text: str) -> set[str]:
    """The ids GitHub gives a page's headings: lower case, punctuation dropped, spaces as '-',
    a repeated one suffixed -1, -2, ..."""
    seen: Counter = Counter()
    anchors = set()
    for line in _FENCE.sub("", text).splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading[1].lower()).replace(" ", "-")
        anchors.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return anchors


def _quick_start() -> list[str]:
    """The README's two commands: the first two shell blocks, before its first section."""
    text = README.read_text(encoding="utf-8")
    top = text.split("\n## ", 1)[0]
    commands = [block.strip() for block in _blocks(top, "bash")]
    assert len(commands) >= 2, "the README starts with its two commands (install + lint, install + test)"
    return commands[:2]


def _ci_commands() -> list[str]:
    """The shell commands .ci/run runs, one per `&&` step, without their `|| ...` handling."""
    commands = []
    for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            commands += [step.split(" || ", 1)[0].strip() for step in line.split(" && ")]
    return commands


@pytest.mark.parametrize("which", [0, 1], ids=["lint-example", "test-suite"])
def test_readme_commands_are_the_ones_ci_runs(which: int):
    command = _quick_start()[which]
    assert "\n" not in command and command.startswith(_VENV), (
        f"README command {which + 1} is one line that makes and activates a venv: {command!r}"
    )
    steps = [step.strip() for step in command.removeprefix(_VENV).split(" && ")]
    ci = _ci_commands()
    positions = [ci.index(step) if step in ci else -1 for step in steps]
    assert -1 not in positions and positions == sorted(positions), (
        f"README command {which + 1} runs {steps}; .ci/run must run the same steps in that order, "
        f"and runs {ci}"
    )


def test_readme_example_output_is_what_the_first_command_prints(monkeypatch):
    lint = shlex.split(_quick_start()[0].split(" && ")[-1])
    assert lint[0] == "cnnlint"
    text = README.read_text(encoding="utf-8")
    shown = _blocks(text.split("\n## What it says", 1)[1].split("\n## ", 1)[0], "text")
    assert shown, "the README's 'What it says' section shows the first command's output"
    monkeypatch.chdir(REPO)
    done = CliRunner().invoke(main, [*lint[1:], "--no-cache", "--no-color"])
    assert done.exit_code in (0, 1), done.output

    def heads(output: str) -> list[str]:
        """Each finding's `path:line:col: CODE [target]` and each model's summary label."""
        found = re.findall(r"^(\S+:\d+:\d+: \w+ \[[\w.-]+\])", output, re.M)
        return found + re.findall(r"^(\S+::\w+ \[[\w.-]+ \w+\]):", output, re.M)

    assert heads(shown[0]) == heads(done.output), (
        "the README's example output is stale; paste what the command prints now:\n" + done.output
    )


def _layer_table() -> list[tuple[str, set[str]]]:
    """(layer, modules) rows of the table under '## Layers' in docs/how-it-works.md."""
    text = (REPO / "docs" / "how-it-works.md").read_text(encoding="utf-8")
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or len(cells) < 3 or cells[0] == "layer":
            continue
        rows.append((cells[0], {f"cnnlint.{name}" for name in re.findall(r"`([\w.]+)`", cells[1])}))
    return rows


def test_how_it_works_layer_table_is_the_layout_tests_table():
    documented = _layer_table()
    layout = [(name, set(modules)) for name, modules in LAYERS]
    assert [name for name, _ in documented] == [name for name, _ in layout], (
        "docs/how-it-works.md's layer table must list tests/test_layout.py's LAYERS, bottom to top"
    )
    for (name, shown), (_, placed) in zip(documented, layout):
        assert shown == placed, (
            f"docs/how-it-works.md, layer {name!r}: add {sorted(placed - shown)}, "
            f"remove {sorted(shown - placed)} (module names after `cnnlint.`, as in test_layout.py)"
        )


def test_readme_links_to_how_it_works():
    assert "(docs/how-it-works.md)" in README.read_text(encoding="utf-8")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_lead_somewhere(page: Path):
    broken = []
    for match in _LINK.finditer(_prose(page.read_text(encoding="utf-8"))):
        target = match["target"]
        if re.match(r"^[a-z][a-z+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(REPO)}")
    assert not broken, f"{page.relative_to(REPO)}: broken links:\n  " + "\n  ".join(broken)


TOML_SNIPPETS = [(page.name, number, block) for page in PAGES
                 for number, block in enumerate(_blocks(page.read_text(encoding="utf-8"), "toml"))]  # fmt: skip


@pytest.mark.parametrize(("page", "number", "block"), TOML_SNIPPETS, ids=[f"{p}-{n}" for p, n, _ in TOML_SNIPPETS])
def test_toml_snippets_load(page: str, number: int, block: str, tmp_path: Path):
    data = tomllib.loads(block)
    if "tool" in data:  # a pyproject.toml's [tool.cnnlint]
        table = data["tool"]["cnnlint"]
        ToolConfig.model_validate(table)
        selectors = [*table.get("select", ()), *table.get("extend-select", ()), *table.get("ignore", ())]
        selectors += [s for codes in table.get("per-file-ignores", {}).values() for s in codes]
        validate_selectors(selectors, f"{page} toml block {number}")
    else:  # a target profile
        assert "extends" in data or "kind" in data, f"{page} toml block {number}: neither config nor profile"
        (tmp_path / "profile.toml").write_text(block, encoding="utf-8")
        load_profile(str(tmp_path / "profile.toml"))


def test_extending_guide_example_rule_finds_what_its_fixture_expects(tmp_path, monkeypatch):
    """docs/extending.md's sketch rule passes the rule contract and, run through the engine on
    every built-in target, finds what the guide's fixture expects."""
    import types

    import cnnlint.check
    from cnnlint.check import rule_from_object
    from cnnlint.pipeline import check_graph
    from test_rule_fixtures import fixture_graphs, parse_fixture

    blocks = _blocks((REPO / "docs" / "extending.md").read_text(encoding="utf-8"), "python")
    (rule_source,) = [block for block in blocks if "\nCODE = " in block]
    (fixture_source,) = [block for block in blocks if "# expect:" in block]
    module = types.ModuleType("extending_example")
    exec(compile(rule_source, "docs/extending.md", "exec"), module.__dict__)
    rule = rule_from_object(module, "docs/extending.md")
    lines = rule.doc.splitlines()
    assert all(section in lines for section in HAND_WRITTEN) and not any(s in lines for s in GENERATED)
    assert all(field.description for field in rule.options_model.model_fields.values())

    builtin = cnnlint.check.all_rules()
    monkeypatch.setattr(cnnlint.check, "all_rules", lambda: (*builtin, rule))
    fixture_path = tmp_path / f"{rule.code.lower()}_example.py"
    fixture_path.write_text(fixture_source, encoding="utf-8")
    fixture = parse_fixture(fixture_path)
    for target in builtin_profile_names():
        found: Counter = Counter()
        for graph in fixture_graphs(fixture_path):
            result = check_graph(graph, load_profile(target), select=[rule.code])
            assert result.status == "ok", result.error
            found.update((f.line, f.code, f.severity) for f in result.findings)
        assert found == fixture.expected(target), f"on {target}"
