"""Every --format against its consumer's schema or documented format, on real lint results.

SARIF and rdjson are validated with their published JSON schemas; GitHub workflow commands are
parsed back the way the runner unescapes them; JUnit XML is parsed with ElementTree; GitLab Code
Quality and markdown are checked against the fields and layout their documentation requires.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from conftest import FIXTURES, SHARED, TESTS, cli, lint_specs

import cnnlint
from cnnlint.cli import main
from cnnlint.core import SourceLocation, at_or_above
from cnnlint.report import FORMATS, ReportOptions, write_report
from cnnlint.report.contract import SCHEMA_FILE, json_schema_text
from cnnlint.report.github import command
from cnnlint.results import ModelResult

REPO = TESTS.parent
SCHEMAS = SHARED / "schemas"
REPORT_SCHEMA = REPO / SCHEMA_FILE  # generated from the result types by `cnnlint schema`
LINES = FIXTURES / "core_lines.py"
ERRORS = FIXTURES / "core_errors.py"
EXAMPLE = REPO / "examples" / "mobilenet_v2_like.py"

# A model whose layers are built in a helper: the construction chain another stage will record
# (UsesComponent.__init__ -> Component() -> conv_block() -> nn.Conv2d), written out here.
CHAIN = [
    SourceLocation("tests/fixtures/core_lines.py", 43, 22, "__init__"),
    SourceLocation("tests/fixtures/core_lines.py", 33, 21, "__init__"),
    SourceLocation("tests/fixtures/core_lines.py", 24, 9, "conv_block"),
]
CHAINED = ("tests/fixtures/core_lines.py::UsesComponent", "block.body.0")


def _schema(*parts: str) -> dict:
    path = SCHEMAS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared schemas folder sits beside the checkout")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def results() -> list[ModelResult]:
    """Findings of every severity on two targets, and models that fail (core_errors.py)."""
    found = lint_specs(str(LINES), str(ERRORS), target="t4")
    found += lint_specs(str(EXAMPLE), target="hi3519")
    assert any(r.status == "error" for r in found)
    assert {f.severity for r in found for f in r.findings} == {"info", "warning"}
    (chained,) = [f for r in found for f in r.findings if (r.model, f.module) == CHAINED]
    assert chained.related == CHAIN  # recorded by the engine while the model was built
    return found


def render(name: str, results: list[ModelResult], fail_on: str = "warning") -> str:
    stream = io.StringIO()
    write_report(name, results, stream, ReportOptions(fail_on=fail_on))
    return stream.getvalue()


def test_every_format_is_a_command_line_choice():
    proc = cli("check", "--help")
    offered = re.search(r"--format \[([a-z|]+)\]", proc.stdout).group(1).split("|")
    assert offered == list(FORMATS)
    assert set(FORMATS) >= {"text", "json", "sarif", "github", "rdjson", "gitlab", "junit", "markdown"}


# ---------------------------------------------------------------------------------------- SARIF
def _github_anchors() -> set[str]:
    """The ids GitHub gives docs/rules.md's headings: lower case, punctuation dropped, spaces -."""
    headings = re.findall(r"^#+ (.+)$", (REPO / "docs" / "rules.md").read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_sarif_is_valid_and_carries_rules_locations_fingerprints_and_chain(results):
    schema = _schema("sarif-schema-2.1.0.json")
    document = json.loads(render("sarif", results))
    jsonschema.Draft7Validator(schema).validate(document)

    (run,) = document["runs"]
    rules = run["tool"]["driver"]["rules"]
    anchors = _github_anchors()
    for rule in rules:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert "**What it flags**" in rule["help"]["markdown"] and rule["help"]["text"]
        assert rule["helpUri"].split("#")[1] in anchors, rule["helpUri"]
    by_id = {rule["id"]: i for i, rule in enumerate(rules)}

    findings = [(r, f) for r in results for f in r.findings]
    assert len(run["results"]) == len(findings)
    for sarif, (result, finding) in zip(run["results"], findings):
        assert sarif["ruleId"] == finding.code and sarif["ruleIndex"] == by_id[finding.code]
        assert sarif["level"] == {"warning": "warning", "info": "note"}[finding.severity]
        physical = sarif["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"] == {"uri": finding.path, "uriBaseId": "SRCROOT"}
        assert physical["region"] == {"startLine": finding.line, "startColumn": finding.column}
        assert result.target in sarif["message"]["text"]
    (chained,) = [r for r in run["results"] if "relatedLocations" in r
                  and (r["properties"]["model"], r["properties"]["module"]) == CHAINED]  # fmt: skip
    assert [(r["id"], r["physicalLocation"]["region"]["startLine"],
             r["physicalLocation"]["artifactLocation"]["uri"]) for r in chained["relatedLocations"]] == [
        (0, 43, "tests/fixtures/core_lines.py"), (1, 33, "tests/fixtures/core_lines.py"),
        (2, 24, "tests/fixtures/core_lines.py"),
    ]  # fmt: skip
    # A failed model is a tool notification, and the run says it did not fully succeed.
    (invocation,) = run["invocations"]
    failed = [r for r in results if r.status == "error"]
    assert not invocation["executionSuccessful"]
    assert [n["message"]["text"] for n in invocation["toolExecutionNotifications"]] == [
        r.error for r in failed
    ]
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == REPO.resolve().as_uri() + "/"


def test_fingerprints_survive_edits_above_the_finding(tmp_path, monkeypatch):
    """SARIF and GitLab fingerprints name code + model + module + target, never the line."""
    source = (FIXTURES / "cl302_bad.py").read_text()
    runs = []
    # The same repository-relative file before and after an edit above its layers (two
    # checkouts, since a process imports a given file once).
    for checkout, text in (("before", source), ("after", "# a comment\n\n# three lines down\n" + source)):
        (tmp_path / checkout).mkdir()
        (tmp_path / checkout / "net.py").write_text(text)
        monkeypatch.chdir(tmp_path / checkout)
        runs.append(lint_specs("net.py", target="t4"))
    before, after = runs

    lines = lambda rs: [f.line for r in rs for f in r.findings]  # noqa: E731
    assert lines(after) == [line + 3 for line in lines(before)] and lines(before)
    for name, pick in (
        ("sarif", lambda d: [r["partialFingerprints"] for r in d["runs"][0]["results"]]),
        ("gitlab", lambda d: [issue["fingerprint"] for issue in d]),
    ):
        fingerprints = pick(json.loads(render(name, before)))
        assert fingerprints == pick(json.loads(render(name, after))), name


def test_sarif_from_the_command_line_validates():
    schema = _schema("sarif-schema-2.1.0.json")
    proc = cli(f"{LINES}::Misaligned", "-t", "t4", "--format", "sarif")
    assert proc.returncode == 1, proc.stderr
    document = json.loads(proc.stdout)
    jsonschema.Draft7Validator(schema).validate(document)
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in document["runs"][0]["results"]}  # fmt: skip
    assert uris == {"tests/fixtures/core_lines.py"}


# ---------------------------------------------------------------------------------------- GitHub
def _unescape(text: str) -> str:
    """How the Actions runner reads a command back (ActionCommand.Unescape)."""
    for escaped, plain in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(escaped, plain)
    return text


def _parse(line: str) -> tuple[str, dict[str, str], str]:
    match = re.fullmatch(r"::(\w+)(?: ([^:]*))?::(.*)", line)
    assert match, line
    name, properties, message = match.groups()
    pairs = dict(p.split("=", 1) for p in properties.split(",")) if properties else {}
    return name, {k: _unescape(v) for k, v in pairs.items()}, _unescape(message)


def test_github_commands_escape_as_the_toolkit_does():
    message = "100% of it\r\nfix: a, b: c"
    line = command("warning", message, file="dir,1/net:2.py", line=3, col=4, title="CL301")
    assert line == ("::warning file=dir%2C1/net%3A2.py,line=3,col=4,title=CL301::"
                    "100%25 of it%0D%0Afix: a, b: c")  # fmt: skip
    assert _parse(line) == ("warning", {"file": "dir,1/net:2.py", "line": "3", "col": "4",
                                        "title": "CL301"}, message)  # fmt: skip


def test_github_annotates_each_finding_and_each_failed_model(results, tmp_path):
    # A real file whose name needs escaping in a property: a comma and a colon.
    odd = tmp_path / "net,v2:final.py"
    odd.write_text((FIXTURES / "cl302_bad.py").read_text())
    odd_results = lint_specs(str(odd), target="t4")
    assert odd_results[0].findings
    lines = render("github", results + odd_results).splitlines()
    findings = [(r, f) for r in results + odd_results for f in r.findings]
    failed = [r for r in results if r.status == "error"]
    assert len(lines) == len(findings) + len(failed)
    parsed = [_parse(line) for line in lines]
    for result, finding in findings:
        expected = ({"warning": "warning", "info": "notice"}[finding.severity],
                    {"file": finding.path, "line": str(finding.line), "col": str(finding.column),
                     "title": finding.code})  # fmt: skip
        match = [p for p in parsed if p[:2] == expected and p[2].startswith(f"[{result.target}] {finding.message}")]
        assert match, (expected, finding.message)
    assert any(p[1]["file"] == str(odd) for p in parsed)
    errors = [p for p in parsed if p[0] == "error"]
    assert [(p[1]["file"], p[2]) for p in errors] == [
        (str(ERRORS.relative_to(REPO)), r.error) for r in failed
    ]
    assert all("\n" not in line and "\r" not in line for line in lines)


# ---------------------------------------------------------------------------------------- rdjson
def test_rdjson_validates_against_reviewdogs_schema(results):
    schema = _schema("rdjson", "DiagnosticResult.json")
    document = json.loads(render("rdjson", results))
    jsonschema.Draft4Validator(schema).validate(document)
    findings = [(r, f) for r in results for f in r.findings]
    failed = [r for r in results if r.status == "error"]
    diagnostics = document["diagnostics"]
    assert len(diagnostics) == len(findings) + len(failed)
    linted = [d for d in diagnostics if "code" in d]  # failed models have no rule code
    assert len(linted) == len(findings)
    for diagnostic, (result, finding) in zip(linted, findings):
        assert diagnostic["code"]["value"] == finding.code
        assert diagnostic["code"]["url"].endswith(f"#{finding.code.lower()}-{finding.name}")
        assert diagnostic["severity"] == finding.severity.upper()
        assert diagnostic["location"] == {
            "path": finding.path,
            "range": {"start": {"line": finding.line, "column": finding.column}},
        }
    chains = [[r["location"]["range"]["start"]["line"] for r in d["related_locations"]]
              for d in diagnostics if "related_locations" in d]  # fmt: skip
    assert [43, 33, 24] in chains
    assert sum(d["severity"] == "ERROR" for d in diagnostics) == len(failed)


SUGGESTED = '''\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 256, 3, stride=8, padding=1)
        self.narrow = nn.Conv2d(256, 250, 3, padding=1)  # (250 = 5 x 50)
        self.grouped = nn.Conv2d(256, 256, 3, padding=1, groups=32)
        self.head = nn.Conv2d(250, 10, 1)

    def forward(self, x):
        return self.head(self.narrow(self.grouped(self.stem(x))))
'''


def test_rdjson_suggests_the_literal_edits_as_whole_line_replacements(tmp_path):
    model = tmp_path / "net.py"
    model.write_text(SUGGESTED, encoding="utf-8")
    found = lint_specs(str(model), target="t4")
    document = json.loads(render("rdjson", found))
    jsonschema.Draft4Validator(_schema("rdjson", "DiagnosticResult.json")).validate(document)
    lines = SUGGESTED.splitlines()
    suggested = {(d["code"]["value"], d["location"]["range"]["start"]["line"]): d
                 for d in document["diagnostics"] if "suggestions" in d}  # fmt: skip
    # CL201 on line 8: 250 -> 256 output channels, the comment after the call kept as it was.
    (edit,) = suggested[("CL201", 8)]["suggestions"]
    end = len(lines[7].encode()) + 1
    assert edit["range"] == {"start": {"line": 8, "column": 1}, "end": {"line": 8, "column": end}}
    assert edit["text"] == lines[7].replace("(256, 250,", "(256, 256,") != lines[7]
    assert "out_channels 250 -> 256" in suggested[("CL201", 8)]["message"]
    assert "checkpoint" in suggested[("CL201", 8)]["message"]  # it changes the weights' shape
    # CL102 on line 9: fewer groups at the same widths would add FLOPs, and t4's estimate says
    # the layer would be slower, so there is no one-click edit, and the fix says why.
    (cl102,) = [f for r in found for f in r.findings if f.code == "CL102"]
    assert cl102.metrics["est_suggested_groups_time_ms"] > 1.02 * cl102.metrics["est_conv_time_ms"]
    assert ("CL102", 9) not in suggested and "slower: fewer groups add FLOPs" in cl102.fix
    # A finding whose fix is not a literal edit carries no suggestion.
    assert {code for code, _ in suggested} <= {"CL201", "CL102"}
    assert any("suggestions" not in d for d in document["diagnostics"])


# ---------------------------------------------------------------------------------------- GitLab
def test_gitlab_code_quality_issues_are_complete_and_uniquely_fingerprinted(results):
    issues = json.loads(render("gitlab", results))
    again = json.loads(render("gitlab", lint_specs(str(LINES), str(ERRORS), target="t4")
                              + lint_specs(str(EXAMPLE), target="hi3519")))  # fmt: skip
    assert [i["fingerprint"] for i in issues] == [i["fingerprint"] for i in again]  # stable
    fingerprints = [issue["fingerprint"] for issue in issues]
    assert len(set(fingerprints)) == len(fingerprints)  # unique
    findings = [f for r in results for f in r.findings]
    assert len(issues) == len(findings) + sum(r.status == "error" for r in results)
    for issue in issues:
        assert {"description", "check_name", "fingerprint", "severity", "location"} <= set(issue)
        assert issue["severity"] in {"info", "minor", "major", "critical", "blocker"}
        assert isinstance(issue["location"]["lines"]["begin"], int) and issue["location"]["lines"]["begin"] >= 1
        assert not Path(issue["location"]["path"]).is_absolute()
    assert {i["check_name"] for i in issues} >= {f.code for f in findings}


def test_gitlab_fingerprints_differ_for_findings_that_share_code_module_and_target(results):
    """A rule may report one module twice (two problems): each still gets its own fingerprint."""
    result = next(r for r in results if r.findings)
    twice = dataclasses.replace(result, findings=[result.findings[0],
                                                  dataclasses.replace(result.findings[0], message="again")])  # fmt: skip
    fingerprints = [issue["fingerprint"] for issue in json.loads(render("gitlab", [twice]))]
    assert len(set(fingerprints)) == 2


# ---------------------------------------------------------------------------------------- JUnit
@pytest.mark.parametrize("fail_on", ["warning", "info", "never"])
def test_junit_counts_match_the_results(results, fail_on):
    root = ET.fromstring(render("junit", results, fail_on))
    assert root.tag == "testsuites"
    failing = [r for r in results if r.status == "ok"
               and any(at_or_above(f.severity, fail_on) for f in r.findings)]  # fmt: skip
    failed = [r for r in results if r.status == "error"]
    assert (int(root.get("tests")), int(root.get("failures")), int(root.get("errors"))) == (
        len(results), len(failing), len(failed)
    )
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == list(dict.fromkeys(r.model for r in results))
    for suite in suites:
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases)
        assert int(suite.get("errors")) == sum(c.find("error") is not None for c in cases)
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    for result in failing:
        text = cases[result.model, result.target].find("failure").text
        shown = [f for f in result.findings if at_or_above(f.severity, fail_on)]
        assert all(f"{f.path}:{f.line}:{f.column}: {f.code}" in text for f in shown)


# ---------------------------------------------------------------------------------------- markdown
def test_markdown_summarises_each_model_and_target_then_lists_findings(results):
    text = render("markdown", results)
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[0] == ("| model | target | precision | GMACs | params (M) | est. latency (ms) | "
                        "error | warning | info |")  # fmt: skip
    for result in results:
        row = next(r for r in table if r.startswith(f"| `{result.model}` | {result.target} |"))
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
        if result.summary is None:
            assert cells[3] == "failed"
            continue
        counts = [sum(f.severity == s for f in result.findings) for s in ("error", "warning", "info")]
        assert cells[3:] == [f"{result.summary.macs / 1e9:.3f}", f"{result.summary.params / 1e6:.3g}",
                             f"{result.summary.latency_ms:.3f}", *map(str, counts)]  # fmt: skip
    for result in results:
        for finding in result.findings:
            assert f"`{finding.path}:{finding.line}:{finding.column}`" in text
    finding_rows = [r for r in table if r.startswith(("| warning", "| info"))]
    assert len(finding_rows) == sum(len(r.findings) for r in results)
    assert all(len(re.split(r"(?<!\\)\|", r)) == 7 for r in finding_rows)  # 5 cells, pipes escaped
    assert "### Models that could not be linted" in text


def test_markdown_keeps_a_pipe_in_a_message_inside_its_cell(results):
    result = next(r for r in results if r.findings)
    piped = dataclasses.replace(result, findings=[dataclasses.replace(result.findings[0],
                                                                     message="a | b\nc")])  # fmt: skip
    (row,) = [r for r in render("markdown", [piped]).splitlines() if r.startswith("| info")
              or r.startswith("| warning")]  # fmt: skip
    assert "a \\| b<br>c" in row and len(re.split(r"(?<!\\)\|", row)) == 7


# ---------------------------------------------------------------------------------------- JSON
def _report_schema() -> dict:
    return json.loads(REPORT_SCHEMA.read_text())


def test_the_committed_json_schema_is_generated_from_the_result_types():
    stale = f"{SCHEMA_FILE} is stale: run `cnnlint schema > {SCHEMA_FILE}`"
    assert REPORT_SCHEMA.exists(), stale
    assert REPORT_SCHEMA.read_text() == json_schema_text(), stale
    printed = CliRunner().invoke(main, ["schema"])
    assert printed.exit_code == 0 and printed.output == json_schema_text()
    jsonschema.Draft202012Validator.check_schema(_report_schema())


def _linted(document: dict) -> dict:
    return next(r for r in document["results"] if r["status"] == "ok" and r["findings"])


def _failed(document: dict) -> dict:
    return next(r for r in document["results"] if r["status"] == "error")


def test_json_output_validates_against_the_generated_schema(results):
    """Real lints: findings of every severity, a construction chain, models that failed."""
    validator = jsonschema.Draft202012Validator(_report_schema())
    text = render("json", results)
    validator.validate(json.loads(text))
    validator.validate(cnnlint.lint(f"{LINES}::Misaligned", target="t4").model_dump(mode="json"))
    # The schema says what the output holds: every key, nothing else, their types and bounds.
    broken = {
        "a finding without its code": lambda d: _linted(d)["findings"][0].pop("code"),
        "a key the contract does not have": lambda d: _linted(d)["findings"][0].update(layer="x"),
        "an unknown severity": lambda d: _linted(d)["findings"][0].update(severity="fatal"),
        "a negative line": lambda d: _linted(d)["findings"][0].update(line=-1),
        "an unknown input-shape source": lambda d: _linted(d).update(input_shape_source="magic"),
        "a result linted without a summary": lambda d: _linted(d).update(summary=None),
        "a summary without its latency": lambda d: _linted(d)["summary"].pop("latency_ms"),
        "a failed result with findings": lambda d: _failed(d)["findings"].append(_linted(d)["findings"][0]),
    }  # fmt: skip
    for what, damage in broken.items():
        document = json.loads(text)
        damage(document)
        assert not validator.is_valid(document), f"the schema lets through {what}"


def test_json_carries_the_construction_chain(results):
    document = json.loads(render("json", results))
    chains = {(r["model"], f["module"]): f["related"] for r in document["results"] for f in r["findings"]}
    assert chains.pop(CHAINED) == [dataclasses.asdict(site) for site in CHAIN]
    findings = {(r["model"], f["module"]): f for r in document["results"] for f in r["findings"]}
    for key, chain in chains.items():  # each chain passes through the line its finding shows
        where = (findings[key]["path"], findings[key]["line"])
        assert not chain or where in {(site["path"], site["line"]) for site in chain}
