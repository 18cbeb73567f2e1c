"""GitHub Actions workflow commands: each finding becomes an annotation on its line.

    ::warning file=models/net.py,line=12,col=5,title=CL301::[t4] dw: depthwise 3x3 ...

Values are escaped as GitHub's toolkit (``@actions/core``, command.ts) escapes them: in the
message ``%``, CR and LF; in properties those and also ``:`` and ``,``. A model that could not be
linted is an ``::error`` on its file.
"""

from __future__ import annotations

from typing import TextIO

from cnnlint.report import ReportOptions
from cnnlint.report.common import finding_path, headline, model_file
from cnnlint.results import ModelResult

COMMAND = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: str | int) -> str:
    """``::name key=value,...::message``; empty properties are left out, as the toolkit does."""
    given = ",".join(f"{k}={escape_property(str(v))}" for k, v in properties.items() if v)
    return f"::{name}{' ' + given if given else ''}::{escape_data(message)}"


def write(results: list[ModelResult], stream: TextIO, options: ReportOptions) -> None:
    for result in results:
        if result.status == "error":
            stream.write(command("error", result.error or "unknown error",
                                 file=model_file(result.model), title="cnnlint") + "\n")  # fmt: skip
            continue
        for finding in result.findings:
            message = headline(result, finding) + (f"\nfix: {finding.fix}" if finding.fix else "")
            line = command(
                COMMAND[finding.severity or "info"], message, file=finding_path(result, finding),
                line=finding.line, col=finding.column, title=finding.code,
            )  # fmt: skip
            stream.write(line + "\n")
