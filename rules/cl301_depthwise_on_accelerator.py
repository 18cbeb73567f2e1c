"""Depthwise convolution on a GPU or NPU.

What it flags
    Depthwise convolutions (``groups == in_channels``) whose arithmetic intensity is below the
    target's ridge point (peak FLOP/s over bandwidth): they cannot feed the compute units, on
    GPUs and most NPUs, whether the estimate then finds them waiting on memory or running at
    the target's low depthwise efficiency (an NNIE array at 2% of its peak). A depthwise conv
    above the ridge (a large kernel, such as RepLKNet's 31x31) is not flagged: replacing it with
    a regular conv would multiply its FLOPs by the channel count, and its kernel size is CL303's
    to judge. Each finding sets the
    layer's share of the model's FLOPs against its share of estimated latency on the target.

Why
    A depthwise conv does k*k multiply-adds per value it reads, so its arithmetic intensity is a
    few FLOP/byte, far below a GPU's ridge point (T4 fp16: 65 TFLOPS / 320 GB/s = 203 FLOP/B); it
    is memory-bound and cannot use tensor cores. ShuffleNetV2 (Ma et al., ECCV 2018) measured
    memory access cost, not FLOPs, as what decides speed; MobileDets (Xiong et al., CVPR 2021)
    and EfficientNetV2 (Tan & Le, ICML 2021, fused-MBConv) replace depthwise stages with regular
    convs on accelerators for that reason. Mobile ARM CPUs run depthwise well, and Horizon X3 has
    custom depthwise support, so the rule is off on arm-cpu and x3. The k*k taps grow with the
    kernel while the bytes do not: at 31x31 a depthwise conv does 961 multiply-adds per value
    and the roofline puts it on the compute slope of every built-in target.

Example
    nn.Conv2d(144, 144, 3, padding=1, groups=144)   # then a 1x1 projection

Use instead
    nn.Conv2d(144, 24, 3, padding=1)                # fused-MBConv: one regular 3x3

Fix
    The rule prices two changes on the target and proposes the one that saves more: one regular
    KxK conv in place of the depthwise conv and the 1x1 conv after it (fused-MBConv; the pair's
    two kernels against the regular conv's estimate, as CL302 does in narrow stages), or a group
    conv with at least the target's channel granule per group (against the depthwise conv's
    own estimate). ``est_saving_ms`` is that saving; where neither is estimated faster, the
    finding is info and offers no fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import Field

from cnnlint.check import RuleContext, RuleOptions
from cnnlint.cost import ModelCost, saving, spatial
from cnnlint.graph import Layer, LayerGraph, OpKind
from cnnlint.profile import Profile
from cnnlint.results import Finding
from cnnlint.rules._common import duration, fused_conv, kernel_text, ms, percent

CODE = "CL301"
NAME = "depthwise-on-accelerator"
SEVERITY = "warning"


class Options(RuleOptions):
    min_latency_share: float = Field(
        default=0.0, ge=0, le=1,
        description=(
            "report only depthwise layers whose kernel takes at least this fraction of the "
            "model's estimated latency (0: every depthwise conv)"
        ),
    )


def check(ctx: RuleContext) -> Iterator[Finding]:
    graph, cost, profile, options = ctx.graph, ctx.cost, ctx.profile, ctx.options
    ridge = cost.ridge_point
    for layer in graph.layers(OpKind.DEPTHWISE_CONV):
        kernel = cost.kernel_of(layer)
        if kernel is None or kernel.arithmetic_intensity >= ridge:
            continue  # enough work per byte to feed the target (a large kernel): CL303's to judge
        latency_share = cost.latency_share(layer)
        if latency_share < options.min_latency_share:
            continue
        intensity = kernel.arithmetic_intensity
        flops_share = cost.flops_share(layer)
        channels = layer.attrs.get("in_channels", 0)
        proposals = [p for p in (_fused(graph, cost, layer), _grouped(cost, profile, layer)) if p]
        best = max(proposals, key=lambda p: p.saving_s, default=None)
        metrics = {
            "flops_share": round(flops_share, 6),
            "latency_share": round(latency_share, 6),
            "est_time_ms": ms(cost.time_of(layer)),
            "arithmetic_intensity": round(intensity, 3),
            "ridge_point": round(ridge, 3),
            "channels": channels,
        }
        if best is not None:
            metrics.update({
                "proposal": best.name, "est_proposal_before_ms": ms(best.before_s),
                "est_proposal_after_ms": ms(best.after_s), "est_saving_ms": ms(best.saving_s),
            })  # fmt: skip
        yield Finding(
            message=(
                f"{layer.label}: depthwise {kernel_text(layer)}, {channels} ch: "
                f"{percent(flops_share)} of FLOPs but {percent(latency_share)} of est. "
                f"{profile.name} latency ({duration(cost.time_of(layer))}; {intensity:.1f} FLOP/B, "
                f"below the ridge of {ridge:.0f} that feeds the compute units)"
            ),
            layer=layer,
            fix=best.text if best is not None else None,
            metrics=metrics,
        )


@dataclass(frozen=True)
class _Proposal:
    name: str
    text: str
    before_s: float
    after_s: float

    @property
    def saving_s(self) -> float:
        return saving(self.before_s, self.after_s)


def _fused(graph: LayerGraph, cost: ModelCost, layer: Layer) -> _Proposal | None:
    """One regular KxK conv in place of the depthwise conv and the 1x1 conv after it."""
    fused = fused_conv(graph, cost, layer)
    if fused is None:
        return None
    text = (
        f"replace it and the 1x1 conv {fused.pointwise.label} with one regular {kernel_text(layer)} "
        f"conv {fused.in_channels} -> {fused.out_channels} (fused-MBConv): est. "
        f"{duration(fused.separable_s)} -> {duration(fused.regular_s)} for the pair"
    )
    return _Proposal("fused-conv", text, fused.separable_s, fused.regular_s)


def _grouped(cost: ModelCost, profile: Profile, layer: Layer) -> _Proposal | None:
    """A group conv with at least the target's channel granule per group."""
    c_in, c_out = layer.attrs.get("in_channels", 0), layer.attrs.get("out_channels", 0)
    if not c_in or not c_out or len(layer.input_shape) < 3:
        return None
    granule = profile.channel_granule[cost.precision].input
    groups = max(g for g in range(1, c_in + 1)
                 if c_in % g == 0 and c_out % g == 0 and (c_in // g >= granule or g == 1))  # fmt: skip
    kernel = tuple(layer.attrs.get("kernel_size") or (1,))
    shape = (c_in, c_out, kernel, spatial(layer.input_shape), spatial(layer.output_shape))
    batch = layer.input_shape[0]
    before = cost.estimate_conv(*shape, groups=c_in, batch=batch)
    after = cost.estimate_conv(*shape, groups=groups, batch=batch)
    if groups > 1:
        what = f"a group conv with {c_in // groups} channels per group (groups={groups})"
    else:
        what = f"a regular {kernel_text(layer)} conv"
    text = f"use {what}: est. {duration(before)} -> {duration(after)} for the conv"
    return _Proposal("group-conv", text, before, after)
