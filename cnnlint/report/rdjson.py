"""reviewdog's Diagnostic Format (rdjson): ``reviewdog -f=rdjson`` posts it as review comments.

One DiagnosticResult; a diagnostic per finding with its rule code and a link to the rule's
documentation, the construction chain as ``related_locations``, and one ERROR diagnostic per model
that could not be linted. Columns are 1-based UTF-8 byte columns, as Python's own are.

``suggestions`` is not written: no rule proposes a concrete text edit yet (a fix names the
change, "use a regular 3x3 conv", but not the replacement source text).
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from cnnlint.check import all_rules
from cnnlint.docs import RULES_URL, help_uri
from cnnlint.report import ReportOptions
from cnnlint.report.common import finding_path, headline, model_file
from cnnlint.results import ModelResult

SEVERITY = {"error": "ERROR", "warning": "WARNING", "info": "INFO"}
SOURCE = {"name": "cnnlint", "url": RULES_URL}


def _location(path: str, line: int, column: int) -> dict[str, Any]:
    location: dict[str, Any] = {"path": path}
    if line >= 1:
        location["range"] = {"start": {"line": line, "column": max(column, 1)}}
    return location


def rdjson_document(results: list[ModelResult]) -> dict[str, Any]:
    urls = {rule.code: help_uri(rule) for rule in all_rules()}
    diagnostics: list[dict[str, Any]] = []
    for result in results:
        if result.status == "error":
            diagnostics.append({"message": result.error or "unknown error", "severity": "ERROR",
                                "location": {"path": model_file(result.model)}, "source": SOURCE})  # fmt: skip
            continue
        for finding in result.findings:
            message = headline(result, finding) + (f"\nfix: {finding.fix}" if finding.fix else "")
            diagnostic: dict[str, Any] = {
                "message": message,
                "location": _location(finding_path(result, finding), finding.line, finding.column),
                "severity": SEVERITY[finding.severity or "info"],
                "source": SOURCE,
                "code": {"value": finding.code, **({"url": urls[finding.code]} if finding.code in urls else {})},
            }
            if finding.related:
                diagnostic["related_locations"] = [
                    {"message": f"built here{f' (in {site.function})' if site.function else ''}",
                     "location": _location(site.path, site.line, site.column)}
                    for site in finding.related
                ]  # fmt: skip
            diagnostics.append(diagnostic)
    return {"source": SOURCE, "diagnostics": diagnostics}


def write(results: list[ModelResult], stream: TextIO, options: ReportOptions) -> None:
    json.dump(rdjson_document(results), stream, indent=2)
    stream.write("\n")
