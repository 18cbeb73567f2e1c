"""Rule documentation: docstrings say what and why; Options and Targets are generated from code."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlint.check import all_rules, find_rule
from cnnlint.docs import render_markdown, rule_text, target_settings
from cnnlint.profile import builtin_profile_names, load_profile

DOCS = Path(__file__).resolve().parent.parent / "docs" / "rules.md"
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
    for rule in all_rules():
        assert FIXED_CODES.get(rule.code) == rule.name


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
