"""Depthwise convolution on a GPU or NPU.

What it flags
    Depthwise convolutions (``groups == in_channels``) on targets where they starve the compute
    units: GPUs and most NPUs. Each finding sets the layer's share of the model's FLOPs against
    its share of estimated latency on the target.

Why
    A depthwise conv does k*k multiply-adds per value it reads, so its arithmetic intensity is a
    few FLOP/byte, far below a GPU's ridge point (T4 fp16: 65 TFLOPS / 320 GB/s = 203 FLOP/B); it
    is memory-bound and cannot use tensor cores. ShuffleNetV2 (Ma et al., ECCV 2018) measured
    memory access cost, not FLOPs, as what decides speed; MobileDets (Xiong et al., CVPR 2021)
    and EfficientNetV2 (Tan & Le, ICML 2021, fused-MBConv) replace depthwise stages with regular
    convs on accelerators for that reason. Mobile ARM CPUs run depthwise well, and Horizon X3 has
    custom depthwise support, so the rule is off on arm-cpu and x3.

Example
    nn.Conv2d(144, 144, 3, padding=1, groups=144)   # then a 1x1 projection

Use instead
    nn.Conv2d(144, 24, 3, padding=1)                # fused-MBConv: one regular 3x3

Fix
    In early, low-channel stages replace depthwise + 1x1 with one regular KxK conv (fused-MBConv);
    elsewhere consider a group conv with at least the target's channel granule per group.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, Field

from cnnlint.check import RuleContext
from cnnlint.graph import OpKind
from cnnlint.results import Finding
from cnnlint.rules._common import duration, kernel_text, ms, percent

CODE = "CL301"
NAME = "depthwise-on-accelerator"
SEVERITY = "warning"


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
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
        latency_share = cost.latency_share(layer)
        if latency_share < options.min_latency_share:
            continue
        kernel = cost.kernel_of(layer)
        intensity = kernel.arithmetic_intensity if kernel else cost.of(layer).arithmetic_intensity
        bound = "memory-bound" if intensity < ridge else "compute-bound"
        flops_share = cost.flops_share(layer)
        channels = layer.attrs.get("in_channels", 0)
        yield Finding(
            message=(
                f"{layer.label}: depthwise {kernel_text(layer)}, {channels} ch: "
                f"{percent(flops_share)} of FLOPs but {percent(latency_share)} of est. "
                f"{profile.name} latency ({duration(cost.time_of(layer))}, {bound}, "
                f"{intensity:.1f} FLOP/B vs ridge {ridge:.0f})"
            ),
            layer=layer,
            fix=(
                "replace depthwise + 1x1 with a regular KxK conv (fused-MBConv) in low-channel "
                "stages, or use a group conv with at least "
                f"{profile.channel_granule[cost.precision].input} channels per group"
            ),
            metrics={
                "flops_share": round(flops_share, 6),
                "latency_share": round(latency_share, 6),
                "est_time_ms": ms(cost.time_of(layer)),
                "arithmetic_intensity": round(intensity, 3),
                "ridge_point": round(ridge, 3),
                "channels": channels,
            },
        )
