"""Stage 6, report: ModelResults -> text for people, JSON for tools.

Each format is a function ``(results, stream, color) -> None`` registered in ``FORMATS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from cnnlint.report.json_format import write_json
from cnnlint.report.text_format import write_text
from cnnlint.results import ModelResult

Formatter = Callable[[list[ModelResult], TextIO, bool], None]

FORMATS: dict[str, Formatter] = {
    "text": write_text,
    "json": write_json,
}
