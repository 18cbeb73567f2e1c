"""Stage 6, report: ModelResults -> text for people, JSON and CI formats for tools.

One module per format, each with a function ``write(results, stream, options)`` registered in
``FORMATS`` by name, so ``--format`` offers exactly what this table lists. Format modules are
imported only when used: ``cnnlint --help`` pays for none of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # the table stays importable without the pipeline's types (networkx)
    from cnnlint.results import ModelResult


@dataclass(frozen=True)
class ReportOptions:
    color: bool = False  # the text report only
    # lowest severity that fails (junit's failures); "never": none; None: each result's own
    fail_on: str | None = None


Formatter = Callable[[list["ModelResult"], TextIO, ReportOptions], None]


@dataclass(frozen=True)
class Format:
    module: str  # in cnnlint.report; it defines ``write``
    help: str


FORMATS: dict[str, Format] = {
    "text": Format("text_format", "ruff-like lines and a summary per model (default)"),
    "json": Format("json_format", "the stable JSON contract (cnnlint.Report)"),
    "sarif": Format("sarif", "SARIF 2.1.0, for GitHub code scanning"),
    "github": Format("github", "GitHub Actions workflow commands (annotations)"),
    "rdjson": Format("rdjson", "reviewdog's Diagnostic Format (rdjson)"),
    "gitlab": Format("gitlab", "GitLab Code Quality JSON"),
    "junit": Format("junit", "JUnit XML: a testcase per model x target"),
    "markdown": Format("markdown", "summary table and findings, for PR comments and job summaries"),
}


def formatter(name: str) -> Formatter:
    return importlib.import_module(f"cnnlint.report.{FORMATS[name].module}").write


def write_report(
    name: str, results: list["ModelResult"], stream: TextIO, options: ReportOptions | None = None
) -> None:
    formatter(name)(results, stream, options or ReportOptions())
