"""The JSON report: a stable contract other tools (the review bot, CI) parse.

Its shape is :class:`cnnlint.report.contract.Report`, the object ``cnnlint.lint()`` returns; its
JSON schema, generated from the result types, is ``docs/schema/cnnlint-report.schema.json``
(``cnnlint schema``).
"""

from __future__ import annotations

from typing import TextIO

from cnnlint.report import ReportOptions
from cnnlint.report.common import write_json
from cnnlint.report.contract import Report
from cnnlint.results import ModelResult


def write(results: list[ModelResult], stream: TextIO, options: ReportOptions) -> None:
    write_json(Report.of(results).model_dump(mode="json"), stream)
    stream.write("\n")
