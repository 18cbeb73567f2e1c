"""Convolutions with kernels larger than 3x3 on a GPU.

What it flags
    Dense convolutions (``groups == 1``) and depthwise convolutions (``groups == in_channels``)
    with a kernel side above ``max_kernel`` (3) on both axes, when a stack of 3x3 convs with the
    same receptive field (3x3 depthwise convs, for a depthwise conv) is estimated to run at least
    ``min_saving_percent`` faster on the target. The message gives the layer's estimated time and
    share of latency, and the estimated time of the 3x3 stack. Factorised 1xk / kx1 convs
    (Inception-v3) are left alone: replacing them is a change to the pair, not to one layer, and
    so are grouped convs with more than one channel per group.

Why
    GPU libraries run 3x3 convs far closer to peak than other kernel sizes: cuDNN uses Winograd
    F(2x2, 3x3), which does the work of a 3x3 conv with 2.25x fewer multiplications. RepVGG (Ding
    et al., CVPR 2021, Table 1) measures 19.1 TFLOPS for 3x3 convs on a 1080Ti against 5.0 for
    5x5 and 4.7 for 7x7: about 4x less work per second. The profiles' ``conv3x3`` and
    ``conv_kxk`` efficiencies encode that ratio, and the rule compares the layer with
    ceil((k-1)/2) stacked 3x3 convs (VGG, Simonyan & Zisserman 2015: two 3x3 see 5x5, three see
    7x7), the first carrying the stride, the inner width min(c_out, max(c_in, c_out/2)).

    A large depthwise kernel is the other case: its k*k taps per value put it on the compute
    slope of the roofline (a 31x31 depthwise conv, RepLKNet, Ding et al., CVPR 2022, does 961
    multiply-adds per value it reads), where ceil((k-1)/2) stacked 3x3 depthwise convs do
    9 * ceil((k-1)/2) taps instead: 135 for 31x31, at the cost of a kernel launch and a pass over
    the map per layer. The estimate decides which wins; CL301 leaves such layers alone, since a
    regular conv in their place would multiply their FLOPs by the channel count.

    Away from the input, the stack does less work too (two 3x3 at equal width: 18/25 of a 5x5's
    FLOPs) and the saving is large. A stem that reads the image is the opposite case: with 3
    input channels, the 3x3 stack (3 -> 32 -> 32 -> 64, the ResNet-C stem of He et al., "Bag of
    Tricks", CVPR 2019) needs about 3x the FLOPs of the 7x7 and writes two more 112x112 maps;
    Bag of Tricks trades some throughput for its accuracy gain, and the cost model agrees (the
    stack is estimated slower on a T4). The saving test therefore leaves ResNet's, GoogLeNet's
    and DenseNet's 7x7 stems and ConvNeXt's 4x4 patchify stem unreported by default; a stem
    finding, when there is one, gets ``stem_severity``.

Example
    nn.Conv2d(48, 64, 5, padding=2)                 # Inception-v3 5x5 branch
    nn.Conv2d(128, 128, 31, padding=15, groups=128) # RepLKNet 31x31 depthwise

Use instead
    nn.Sequential(nn.Conv2d(48, 48, 3, padding=1), nn.ReLU(),
                  nn.Conv2d(48, 64, 3, padding=1))  # same 5x5 receptive field
    nn.Sequential(*[nn.Conv2d(128, 128, 3, padding=1, groups=128) for _ in range(15)])

Fix
    Replace the conv with the stack of 3x3 convs the message names; add a norm and activation
    between them, or train a multi-branch block and re-parameterise it into one 3x3 (RepVGG).
    ``est_saving_ms``: the conv's estimate minus the stack's.
"""

from __future__ import annotations

from collections.abc import Iterator
from math import ceil
from typing import Literal

from pydantic import Field

from cnnlint.check import RuleContext, RuleOptions
from cnnlint.cost import ModelCost, conv_work, kernel_volume, saving, spatial
from cnnlint.graph import Layer, OpKind
from cnnlint.ops import is_view, op_class
from cnnlint.proposal import Chain, Measured, Variant, conv_of
from cnnlint.results import Finding
from cnnlint.rules._common import duration, kernel_text, ms, percent

CODE = "CL303"
NAME = "large-kernel-on-gpu"
SEVERITY = "info"


class Options(RuleOptions):
    max_kernel: int = Field(
        default=3, ge=1,
        description="kernel sides up to this are fine",
    )
    min_saving_percent: float = Field(
        default=10.0, ge=0, lt=100,
        description=(
            "report only when the 3x3 stack is estimated at least this much faster than the layer"
        ),
    )
    skip_stem: bool = Field(
        default=False,
        description="never report a conv that reads the model input",
    )
    stem_severity: Literal["error", "warning", "info"] = Field(
        default="info",
        description="severity of a finding on a stem (a conv that reads the model input)",
    )


def stack_plan(
    kernel: int, in_channels: int, out_channels: int, depthwise: bool = False
) -> list[tuple[int, int]]:
    """(c_in, c_out) of the 3x3 convs with the receptive field of one kernel x kernel conv; a
    depthwise conv's stack keeps its widths (a channel multiplier goes to the first conv)."""
    depth = max(1, ceil((kernel - 1) / 2))
    inner = out_channels if depthwise else min(out_channels, max(in_channels, out_channels // 2))
    widths = [in_channels] + [inner] * (depth - 1) + [out_channels]
    return list(zip(widths[:-1], widths[1:]))


def _stack_time(
    layer: Layer, plan: list[tuple[int, int]], cost: ModelCost, depthwise: bool
) -> tuple[float, int]:
    """(time, FLOPs) of the stacked 3x3 convs; the first carries the stride. A depthwise conv's
    stack is depthwise (one group per input channel)."""
    spatial_in, spatial_out = spatial(layer.input_shape), spatial(layer.output_shape)
    kernel = (3,) * len(layer.attrs.get("kernel_size") or (3, 3))
    batch = layer.input_shape[0] if layer.input_shape else 1
    total_time, total_flops = 0.0, 0
    for index, (c_in, c_out) in enumerate(plan):
        hw_in = spatial_in if index == 0 else spatial_out
        groups = c_in if depthwise else 1
        total_time += cost.estimate_conv(c_in, c_out, kernel, hw_in, spatial_out, groups, batch)
        total_flops += conv_work(c_in, c_out, kernel, hw_in, spatial_out, groups, cost.precision, batch)[0]
    return total_time, total_flops


def check(ctx: RuleContext) -> Iterator[Finding]:
    graph, cost, profile, options = ctx.graph, ctx.cost, ctx.profile, ctx.options
    for layer in graph.layers((OpKind.CONV, OpKind.DEPTHWISE_CONV)):
        kernel = tuple(layer.attrs.get("kernel_size") or ())
        if not kernel or min(kernel) <= 1 or max(kernel) <= options.max_kernel:
            continue
        depthwise = layer.kind == OpKind.DEPTHWISE_CONV
        if not depthwise and layer.attrs.get("groups", 1) != 1:
            continue
        stem = graph.is_fed_by_input(layer, through=is_view)
        if stem and options.skip_stem:
            continue
        c_in, c_out = layer.attrs.get("in_channels", 0), layer.attrs.get("out_channels", 0)
        if not c_in or not c_out or len(layer.input_shape) < 3:
            continue
        groups = c_in if depthwise else 1
        batch = layer.input_shape[0]
        shape = (c_in, c_out, kernel, spatial(layer.input_shape), spatial(layer.output_shape), groups)
        flops, _ = conv_work(*shape, precision=cost.precision, batch=batch)
        time_now = cost.estimate_conv(*shape, batch=batch)
        plan = stack_plan(max(kernel), c_in, c_out, depthwise)
        time_stack, stack_flops = _stack_time(layer, plan, cost, depthwise)
        fraction_saved = 1 - time_stack / time_now if time_now else 0.0
        if 100 * fraction_saved < options.min_saving_percent:
            continue
        efficiency_kxk = profile.efficiency[op_class(layer)]
        efficiency_3x3 = profile.efficiency["depthwise_conv" if depthwise else "conv3x3"]
        layer_time = cost.time_of(layer)
        share = cost.latency_share(layer)
        widths = [plan[0][0]] + [c_out for _, c_out in plan]
        chain = " -> ".join(str(c) for c in widths)
        stride = tuple(layer.attrs.get("stride") or (1,))
        strided = f", the first with stride {_stride_text(stride)}" if max(stride) > 1 else ""
        kind = "depthwise conv" if depthwise else "conv"
        if depthwise:
            rate = (
                f"does {kernel_volume(layer)} multiply-adds per output value at "
                f"{percent(efficiency_kxk)} of {profile.name} peak"
            )
        else:
            rate = f"runs at {percent(efficiency_kxk)} of {profile.name} peak vs {percent(efficiency_3x3)} for 3x3"
        yield Finding(
            message=(
                f"{layer.label}: {kernel_text(layer)}{' stem' if stem else ''} {kind}, {c_in} -> "
                f"{c_out} channels, {rate}: est. {duration(layer_time)}, {percent(share)} of "
                f"latency; {len(plan)} stacked 3x3 {kind}s with the same receptive field est. "
                f"{duration(time_stack)} vs {duration(time_now)} ({percent(fraction_saved)} less)"
            ),
            layer=layer,
            fix=(
                f"replace it with {len(plan)} stacked 3x3 {kind}s ({chain} channels{strided}; "
                f"{stack_flops / flops:.2f}x the FLOPs): est. "
                f"{duration(time_now)} -> {duration(time_stack)}"
            ),
            metrics={
                "kernel": list(kernel),
                "in_channels": c_in,
                "out_channels": c_out,
                "depthwise": depthwise,
                "stem": stem,
                "efficiency_kxk": efficiency_kxk,
                "efficiency_3x3": efficiency_3x3,
                "stack_depth": len(plan),
                "stack_channels": widths,
                "stack_flops_ratio": round(stack_flops / flops, 4),
                "est_time_ms": ms(layer_time),
                "est_conv_time_ms": ms(time_now),
                "est_stack_time_ms": ms(time_stack),
                "est_saving_ms": ms(saving(time_now, time_stack)),
                "saving_percent": round(100 * fraction_saved, 2),
                "latency_share": round(share, 6),
            },
            severity=options.stem_severity if stem else None,
        )


def _stride_text(stride: tuple[int, ...]) -> str:
    return str(stride[0]) if len(set(stride)) == 1 else "x".join(str(s) for s in stride)


def _stacked_3x3(finding: Finding, layer: Layer) -> Variant | None:
    """What --measure times: the layer against the stack of 3x3 convs of ``stack_channels``, the
    first with the layer's stride."""
    widths = finding.metrics.get("stack_channels")
    if not isinstance(widths, list) or len(widths) < 2 or not layer.is_conv():
        return None
    dims = len(layer.attrs.get("kernel_size") or (1, 1))
    stack = Chain(tuple(
        conv_of(layer, in_channels=c_in, out_channels=c_out, kernel_size=(3,) * dims, padding=(1,) * dims,
                dilation=(1,) * dims, **({} if i == 0 else {"stride": (1,) * dims}))
        for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:]))
    ))  # fmt: skip
    kernel = "x".join(map(str, layer.attrs.get("kernel_size") or ()))
    chain = " -> ".join(map(str, widths))
    return Variant(f"{kernel} -> {len(widths) - 1} stacked 3x3 ({chain})", conv_of(layer), stack, layer.input_shape)


MEASURED = Measured(_stacked_3x3, estimated=("est_conv_time_ms", "est_stack_time_ms"))
