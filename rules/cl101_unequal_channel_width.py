"""1x1 convolutions whose input and output widths differ a lot (ShuffleNetV2 guideline G1).

What it flags
    Dense 1x1 convolutions (``groups == 1``) whose wider side has at least ``min_ratio`` times the
    channels of the narrower side, and whose memory access cost (MAC) exceeds the lowest MAC any
    1x1 conv with the same FLOPs can have by at least ``min_excess_percent``. The message gives the
    excess, the layer's estimated time and share of latency on the target, and the time of the
    balanced alternative.

Why
    ShuffleNetV2 (Ma et al., ECCV 2018, Section 3, G1) shows that for a 1x1 conv on an h x w map
    with c1 input and c2 output channels, FLOPs B = h*w*c1*c2 and
        MAC = h*w*(c1 + c2) + c1*c2 >= 2*sqrt(h*w*B) + B/(h*w),
    with equality only at c1 == c2 (mean-value inequality). The activation part of the excess
    depends on the ratio r = c2/c1 alone: (sqrt(r) + 1/sqrt(r))/2 - 1, i.e. 6% at 1:2, 25% at
    1:4, 43% at 1:6 and 88% at 1:12; the weight term c1*c2 dilutes it on small maps. Their
    Table 1 (10 blocks of c1 -> c2 -> c1 at equal FLOPs, GTX 1080Ti) measures 1480 batches/s at
    1:1, 1296 at 1:2, 876 at 1:6 and 748 at 1:12: 1:2 costs little, 1:6 and 1:12 are clearly
    slower (the ARM column shows the same trend, less pronounced). The paper names the inverted
    bottleneck of MobileNetV2 (expansion 6) as a G1 violation.

    Defaults follow those numbers: ``min_ratio = 6`` (the first clearly slower point; ResNet's
    4x bottleneck 1x1s, 64 -> 256 and 256 -> 64, are not flagged) and ``min_excess_percent = 20``
    (at least about half the 43% excess of the measured 1:6 case; this drops layers on 7x7 maps
    and squeeze-excitation FCs on 1x1 maps, whose MAC is dominated by weights that no channel
    split can avoid). The estimated time comes from the target's roofline: a compute-bound layer
    shows little or no time saved, although the paper also measured a slowdown on ARM.

Example
    nn.Conv2d(24, 144, 1)      # 1:6 expansion at 56x56: MAC 42% above the bound

Use instead
    nn.Conv2d(24, 64, 1)       # lower expansion ratio; or split channels as ShuffleNetV2 does
    # equal FLOPs with equal widths: c1 = c2 = sqrt(24 * 144) ~ 59 -> nn.Conv2d(64, 64, 1)

Fix
    Bring the two widths closer: lower the expansion (or reduction) ratio of the block, widen the
    narrow side, or use a ShuffleNetV2 unit (channel split keeps both 1x1 convs at equal width).
    The message gives the equal-width conv with the same FLOPs, rounded to the target's channel
    granule, and its estimated time. ``est_saving_ms``: the conv's estimate minus the equal-width
    conv's. A compute-bound layer saves nothing (same FLOPs, same time): the finding then offers
    no fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from math import sqrt

from pydantic import Field

from cnnlint.check import RuleContext, RuleOptions
from cnnlint.cost import conv_work, round_to, saving, spatial
from cnnlint.graph import Layer, OpKind
from cnnlint.results import Finding
from cnnlint.rules._common import duration, megabytes, ms, percent, reads_image

CODE = "CL101"
NAME = "unequal-channel-width"
SEVERITY = "info"


class Options(RuleOptions):
    min_ratio: float = Field(
        default=6.0, ge=1,
        description="report only when max(c1, c2) / min(c1, c2) is at least this",
    )
    min_excess_percent: float = Field(
        default=20.0, ge=0,
        description=(
            "report only when the MAC exceeds the G1 bound for the same FLOPs by at least this "
            "percentage"
        ),
    )


def _is_pointwise(layer: Layer) -> bool:
    kernel = layer.attrs.get("kernel_size") or ()
    return bool(kernel) and all(k == 1 for k in kernel) and layer.attrs.get("groups", 1) == 1


def mac_elements(hw: int, c1: int, c2: int) -> int:
    """ShuffleNetV2 Eq. 1: elements a 1x1 conv reads and writes (input, output, weights)."""
    return hw * (c1 + c2) + c1 * c2


def mac_lower_bound(hw: int, c1: int, c2: int) -> float:
    """The G1 bound for the same FLOPs: 2*sqrt(hw*B) + B/hw, with B = hw*c1*c2 (= at c1 == c2)."""
    flops = hw * c1 * c2
    return 2 * sqrt(hw * flops) + flops / hw


def check(ctx: RuleContext) -> Iterator[Finding]:
    graph, cost, profile, options = ctx.graph, ctx.cost, ctx.profile, ctx.options
    granule = profile.channel_granule[cost.precision]
    for layer in graph.layers(OpKind.CONV):
        if not _is_pointwise(layer) or reads_image(graph, layer):
            continue
        c1, c2 = layer.attrs.get("in_channels", 0), layer.attrs.get("out_channels", 0)
        if not c1 or not c2:
            continue
        ratio = max(c1, c2) / min(c1, c2)
        if ratio < options.min_ratio:
            continue
        hw = spatial(layer.output_shape)  # the paper's h x w: the map the conv computes on
        excess = mac_elements(hw, c1, c2) / mac_lower_bound(hw, c1, c2) - 1
        if 100 * excess < options.min_excess_percent:
            continue
        balanced = sqrt(c1 * c2)
        rounded = round_to(balanced, max(granule.input, granule.output))
        flops = cost.of(layer).flops
        # The conv alone, and the equal-width conv with the same FLOPs (the G1 bound), both on
        # the layer's map, for a fair comparison.
        _, mac_bytes = conv_work(c1, c2, 1, hw, hw, precision=cost.precision)
        _, bound_bytes = conv_work(balanced, balanced, 1, hw, hw, precision=cost.precision)
        batch = layer.output_shape[0]
        time_now = cost.estimate_conv(c1, c2, 1, hw, hw, batch=batch)
        # (the bound's widths are not whole channels: it is priced on the granule, as the
        # message's rounded width would be)
        time_balanced = cost.estimate_conv(balanced, balanced, 1, hw, hw, batch=batch, aligned=True)
        layer_time = cost.time_of(layer)
        share = cost.latency_share(layer)
        kind = "expands" if c2 > c1 else "reduces"
        yield Finding(
            message=(
                f"{layer.label}: 1x1 conv {kind} {c1} -> {c2} channels (1:{ratio:.1f}) on a "
                f"{_map_text(layer.output_shape)} map: memory access {megabytes(mac_bytes)} is "
                f"{percent(excess)} above the equal-width bound for the same FLOPs "
                f"({megabytes(bound_bytes)}); layer est. {duration(layer_time)}, {percent(share)} of "
                f"{profile.name} latency"
            ),
            layer=layer,
            fix=(
                f"balance the widths: lower the block's expansion/reduction ratio or use a "
                f"channel split (ShuffleNetV2 unit); an equal-width 1x1 with the same FLOPs has "
                f"about {balanced:.0f} channels on both sides ({rounded} rounded to the channel "
                f"granule): est. {duration(time_now)} -> {duration(time_balanced)} for the conv"
            ),
            metrics={
                "in_channels": c1,
                "out_channels": c2,
                "ratio": round(ratio, 3),
                "mac_bytes": mac_bytes,
                "mac_lower_bound_bytes": round(bound_bytes),
                "excess_percent": round(100 * excess, 2),
                "balanced_channels": round(balanced, 1),
                "est_time_ms": ms(layer_time),
                "est_conv_time_ms": ms(time_now),
                "est_balanced_time_ms": ms(time_balanced),
                "est_saving_ms": ms(saving(time_now, time_balanced)),
                "latency_share": round(share, 6),
                "flops": flops,
            },
        )


def _map_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape[2:]) if len(shape) > 2 else "1"
