"""Every rule fixture on every built-in target: expectations written in the fixture, and snapshots.

A fixture ``tests/fixtures/clNNN_*.py`` tests rule CLNNN (a ``# checks: CL301, CL501`` line in the
file widens that). Expectations sit on the line they describe, after ``# expect:``:

    nn.Conv2d(24, 24, 3, groups=24)  # expect: CL301 warning @t4,a4000,hi3519,cv22
    nn.Conv2d(256, 256, 3, groups=32)  # expect: CL102 warning @!arm-cpu,x3; CL102 info @arm-cpu,x3
    class FewGroups(nn.Module):  # expect: nothing

    expectation := CODE SEVERITY [xN] [@TARGETS]      (several on one line: separated by ';')
    TARGETS     := name,name,...   only these targets
                 | !name,name,...  every built-in target except these
                   (no @: every built-in target, including one added later)
    xN          := N findings on that line (a block built several times from one line)
    nothing     := on a model's class line: no finding of the fixture's rules on any target

Per fixture and target the findings (code, severity, line) must equal the expectations: a missing
finding and an unexpected one both fail. The text report of each fixture on each target is kept
in ``tests/snapshots/<fixture>@<target>.snap`` and reviewed like ruff's snapshots: a change to the
report fails with a diff; accept intended changes with

    CNNLINT_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_rule_fixtures.py

and commit the .snap files with the change that caused them.
"""

from __future__ import annotations

import ast
import difflib
import functools
import io
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import FIXTURES, TESTS

from cnnlint.core import SEVERITIES
from cnnlint.graph import LayerGraph
from cnnlint.graph.build import build_layer_graph
from cnnlint.load import LoadedModel, ModelSettings, load
from cnnlint.spec import ModelSpec
from cnnlint.paths import display_path
from cnnlint.pipeline import check_graph
from cnnlint.profile import builtin_profile_names, load_profile
from cnnlint.report import ReportOptions, write_report
from cnnlint.results import ModelResult
from cnnlint.trace import trace

SNAPSHOTS = TESTS / "snapshots"
UPDATE = os.environ.get("CNNLINT_UPDATE_SNAPSHOTS") == "1"
TARGETS = builtin_profile_names()
FIXTURE_FILES = sorted(FIXTURES.glob("cl[0-9]*.py"))

_EXPECT = re.compile(r"#\s*expect:\s*(?P<body>.*)$")
_ITEM = re.compile(
    r"^(?P<code>[A-Z]{1,4}\d{3,4})\s+(?P<severity>\w+)(?:\s+x(?P<count>\d+))?"
    r"(?:\s+@(?P<targets>!?[\w.-]+(?:,[\w.-]+)*))?$"
)
_CHECKS = re.compile(r"^#\s*checks:\s*(?P<codes>.+)$", re.M)


@dataclass(frozen=True)
class Expectation:
    line: int
    code: str
    severity: str
    count: int
    targets: frozenset[str]


@dataclass(frozen=True)
class Fixture:
    path: Path
    codes: tuple[str, ...]
    expectations: tuple[Expectation, ...]
    clean_models: frozenset[str]  # classes marked `# expect: nothing`

    def expected(self, target: str) -> Counter:
        wanted: Counter = Counter()
        for e in self.expectations:
            if target in e.targets:
                wanted[(e.line, e.code, e.severity)] += e.count
        return wanted


def _targets(text: str | None, where: str) -> frozenset[str]:
    if text is None:
        return frozenset(TARGETS)
    exclude = text.startswith("!")
    names = set(text.lstrip("!").split(","))
    unknown = names - set(TARGETS)
    if unknown:
        raise ValueError(f"{where}: unknown target(s) {', '.join(sorted(unknown))}; built-in: {TARGETS}")
    return frozenset(set(TARGETS) - names if exclude else names)


def parse_fixture(path: Path) -> Fixture:
    """Read a fixture's expectations; a malformed one is an error naming file and line."""
    text = path.read_text(encoding="utf-8")
    checks = _CHECKS.search(text)
    codes = (
        tuple(c.strip().upper() for c in checks["codes"].split(","))
        if checks
        else (path.name.split("_", 1)[0].upper(),)
    )
    class_lines = {
        node.lineno: node.name for node in ast.parse(text).body if isinstance(node, ast.ClassDef)
    }
    expectations, clean = [], set()
    for number, line in enumerate(text.splitlines(), start=1):
        match = _EXPECT.search(line)
        if match is None:
            continue
        where = f"{path.name}:{number}"
        body = match["body"].strip()
        if body == "nothing":
            if number not in class_lines:
                raise ValueError(f"{where}: `# expect: nothing` belongs on a model's class line")
            clean.add(class_lines[number])
            continue
        for item in body.split(";"):
            parsed = _ITEM.match(item.strip())
            if parsed is None:
                raise ValueError(f"{where}: cannot read expectation {item.strip()!r}")
            if parsed["code"] not in codes:
                raise ValueError(f"{where}: {parsed['code']} is not among this fixture's rules {codes}")
            if parsed["severity"] not in SEVERITIES:
                raise ValueError(f"{where}: severity {parsed['severity']!r} is not error, warning or info")
            expectations.append(Expectation(
                number, parsed["code"], parsed["severity"], int(parsed["count"] or 1),
                _targets(parsed["targets"], where),
            ))  # fmt: skip
    return Fixture(path, codes, tuple(expectations), frozenset(clean))


@functools.cache
def fixture_graphs(path: Path) -> tuple[LayerGraph, ...]:
    """Trace every model of a fixture file once per session; each target checks the same graphs."""
    graphs = []
    for model in load(ModelSpec.parse(str(path)), lambda _: ModelSettings()):
        assert isinstance(model, LoadedModel), f"{path.name} failed to load: {model}"
        graphs.append(build_layer_graph(trace(model)))
    return tuple(graphs)


def check_fixture(fixture: Fixture, target: str) -> list[ModelResult]:
    return list(_checked(fixture.path, fixture.codes, target))


@functools.cache
def _checked(path: Path, codes: tuple[str, ...], target: str) -> tuple[ModelResult, ...]:
    """Each fixture checked once per target: the expectations and the snapshot read the same."""
    profile = load_profile(target)
    results = tuple(check_graph(g, profile, select=list(codes)) for g in fixture_graphs(path))
    for result in results:
        assert result.status == "ok", f"{result.model} on {target}: {result.error}"
    return results


CASES = [(path, target) for path in FIXTURE_FILES for target in TARGETS]


def test_every_rule_has_a_fixture() -> None:
    from cnnlint.check import all_rules

    tested = {code for path in FIXTURE_FILES for code in parse_fixture(path).codes}
    # Engine codes (CL002, CL003) find nothing in a graph: tests/test_suppress.py and
    # tests/test_baseline.py lint real files for them.
    untested = [rule.code for rule in all_rules()
                if rule.code not in tested and rule.code != "CL001" and not rule.engine]  # fmt: skip
    assert not untested, f"rules without a fixture in tests/fixtures: {untested}"


@pytest.mark.parametrize(("path", "target"), CASES, ids=[f"{p.stem}-{t}" for p, t in CASES])
def test_fixture_findings_match_expectations(path: Path, target: str) -> None:
    fixture = parse_fixture(path)
    results = check_fixture(fixture, target)
    found: Counter = Counter()
    for result in results:
        model = result.model.rsplit("::", 1)[-1]
        for finding in result.findings:
            assert model not in fixture.clean_models, (
                f"{path.name}: {model} is marked `# expect: nothing` but got {finding.code} "
                f"{finding.severity} at line {finding.line} on {target}: {finding.message}"
            )
            assert finding.path and Path(finding.path).name == path.name, (
                f"{path.name}: finding outside the fixture on {target}: {finding}"
            )
            found[(finding.line, finding.code, finding.severity)] += 1
    expected = fixture.expected(target)
    missing = expected - found
    unexpected = found - expected
    problems = [f"missing on {target}: line {ln}: {code} {sev} (x{n})" for (ln, code, sev), n in sorted(missing.items())]
    problems += [f"unexpected on {target}: line {ln}: {code} {sev} (x{n})"
                 for (ln, code, sev), n in sorted(unexpected.items())]  # fmt: skip
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


def render_report(fixture: Fixture, target: str) -> str:
    """The text report, with the fixture's path written the same from any working directory."""
    stream = io.StringIO()
    write_report("text", check_fixture(fixture, target), stream, ReportOptions(color=False))
    shown = display_path(fixture.path)
    body = stream.getvalue().replace(shown, f"tests/fixtures/{fixture.path.name}")
    header = (
        f"---\nsource: tests/test_rule_fixtures.py\nfixture: tests/fixtures/{fixture.path.name}\n"
        f"target: {target}\nrules: {', '.join(fixture.codes)}\n---\n"
    )
    return header + body


@pytest.mark.parametrize(("path", "target"), CASES, ids=[f"{p.stem}-{t}" for p, t in CASES])
def test_fixture_report_snapshot(path: Path, target: str) -> None:
    fixture = parse_fixture(path)
    actual = render_report(fixture, target)
    snap = SNAPSHOTS / f"{path.stem}@{target}.snap"
    recorded = snap.read_text(encoding="utf-8") if snap.exists() else ""
    if actual == recorded:
        return
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        snap.write_text(actual, encoding="utf-8")
        return
    diff = "".join(difflib.unified_diff(
        recorded.splitlines(keepends=True), actual.splitlines(keepends=True),
        fromfile=f"{snap.name} (recorded)", tofile=f"{snap.name} (now)",
    ))  # fmt: skip
    pytest.fail(
        f"{'new' if not recorded else 'changed'} snapshot {snap.relative_to(TESTS.parent)}; review the "
        f"diff and, if intended, accept it with CNNLINT_UPDATE_SNAPSHOTS=1:\n{diff}",
        pytrace=False,
    )


def test_expectation_grammar(tmp_path: Path) -> None:
    fixture = tmp_path / "cl102_example.py"
    fixture.write_text(
        "class Clean:  # expect: nothing\n"
        "    pass\n"
        "x = 1  # groups=32  # expect: CL102 warning @!arm-cpu,x3; CL102 info x2 @arm-cpu,x3\n"
        "y = 2  # expect: CL102 warning\n",
        encoding="utf-8",
    )
    parsed = parse_fixture(fixture)
    assert parsed.codes == ("CL102",) and parsed.clean_models == {"Clean"}
    assert parsed.expected("x3") == Counter({(3, "CL102", "info"): 2, (4, "CL102", "warning"): 1})
    assert parsed.expected("t4") == Counter({(3, "CL102", "warning"): 1, (4, "CL102", "warning"): 1})
    for bad, message in [
        ("z = 3  # expect: CL102 warning @t5\n", "unknown target"),
        ("z = 3  # expect: CL301 warning\n", "not among this fixture's rules"),
        ("z = 3  # expect: CL102 fatal\n", "severity"),
        ("z = 3  # expect: nothing\n", "class line"),
        ("z = 3  # expect: CL102\n", "cannot read"),
    ]:
        fixture.write_text(bad, encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            parse_fixture(fixture)
