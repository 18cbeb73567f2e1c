"""Channel counts that are not a multiple of the target's channel granule.

What it flags
    Convolutions and linear layers whose input or output channel count is not a multiple of the
    granule the target computes in (``channel_granule`` in the profile, per precision). The image
    input's channels (a layer that reads the model input, directly or through channel-preserving
    ops such as input normalisation, an activation or a pool) and, by default, the classifier
    head's output (its width is the number of classes) are exempt.

Why
    Accelerators compute channels in fixed-width groups and pad the rest with zeros. TensorRT's
    tensor cores need channel counts in multiples of 8 for FP16 and 16 for INT8 (NVIDIA Deep
    Learning Performance Guide, "Tensor Core Requirements"); HiSilicon's NNIE wants input channels
    in multiples of 4 and output channels in multiples of 16; most hardware prefers multiples of
    16. A 24-channel layer on a 16-wide engine computes 32 channels and throws a quarter away, and
    an unaligned count can push the whole layer off the tensor-core path.

Example
    nn.Conv2d(32, 24, 1)        # 24 = 16 + 8: padded to 32 on a 16-channel granule

Use instead
    nn.Conv2d(32, 32, 1)        # or 16: a multiple of the granule

Fix
    Round the channel count to the nearest multiple of the granule. The message names the values
    below and above, and the share of the layer's work that padding wastes.
"""

from __future__ import annotations

from collections.abc import Iterator
from math import ceil

from pydantic import BaseModel, ConfigDict, Field

from cnnlint.check import RuleContext
from cnnlint.graph import Layer, OpKind
from cnnlint.ops import is_view, keeps_channels
from cnnlint.results import Finding
from cnnlint.rules._common import duration, feeds_only_output, ms, percent

CODE = "CL201"
NAME = "channel-misaligned"
SEVERITY = "warning"


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    skip_output_layer: bool = Field(
        default=True,
        description=(
            "leave the layer that produces the model output alone (the class count is not a "
            "design choice)"
        ),
    )
    min_waste_percent: float = Field(
        default=0.0, ge=0, lt=100,
        description=(
            "report only when padding wastes at least this share of the layer's computed channels"
        ),
    )


def _channels(layer: Layer) -> tuple[int, int]:
    if layer.kind == OpKind.LINEAR:
        return layer.attrs.get("in_features", 0), layer.attrs.get("out_features", 0)
    return layer.attrs.get("in_channels", 0), layer.attrs.get("out_channels", 0)


def _carries_image_channels(layer: Layer) -> bool:
    """The image's channels survive the layer: a view, or an op that keeps the channel count
    (input normalisation, an activation, a pool, a residual add)."""
    return is_view(layer) or keeps_channels(layer)


def _aligned_choices(channels: int, granule: int) -> str:
    below = channels // granule * granule
    above = ceil(channels / granule) * granule
    return f"{below} or {above}" if below > 0 else f"{above}"


def check(ctx: RuleContext) -> Iterator[Finding]:
    graph, cost, profile, options = ctx.graph, ctx.cost, ctx.profile, ctx.options
    granule = profile.channel_granule[cost.precision]
    for layer in graph.layers(OpKind.WEIGHTED):
        if options.skip_output_layer and feeds_only_output(graph, layer):
            continue
        in_ch, out_ch = _channels(layer)
        problems, fixes, metrics = [], [], {}
        padded_in, padded_out = in_ch, out_ch
        if in_ch and in_ch % granule.input and not graph.is_fed_by_input(layer, through=_carries_image_channels):
            padded_in = ceil(in_ch / granule.input) * granule.input
            problems.append(f"{in_ch} input channels are padded to {padded_in}")
            fixes.append(f"in_channels {_aligned_choices(in_ch, granule.input)}")
        if out_ch and out_ch % granule.output:
            padded_out = ceil(out_ch / granule.output) * granule.output
            problems.append(f"{out_ch} output channels are padded to {padded_out}")
            fixes.append(f"out_channels {_aligned_choices(out_ch, granule.output)}")
        if not problems:
            continue
        # Padded work grows with both widths (per group for depthwise: only the channel count).
        if layer.kind == OpKind.DEPTHWISE_CONV:
            waste = 1 - out_ch / padded_out
        else:
            waste = 1 - (in_ch * out_ch) / (padded_in * padded_out)
        if 100 * waste < options.min_waste_percent:
            continue
        time_s = cost.time_of(layer)
        metrics = {
            "in_channels": in_ch, "out_channels": out_ch,
            "padded_in_channels": padded_in, "padded_out_channels": padded_out,
            "granule_in": granule.input, "granule_out": granule.output,
            "waste_percent": round(100 * waste, 2),
            "est_time_ms": ms(time_s),
            "latency_share": round(cost.latency_share(layer), 6),
        }  # fmt: skip
        yield Finding(
            message=(
                f"{layer.label}: {' and '.join(problems)} on {profile.name} {cost.precision} "
                f"(granule {granule.input} in / {granule.output} out): {percent(waste)} of its "
                f"computed channels are padding; layer est. {duration(time_s)}, "
                f"{percent(cost.latency_share(layer))} of latency"
            ),
            layer=layer,
            fix=f"use {' and '.join(fixes)}",
            metrics=metrics,
        )
