"""The HTML report: one self-contained file with inline SVG plots, viewable offline.

Per model: a summary, on an accelerator target a strip of the network's layers in the order they
run coloured by device (the placement: accelerator or fallback device), a roofline plot of its
kernels (arithmetic intensity against achieved FLOP/s under the target's compute roof and memory
slope, hotspots labelled), a bar chart of estimated latency per layer (per stage for big models)
split into compute-bound, memory-bound and per-kernel overhead time with the finding codes
marked, and the findings table with source locations. matplotlib draws the plots (the optional
``report`` extra); the strip is drawn here.
"""

from __future__ import annotations

import datetime
import html
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field

from cnnlint import __version__
from cnnlint.cost import Kernel, ModelCost
from cnnlint.graph import LayerGraph
from cnnlint.report.common import placement_text
from cnnlint.report.text_format import _number
from cnnlint.results import ModelResult, Placement
from cnnlint.wording import measured_time, speedup

MAX_BARS = 36  # more kernels than this: group them by stage (module path prefix)
HOTSPOTS = 6  # kernels labelled on the roofline
CLASS_COLORS = {
    "conv3x3": "#1f77b4", "conv1x1": "#17becf", "conv_kxk": "#9467bd", "group_conv": "#8c564b",
    "depthwise_conv": "#ff7f0e", "linear": "#2ca02c", "matmul": "#bcbd22", "elementwise": "#7f7f7f",
    "transcendental": "#d62728", "norm": "#98df8a", "pool": "#e377c2", "avg_pool": "#c5b0d5", "reduce": "#f7b6d2", "other": "#c7c7c7",
}  # fmt: skip
SEVERITY_COLORS = {"error": "#c62828", "warning": "#ef6c00", "info": "#1565c0"}
# The placement strip: layers on the accelerator, and on the fallback device.
DEVICE_COLORS = {True: "#2e7d32", False: "#c62828"}
STRIP_WIDTH, STRIP_HEIGHT = 1000, 36


@dataclass
class ModelReport:
    result: ModelResult
    graph: LayerGraph
    cost: ModelCost


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: the SVG sits inline


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.fonttype": "none", "font.size": 10,
                                "font.family": ["DejaVu Sans", "sans-serif"]})  # fmt: skip
    import matplotlib.pyplot as plt

    return plt


def _kernel_label(report: ModelReport, kernel: Kernel) -> str:
    return report.graph[kernel.head].label


def _findings_by_kernel(report: ModelReport) -> dict[str, list[str]]:
    codes: dict[str, list[str]] = defaultdict(list)
    for finding in report.result.findings:
        if finding.layer is None or finding.layer.name not in report.cost.layers:
            continue
        head = report.cost.of(finding.layer).kernel
        if finding.code not in codes[head]:
            codes[head].append(finding.code)
    return codes


def roofline_svg(report: ModelReport) -> str:
    plt = _pyplot()
    cost, profile = report.cost, report.cost.profile
    peak = profile.peak_flops(cost.precision)
    bandwidth = profile.bandwidth_bytes_per_s
    kernels = [k for k in cost.kernels.values() if k.time_s > 0 and k.flops > 0 and k.bytes > 0]
    flagged = _findings_by_kernel(report)
    fig, ax = plt.subplots(figsize=(9.5, 5.6))
    if kernels:
        intensities = [k.arithmetic_intensity for k in kernels]
        lo, hi = min(intensities) / 2, max(max(intensities) * 2, 2 * peak / bandwidth)
    else:
        lo, hi = 0.1, 1000.0
    xs = [lo, peak / bandwidth, hi]
    ax.plot(xs, [min(peak, x * bandwidth) for x in xs], color="#222", lw=2, zorder=1)
    ax.annotate(f"compute roof {peak / 1e12:.3g} TFLOP/s", (hi, peak), textcoords="offset points",
                xytext=(-4, 5), ha="right", fontsize=9)  # fmt: skip
    ax.annotate(f"memory slope {bandwidth / 1e9:.3g} GB/s", (lo * 1.3, lo * 1.3 * bandwidth),
                textcoords="offset points", xytext=(2, 6), ha="left", fontsize=9, rotation=0)  # fmt: skip
    total = cost.latency_s or 1.0
    by_class: dict[str, list[Kernel]] = defaultdict(list)
    for k in kernels:
        by_class[k.op_class].append(k)
    for op_class, members in sorted(by_class.items()):
        ax.scatter([k.arithmetic_intensity for k in members], [k.flops / k.time_s for k in members],
                   s=[20 + 600 * k.time_s / total for k in members], color=CLASS_COLORS.get(op_class, "#999"),
                   alpha=0.75, edgecolors=["#c62828" if k.head in flagged else "white" for k in members],
                   linewidths=[1.6 if k.head in flagged else 0.5 for k in members], label=op_class, zorder=3)  # fmt: skip
    for rank, k in enumerate(hotspot_kernels(report), 1):  # numbered here, named in the list below
        ax.annotate(str(rank), (k.arithmetic_intensity, k.flops / k.time_s), textcoords="offset points",
                    xytext=(7, 5), fontsize=9, fontweight="bold", color="#111",
                    bbox={"boxstyle": "circle,pad=0.15", "fc": "#fff59d", "ec": "#555", "lw": 0.6})  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ymin = min([k.flops / k.time_s for k in kernels] or [peak / 1e4]) / 3
    ax.set_ylim(ymin, peak * 3)
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("achieved FLOP/s (estimated)")
    ax.set_title(f"Roofline on {profile.name} ({cost.precision}): each point a kernel, size = time share; "
                 "red ring = has a finding", fontsize=10)  # fmt: skip
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, ncol=2, framealpha=0.9)
    return _svg(fig)


def hotspot_kernels(report: ModelReport) -> list[Kernel]:
    """The slowest kernels, labelled on the roofline."""
    kernels = [k for k in report.cost.kernels.values() if k.time_s > 0 and k.flops > 0 and k.bytes > 0]
    return sorted(kernels, key=lambda k: -k.time_s)[:HOTSPOTS]


@dataclass
class Bar:
    label: str
    compute_s: float = 0.0  # time of kernels on the compute roof
    memory_s: float = 0.0  # time of kernels on the memory slope
    overhead_s: float = 0.0
    codes: list[str] = field(default_factory=list)
    kernels: int = 0

    @property
    def total(self) -> float:
        return self.compute_s + self.memory_s + self.overhead_s


def latency_bars(report: ModelReport) -> tuple[list[Bar], str]:
    """Bars per kernel, or per stage when there are more than MAX_BARS kernels."""
    cost, profile = report.cost, report.cost.profile
    flagged = _findings_by_kernel(report)
    kernels = [k for k in cost.kernels.values() if k.time_s > 0]
    paths = {k.head: report.graph[k.head].module_path for k in kernels}
    unit, key = "layer", (lambda k: k.head)
    if len(kernels) > MAX_BARS:
        for depth in (3, 2, 1):
            groups = {_prefix(paths[k.head], depth) for k in kernels}
            if len(groups) <= MAX_BARS:
                unit, key = "stage", (lambda k, d=depth: _prefix(paths[k.head], d))
                break
        else:
            unit, key = "stage", (lambda k: _prefix(paths[k.head], 1))
    bars: dict[str, Bar] = {}
    for k in kernels:
        name = key(k)
        bar = bars.setdefault(name, Bar(_kernel_label(report, k) if unit == "layer" else name))
        overhead = profile.kernel_overhead_s(k.op_class)
        bound = k.time_s - overhead
        if cost.is_memory_bound(k):
            bar.memory_s += bound
        else:
            bar.compute_s += bound
        bar.overhead_s += overhead
        bar.kernels += 1
        for code in flagged.get(k.head, []):
            if code not in bar.codes:
                bar.codes.append(code)
    ordered = list(bars.values())
    if len(ordered) > MAX_BARS:  # still too many: keep the slowest, in order, and say so
        keep = set(id(b) for b in sorted(ordered, key=lambda b: -b.total)[:MAX_BARS])
        ordered = [b for b in ordered if id(b) in keep]
    return ordered, unit


def _prefix(path: str, depth: int) -> str:
    return ".".join(path.split(".")[:depth]) if path else "(model)"


def latency_svg(report: ModelReport) -> str:
    plt = _pyplot()
    bars, unit = latency_bars(report)
    height = max(3.0, 0.28 * len(bars) + 1.4)
    fig, ax = plt.subplots(figsize=(9.5, height))
    ys = list(range(len(bars)))[::-1]
    ms = 1e3
    left = [0.0] * len(bars)
    for part, color, label in (("compute_s", "#1f77b4", "compute-bound"), ("memory_s", "#ff7f0e", "memory-bound"),
                               ("overhead_s", "#9e9e9e", "per-kernel overhead")):  # fmt: skip
        widths = [getattr(b, part) * ms for b in bars]
        ax.barh(ys, widths, left=left, color=color, label=label, height=0.72)
        left = [a + w for a, w in zip(left, widths)]
    longest = max(left or [1.0])
    for y, bar, end in zip(ys, bars, left):
        if bar.codes:
            ax.text(end + longest * 0.01, y, " ".join(bar.codes), va="center", fontsize=8, color="#c62828",
                    fontweight="bold")  # fmt: skip
    ax.set_yticks(ys)
    ax.set_yticklabels([_short(b.label, 34) + (f" ({b.kernels})" if unit == "stage" else "") for b in bars],
                       fontsize=8)  # fmt: skip
    ax.set_xlim(0, longest * 1.18)
    ax.set_xlabel("estimated time (ms, batch 1)")
    what = "layer" if unit == "layer" else "stage (kernels in brackets)"
    ax.set_title(f"Estimated latency per {what}; red: finding codes", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.75 / height), ncol=3, fontsize=8, frameon=False)
    ax.grid(True, axis="x", alpha=0.3)
    return _svg(fig)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def placement_svg(placement: Placement) -> str:
    """The network as a strip, its layers left to right in the order they run, each run of layers
    on one device a block coloured by that device (hover: the run's first and last layer)."""
    total = max(placement.layers, 1)
    blocks, x = [], 0.0
    for run in placement.runs:
        width = STRIP_WIDTH * run.layers / total
        what = run.first if run.layers == 1 else f"{run.first} … {run.last}"
        title = f"{what}: {run.layers} layer{'s' if run.layers != 1 else ''} on the {run.device}"
        blocks.append(f'<rect x="{x:.2f}" y="0" width="{width:.2f}" height="{STRIP_HEIGHT}" '
                      f'fill="{DEVICE_COLORS[run.on_accelerator]}" stroke="#fff" stroke-width="0.5">'
                      f"<title>{_esc(title)}</title></rect>")  # fmt: skip
        x += width
    label = (f"{placement.on_accelerator} of {placement.layers} layers on the "
             f"{placement.accelerator}")  # fmt: skip
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {STRIP_WIDTH} {STRIP_HEIGHT}" '
            f'preserveAspectRatio="none" style="height:{STRIP_HEIGHT}px" role="img" '
            f'aria-label="{_esc(label)}">{"".join(blocks)}</svg>')  # fmt: skip


def _placement_figure(placement: Placement) -> str:
    legend = " ".join(
        f'<span class="swatch" style="background:{DEVICE_COLORS[on]}"></span>{_esc(device)}'
        for on, device in ((True, placement.accelerator), (False, placement.fallback_device))
    )  # fmt: skip
    off = placement.fallback_layers
    listed = ", ".join(off[:8]) + (f" and {len(off) - 8} more" if len(off) > 8 else "")
    where = f'<div class="note">on the {_esc(placement.fallback_device)}: {_esc(listed)}</div>' if off else ""
    return (f'<figure class="placement">{placement_svg(placement)}<figcaption>{legend} · '
            f"{_esc(placement_text(placement))} (first layer left; transfers are in the "
            f"latency){where}</figcaption></figure>")  # fmt: skip


# ----------------------------------------------------------------------------- HTML
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;
 background:#f6f7f9;color:#1d2330;line-height:1.45}
main{max-width:1080px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.3em;margin:1.6em 0 .4em;border-bottom:2px solid #dde1e7;
 padding-bottom:.2em}h3{font-size:1.05em;margin:1.3em 0 .4em;color:#37415a}
.meta{color:#5a6478;font-size:.9em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(165px,1fr));gap:10px;margin:12px 0}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:8px 12px}
.card b{display:block;font-size:1.1em;white-space:nowrap}.card span{color:#5a6478;font-size:.8em}
figure{background:#fff;border:1px solid #dde1e7;border-radius:8px;margin:12px 0;padding:10px;overflow-x:auto}
figure svg{width:100%;height:auto;display:block;margin:0 auto}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.88em}
th,td{border:1px solid #dde1e7;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.code{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:nowrap}
.sev{font-weight:600;border-radius:4px;padding:1px 6px;color:#fff;font-size:.85em}
.loc{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;color:#37415a;word-break:break-all}
figcaption{font-size:.88em;padding:4px 12px}ol.hot{margin:.3em 0;padding-left:1.6em}
.fix{color:#2e7d32}.note{color:#5a6478;font-size:.85em}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;margin:0 .3em 0 .6em;
 vertical-align:-.1em}
"""


def _esc(value: object) -> str:
    return html.escape(str(value))


def _cards(result: ModelResult) -> str:
    s = result.summary
    assert s is not None
    items = [
        (_number(s.flops, "FLOPs"), "arithmetic"),
        (_number(s.macs, "MACs"), "multiply-accumulates"),
        (_number(s.params), "parameters"),
        (_number(s.memory_access_bytes, "B"), "memory traffic"),
        (f"{s.latency_ms:.3f} ms", "est. latency, batch 1"),
        (f"{s.throughput_per_s:,.0f}/s", f"est. throughput, batch {s.throughput_batch}"),
        (f"{100 * s.utilization:.0f}%", "compute utilisation"),
        (str(len(result.findings)), "findings"),
    ]
    return '<div class="cards">' + "".join(
        f'<div class="card"><b>{_esc(v)}</b><span>{_esc(label)}</span></div>' for v, label in items
    ) + "</div>"


def _hotspot_list(report: ModelReport) -> str:
    total = report.cost.latency_s or 1.0
    items = []
    for k in hotspot_kernels(report):
        layer = report.graph[k.head]
        where = f" <span class=\"loc\">{_esc(layer.location)}</span>" if layer.location else ""
        items.append(f"<li><b>{_esc(layer.label)}</b> ({_esc(k.op_class)}): {k.time_s * 1e3:.3f} ms, "
                     f"{k.time_s / total:.0%} of latency, {k.arithmetic_intensity:.1f} FLOP/B{where}</li>")  # fmt: skip
    return f'<figcaption><b>Hotspots</b><ol class="hot">{"".join(items)}</ol></figcaption>' if items else ""


def _findings_table(report: ModelReport) -> str:
    findings = report.result.findings
    if not findings:
        return "<p>No findings on this target.</p>"
    # A column of measured speedups when --measure ran (any finding carries its outcome).
    measuring = any("measured_speedup" in f.metrics or "measured_skipped" in f.metrics for f in findings)
    rows = []
    for f in findings:
        color = SEVERITY_COLORS.get(f.severity or "info", "#555")
        where = f"{f.path}:{f.line}:{f.column}" if f.path else "(model)"
        fix = f'<div class="fix">fix: {_esc(f.fix)}</div>' if f.fix else ""
        cell = f"<td>{_measured_cell(f)}</td>" if measuring else ""
        rows.append(
            f'<tr><td class="code">{_esc(f.code)}</td><td><span class="sev" style="background:{color}">'
            f"{_esc(f.severity)}</span></td><td>{_esc(f.module or '')}</td>"
            f'<td class="loc">{_esc(where)}</td>{cell}<td>{_esc(f.message)}{fix}</td></tr>'
        )
    head = "<th>measured fix</th>" if measuring else ""
    return ("<table><thead><tr><th>code</th><th>severity</th><th>layer</th><th>source</th>"
            f"{head}<th>message</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")  # fmt: skip


def _measured_cell(finding) -> str:
    """The measured speedup of the finding's fix (--measure), green when faster, red when slower."""
    m = finding.metrics
    if not isinstance(m.get("measured_speedup"), (int, float)):
        skipped = m.get("measured_skipped")
        return f'<span class="note">{_esc("not measured: " + skipped) if skipped else "no concrete fix"}</span>'
    before_s, after_s = m["measured_before_ms"] / 1e3, m["measured_after_ms"] / 1e3
    text, slower = speedup(before_s, after_s)  # as the finding's message says it (measure.verdict)
    color = "#c62828" if slower else "#2e7d32"
    return (f'<b style="color:{color}">{_esc(text)}</b><div class="note">{measured_time(before_s)} → '
            f'{measured_time(after_s)}, {_esc(m.get("measured_device", ""))} '
            f'{_esc(m.get("measured_dtype", ""))}<br>{_esc(m.get("measured_fix", ""))}</div>')  # fmt: skip


def render_html(reports: list[ModelReport], errors: list[str] | None = None, measured: str | None = None) -> str:
    """The page; ``measured``: the --measure summary line, when the fixes were timed."""
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>cnnlint report: {_esc(', '.join(r.result.model for r in reports) or 'no models')}</title>",
        f"<style>{CSS}</style></head><body><main>",
        "<h1>cnnlint report</h1>",
        f'<p class="meta">cnnlint {_esc(__version__)} · {when} · estimates from the target profile\'s '
        "roofline; measure before you trust a small difference.</p>",
    ]
    if measured:
        parts.append(f'<p class="meta">--measure: {_esc(measured)}.</p>')
    for message in errors or []:
        parts.append(f'<p class="sev" style="background:#c62828;display:block">{_esc(message)}</p>')
    for report in reports:
        r = report.result
        profile = report.cost.profile
        parts += [
            f"<section><h2>{_esc(r.model)}</h2>",
            f'<p class="meta">target <b>{_esc(r.target)}</b> ({_esc(profile.description or profile.kind)}), '
            f"{_esc(r.precision)}, input {_esc(' ; '.join('x'.join(map(str, s)) for s in r.input_shapes))}, "
            f"{len(report.cost.kernels)} kernels</p>",
            _cards(r),
            *(["<h3>Placement</h3>", _placement_figure(r.placement)] if r.placement is not None else []),
            "<h3>Roofline</h3>",
            f'<figure class="plot roofline">{roofline_svg(report)}{_hotspot_list(report)}</figure>',
            "<h3>Where the time goes</h3>",
            f'<figure class="plot latency">{latency_svg(report)}</figure>',
            f"<h3>Findings ({len(r.findings)})</h3>",
            _findings_table(report),
        ]
        if r.notes:
            parts.append("".join(f'<p class="note">note: {_esc(n)}</p>' for n in r.notes))
        parts.append("</section>")
    parts.append("</main></body></html>")
    document = "\n".join(parts)
    return re.sub(r"\n\s*\n", "\n", document)
