"""Depthwise-separable pair in a low-channel stage that one regular conv would run faster.

What it flags
    A depthwise KxK conv followed by a 1x1 conv (directly, or through the norm, activation,
    identity and squeeze-excitation gate between them) whose output is at most ``max_channels``
    wide, when the cost model estimates that ONE regular KxK conv with the same input and output
    channels, stride and output size would run faster than the pair, or no more than
    ``tolerance`` slower. The message gives both estimated times. On a layer it flags, it
    replaces CL301's finding (the same advice, less specific). A pair the regular conv would
    not run faster (within the tolerance) is info and offers no fix: the check stage offers only
    a fix that saves time, and keeps a warning only for a saving of at least the profile's
    ``min_saving_share`` of latency.

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
    the estimated saving and the extra parameters. ``est_saving_ms``: the pair's two kernels
    minus the regular conv.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from cnnlint.check import RuleContext, RuleOptions
from cnnlint.cost import saving
from cnnlint.graph import Layer, OpKind
from cnnlint.proposal import Chain, Measured, Variant, conv_of
from cnnlint.results import Finding
from cnnlint.rules._common import duration, fused_conv, kernel_text, ms, percent

CODE = "CL302"
NAME = "low-channel-separable"
SEVERITY = "warning"
# Its finding on a depthwise conv replaces CL301's on that layer: the same advice (a regular conv
# instead of depthwise + 1x1), with the pair's measured alternative.
SUPERSEDES = ("CL301",)

class Options(RuleOptions):
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


def check(ctx: RuleContext) -> Iterator[Finding]:
    graph, cost, profile, options = ctx.graph, ctx.cost, ctx.profile, ctx.options
    target = f"{profile.name} {cost.precision}"
    for depthwise in graph.layers(OpKind.DEPTHWISE_CONV):
        fused = fused_conv(graph, cost, depthwise)
        if fused is None or fused.out_channels > options.max_channels:
            continue
        pointwise, in_ch, out_ch, kernel = fused.pointwise, fused.in_channels, fused.out_channels, fused.kernel
        separable_s, regular_s = fused.separable_s, fused.regular_s
        if not separable_s or regular_s > separable_s * (1 + options.tolerance):
            continue
        saving_s = separable_s - regular_s
        weights = fused.regular_params
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
                "est_saving_ms": ms(saving(separable_s, regular_s)),
                "separable_flops": cost.of(depthwise).flops + cost.of(pointwise).flops,
                "regular_flops": fused.regular_flops,
                "separable_params": separable_params,
                "regular_params": weights,
            },
        )


def _fused(finding: Finding, layer: Layer) -> Variant | None:
    """What --measure times: the depthwise conv and its 1x1, against one regular conv from the
    depthwise conv's input channels to the 1x1's output channels."""
    m = finding.metrics
    c_in, c_out = m.get("in_channels"), m.get("out_channels")
    kernel, stride, padding = m.get("kernel_size"), m.get("stride"), m.get("padding")
    if not (isinstance(c_in, int) and isinstance(c_out, int) and kernel and stride and padding is not None):
        return None
    dims = len(kernel)
    pair = Chain((conv_of(layer), conv_of(layer, in_channels=c_in, out_channels=c_out, kernel_size=(1,) * dims,
                                          stride=(1,) * dims, padding=0, groups=1)))  # fmt: skip
    regular = conv_of(layer, in_channels=c_in, out_channels=c_out, kernel_size=tuple(kernel), stride=tuple(stride),
                      padding=tuple(padding) if isinstance(padding, list) else padding, groups=1)  # fmt: skip
    k = "x".join(map(str, kernel))
    return Variant(f"depthwise {k} + 1x1 -> one {k} conv {c_in}->{c_out}", pair, regular, layer.input_shape)


MEASURED = Measured(_fused, estimated=("separable_time_ms", "regular_time_ms"))
