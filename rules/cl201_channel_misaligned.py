"""Channel counts that are not a multiple of the target's channel granule.

What it flags
    Convolutions and linear layers whose input or output channel count is not a multiple of the
    granule the target computes in (``channel_granule`` in the profile, per precision). The image
    input's channels (a layer that reads the model input, directly or through channel-preserving
    ops such as input normalisation, an activation or a pool) are exempt, and by default so are a
    task head's output channels: those of a layer whose output reaches a model output through
    views and channel-keeping ops only (a classifier; a segmentation head's conv and its
    upsample and sigmoid; a detection or regression head's conv reshaped to boxes). Their count
    is the number of classes or outputs, not a design choice. Such a head's input channels are
    still judged (they come from the backbone), except for a layer that is the model output
    itself, through reshapes only, which is left alone. A layer that wastes nothing is never
    reported. What the padding costs is priced on the target (``est_saving_ms``, see Fix): a
    finding is a warning only where that reaches the profile's ``min_saving_share`` of latency
    (255 -> 256 wastes 0.4% of a layer; a squeeze-excitation 1x1 on a 1x1 map costs its launch,
    not its channels), and a padding the estimate cannot tell from the layer offers no fix. A
    layer computed from parameters alone that the target folds into a constant (Swin V2's
    position-bias MLP on an inference engine: ``ModelCost.is_folded``) never runs there and is
    not judged.

    Grouped convolutions are judged per group: each group is its own small GEMM (cuDNN and
    TensorRT apply the tensor-core channel rule to the channels per group; NPUs tile each group
    separately), so ``c / groups`` must be a multiple of the granule and padding is counted per
    group. A group narrower than one granule is not a padding problem but a grouping one
    (CL102 reports it), so that side is not judged here. Depthwise convolutions are judged by
    their total channel count: their kernels vectorise across channels, one channel per lane.

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
    nn.Conv2d(192, 192, 3, groups=8)   # 24 per group: a multiple of 8 (fp16), not of 16 (int8)

Fix
    Round the channel count to a multiple of the granule. The message names the values below and
    above, and the share of the layer's work that padding wastes. What the misalignment costs
    is ``est_saving_ms``: the layer's estimate as the target runs it, minus its estimate at the
    same counts at the aligned rate. As the target runs it is, where a calibration measured the
    class at such widths (``[unaligned_efficiency]``), the cost stage's estimate at that share of
    the rate (``Profile.alignment``); elsewhere the layer at the padded counts, its compute and
    the memory the padded channels take. The count below saves at least that; the count above puts
    the padding to use, and where the target measured a slower kernel for such widths it is
    faster outright (``est_aligned_time_ms``). Where the target measured no slower kernel for
    the class (a CPU's 1x1 convs run at the same rate at 120 channels as at 128), the
    misalignment costs nothing and the finding is info.

Known problems
    A head is recognised by the path from it to the output: views (reshape, permute, slicing)
    and ops that keep the channel count (activations, norms, pools, element-wise ops, resizing
    upsamples). A head whose output reaches the model output through a concat, a softmax, a
    pixel shuffle or any other op that is not channel-keeping is still judged on its output
    channels. Conversely, a model returned as a feature extractor has its last layer taken for a
    head: its width is then not judged at that layer, though a width it shares through a
    residual add is still judged where that tensor is made.
"""

from __future__ import annotations

from collections.abc import Iterator
from math import ceil, prod

from pydantic import Field

from cnnlint.check import RuleContext, RuleOptions
from cnnlint.cost import ModelCost, saving, spatial
from cnnlint.graph import Layer, OpKind
from cnnlint.proposal import Linear, LiteralEdit, Measured, Variant, conv_of, with_channels
from cnnlint.results import Finding
from cnnlint.rules._common import duration, feeds_only_output, is_task_head, ms, percent, reads_image

CODE = "CL201"
NAME = "channel-misaligned"
SEVERITY = "warning"
# The one-click fix: the output channels rounded up to the granule. Rounding up keeps the layer's
# capacity; with power-of-two granules the largest value any target asks for is aligned on all.
EDIT = LiteralEdit(
    argument="out_channels", current="out_channels", suggested="padded_out_channels", prefer="max",
    follow_up="the layers that read its output must take {new} channels too",
)


class Options(RuleOptions):
    skip_output_layer: bool = Field(
        default=True,
        description=(
            "leave task heads' output channels alone: a layer whose output reaches a model output "
            "through views and channel-keeping ops only (the class or output count is not a design "
            "choice); the layer that produces the model output through views only is left alone "
            "entirely"
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


def _aligned_choices(channels: int, granule: int, groups: int = 1) -> str:
    """The aligned counts either side of ``channels`` (per group), as totals over the groups."""
    below = channels // granule * granule
    above = ceil(channels / granule) * granule
    return f"{below * groups} or {above * groups}" if below > 0 else f"{above * groups}"


def _padded(width: int, granule: int) -> int:
    return ceil(width / granule) * granule


def _conv_time(layer: Layer, cost: ModelCost, in_ch: int, out_ch: int, aligned: bool = False) -> float:
    """Estimated time of the layer's conv with these channel counts (a depthwise conv stays one)."""
    groups = in_ch if layer.kind == OpKind.DEPTHWISE_CONV else layer.attrs.get("groups", 1)
    kernel = tuple(layer.attrs.get("kernel_size") or (1,))
    return cost.estimate_conv(in_ch, out_ch, kernel, spatial(layer.input_shape), spatial(layer.output_shape),
                              groups, batch=layer.input_shape[0], aligned=aligned)  # fmt: skip


def _layer_time(layer: Layer, cost: ModelCost, in_ch: int, out_ch: int, aligned: bool = False) -> float | None:
    """Estimated time of the layer with these channel counts: a conv, or a linear layer over its
    input's rows; None for a layer the cost stage cannot price by its widths. ``aligned``: at the
    rate its class keeps with its channels on the granule (``ModelCost.estimate_conv``)."""
    if layer.is_conv() and len(layer.input_shape) >= 3:
        return _conv_time(layer, cost, in_ch, out_ch, aligned)
    if layer.kind == OpKind.LINEAR and layer.input_shape:
        return cost.estimate_linear(in_ch, out_ch, prod(layer.input_shape[:-1]), aligned)
    return None


def check(ctx: RuleContext) -> Iterator[Finding]:
    graph, cost, profile, options = ctx.graph, ctx.cost, ctx.profile, ctx.options
    granule = profile.channel_granule[cost.precision]
    for layer in graph.layers(OpKind.WEIGHTED):
        if cost.is_folded(layer):  # computed from parameters alone: a constant after conversion
            continue
        if options.skip_output_layer and feeds_only_output(graph, layer):
            continue
        # A task head's output width is its task's (classes, box coordinates): not judged.
        head = options.skip_output_layer and is_task_head(graph, layer)
        in_ch, out_ch = _channels(layer)
        # Grouped convs are computed group by group: judge the channels per group (docstring).
        groups = layer.attrs.get("groups", 1) if layer.kind == OpKind.GROUP_CONV else 1
        in_w, out_w = in_ch // groups, out_ch // groups
        problems, fixes = [], []
        padded_in, padded_out = in_w, out_w
        per_group = f" ({groups} groups of {{}})" if groups > 1 else ""
        judged_in = in_w and (groups == 1 or in_w >= granule.input)
        judged_out = out_w and not head and (groups == 1 or out_w >= granule.output)
        if judged_in and in_w % granule.input and not reads_image(graph, layer):
            padded_in = _padded(in_w, granule.input)
            problems.append(
                f"{in_ch} input channels{per_group.format(in_w)} are padded to {padded_in * groups}"
            )
            fixes.append(f"in_channels {_aligned_choices(in_w, granule.input, groups)}")
        if judged_out and out_w % granule.output:
            padded_out = _padded(out_w, granule.output)
            problems.append(
                f"{out_ch} output channels{per_group.format(out_w)} are padded to {padded_out * groups}"
            )
            fixes.append(f"out_channels {_aligned_choices(out_w, granule.output, groups)}")
        if not problems:
            continue
        # Padded work grows with both widths; a depthwise conv computes one padded lane per
        # channel, so the wider padding of its two sides is what it wastes.
        if layer.kind == OpKind.DEPTHWISE_CONV:
            waste = 1 - min(in_w / padded_in, out_w / padded_out)
        else:
            waste = 1 - (in_w * out_w) / (padded_in * padded_out)
        if waste <= 0 or 100 * waste < options.min_waste_percent:
            continue
        time_s = cost.time_of(layer)
        metrics = {
            "in_channels": in_ch, "out_channels": out_ch, "groups": groups,
            "padded_in_channels": padded_in * groups, "padded_out_channels": padded_out * groups,
            "granule_in": granule.input, "granule_out": granule.output,
            "waste_percent": round(100 * waste, 2),
            "est_time_ms": ms(time_s),
            "latency_share": round(cost.latency_share(layer), 6),
        }  # fmt: skip
        # The layer alone at its own counts (Profile.alignment: the slower kernel a calibration
        # measured for the class, or its compute padded), at the padded counts, which --measure
        # times, and at its own counts at the rate it would keep on the granule. As the target
        # runs it: as measured, or padded, the padding's memory included.
        own = _layer_time(layer, cost, in_ch, out_ch)
        padded = _layer_time(layer, cost, padded_in * groups, padded_out * groups)
        on_granule = _layer_time(layer, cost, in_ch, out_ch, aligned=True)
        if own is not None and on_granule is not None and padded is not None:
            if layer.is_conv():
                metrics["est_conv_time_ms"] = ms(own)
                metrics["est_aligned_time_ms"] = ms(padded)
            measured = cost.of(layer).op_class in profile.unaligned_efficiency
            metrics["est_saving_ms"] = ms(saving(own if measured else max(own, padded), on_granule))
        else:
            metrics["est_share_at_stake"] = metrics["latency_share"]
        yield Finding(
            message=(
                f"{layer.label}: {' and '.join(problems)} on {profile.name} {cost.precision} "
                f"(granule {granule.input} in / {granule.output} out{' per group' if groups > 1 else ''}): "
                f"{_waste_text(waste)} of its computed channels are padding; layer est. "
                f"{duration(time_s)}, {percent(cost.latency_share(layer))} of latency"
            ),
            layer=layer,
            fix=f"use {' and '.join(fixes)}",
            metrics=metrics,
        )


def _waste_text(waste: float) -> str:
    """The padded share, never shown as 0.0% for a layer that does pad."""
    return "<0.1%" if waste < 0.0005 else percent(waste)


def _aligned(finding: Finding, layer: Layer) -> Variant | None:
    """What --measure times: the layer at its own counts and at the aligned counts above (a
    depthwise conv stays depthwise: one group per aligned channel)."""
    m = finding.metrics
    c_in, c_out = m.get("padded_in_channels"), m.get("padded_out_channels")
    if not isinstance(c_in, int) or not isinstance(c_out, int):
        return None
    changes = ", ".join(f"{name} {old} -> {new}" for name, old, new in
                        (("in_channels", m.get("in_channels"), c_in), ("out_channels", m.get("out_channels"), c_out))
                        if old != new)  # fmt: skip
    shape = layer.input_shape
    if layer.kind == OpKind.LINEAR:
        bias = bool(layer.attrs.get("bias", True))
        return Variant(changes, Linear(m["in_channels"], m["out_channels"], bias), Linear(c_in, c_out, bias),
                       shape, (*shape[:-1], c_in))  # fmt: skip
    if layer.kind not in (OpKind.CONV, OpKind.GROUP_CONV, OpKind.DEPTHWISE_CONV):
        return None  # a transposed conv is not rebuilt
    groups = {"groups": c_in} if layer.kind == OpKind.DEPTHWISE_CONV else {}
    return Variant(changes, conv_of(layer), conv_of(layer, in_channels=c_in, out_channels=c_out, **groups),
                   shape, with_channels(shape, c_in))  # fmt: skip


MEASURED = Measured(_aligned, estimated=("est_conv_time_ms", "est_aligned_time_ms"))
