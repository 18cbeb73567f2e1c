"""SARIF 2.1.0 for GitHub code scanning (``github/codeql-action/upload-sarif``).

- ``tool.driver.rules``: every rule, its descriptions and help generated from its docstring,
  ``helpUri`` to its section of docs/rules.md;
- a result per finding: ``artifactLocation.uri`` relative to the repository root (``uriBaseId``
  SRCROOT), ``region.startLine/startColumn``, the construction chain as ``relatedLocations``, and
  ``partialFingerprints`` from code + model + module path + target (never the line, so code
  scanning keeps tracking a finding when lines above it move);
- a model that could not be linted is a ``toolExecutionNotification`` of level error, and the
  invocation is then not successful.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from cnnlint import __version__
from cnnlint.check import Rule, all_rules
from cnnlint.core import SourceLocation
from cnnlint.docs import RULES_URL, doc_sections, help_markdown, help_uri
from cnnlint.report import ReportOptions
from cnnlint.report.common import (
    finding_path,
    fingerprint,
    model_file,
    relative_to_root,
    repository_root,
    write_json,
)
from cnnlint.results import Finding, ModelResult

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
BASE_ID = "SRCROOT"
FINGERPRINT_KEY = "cnnlintFinding/v1"
LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _rule_descriptor(rule: Rule) -> dict[str, Any]:
    summary, sections = doc_sections(rule)
    full = " ".join(sections.get("What it flags", summary).split())
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": full},
        "help": {"text": f"{summary}\n\n" + "\n\n".join(f"{t}\n{s}" for t, s in sections.items()),
                 "markdown": help_markdown(rule)},
        "helpUri": help_uri(rule),
        "defaultConfiguration": {"level": LEVEL[rule.severity]},
        "properties": {"tags": ["performance", "architecture"]},
    }  # fmt: skip


def _artifact(path: str, root: Path) -> dict[str, str]:
    relative = relative_to_root(path, root)
    if relative is not None:
        return {"uri": quote(relative), "uriBaseId": BASE_ID}
    return {"uri": Path(path).resolve().as_uri()}  # outside the repository: installed packages


def _physical(path: str, line: int, column: int, root: Path) -> dict[str, Any]:
    location: dict[str, Any] = {"artifactLocation": _artifact(path, root)}
    if line >= 1:
        location["region"] = {"startLine": line, "startColumn": max(column, 1)}
    return location


def _related(related: list[SourceLocation], root: Path) -> list[dict[str, Any]]:
    return [
        {
            "id": index,
            "physicalLocation": _physical(site.path, site.line, site.column, root),
            "message": {"text": f"built here{f' (in {site.function})' if site.function else ''}"},
        }
        for index, site in enumerate(related)
    ]


def _result(result: ModelResult, finding: Finding, index: dict[str, int], root: Path) -> dict[str, Any]:
    text = f"[{result.target}] {finding.message}" + (f"\nfix: {finding.fix}" if finding.fix else "")
    location: dict[str, Any] = {
        "logicalLocations": [{"fullyQualifiedName": f"{result.model}/{finding.module}".rstrip("/"),
                              "kind": "member"}],
    }  # fmt: skip
    path = finding_path(result, finding)
    if path:
        location["physicalLocation"] = _physical(path, finding.line, finding.column, root)
    sarif: dict[str, Any] = {
        "ruleId": finding.code,
        "level": LEVEL[finding.severity or "info"],
        "message": {"text": text},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(result, finding)},
        "properties": {"model": result.model, "target": result.target,
                       "precision": result.precision, "module": finding.module,
                       "metrics": finding.metrics},
    }  # fmt: skip
    if finding.code in index:
        sarif["ruleIndex"] = index[finding.code]
    if finding.related:
        sarif["relatedLocations"] = _related(finding.related, root)
    return sarif


def _notification(result: ModelResult, root: Path) -> dict[str, Any]:
    notification: dict[str, Any] = {
        "level": "error",
        "message": {"text": result.error or f"{result.model}: unknown error"},
        "properties": {"model": result.model, "target": result.target},
    }
    path = model_file(result.model)
    if path:
        notification["locations"] = [{"physicalLocation": {"artifactLocation": _artifact(path, root)}}]
    return notification


def sarif_document(results: list[ModelResult], root: Path | None = None) -> dict[str, Any]:
    root = root or repository_root()
    rules = all_rules()
    index = {rule.code: i for i, rule in enumerate(rules)}
    failures = [r for r in results if r.status == "error"]
    run = {
        "tool": {"driver": {"name": "cnnlint", "version": __version__,
                            "informationUri": RULES_URL,
                            "rules": [_rule_descriptor(rule) for rule in rules]}},
        "originalUriBaseIds": {BASE_ID: {"uri": root.as_uri() + "/"}},
        "invocations": [{"executionSuccessful": not failures,
                         "toolExecutionNotifications": [_notification(r, root) for r in failures]}],
        "results": [_result(r, f, index, root) for r in results for f in r.findings],
    }  # fmt: skip
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def write(results: list[ModelResult], stream: TextIO, options: ReportOptions) -> None:
    write_json(sarif_document(results), stream)
    stream.write("\n")
