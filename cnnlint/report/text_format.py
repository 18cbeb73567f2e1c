"""The text report, ruff-like: ``path:line:col: CODE [target] message``, then a summary per model."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.markup import escape

from cnnlint.report import ReportOptions
from cnnlint.results import INPUT_SOURCES, ModelResult

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _number(value: float, unit: str = "") -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {suffix}{unit}"
    return f"{value:.0f} {unit}".rstrip()


def summary_line(result: ModelResult) -> str:
    s = result.summary
    assert s is not None
    return (
        f"{result.model} [{result.target} {result.precision}]: {_number(s.macs, 'MACs')}, "
        f"{_number(s.params)} params, {_number(s.memory_access_bytes, 'B')} memory traffic, "
        f"est. {s.latency_ms:.3f} ms at batch 1, {s.throughput_per_s:,.0f}/s at batch "
        f"{s.throughput_batch}, {100 * s.utilization:.0f}% compute utilisation; "
        f"{len(result.findings)} finding{'s' if len(result.findings) != 1 else ''}"
        + (f" (MACs, traffic and latency leave out {len(s.not_counted)} opaque submodule(s): "
           f"{', '.join(s.not_counted)})" if s.not_counted else "")
        + _input_shape(result)
    )


def _input_shape(result: ModelResult) -> str:
    """"; input 1x3x224x224 (guessed from the first conv)": the shape and where it came from."""
    if not result.input_shapes:
        return ""
    shapes = " and ".join("x".join(str(d) for d in shape) for shape in result.input_shapes)
    source = INPUT_SOURCES.get(result.input_shape_source)
    return f"; input {shapes}" + (f" ({source})" if source else "")


def write(results: list[ModelResult], stream: TextIO, options: ReportOptions) -> None:
    color = options.color
    console = Console(file=stream, force_terminal=color, no_color=not color, highlight=False,
                      soft_wrap=True, emoji=False)  # fmt: skip
    for result in results:
        if result.status == "error":
            console.print(f"[bold red]error[/]: {escape(result.error or 'unknown error')}")
            continue
        for finding in result.findings:
            where = f"{finding.path}:{finding.line}:{finding.column}" if finding.path else result.model
            style = SEVERITY_STYLE.get(finding.severity or "info", "")
            console.print(
                f"[bold]{escape(where)}[/]: [{style}]{finding.code}[/] {escape('[' + result.target + ']')} "
                f"{escape(finding.message)}"
            )
            if finding.fix:
                console.print(f"    [dim]fix:[/] {escape(finding.fix)}")
        for note in result.notes:
            console.print(f"[dim]note: {escape(result.model)}: {escape(note)}[/]")
        console.print(f"[dim]{escape(summary_line(result))}[/]")
