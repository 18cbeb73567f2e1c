"""Depthwise-separable pair in a low-channel stage that one regular conv would run faster.

What it flags
    A depthwise KxK conv followed by a 1x1 conv (directly, or through the norm, activation,
    identity and squeeze-excitation gate between them) whose output is at most ``max_channels``
    wide, when the cost model estimates that ONE regular KxK conv with the same input and output
    channels, stride and output size would run faster than the pair, or no more than
    ``tolerance`` slower. The message gives both estimated times. On a layer it flags, it
    replaces CL301's finding (the same advice, less specific).

Why
    A depthwise-separable pair saves FLOPs but not memory traffic: the depthwise conv reads and
    writes the whole expanded tensor at a few FLOP/byte, and the 1x1 reads it again. In narrow,
    high-resolution stages the regular conv's extra FLOPs are cheap next to that traffic and
    the second kernel launch. MobileDets (Xiong et al., CVPR 2021) put regular convs back into
    the search space and found them placed in the early stages: MobileDets beat
    MobileNetV2+SSDLite by 3.7 mAP on EdgeTPU, 3.4 mAP on the Hexagon DSP and 2.7 mAP on a
    Jetson GPU at the same latency. EfficientNetV2 (Tan & Le, ICML 2021, Table 4) uses
    fused-MBConv, a regular 3x3 conv in place of 1x1 + depthwise, exactly in the stages of width
    24, 48 and 64, and depthwise MBConv from width 128 on: hence ``max_channels = 64``. The
    regular conv is estimated as ``2 x out_numel x in x k x k`` FLOPs and input + weights +
    output bytes at the target precision, in the profile's ``conv3x3`` (or ``conv_kxk``) class.

Example
    nn.Conv2d(96, 96, 3, stride=2, padding=1, groups=96)   # depthwise
    nn.Conv2d(96, 24, 1)                                   # pointwise projection

Use instead
    nn.Conv2d(96, 24, 3, stride=2, padding=1)              # one regular conv (fused)

Fix
    Replace the pair with one regular KxK conv from the depthwise input channels to the 1x1
    output channels (a MobileDets fused conv / EfficientNetV2 fused-MBConv); the message gives
    the estimated saving and the extra parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from math import prod

from pydantic import BaseModel, ConfigDict, Field

from cnnlint.check import RuleContext
from cnnlint.cost import conv_work, spatial
from cnnlint.graph import Layer, LayerGraph, OpKind
from cnnlint.ops import is_multiplication, keeps_shape
from cnnlint.results import Finding
from cnnlint.rules._common import duration, kernel_text, ms, percent

CODE = "CL302"
NAME = "low-channel-separable"
SEVERITY = "warning"
# Its finding on a depthwise conv replaces CL301's on that layer: the same advice (a regular conv
# instead of depthwise + 1x1), with the pair's measured alternative.
SUPERSEDES = ("CL301",)

class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_channels: int = Field(
        default=64, gt=0,
        description=(
            "only pairs whose output (the 1x1 conv's out_channels) is at most this wide (64: the "
            "widest fused-MBConv stage of EfficientNetV2-S)"
        ),
    )
    tolerance: float = Field(
        default=0.10, ge=0,
        description=(
            "also flag when the regular conv is estimated up to this fraction slower than the "
            "pair (0.10: within the cost model's error, and the regular conv usually buys "
            "accuracy, per MobileDets)"
        ),
    )


def _is_pointwise(layer: Layer) -> bool:
    kernel = layer.attrs.get("kernel_size") or ()
    stride = layer.attrs.get("stride") or (1,)
    return (
        layer.kind == OpKind.CONV
        and bool(kernel)
        and all(k == 1 for k in kernel)
        and all(s == 1 for s in stride)
        and layer.attrs.get("groups", 1) == 1
    )


def _is_gate(graph: LayerGraph, layer: Layer, carried: Layer) -> bool:
    """An element-wise multiply of the carried tensor by a per-channel gate (squeeze-excitation)."""
    if not is_multiplication(layer):
        return False
    if layer.output_shape != carried.output_shape:
        return False
    others = [p for p in graph.producers(layer) if p.name != carried.name]
    return len(others) == 1 and prod(others[0].output_shape[2:]) == 1


def _pointwise_after(graph: LayerGraph, depthwise: Layer) -> Layer | None:
    """The 1x1 conv that reads the depthwise output, through norm/activation/SE, else None."""
    carried = depthwise
    for _ in range(16):
        consumers = graph.consumers(carried)
        pointwise = [c for c in consumers if _is_pointwise(c)]
        if len(pointwise) == 1 and len(consumers) == 1:
            candidate = pointwise[0]
            if candidate.input_shape[2:] == depthwise.output_shape[2:]:
                return candidate
            return None
        # The tensor may also feed a squeeze-excitation branch (pool -> fc -> gate).
        chain = [
            c
            for c in consumers
            if (keeps_shape(c) and c.output_shape == carried.output_shape)
            or _is_gate(graph, c, carried)
        ]
        side = [c for c in consumers if c not in chain]
        if len(chain) != 1 or any(c.kind not in (OpKind.POOL, OpKind.REDUCE) for c in side):
            return None
        carried = chain[0]
    return None


def check(ctx: RuleContext) -> Iterator[Finding]:
    graph, cost, profile, options = ctx.graph, ctx.cost, ctx.profile, ctx.options
    target = f"{profile.name} {cost.precision}"
    for depthwise in graph.layers(OpKind.DEPTHWISE_CONV):
        pointwise = _pointwise_after(graph, depthwise)
        if pointwise is None or len(depthwise.output_shape) != 4:
            continue
        in_ch = depthwise.attrs.get("in_channels", 0)
        out_ch = pointwise.attrs.get("out_channels", 0)
        if not in_ch or not out_ch or out_ch > options.max_channels:
            continue
        kernel = tuple(depthwise.attrs.get("kernel_size") or (1, 1))
        # One regular conv in_ch -> out_ch with the depthwise kernel, on the same maps.
        shape = (in_ch, out_ch, kernel, spatial(depthwise.input_shape), spatial(depthwise.output_shape))
        batch = depthwise.output_shape[0]
        flops, _ = conv_work(*shape, precision=cost.precision, batch=batch)
        regular_s = cost.estimate_conv(*shape, batch=batch)
        weights = in_ch * out_ch * prod(kernel)
        separable_s = cost.time_of(depthwise) + cost.time_of(pointwise)
        if not separable_s or regular_s > separable_s * (1 + options.tolerance):
            continue
        saving_s = separable_s - regular_s
        separable_params = depthwise.params + pointwise.params
        stride = tuple(depthwise.attrs.get("stride") or (1, 1))
        padding = depthwise.attrs.get("padding")
        stride_arg = f", stride={stride[0]}" if any(s != 1 for s in stride) else ""
        padding_arg = f", padding={padding[0]}" if isinstance(padding, tuple) and padding[0] else ""
        if saving_s >= 0:
            ratio = separable_s / regular_s if regular_s else float("inf")
            verdict = f"{ratio:.1f}x faster" if ratio >= 1.1 else f"{ratio:.2f}x faster"
        else:
            verdict = (
                f"{percent(-saving_s / separable_s)} slower, within the "
                f"{percent(options.tolerance)} tolerance"
            )
        latency_share = cost.share(saving_s)
        effect = f"saves {duration(saving_s)}" if saving_s >= 0 else f"costs {duration(-saving_s)}"
        yield Finding(
            message=(
                f"{depthwise.label}: depthwise {kernel_text(depthwise)} ({in_ch} ch"
                f"{f', stride {stride[0]}' if stride_arg else ''}) + 1x1 {pointwise.label} "
                f"({in_ch}->{out_ch}) est. {duration(separable_s)} on {target}; one regular "
                f"{kernel_text(depthwise)} conv {in_ch}->{out_ch} est. {duration(regular_s)} "
                f"({verdict})"
            ),
            layer=depthwise,
            fix=(
                f"replace the pair with nn.Conv2d({in_ch}, {out_ch}, {kernel[0]}{stride_arg}"
                f"{padding_arg}) (fused conv, as in MobileDets / EfficientNetV2 fused-MBConv): "
                f"est. {effect}"
                f" ({percent(abs(latency_share))} of latency) for "
                f"{weights - separable_params:+,} parameters"
            ),
            metrics={
                "in_channels": in_ch,
                "out_channels": out_ch,
                "kernel_size": list(kernel),
                "stride": list(stride),
                "padding": list(padding) if isinstance(padding, tuple) else padding,
                "pointwise": pointwise.label,
                "separable_time_ms": ms(separable_s),
                "regular_time_ms": ms(regular_s),
                "saving_ms": ms(saving_s),
                "saving_latency_share": round(latency_share, 6),
                "separable_flops": cost.of(depthwise).flops + cost.of(pointwise).flops,
                "regular_flops": flops,
                "separable_params": separable_params,
                "regular_params": weights,
            },
        )
