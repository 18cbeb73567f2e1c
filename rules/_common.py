"""Helpers the built-in rules share: wording and numbers in one style. Not a rule."""

from __future__ import annotations

from cnnlint.graph import Layer, LayerGraph, OpKind


def percent(fraction: float) -> str:
    value = 100 * fraction
    return f"{value:.1f}%" if value < 10 else f"{value:.0f}%"


def duration(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def kernel_text(layer: Layer) -> str:
    kernel = layer.attrs.get("kernel_size") or ()
    return "x".join(str(k) for k in kernel) if kernel else "?"


def target_text(profile_name: str, precision: str) -> str:
    return f"{profile_name} {precision}"


def feeds_only_output(graph: LayerGraph, layer: Layer) -> bool:
    """True when the layer's result reaches the model output through shape-only ops."""
    frontier = graph.consumers(layer)
    if not frontier:
        return False
    while frontier:
        consumer = frontier.pop()
        if consumer.kind == OpKind.OUTPUT:
            continue
        if consumer.kind in (OpKind.RESHAPE, OpKind.IDENTITY):
            frontier.extend(graph.consumers(consumer))
            continue
        return False
    return True
