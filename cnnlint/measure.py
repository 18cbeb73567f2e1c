"""``--measure``: time each finding's fix on this machine, between check and report.

For a finding with a concrete fix, the original layer (or block) and its fixed variant are built
as real torch modules and timed on the layer's real input shape, from the traced graph, with the
calibrate timer (:mod:`cnnlint.timing`: warm-up, medians of repeated loops, CUDA events on a GPU)
under ``torch.inference_mode``. What the fix is, its rule states (as a ruff rule builds its own
``Fix``): the rule module's ``MEASURED`` gives, for one finding, the layers before and after the
fix as plain specs (:mod:`cnnlint.proposal`: convs, linears, batch norms, chains of them, summed
branches) with their input shapes, and names the metrics of its own estimate of the two times.
This module only builds those specs as torch modules (:func:`build`) and times them; it knows no
rule.

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnnlint.check import rule_by_code
from cnnlint.proposal import BatchNorm, Chain, Conv, Identity, Linear, Spec, Sum, Variant
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


def build(spec: Spec) -> nn.Module:
    """The torch module a rule's layer spec states (:mod:`cnnlint.proposal`)."""
    if isinstance(spec, Conv):
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[len(spec.kernel_size)]
        return conv(spec.in_channels, spec.out_channels, spec.kernel_size, stride=spec.stride, padding=spec.padding,
                    dilation=spec.dilation, groups=spec.groups, bias=spec.bias)  # fmt: skip
    if isinstance(spec, Linear):
        return nn.Linear(spec.in_features, spec.out_features, spec.bias)
    if isinstance(spec, BatchNorm):
        return {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[spec.dims](spec.channels)
    if isinstance(spec, Identity):
        return nn.Identity()
    if isinstance(spec, Chain):
        return nn.Sequential(*(build(layer) for layer in spec.layers))
    if isinstance(spec, Sum):
        return Summed([build(branch) for branch in spec.branches])
    raise TypeError(f"not a layer spec: {spec!r}")


@dataclass(frozen=True)
class Timed:
    """A finding's fix as its rule states it (:class:`cnnlint.proposal.Variant`), ready to time."""

    variant: Variant
    key: tuple  # equal for identical layer shapes and fixes: timed once

    @property
    def fix(self) -> str:
        return self.variant.fix

    def before(self) -> nn.Module:
        return build(self.variant.before)

    def after(self) -> nn.Module:
        return build(self.variant.after)

    @classmethod
    def of(cls, variant: Variant) -> Timed:
        # The modules' own repr is their whole geometry (kernel, stride, padding, groups, bias);
        # built on meta, so no weights are made for it.
        with torch.device("meta"):
            key = (repr(build(variant.before)), variant.before_input, repr(build(variant.after)), variant.after_input)
        return cls(variant, key)


# ----------------------------------------------------------------------------- asking the rule
def variant(finding: Finding) -> Timed | None:
    """The finding's fix as its rule states it (the rule's ``MEASURED``), or None when it has
    no concrete one."""
    rule = rule_by_code(finding.code)
    layer = finding.layer
    if rule is None or rule.measured is None or layer is None or len(layer.input_shape) < 2:
        return None
    try:
        stated = rule.measured.variant(finding, layer)
        return None if stated is None else Timed.of(stated)
    except (KeyError, TypeError, ValueError, RuntimeError):  # a layer torch cannot rebuild as recorded
        return None


def predicted_speedup(code: str, metrics: dict[str, Any]) -> float | None:
    """The rule's own estimate of before / after on the finding's target (``metrics``: the
    finding's, as in the JSON report; which two its rule's ``MEASURED`` names), for setting
    beside the measured speedup."""
    rule = rule_by_code(code)
    if rule is None or rule.measured is None:
        return None
    before, after = (metrics.get(name) for name in rule.measured.estimated)
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
    pending: dict[tuple, tuple[Timed, str, list[Finding]]] = {}
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


def _time(found: Timed, device: str, dtype: torch.dtype, budget_s: float) -> tuple[float, float]:
    """(before, after) median seconds per call: the two alternate, twice when the budget allows,
    and each keeps its faster median (a burst of load from another process lands on one only)."""
    timer = Timer(device, dtype, budget_s / 4)
    began = time.perf_counter()
    before_input, after_input = found.variant.before_input, found.variant.after_input
    before = timer.median_s(found.before, [before_input])
    after = timer.median_s(found.after, [after_input])
    if time.perf_counter() - began < budget_s / 2:
        before = min(before, timer.median_s(found.before, [before_input]))
        after = min(after, timer.median_s(found.after, [after_input]))
    return before, after


def _record(finding: Finding, found: Timed, before_s: float, after_s: float, device: str, dtype: str) -> None:
    finding.metrics.update({
        "measured_speedup": round(before_s / after_s, 4),
        "measured_before_ms": ms(before_s),
        "measured_after_ms": ms(after_s),
        "measured_device": device,
        "measured_dtype": dtype,
        "measured_fix": found.fix,
    })  # fmt: skip
    finding.message += f"; on this machine: {verdict(before_s, after_s)}"
