"""reviewdog's Diagnostic Format (rdjson): ``reviewdog -f=rdjson`` posts it as review comments.

One DiagnosticResult; a diagnostic per finding with its rule code and a link to the rule's
documentation, the construction chain as ``related_locations``, and one ERROR diagnostic per model
that could not be linted. Columns are 1-based UTF-8 byte columns, as Python's own are.

A finding whose fix is a literal edit of its construction line (:mod:`cnnlint.fixes`: CL201's
aligned channel count, CL102's group count) carries it as a ``suggestion`` that replaces that
whole line, so reviewdog can offer it as a one-click GitHub suggestion. It changes the layer's
weights' shape, which the message says.
"""

from __future__ import annotations

from typing import Any, TextIO

from cnnlint.check import all_rules
from cnnlint.docs import RULES_URL, help_uri
from cnnlint.fixes import UNSAFE_NOTE, Edit, edited_lines, plan_results
from cnnlint.report import ReportOptions
from cnnlint.report.common import finding_path, headline, model_file, write_json
from cnnlint.results import ModelResult

SEVERITY = {"error": "ERROR", "warning": "WARNING", "info": "INFO"}
SOURCE = {"name": "cnnlint", "url": RULES_URL}


def _location(path: str, line: int, column: int) -> dict[str, Any]:
    location: dict[str, Any] = {"path": path}
    if line >= 1:
        location["range"] = {"start": {"line": line, "column": max(column, 1)}}
    return location


def _suggestions(results: list[ModelResult]) -> dict[tuple[str, int], tuple[list[Edit], dict]]:
    """(path, line) -> the edits on that line, and a suggestion replacing the whole line with
    all of them applied (columns are 1-based UTF-8 bytes)."""
    found = {}
    for (path, line), (edits, text) in edited_lines(plan_results(results)).items():
        end = len(edits[0].before.encode("utf-8")) + 1
        found[(path, line)] = (edits, {
            "range": {"start": {"line": line, "column": 1}, "end": {"line": line, "column": end}},
            "text": text,
        })  # fmt: skip
    return found


def rdjson_document(results: list[ModelResult]) -> dict[str, Any]:
    urls = {rule.code: help_uri(rule) for rule in all_rules()}
    suggestions = _suggestions(results)
    diagnostics: list[dict[str, Any]] = []
    for result in results:
        if result.status == "error":
            diagnostics.append({"message": result.error or "unknown error", "severity": "ERROR",
                                "location": {"path": model_file(result.model)}, "source": SOURCE})  # fmt: skip
            continue
        for finding in result.findings:
            message = headline(result, finding) + (f"\nfix: {finding.fix}" if finding.fix else "")
            edits, suggestion = suggestions.get((finding.path, finding.line), ([], None))
            mine = [edit for edit in edits if finding.code in edit.codes]
            if mine:
                message += f"\nsuggested edit ({'; '.join(e.summary for e in mine)}) {UNSAFE_NOTE}"
            diagnostic: dict[str, Any] = {
                "message": message,
                "location": _location(finding_path(result, finding), finding.line, finding.column),
                "severity": SEVERITY[finding.severity or "info"],
                "source": SOURCE,
                "code": {"value": finding.code, **({"url": urls[finding.code]} if finding.code in urls else {})},
            }
            if mine:
                diagnostic["suggestions"] = [suggestion]
            if finding.related:
                diagnostic["related_locations"] = [
                    {"message": f"built here{f' (in {site.function})' if site.function else ''}",
                     "location": _location(site.path, site.line, site.column)}
                    for site in finding.related
                ]  # fmt: skip
            diagnostics.append(diagnostic)
    return {"source": SOURCE, "diagnostics": diagnostics}


def write(results: list[ModelResult], stream: TextIO, options: ReportOptions) -> None:
    write_json(rdjson_document(results), stream)
    stream.write("\n")
