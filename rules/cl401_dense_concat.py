"""Dense aggregation: the same feature map concatenated again and again (DenseNet).

What it flags
    Tensors that are concatenated into at least ``min_concats`` (3) later concats (consumers of
    kind concat, directly or through reshape/identity layers, or through a concat that is itself
    concatenated again): DenseNet's dense connectivity, where every layer's input is the concat
    of all earlier outputs of the block, whether written as one concat of a growing list
    (torchvision) or as a chain, ``out = torch.cat([out, layer(out)], 1)``: both re-copy every
    earlier feature map at every layer, and the rule measures that traffic, not the code shape. Tensors that
    share a concat are grouped, so there is one finding per dense block, not one per tensor. The
    finding sets the bytes the repeated concats copy against one-shot aggregation.

Why
    Each dense-layer concat re-reads every earlier feature map of the block and writes a new,
    wider copy, and the layer after it re-reads that copy: memory traffic grows quadratically
    with the block's depth while the FLOPs stay small. VoVNet (Lee et al., CVPR Workshops 2019)
    traced DenseNet's low GPU efficiency to this linearly growing input and replaced it with
    one-shot aggregation (OSA: each layer takes only the previous output, and all outputs are
    concatenated once at the end); its detectors ran 2x faster than DenseNet-based ones with
    1.6x-4.1x less energy. An inference engine can write a concat's inputs in place only when
    each tensor joins one concat; a tensor shared by several concats is copied once per concat.
    The cost is memory traffic, which weighs most where compute is cheap relative to bandwidth
    (GPUs, NPUs: ridge points of 100+ FLOP/B); on a CPU (ridge ~5 FLOP/B) the copies are a
    smaller share of latency, so the rule reports info there.

Example
    feats = [x]
    for layer in self.layers:
        feats.append(layer(torch.cat(feats, 1)))   # cat k re-copies feats[0..k-1]
    return torch.cat(feats, 1)

Use instead
    feats, y = [x], x
    for layer in self.layers:
        y = layer(y)                               # constant input width
        feats.append(y)
    return self.project(torch.cat(feats, 1))       # one concat at the end (OSA, VoVNet)

Fix
    Aggregate once (OSA): feed each layer the previous layer's output only and concatenate all
    outputs once at the end of the block, then a 1x1 conv to set the width. The message gives
    the bytes saved and the estimated time of the concats avoided (``est_saving_ms``: the
    block's concats now minus the one concat of one-shot aggregation).
"""

from __future__ import annotations

from collections.abc import Iterator

import networkx as nx
from pydantic import Field

from cnnlint.check import RuleContext, RuleOptions
from cnnlint.cost import saving
from cnnlint.graph import Layer, LayerGraph, OpKind
from cnnlint.ops import is_free, is_view
from cnnlint.results import Finding
from cnnlint.rules._common import common_module_path, duration, ms, percent

CODE = "CL401"
NAME = "dense-concat"
SEVERITY = "warning"

class Options(RuleOptions):
    min_concats: int = Field(
        default=3, ge=2,
        description=(
            "concats a tensor must feed to count as densely aggregated (3: two is an ordinary "
            "skip plus aggregation, e.g. an FPN or U-Net feature used twice)"
        ),
    )
    min_extra_percent: float = Field(
        default=0.0, ge=0,
        description=(
            "report a block only when its concats copy at least this much more than one-shot "
            "aggregation would, as a percentage of the one-shot bytes"
        ),
    )


def _concat_consumers(graph: LayerGraph, layer: Layer) -> list[Layer]:
    """Concat layers that copy ``layer``'s values: concats that read its output directly or
    through shape-only layers, and concats that read such a concat's output (which carries the
    values on: ``out = torch.cat([out, y], 1)`` in a loop copies the first ``out`` every time)."""
    def carries(found: Layer) -> bool:
        return found.kind == OpKind.CONCAT or is_view(found)

    return [found for found in graph.reachable(layer, "down", carries) if found.kind == OpKind.CONCAT]


def _source(graph: LayerGraph, layer: Layer) -> Layer:
    """The layer that computed a tensor, looking through shape-only layers."""
    while is_view(layer):
        producers = graph.producers(layer)
        if len(producers) != 1:
            break
        layer = producers[0]
    return layer


def _features(graph: LayerGraph, concats: list[Layer]) -> dict[str, Layer]:
    """The distinct feature maps the concats copy, looking through shape-only layers and
    through a concat that feeds another (a chained ``out = torch.cat([out, y], 1)``)."""
    features: dict[str, Layer] = {}
    frontier, seen = list(concats), set()
    while frontier:
        concat = frontier.pop()
        if concat.name in seen:
            continue
        seen.add(concat.name)
        for producer in graph.producers(concat):
            source = _source(graph, producer)
            if source.kind == OpKind.CONCAT:
                frontier.append(source)
            else:
                features[source.name] = source
    return features


def _groups(graph: LayerGraph, min_concats: int) -> list[tuple[list[Layer], list[Layer]]]:
    """(dense tensors, concats) per dense block: tensors linked by the concats they share."""
    links = nx.Graph()
    for layer in graph:
        if is_free(layer) or layer.kind == OpKind.CONCAT:
            continue  # a concat's output carries its inputs' values: they are the features
        concats = _concat_consumers(graph, layer)
        if len(concats) < min_concats:
            continue
        links.add_node(layer.name, dense=True)
        for concat in concats:
            links.add_edge(layer.name, concat.name)
    order = {layer.name: i for i, layer in enumerate(graph)}
    groups = []
    for component in nx.connected_components(links):
        names = sorted(component, key=order.__getitem__)
        dense = [graph[n] for n in names if links.nodes[n].get("dense")]
        concats = [graph[n] for n in names if graph[n].kind == OpKind.CONCAT]
        groups.append((dense, concats))
    return sorted(groups, key=lambda g: order[g[1][0].name])


def _anchor(graph: LayerGraph, concats: list[Layer]) -> Layer:
    """The first conv after the block's first concat (the first dense layer), else that concat."""
    first, last = concats[0].name, concats[-1].name
    started = False
    for layer in graph:
        if layer.name == first:
            started = True
        elif started and layer.is_conv():
            return layer
        if layer.name == last:
            break
    return concats[0]


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.2f} MB"


def check(ctx: RuleContext) -> Iterator[Finding]:
    graph, cost, profile, options = ctx.graph, ctx.cost, ctx.profile, ctx.options
    for dense, concats in _groups(graph, options.min_concats):
        # Bytes the concats move now: each reads all its inputs and writes its output.
        concat_bytes = sum(cost.of(c).input_bytes + cost.of(c).output_bytes for c in concats)
        concat_time = sum(cost.time_of(c) for c in concats)
        # One-shot aggregation concatenates every distinct feature once: read once, write once.
        features = _features(graph, concats)
        feature_bytes = sum(cost.of(f).output_bytes for f in features.values())
        osa_bytes = 2 * feature_bytes
        extra_bytes = concat_bytes - osa_bytes
        if extra_bytes <= 0 or 100 * extra_bytes / max(osa_bytes, 1) < options.min_extra_percent:
            continue
        osa_time = cost.estimate_time(0, osa_bytes, "other", output_bytes=feature_bytes)
        saved = saving(concat_time, osa_time)
        # The layers that read the intermediate concats re-read the growing width too.
        reread = sum(
            cost.of(c).output_bytes * len([x for x in graph.consumers(c) if not is_free(x)])
            for c in concats[:-1]
        )
        anchor = _anchor(graph, concats)
        name = common_module_path(concats)
        where = f"dense block {name}" if name else "dense block"
        share = cost.share(saved)
        yield Finding(
            message=(
                f"{anchor.label}: {where}: {len(dense)} feature maps are each concatenated into "
                f"{options.min_concats}+ later concats; its {len(concats)} concats copy "
                f"{_mb(concat_bytes)} at {cost.precision} vs {_mb(osa_bytes)} with one-shot "
                f"aggregation (+{_mb(extra_bytes)}, {extra_bytes / osa_bytes:.1f}x), est. "
                f"{duration(concat_time)} vs {duration(osa_time)} on {profile.name} "
                f"({percent(share)} of latency); the layers after them re-read "
                f"{_mb(reread)} of concatenated input"
            ),
            layer=anchor,
            fix=(
                "aggregate once (VoVNet OSA): feed each layer only the previous layer's output and "
                f"concatenate the {len(features)} feature maps once at the end of {name or 'the block'}, "
                f"then a 1x1 conv; saves {_mb(extra_bytes)} of concat traffic "
                f"(est. -{duration(saved)}) and keeps each layer's input width constant"
            ),
            metrics={
                "dense_tensors": len(dense),
                "concats": len(concats),
                "features": len(features),
                "concat_bytes": concat_bytes,
                "osa_bytes": osa_bytes,
                "extra_bytes": extra_bytes,
                "reread_bytes": reread,
                "est_time_ms": ms(concat_time),
                "osa_time_ms": ms(osa_time),
                "est_saving_ms": ms(saved),
                "latency_share": round(share, 6),
            },
        )
