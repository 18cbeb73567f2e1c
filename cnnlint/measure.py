"""``--measure``: time each finding's fix on this machine, between check and report.

For a finding with a concrete fix, the original layer (or block) and its fixed variant are built
as real torch modules and timed on the layer's real input shape, from the traced graph, with the
calibrate timer (:mod:`cnnlint.timing`: warm-up, medians of repeated loops, CUDA events on a GPU)
under ``torch.inference_mode``. The original comes from the finding's layer; what the fix is comes
from the finding's metrics, as its rule computed it (:data:`MEASURED` says which metrics each
code's fix reads; nothing else here knows a rule):

- CL201: the aligned channel counts (``padded_in_channels``, ``padded_out_channels``);
- CL302: one regular conv (``in_channels`` -> ``out_channels``, ``kernel_size``, ``stride``,
  ``padding``) instead of the depthwise conv and its 1x1;
- CL102: the dense conv it proposes first (``dense_conv_in_channels`` ->
  ``dense_conv_out_channels``, the same FLOPs) instead of the group conv;
- CL303: the stack of 3x3 convs of ``stack_channels``, the first with the layer's stride;
- CL402: the multi-branch block of ``branch_layers`` (convs, norms, identity, summed) against one
  conv with the widest kernel and a bias.

Each result goes into the finding (``measured_speedup`` = before / after, ``measured_before_ms``,
``measured_after_ms``, ``measured_device``, ``measured_dtype``, ``measured_fix``) and its message
("on this machine: 1.4x faster (0.21 ms → 0.15 ms)", or "slower"). Identical (layer shape, fix)
pairs are timed once, the costliest findings first; findings left when ``--measure-budget`` runs
out say so (``measured_skipped``). Precision: the result's own where the device has it (fp16 on a
GPU; int8 is timed in fp16, as eager torch has no int8 convs), fp32 on a CPU.

Needs each finding's layer, so it runs in the process that traced the model, after check and
before report; the command line imports it only for ``--measure``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnnlint.core import Layer, OpKind, Shape
from cnnlint.results import Finding, ModelResult
from cnnlint.timing import DTYPES, Timer, check_device, device_threads
from cnnlint.wording import measured_time, ms, speedup

DEFAULT_BUDGET_S = 30.0
PER_FINDING_S = 2.0  # at most this long on one (layer shape, fix); less when the total is short
MIN_PER_FINDING_S = 0.05
# The precision a result is costed at -> the dtype it is timed in on a GPU (a CPU: fp32).
GPU_DTYPE = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "int8": "fp16"}
BUDGET, FAILED = "budget", "error"  # measured_skipped: why a finding with a fix was not timed


# ----------------------------------------------------------------------------- the modules timed
class Summed(nn.Module):
    """Parallel branches of one input, summed: a training-time RepVGG-style block."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out


def _conv(layer: Layer, **changes: Any) -> nn.Module:
    """A conv with the layer's geometry, some of it changed (channels, groups, kernel, ...).

    A functional conv records no stride or padding: the stride then follows from the shapes and
    the padding keeps the map ("same"), as most convs do."""
    attrs = layer.attrs
    kernel = tuple(changes.get("kernel_size", attrs.get("kernel_size") or (1,)))
    dims = len(kernel)
    stride = attrs.get("stride") or tuple(max(1, -(-i // max(o, 1))) for i, o in
                                          zip(layer.input_shape[2:], layer.output_shape[2:]))  # fmt: skip
    padding = attrs.get("padding", tuple(k // 2 for k in kernel))
    args = {
        "in_channels": attrs["in_channels"], "out_channels": attrs["out_channels"],
        "kernel_size": kernel, "stride": tuple(stride), "padding": padding,
        "dilation": attrs.get("dilation") or (1,) * dims, "groups": attrs.get("groups", 1),
        "bias": bool(attrs.get("bias", False)),
    }  # fmt: skip
    args.update(changes)
    if args["padding"] == "same" and any(s != 1 for s in args["stride"]):
        args["padding"] = tuple(k // 2 for k in args["kernel_size"])  # torch refuses "same" strided
    return {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims](**args)


def _with_channels(shape: Shape, channels: int) -> Shape:
    return (shape[0], channels, *shape[2:])


# ----------------------------------------------------------------------------- one fix per code
@dataclass(frozen=True)
class Variant:
    """A finding's original layer(s) and its fixed variant, each with its input shape."""

    fix: str  # what changes, for people: "out_channels 24 -> 32"
    before: Callable[[], nn.Module]
    after: Callable[[], nn.Module]
    before_input: Shape
    after_input: Shape
    key: tuple  # equal for identical layer shapes and fixes: timed once

    @classmethod
    def of(cls, fix: str, before: Callable[[], nn.Module], after: Callable[[], nn.Module],
           before_input: Shape, after_input: Shape | None = None) -> Variant:  # fmt: skip
        after_input = after_input or before_input
        # The modules' own repr is their whole geometry (kernel, stride, padding, groups, bias);
        # built on meta, so no weights are made for it.
        with torch.device("meta"):
            key = (repr(before()), before_input, repr(after()), after_input)
        return cls(fix, before, after, before_input, after_input, key)


def _aligned(finding: Finding, layer: Layer) -> Variant | None:
    m = finding.metrics
    c_in, c_out = m.get("padded_in_channels"), m.get("padded_out_channels")
    if not isinstance(c_in, int) or not isinstance(c_out, int):
        return None
    changes = [f"{name} {old} -> {new}" for name, old, new in
               (("in_channels", m.get("in_channels"), c_in), ("out_channels", m.get("out_channels"), c_out))
               if old != new]  # fmt: skip
    shape = layer.input_shape
    if layer.kind == OpKind.LINEAR:
        bias = bool(layer.attrs.get("bias", True))
        return Variant.of(", ".join(changes), lambda: nn.Linear(m["in_channels"], m["out_channels"], bias),
                          lambda: nn.Linear(c_in, c_out, bias), shape,
                          (*shape[:-1], c_in))  # fmt: skip
    if layer.kind not in (OpKind.CONV, OpKind.GROUP_CONV, OpKind.DEPTHWISE_CONV):
        return None  # a transposed conv is not rebuilt here
    # A depthwise conv stays depthwise: one group per (aligned) channel.
    groups = {"groups": c_in} if layer.kind == OpKind.DEPTHWISE_CONV else {}
    return Variant.of(", ".join(changes), lambda: _conv(layer),
                      lambda: _conv(layer, in_channels=c_in, out_channels=c_out, **groups), shape,
                      _with_channels(shape, c_in))  # fmt: skip


def _fused(finding: Finding, layer: Layer) -> Variant | None:
    m = finding.metrics
    c_in, c_out = m.get("in_channels"), m.get("out_channels")
    kernel, stride, padding = m.get("kernel_size"), m.get("stride"), m.get("padding")
    if not (isinstance(c_in, int) and isinstance(c_out, int) and kernel and stride and padding is not None):
        return None
    dims = len(kernel)

    def pair() -> nn.Module:
        return nn.Sequential(_conv(layer), _conv(layer, in_channels=c_in, out_channels=c_out, kernel_size=(1,) * dims,
                                                 stride=(1,) * dims, padding=0, groups=1))  # fmt: skip

    def regular() -> nn.Module:
        return _conv(layer, in_channels=c_in, out_channels=c_out, kernel_size=tuple(kernel), stride=tuple(stride),
                     padding=tuple(padding) if isinstance(padding, list) else padding, groups=1)  # fmt: skip

    k = "x".join(map(str, kernel))
    return Variant.of(f"depthwise {k} + 1x1 -> one {k} conv {c_in}->{c_out}", pair, regular, layer.input_shape)


def _dense(finding: Finding, layer: Layer) -> Variant | None:
    """CL102's first proposal: one dense conv of the widths it names, with the same FLOPs."""
    m = finding.metrics
    c_in, c_out = m.get("dense_conv_in_channels"), m.get("dense_conv_out_channels")
    if not isinstance(c_in, int) or not isinstance(c_out, int) or not layer.is_conv():
        return None
    return Variant.of(f"{m.get('groups')} groups {m.get('in_channels')}->{m.get('out_channels')} -> dense "
                      f"{c_in}->{c_out}", lambda: _conv(layer),
                      lambda: _conv(layer, in_channels=c_in, out_channels=c_out, groups=1), layer.input_shape,
                      _with_channels(layer.input_shape, c_in))  # fmt: skip


def _stacked_3x3(finding: Finding, layer: Layer) -> Variant | None:
    widths = finding.metrics.get("stack_channels")
    if not isinstance(widths, list) or len(widths) < 2 or not layer.is_conv():
        return None
    dims = len(layer.attrs.get("kernel_size") or (1, 1))

    def stack() -> nn.Module:
        return nn.Sequential(*(
            _conv(layer, in_channels=c_in, out_channels=c_out, kernel_size=(3,) * dims, padding=(1,) * dims,
                  dilation=(1,) * dims, **({} if i == 0 else {"stride": (1,) * dims}))
            for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:]))
        ))  # fmt: skip

    kernel = "x".join(map(str, layer.attrs.get("kernel_size") or ()))
    chain = " -> ".join(map(str, widths))
    return Variant.of(f"{kernel} -> {len(widths) - 1} stacked 3x3 ({chain})", lambda: _conv(layer), stack,
                      layer.input_shape)  # fmt: skip


def _merged(finding: Finding, layer: Layer) -> Variant | None:
    branches = finding.metrics.get("branch_layers")
    if not isinstance(branches, list) or len(branches) < 2 or not layer.is_conv():
        return None
    out_channels = layer.attrs["out_channels"]
    widest = tuple(layer.attrs.get("kernel_size") or (1,))

    def branch(spec: dict) -> nn.Module:
        parts: list[nn.Module] = []
        kernel = tuple(spec.get("kernel") or ())
        if kernel:
            same = kernel == widest
            parts.append(_conv(layer, kernel_size=kernel, bias=False,
                               **({} if same else {"padding": tuple(k // 2 for k in kernel)})))  # fmt: skip
        if spec.get("norm"):
            parts.append({1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[len(widest)](out_channels))
        return nn.Sequential(*parts) if parts else nn.Identity()

    kinds = " + ".join(finding.metrics.get("branch_kinds") or [])
    return Variant.of(f"{kinds} -> one {'x'.join(map(str, widest))} conv",
                      lambda: Summed([branch(b) for b in branches]), lambda: _conv(layer, bias=True),
                      layer.input_shape)  # fmt: skip


@dataclass(frozen=True)
class Measurable:
    """How one code's finding is measured: its fixed variant, and the rule's own estimates of
    the two times (metric names), for comparing prediction with measurement."""

    variant: Callable[[Finding, Layer], Variant | None]
    estimated: tuple[str, str]  # (before, after) in the finding's metrics, ms


MEASURED: dict[str, Measurable] = {
    "CL201": Measurable(_aligned, ("est_conv_time_ms", "est_aligned_time_ms")),
    "CL302": Measurable(_fused, ("separable_time_ms", "regular_time_ms")),
    "CL102": Measurable(_dense, ("est_conv_time_ms", "est_dense_time_ms")),
    "CL303": Measurable(_stacked_3x3, ("est_conv_time_ms", "est_stack_time_ms")),
    "CL402": Measurable(_merged, ("est_time_ms", "merged_time_ms")),
}


def variant(finding: Finding) -> Variant | None:
    """The finding's fix as torch modules, or None when it has no concrete one."""
    measurable = MEASURED.get(finding.code)
    layer = finding.layer
    if measurable is None or layer is None or len(layer.input_shape) < 2:
        return None
    try:
        return measurable.variant(finding, layer)
    except (KeyError, TypeError, ValueError, RuntimeError):  # a layer torch cannot rebuild as recorded
        return None


def predicted_speedup(code: str, metrics: dict[str, Any]) -> float | None:
    """The rule's own estimate of before / after on the finding's target (``metrics``: the
    finding's, as in the JSON report), for setting beside the measured speedup."""
    measurable = MEASURED.get(code)
    if measurable is None:
        return None
    before, after = (metrics.get(name) for name in measurable.estimated)
    if isinstance(before, (int, float)) and isinstance(after, (int, float)) and after > 0:
        return before / after
    return None


# ----------------------------------------------------------------------------- timing them
@dataclass
class Summary:
    """What a --measure run did, for the line the command line prints."""

    device: str
    described: str  # "cpu (2 threads)"
    dtypes: set[str] = field(default_factory=set)
    findings: int = 0
    measured: int = 0
    timings: int = 0  # distinct (layer shape, fix) pairs timed
    no_fix: int = 0
    budget: list[Finding] = field(default_factory=list)
    failed: list[tuple[Finding, str]] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        dtype = "/".join(sorted(self.dtypes)) or "fp32"
        text = (f"measured {self.measured} of {self.findings} findings on {self.device} ({self.described}, "
                f"{dtype}) in {self.seconds:.1f} s, {self.timings} distinct layer/fix pair(s) timed")  # fmt: skip
        if self.no_fix:
            text += f"; {self.no_fix} had no concrete fix"
        if self.budget:
            names = ", ".join(dict.fromkeys(f"{f.code} {f.module}" for f in self.budget))
            text += f"; {len(self.budget)} skipped: budget ran out ({_cut(names)})"
        if self.failed:
            text += f"; {len(self.failed)} failed ({_cut(self.failed[0][1])})"
        return text


def _cut(text: str, width: int = 300) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def verdict(before_s: float, after_s: float) -> str:
    """ "1.4x faster (0.21 ms → 0.15 ms)", or slower, said as such."""
    return f"{speedup(before_s, after_s)[0]} ({measured_time(before_s)} → {measured_time(after_s)})"


def _dtype(device: str, precision: str) -> str:
    if device != "cuda":
        return "fp32"
    name = GPU_DTYPE.get(precision, "fp32")
    if name == "bf16" and not torch.cuda.is_bf16_supported():
        return "fp32"
    return name


def _cost(finding: Finding) -> float:
    """How much the finding is worth measuring first: its layer's share of latency."""
    for key in ("latency_share", "saving_latency_share"):
        value = finding.metrics.get(key)
        if isinstance(value, (int, float)):
            return abs(value)
    return 0.0


def measure(results: Iterable[ModelResult], device: str = "cpu", budget_s: float = DEFAULT_BUDGET_S,
            threads: int | None = None) -> Summary:  # fmt: skip
    """Time every finding's fix in ``results`` (which must still hold their layers) and record
    the result in each finding. ``threads``: CPU threads torch may use while timing (default: its
    own choice; 1 keeps a machine shared with other work from stalling the timings). Raises
    DeviceError for ``cuda`` without a GPU."""
    check_device(device)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _measure(results, device, budget_s)
    finally:
        torch.set_num_threads(before)


def _measure(results: Iterable[ModelResult], device: str, budget_s: float) -> Summary:
    started = time.perf_counter()
    summary = Summary(device, device_threads(device))
    pending: dict[tuple, tuple[Variant, str, list[Finding]]] = {}
    for result in results:
        if result.status != "ok":
            continue
        dtype = _dtype(device, result.precision)
        for finding in result.findings:
            summary.findings += 1
            found = variant(finding)
            if found is None:
                summary.no_fix += 1
                continue
            entry = pending.setdefault((found.key, dtype), (found, dtype, []))
            entry[2].append(finding)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # as deployed eager models usually run
    order = sorted(pending.values(), key=lambda item: -max(_cost(f) for f in item[2]))
    # An even share of the total, less a margin for building the modules and warming up.
    per_finding = min(PER_FINDING_S, max(MIN_PER_FINDING_S, 0.8 * budget_s / max(1, len(order))))
    for found, dtype, findings in order:
        if time.perf_counter() - started >= budget_s:
            for finding in findings:
                finding.metrics["measured_skipped"] = BUDGET
                finding.message += "; not measured on this machine: --measure-budget ran out"
            summary.budget.extend(findings)
            continue
        try:
            before_s, after_s = _time(found, device, DTYPES[dtype], per_finding)
        except (RuntimeError, NotImplementedError, ValueError) as exc:  # e.g. no kernel for this dtype
            reason = f"{findings[0].code} {findings[0].module}: {str(exc).splitlines()[0][:120]}"
            for finding in findings:
                finding.metrics["measured_skipped"] = f"{FAILED}: {reason}"
            summary.failed.extend((f, reason) for f in findings)
            continue
        summary.timings += 1
        summary.dtypes.add(dtype)
        for finding in findings:
            _record(finding, found, before_s, after_s, device, dtype)
            summary.measured += 1
    summary.seconds = time.perf_counter() - started
    return summary


def _time(found: Variant, device: str, dtype: torch.dtype, budget_s: float) -> tuple[float, float]:
    """(before, after) median seconds per call: the two alternate, twice when the budget allows,
    and each keeps its faster median (a burst of load from another process lands on one only)."""
    timer = Timer(device, dtype, budget_s / 4)
    began = time.perf_counter()
    before = timer.median_s(found.before, [found.before_input])
    after = timer.median_s(found.after, [found.after_input])
    if time.perf_counter() - began < budget_s / 2:
        before = min(before, timer.median_s(found.before, [found.before_input]))
        after = min(after, timer.median_s(found.after, [found.after_input]))
    return before, after


def _record(finding: Finding, found: Variant, before_s: float, after_s: float, device: str, dtype: str) -> None:
    finding.metrics.update({
        "measured_speedup": round(before_s / after_s, 4),
        "measured_before_ms": ms(before_s),
        "measured_after_ms": ms(after_s),
        "measured_device": device,
        "measured_dtype": dtype,
        "measured_fix": found.fix,
    })  # fmt: skip
    finding.message += f"; on this machine: {verdict(before_s, after_s)}"
