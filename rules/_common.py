"""Helpers the built-in rules share: the graph questions several rules ask, and the wording of
numbers (:mod:`cnnlint.wording`, imported here for them). Not a rule."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from cnnlint.cost import ModelCost, conv_work, spatial
from cnnlint.graph import Layer, LayerGraph, OpKind
from cnnlint.ops import is_multiplication, is_view, keeps_channel_count, keeps_channels, keeps_shape
# The rules import the wording of numbers from here, with the graph helpers below.
from cnnlint.wording import duration, megabytes, ms, percent, size  # noqa: F401


def common_module_path(layers: list[Layer]) -> str:
    """The deepest module path that encloses every one of ``layers`` ("" when none does)."""
    paths = [layer.module_path.split(".") for layer in layers if layer.module_path]
    common = []
    for parts in zip(*paths):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return ".".join(common)


def kernel_text(layer: Layer) -> str:
    kernel = layer.attrs.get("kernel_size") or ()
    return "x".join(str(k) for k in kernel) if kernel else "?"


def feeds_only_output(graph: LayerGraph, layer: Layer) -> bool:
    """True when the layer's result reaches the model output through shape-only ops."""
    reached = list(graph.reachable(layer, "down", is_view))
    return bool(reached) and all(found.kind == OpKind.OUTPUT or is_view(found) for found in reached)


def carries_output_channels(layer: Layer) -> bool:
    """The layer hands its input's channels on: a view (a reshape, a permute), or an op that keeps
    the channel count (an activation, a resize, a norm, a pool, an add)."""
    return is_view(layer) or keeps_channel_count(layer)


def is_task_head(graph: LayerGraph, layer: Layer) -> bool:
    """True when the layer's output channels are the model's: every path from it reaches a model
    output through views and channel-keeping ops only (a classifier, a segmentation head and its
    upsample and sigmoid, a detection head reshaped to boxes). Their count is the number of
    classes or outputs, not a design choice (CL201)."""
    reached = list(graph.reachable(layer, "down", carries_output_channels))
    return any(found.kind == OpKind.OUTPUT for found in reached) and all(
        found.kind == OpKind.OUTPUT or carries_output_channels(found) for found in reached
    )


def carries_image_channels(layer: Layer) -> bool:
    """The image's channels survive the layer: a view, or an op that keeps the channel count
    (input normalisation, an activation, a pool, a residual add)."""
    return is_view(layer) or keeps_channels(layer)


def reads_image(graph: LayerGraph, layer: Layer) -> bool:
    """The layer's input channels are the image's (3 for RGB): it reads the model input directly
    or through channel-preserving ops. They are not a design choice (CL101, CL201)."""
    return graph.is_fed_by_input(layer, through=carries_image_channels)


# A depthwise conv and the 1x1 conv after it, and the one regular conv that replaces the pair
# (MobileDets' fused conv, EfficientNetV2's fused-MBConv): CL302 proposes it in narrow stages,
# CL301 wherever it pays.


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


def pointwise_after(graph: LayerGraph, depthwise: Layer) -> Layer | None:
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


@dataclass(frozen=True)
class FusedConv:
    """One regular KxK conv in place of a depthwise KxK conv and the 1x1 conv after it, priced."""

    pointwise: Layer
    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    separable_s: float  # the pair's two kernels now (their fused norms and activations included)
    regular_s: float  # the regular conv, estimated on the same maps
    regular_flops: float
    regular_params: int


def fused_conv(graph: LayerGraph, cost: ModelCost, depthwise: Layer) -> FusedConv | None:
    """The regular conv from the depthwise conv's input channels to the 1x1 conv's output
    channels, with the depthwise kernel and stride, and both estimates; None without a 1x1 after."""
    pointwise = pointwise_after(graph, depthwise)
    if pointwise is None or len(depthwise.output_shape) != 4:
        return None
    in_ch = depthwise.attrs.get("in_channels", 0)
    out_ch = pointwise.attrs.get("out_channels", 0)
    if not in_ch or not out_ch:
        return None
    kernel = tuple(depthwise.attrs.get("kernel_size") or (1, 1))
    shape = (in_ch, out_ch, kernel, spatial(depthwise.input_shape), spatial(depthwise.output_shape))
    batch = depthwise.output_shape[0]
    flops, _ = conv_work(*shape, precision=cost.precision, batch=batch)
    return FusedConv(
        pointwise, in_ch, out_ch, kernel,
        separable_s=cost.time_of(depthwise) + cost.time_of(pointwise),
        regular_s=cost.estimate_conv(*shape, batch=batch),
        regular_flops=flops, regular_params=in_ch * out_ch * prod(kernel),
    )  # fmt: skip
