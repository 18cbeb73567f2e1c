"""JUnit XML for CI test reports (GitLab ``reports:junit``, Jenkins, Azure, test-report actions).

A ``testsuite`` per model, a ``testcase`` per model x target. A testcase fails when it has
findings at or above ``--fail-on`` (one ``failure`` listing them, ``file:line:col: CODE message``);
a model that could not be linted is an ``error``. Findings below ``--fail-on`` go to the
testcase's ``system-out``, so they are visible without failing the build.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TextIO

from cnnlint.core import at_or_above
from cnnlint.report import ReportOptions
from cnnlint.report.common import headline
from cnnlint.results import Finding, ModelResult


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # no XML 1.0 has them


def _xml(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _line(result: ModelResult, finding: Finding) -> str:
    where = f"{finding.path}:{finding.line}:{finding.column}: " if finding.path else ""
    fix = f"\n    fix: {finding.fix}" if finding.fix else ""
    return _xml(f"{where}{finding.code} ({finding.severity}) {headline(result, finding)}{fix}")


def _fill(case: ET.Element, result: ModelResult, fail_on: str | None) -> str:
    fail_on = fail_on or result.fail_on
    if result.status == "error":
        text = _xml(result.error or "unknown error")
        error = ET.SubElement(case, "error", type="cnnlint-error", message=text.split("\n")[0])
        error.text = text
        return "errors"
    failing = [f for f in result.findings if at_or_above(f.severity, fail_on)]
    passing = [f for f in result.findings if not at_or_above(f.severity, fail_on)]
    outcome = "tests"
    if failing:
        failure = ET.SubElement(
            case, "failure", type=",".join(sorted({f.code for f in failing})),
            message=f"{len(failing)} finding(s) at or above {fail_on} on {result.target}",
        )  # fmt: skip
        failure.text = "\n".join(_line(result, f) for f in failing)
        outcome = "failures"
    if passing:
        ET.SubElement(case, "system-out").text = "\n".join(_line(result, f) for f in passing)
    return outcome


def junit_tree(results: list[ModelResult], fail_on: str | None = None) -> ET.ElementTree:
    """fail_on: the lowest failing severity; None: each result's own (its spec's config)."""
    root = ET.Element("testsuites", name="cnnlint")
    suites: dict[str, ET.Element] = {}
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for result in results:
        suite = suites.get(result.model)
        if suite is None:
            suite = suites[result.model] = ET.SubElement(
                root, "testsuite", name=result.model, tests="0", failures="0", errors="0", skipped="0"
            )
        case = ET.SubElement(suite, "testcase", classname=result.model, name=result.target)
        outcome = _fill(case, result, fail_on)  # "tests" (passed), "failures" or "errors"
        for key in {"tests", outcome}:
            suite.set(key, str(int(suite.get(key, "0")) + 1))
            totals[key] += 1
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return ET.ElementTree(root)


def write(results: list[ModelResult], stream: TextIO, options: ReportOptions) -> None:
    stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    junit_tree(results, options.fail_on).write(stream, encoding="unicode")
    stream.write("\n")
