"""The text report, ruff-like: ``path:line:col: CODE [target] message``, then a summary per model.

Findings of one code at one construction line (a block class that builds 17 layers) are one
entry: ``×17 layers: features.1.conv.0.0, … (worst: …)``; the JSON report keeps one finding per
layer. A model's trace notes and an error shared by its targets print once.
"""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from rich.console import Console
from rich.markup import escape

from cnnlint.core import severity_rank
from cnnlint.report import ReportOptions
from cnnlint.report.common import placement_text
from cnnlint.results import INPUT_SOURCES, Finding, ModelResult

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
LISTED = 3  # layers a grouped entry names before "…"
# metrics that say how much a finding costs, most telling first: the worst of a group has most
_COST_METRICS = ("est_time_ms", "latency_share", "saving_ms", "est_saving_ms")


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
        + (f"{placement_text(result.placement)}; " if result.placement is not None else "")
        + f"{len(result.findings)} finding{'s' if len(result.findings) != 1 else ''}"
        + (f" (MACs, traffic and latency leave out {len(s.not_counted)} opaque submodule(s): "
           f"{', '.join(s.not_counted)})" if s.not_counted else "")
        + (f"; params leave out {_number(s.params_unused)} of {_number(s.params + s.params_unused)}"
           f" that forward() never uses: {', '.join(s.unused_modules)}" if s.params_unused else "")
        + _input_shape(result)
    )  # fmt: skip


def _cost(finding: Finding) -> tuple:
    metrics = finding.metrics
    amount = next((metrics[k] for k in _COST_METRICS if isinstance(metrics.get(k), (int, float))), 0)
    return severity_rank(finding.severity), amount


def grouped(findings: list[Finding]) -> list[list[Finding]]:
    """Findings in report order, those of one code at one construction line on distinct layers
    together (at the place of the first); a second finding on the same layer stays apart."""
    groups: dict[tuple, list[Finding]] = {}
    seen: Counter[tuple] = Counter()
    for finding in findings:
        if not finding.path:
            groups[(id(finding),)] = [finding]
            continue
        line = (finding.code, finding.path, finding.line, finding.column)
        rank = seen[(line, finding.module)]
        seen[(line, finding.module)] += 1
        groups.setdefault((*line, rank), []).append(finding)
    return list(groups.values())


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
    printed_errors: set[tuple[str, str]] = set()
    noted: set[str] = set()
    for result in results:
        if result.status == "error":
            message = result.error or "unknown error"
            if (result.model, message) not in printed_errors:  # one per model, not per target
                printed_errors.add((result.model, message))
                console.print(f"[bold red]error[/]: {escape(message)}")
            continue
        for group in grouped(result.findings):
            _print_group(console, result, group)
        if result.model not in noted:  # the trace is the model's, whatever the target
            noted.add(result.model)
            for note in result.notes:
                console.print(f"[dim]note: {escape(result.model)}: {escape(note)}[/]")
        console.print(f"[dim]{escape(summary_line(result))}[/]")


def _print_group(console: Console, result: ModelResult, group: list[Finding]) -> None:
    worst = max(group, key=_cost)
    where = f"{worst.path}:{worst.line}:{worst.column}" if worst.path else result.model
    style = SEVERITY_STYLE.get(worst.severity or "info", "")
    if len(group) == 1:
        text = worst.message
    else:
        names = [f.module for f in group[:LISTED]] + (["…"] if len(group) > LISTED else [])
        text = f"×{len(group)} layers: {', '.join(names)} (worst: {worst.message})"
    console.print(
        f"[bold]{escape(where)}[/]: [{style}]{worst.code}[/] {escape('[' + result.target + ']')} "
        f"{escape(text)}"
    )
    via = callers(group)
    if via:
        console.print(f"    [dim]via:[/] {escape(via)}")
    if worst.fix:
        console.print(f"    [dim]fix:[/] {escape(worst.fix)}")


def callers(group: list[Finding]) -> str:
    """Where a shared helper was called from, for each layer of a group whose line is inside it
    (``conv_bn()`` called from three lines): ``net.py:18 (a.0), :19 (b.0), :20 (c.0)``. Empty
    when every layer came from one calling line (a block class built in a loop)."""
    sites = []
    for finding in group:
        chain = [(site.path, site.line) for site in finding.related]  # outermost first
        here = (finding.path, finding.line)
        if here in chain and chain.index(here) > 0:
            sites.append((chain[chain.index(here) - 1], finding.module))
    if len({site for site, _ in sites}) < 2:
        return ""
    parts, last_path = [], None
    for (path, line), module in sites[:LISTED]:
        parts.append(f"{path if path != last_path else ''}:{line} ({module})")
        last_path = path
    return ", ".join(parts) + (", …" if len(sites) > LISTED else "")


def write_statistics(results: list[ModelResult], stream: TextIO) -> None:
    """``--statistics``: findings per code and target, most first, as ruff's; errors as usual."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for result in results:
        counts.update((f.code, f.name, result.target) for f in result.findings)
    for message in dict.fromkeys(r.error or "unknown error" for r in results if r.status == "error"):
        stream.write(f"error: {message}\n")
    width = len(str(max(counts.values(), default=0)))
    for (code, name, target), count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        stream.write(f"{count:>{width}}\t{code}\t[{target}]\t{name}\n")
