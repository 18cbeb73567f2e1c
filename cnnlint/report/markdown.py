"""Markdown for pull-request comments and ``$GITHUB_STEP_SUMMARY``.

A summary table (a row per model x target: GMACs, parameters, estimated latency, findings by
severity), where the layers run on each accelerator target, then the findings of each model on
each target, then the models that failed.
"""

from __future__ import annotations

from typing import TextIO

from cnnlint.check import all_rules
from cnnlint.docs import help_uri
from cnnlint.report import ReportOptions
from cnnlint.report.common import WORST_FIRST, counts, placement_text
from cnnlint.results import ModelResult


_LISTED = 5  # layers on the fallback device a placement row names


def cell(text: str) -> str:
    """Text that stays inside one table cell, read neither as HTML nor as emphasis or code."""
    for char in "\\|*_`[]":
        text = text.replace(char, "\\" + char)
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("\r", "").replace("\n", "<br>")


def code(text: str) -> str:
    """Inline code that survives backticks and pipes in the text (GFM tables split on an
    unescaped pipe even inside code)."""
    text = text.replace("|", "\\|").replace("\n", " ")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _summary_table(results: list[ModelResult]) -> list[str]:
    rows = [
        "| model | target | precision | GMACs | params (M) | est. latency (ms) | "
        + " | ".join(WORST_FIRST) + " |",
        "|---|---|---|--:|--:|--:|" + "--:|" * len(WORST_FIRST),
    ]
    for r in results:
        if r.summary is None:
            rows.append(f"| {code(r.model)} | {cell(r.target)} | {cell(r.precision)} | "
                        f"failed |  |  |" + " |" * len(WORST_FIRST))  # fmt: skip
            continue
        s, found = r.summary, counts(r)
        rows.append(
            f"| {code(r.model)} | {cell(r.target)} | {r.precision} | {s.macs / 1e9:.3f} | "
            f"{s.params / 1e6:.3g} | {s.latency_ms:.3f} | "
            + " | ".join(str(found[severity]) for severity in WORST_FIRST) + " |"
        )
    return rows


def _placement_table(results: list[ModelResult]) -> list[str]:
    """Where the layers run on each accelerator target (none: no table)."""
    placed = [r for r in results if r.placement is not None]
    if not placed:
        return []
    rows = ["| model | target | placement | on the fallback device |", "|---|---|---|---|"]
    for r in placed:
        p = r.placement
        assert p is not None
        off = ", ".join(code(name) for name in p.fallback_layers[:_LISTED])
        more = len(p.fallback_layers) - _LISTED
        off += f" and {more} more" if more > 0 else ""
        rows.append(f"| {code(r.model)} | {cell(r.target)} | {cell(placement_text(p))} | {off} |")
    return rows + [""]


def _findings(result: ModelResult, uris: dict[str, str]) -> list[str]:
    lines = [f"### {code(result.model)} on {cell(result.target)}", "",
             "| severity | rule | location | message | fix |", "|---|---|---|---|---|"]  # fmt: skip
    for f in result.findings:
        rule = f"[{f.code}]({uris[f.code]})" if f.code in uris else f.code
        where = code(f"{f.path}:{f.line}:{f.column}") if f.path else ""
        lines.append(f"| {f.severity} | {rule} {cell(f.name)} | {where} | {cell(f.message)} | "
                     f"{cell(f.fix or '')} |")  # fmt: skip
    return lines + [""]


def write(results: list[ModelResult], stream: TextIO, options: ReportOptions) -> None:
    uris = {rule.code: help_uri(rule) for rule in all_rules()}
    total = sum(len(r.findings) for r in results)
    failed = [r for r in results if r.status == "error"]
    lines = ["## cnnlint", "",
             f"{len(results)} model x target result(s), {total} finding(s)"
             + (f", {len(failed)} failed" if failed else "") + ".", ""]  # fmt: skip
    lines += _summary_table(results) + [""]
    lines += _placement_table(results)
    for result in results:
        if result.findings:
            lines += _findings(result, uris)
    if failed:
        lines += ["### Models that could not be linted", ""]
        for r in failed:
            lines += [f"- {code(r.model)} ({cell(r.target)}):", "", "  ```text"]
            lines += [f"  {line}" for line in (r.error or "unknown error").replace("```", "'''").splitlines()]
            lines += ["  ```", ""]
    stream.write("\n".join(lines).rstrip("\n") + "\n")
