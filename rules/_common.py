"""Helpers the built-in rules share: wording and numbers in one style. Not a rule."""

from __future__ import annotations

from cnnlint.graph import Layer, LayerGraph, OpKind
from cnnlint.ops import is_view, keeps_channel_count, keeps_channels


def percent(fraction: float) -> str:
    value = 100 * fraction
    return f"{value:.1f}%" if value < 10 else f"{value:.0f}%"


def duration(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def ms(seconds: float) -> float:
    """Seconds as milliseconds for a finding's metrics, to the nanosecond."""
    return round(seconds * 1e3, 6)


def measured_time(seconds: float) -> str:
    """A measured time for a message: "0.21 ms", "250 ms"."""
    value = seconds * 1e3
    return f"{value:.0f} ms" if value >= 100 else f"{value:.3g} ms"


def speedup(before_s: float, after_s: float) -> tuple[str, bool]:
    """("1.4x faster", False), or ("1.4x slower", True): a measured fix's effect, said as such."""
    ratio = before_s / after_s if after_s > 0 else float("inf")
    slower = ratio < 1
    factor = 1 / ratio if slower else ratio
    amount = f"{factor:.1f}x" if factor >= 1.1 else f"{factor:.2f}x"
    return f"{amount} {'slower' if slower else 'faster'}", slower


def megabytes(num_bytes: float) -> str:
    """Bytes for a memory-access figure: "1.91 MB", "802.8 kB"."""
    if num_bytes >= 1e6:
        return f"{num_bytes / 1e6:.2f} MB"
    return f"{num_bytes / 1e3:.1f} kB"


def size(num_bytes: float) -> str:
    """Bytes for a tensor or traffic size, rounded: "3.2 MB", "401 KB", "64 B"."""
    if num_bytes >= 1e6:
        return f"{num_bytes / 1e6:.1f} MB"
    if num_bytes >= 1e3:
        return f"{num_bytes / 1e3:.0f} KB"
    return f"{num_bytes:.0f} B"


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
