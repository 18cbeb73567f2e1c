"""Element-wise ops that run as kernels of their own take a large share of latency.

What it flags
    One model-level finding when the norms, activations and element-wise tensor ops (add, mul,
    ...) that the target cannot fuse into a conv kernel take at least ``threshold`` of the
    model's estimated latency. It is located at the costliest of them and names the ``top``
    offenders, the total, and why they are unfused, grouped by cause. Separately, each
    element-wise op that NO engine could fuse into a preceding conv, because of how the model is
    wired (an activation after a concat, a norm after a permute, a conv output that other layers
    also read, a second residual add, a gating multiply), is reported at info severity when its
    own kernel takes at least ``min_latency_share`` of latency. Ops left unfused only because the
    target lacks a fusion (e.g. NNIE runs every Eltwise as a separate layer) count toward the
    total but get no per-op finding: the design is not what to change there.

    Counted: op kinds ``norm``, ``activation`` and ``elementwise`` whose cost-model kernel is
    their own (``cost.of(layer).kernel == layer.name``). Not counted: data movement (concat,
    channel shuffle, upsample, split), which ShuffleNetV2 lists apart from element-wise ops and
    other rules cover, depthwise conv (CL301), and work on parameters (``Layer.param_only``: the
    weight standardisation of a normalizer-free ResNet or BiT), which an engine folds into
    constants and eager PyTorch runs once per call, not once per image.

Why
    Element-wise ops do one or a few FLOPs per value they read and write, so an unfused one costs
    a full round trip of its tensor through memory plus a kernel launch, for almost no FLOPs.
    ShuffleNetV2 (Ma et al., ECCV 2018, guideline G4, Table 4) names ReLU, AddTensor and AddBias
    and measures that removing ReLU and the shortcut from a ResNet bottleneck speeds it up by
    about 20% on both GPU and ARM: they were about 17% of its time (1 - 1/1.2). Its Sec. 2 and
    Fig. 2 decompose the run time of ShuffleNet v1 and MobileNetV2 on GPU and ARM and find data
    I/O, data shuffle and element-wise ops (AddTensor, ReLU) a considerable share of it, though
    FLOPs count none of them. ``threshold = 0.25`` flags models that spend clearly more on
    element-wise kernels than that ResNet bottleneck did with nothing fused. On the cost model,
    ResNet-50, ResNeXt-50 and RegNetX on hi3519 (no residual-add fusion) land at 17-22%, the
    paper's figure, and stay clean; DenseNet-121 (pre-activation BN-ReLU after every concat:
    32-42% on GPU and NPU targets) and ConvNeXt-T on GPUs (LayerNorm after a permute,
    layer-scale multiply, residual add after stochastic depth: 27-29%) are flagged;
    EfficientNet-B0 (squeeze-excitation multiplies, 19% on t4) is just below.

Example
    torch.cat([a, b], 1) -> nn.BatchNorm2d -> nn.ReLU      # BN-ReLU after a concat: 2 kernels

Use instead
    conv_a -> BN -> ReLU, conv_b -> BN -> ReLU, then torch.cat   # both fuse into their convs

Fix
    Put norms and activations directly after the conv they belong to (conv-norm-act, before a
    concat or a branch point), fold constant scales into the neighbouring conv or linear
    weights at export, and keep squeeze-excitation gates out of the early high-resolution
    stages. The message lists the causes with their estimated time. None of these is one
    concrete change the cost model can price: ``est_share_at_stake`` is the share of latency
    the flagged kernels take.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from math import prod

from pydantic import Field

from cnnlint.check import RuleContext, RuleOptions
from cnnlint.cost import ModelCost, Unfused
from cnnlint import ops
from cnnlint.graph import Layer, LayerGraph, OpKind
from cnnlint.profile import Profile
from cnnlint.results import Finding
from cnnlint.rules._common import duration, ms, percent, size

CODE = "CL104"
NAME = "elementwise-heavy"
SEVERITY = "warning"

KINDS = frozenset({OpKind.NORM, OpKind.ACTIVATION, OpKind.ELEMENTWISE})


class Options(RuleOptions):
    threshold: float = Field(
        default=0.25, ge=0, le=1,
        description=(
            "model-level finding when unfused element-wise kernels take at least this fraction of"
            " estimated latency (see Why)"
        ),
    )
    top: int = Field(
        default=5, ge=1,
        description="offenders named in the model-level message",
    )
    min_latency_share: float = Field(
        default=0.01, ge=0, le=1,
        description=(
            "per-op info findings only for ops whose kernel takes at least this fraction of "
            "latency (0.01: DenseNet-121 has 124 unfused norms and activations of 0.2-0.7% each "
            "on GPUs, which the model-level finding already sums up)"
        ),
    )
    report_ops: bool = Field(
        default=True,
        description="emit the per-op info findings at all",
    )


@dataclass(frozen=True)
class Cause:
    key: str  # short category, for grouping
    why: str  # sentence fragment: why this op is its own kernel
    fix: str  # what to change


_CAUSE_TEXT = {
    "after_concat": "after a concat",
    "after_reshape": "after a permute/reshape",
    "after_other": "after a non-conv op",
    "shared_output": "on a conv output other layers also read",
    "second_add": "second residual adds",
    "norm_after_act": "norms after an activation",
    "gate": "gating multiplies",
    "scale": "constant scales",
    "constant": "ops with a constant operand",
    "target": "not fused by the target",
}


def _cause(graph: LayerGraph, cost: ModelCost, layer: Layer, profile: Profile) -> Cause:
    """Why ``layer`` runs as its own kernel, from the reason the cost stage's kernel plan gives
    (``ModelCost.why_unfused``), told for this op and its wiring."""
    op = f"`{layer.op}`"
    reason = cost.why_unfused(layer)
    if reason is None or reason.code == Unfused.TARGET:
        return Cause(
            "target",
            f"{profile.name} does not fuse {layer.kind} ops into the conv (profile [fusion])",
            "nothing in the wiring prevents fusion; a runtime that fuses it, or removing the op "
            "(e.g. RepVGG-style re-parameterization of shortcuts), saves this time",
        )
    if layer.kind == OpKind.ELEMENTWISE and not ops.is_addition(layer):
        tensors = graph.producers(layer)
        if len(tensors) == 1:
            return Cause(
                "scale",
                f"{op} by a constant or parameter (layer scale) is not fused into a conv kernel",
                "fold the constant scale into the preceding conv/linear weights at export",
            )
        if any(len(p.output_shape) > 2 and prod(p.output_shape[2:]) == 1 for p in tensors):
            return Cause(
                "gate",
                f"the squeeze-excitation gate {op} is not fused into a conv kernel",
                "keep squeeze-excitation out of early high-resolution stages (EfficientNetV2's "
                "fused-MBConv stages have none), where the gated tensor is largest",
            )
        return Cause(
            "gate",
            f"an element-wise {op} of two tensors is not fused into a conv kernel",
            "restructure so the product is not needed at full resolution, or fuse it by hand",
        )
    if layer.kind == OpKind.ELEMENTWISE and not ops.is_residual_add(layer):
        return Cause(
            "constant",
            f"{op} with a constant operand is not a residual add",
            "fold the constant into the preceding conv's bias at export",
        )
    if reason.code == Unfused.NO_PRODUCER:
        return _after(graph, cost, layer, profile, graph[reason.layer] if reason.layer else None)
    if reason.code == Unfused.SHARED_OUTPUT:
        return Cause(
            "shared_output",
            f"{reason.text}, so it is written to memory anyway",
            f"apply the {layer.kind} before the branch point (post-activation order), or only "
            "on the branch that needs it",
        )
    if reason.code == Unfused.SECOND_ADD:
        return Cause("second_add", reason.text, "sum the extra operands before the conv, or drop one shortcut")
    if reason.code == Unfused.NORM_NOT_DIRECT:
        return Cause(
            "norm_after_act",
            reason.text,
            "put the norm directly after the conv (conv-norm-act order) so it folds into the "
            "conv's weights",
        )
    return Cause("after_other", "it cannot join the preceding kernel", "move it next to a conv")


def _after(graph: LayerGraph, cost: ModelCost, layer: Layer, profile: Profile, source: Layer | None) -> Cause:
    """The cause for a layer that reads no conv or linear kernel: told by what it reads."""
    if source is None:
        return Cause("after_other", "it has no producer to fuse into", "move it next to a conv")
    where = f"`{source.op}`" if source.label == source.op else f"{source.label} (`{source.op}`)"
    if source.kind == OpKind.CONCAT:
        return Cause(
            "after_concat",
            f"it reads the concat {where}, not a conv",
            "apply norm and activation in each branch before the concat (conv-norm-act per "
            "branch, as PeleeNet's post-activation does) so each fuses into its branch's conv",
        )
    if source.kind == OpKind.RESHAPE:
        return Cause(
            "after_reshape",
            f"it reads {where}, a layout change, not a conv",
            f"apply the {layer.kind} on the conv output before the {source.op}, or use a "
            "norm the engine folds into the conv (BatchNorm right after it)",
        )
    if source.kind in KINDS and cost.why_unfused(source) is not None:
        parent = _cause(graph, cost, source, profile)
        return Cause(
            parent.key,
            f"it follows {where}, itself unfused ({parent.why})",
            parent.fix,
        )
    if layer.kind == OpKind.ELEMENTWISE:
        return Cause(
            "after_other",
            f"it reads {where}, not a conv",
            f"end the branch with a conv (conv-norm) so the add fuses into it; a "
            f"`{source.op}` between them blocks fusion",
        )
    commutes = " (a monotone activation commutes with max pooling)" if (
        "max" in source.op.lower() and layer.kind == OpKind.ACTIVATION
    ) else ""
    return Cause(
        "after_other",
        f"it reads {where}, not a conv",
        f"move the {layer.kind} before the `{source.op}`, directly after the conv{commutes}",
    )


def check(ctx: RuleContext) -> Iterator[Finding]:
    graph, cost, profile, options = ctx.graph, ctx.cost, ctx.profile, ctx.options
    if not cost.latency_s:
        return
    unfused = [
        layer for layer in graph
        if layer.kind in KINDS and not layer.param_only and cost.of(layer).kernel == layer.name
    ]  # fmt: skip
    if not unfused:
        return
    causes = {layer.name: _cause(graph, cost, layer, profile) for layer in unfused}
    target = f"{profile.name} {cost.precision}"

    def time_of(layer: Layer) -> float:
        return cost.of(layer).time_s

    total_s = sum(time_of(layer) for layer in unfused)
    share = cost.share(total_s)
    if share >= options.threshold:
        yield _model_finding(unfused, causes, total_s, share, cost, target, options, time_of)

    if not options.report_ops:
        return
    for layer in unfused:
        cause = causes[layer.name]
        layer_share = cost.share(time_of(layer))
        if cause.key == "target" or layer_share < options.min_latency_share:
            continue
        moved = cost.of(layer).input_bytes + cost.of(layer).output_bytes
        yield Finding(
            message=(
                f"{layer.label}: {layer.kind} `{layer.op}` runs as its own kernel because "
                f"{cause.why}: est. {duration(time_of(layer))}, {percent(layer_share)} of "
                f"{target} latency, {size(moved)} read and written"
            ),
            layer=layer,
            fix=cause.fix,
            metrics={
                "cause": cause.key,
                "est_time_ms": ms(time_of(layer)),
                "latency_share": round(layer_share, 6),
                "est_share_at_stake": round(layer_share, 6),
                "bytes": moved,
            },
            severity="info",
        )


def _model_finding(
    unfused: list[Layer],
    causes: dict[str, Cause],
    total_s: float,
    share: float,
    cost: ModelCost,
    target: str,
    options: Options,
    time_of: Callable[[Layer], float],
) -> Finding:
    ranked = sorted(unfused, key=time_of, reverse=True)
    top = ranked[: options.top]
    by_cause: dict[str, list[Layer]] = {}
    for layer in unfused:
        by_cause.setdefault(causes[layer.name].key, []).append(layer)
    cause_order = sorted(by_cause, key=lambda key: -sum(time_of(layer) for layer in by_cause[key]))
    cause_parts = []
    for key in cause_order[:3]:
        layers = by_cause[key]
        seconds = sum(time_of(layer) for layer in layers)
        cause_parts.append(f"{len(layers)} {_CAUSE_TEXT[key]} ({duration(seconds)})")
    top_text = ", ".join(
        f"{layer.label} `{layer.op}` {duration(time_of(layer))}" for layer in top
    )
    fixes = []
    for key in cause_order[:2]:
        fix = causes[by_cause[key][0].name].fix
        fixes.append(f"{_CAUSE_TEXT[key]}: {fix}")
    return Finding(
        message=(
            f"{top[0].label}: {len(unfused)} unfused element-wise kernel"
            f"{'s' if len(unfused) != 1 else ''} (norm, activation, "
            f"add/mul) take {percent(share)} of est. {target} latency ({duration(total_s)} of "
            f"{duration(cost.latency_s)}; threshold {percent(options.threshold)}); "
            f"by cause: {'; '.join(cause_parts)}; top: {top_text}"
        ),
        layer=top[0],
        fix="; ".join(fixes),
        metrics={
            "elementwise_latency_share": round(share, 6),
            "est_share_at_stake": round(share, 6),
            "elementwise_ms": ms(total_s),
            "latency_ms": ms(cost.latency_s),
            "kernels": len(unfused),
            "threshold": options.threshold,
            "top": [
                {
                    "layer": layer.label,
                    "op": layer.op,
                    "kind": layer.kind,
                    "est_time_ms": ms(time_of(layer)),
                    "latency_share": round(cost.share(time_of(layer)), 6),
                    "cause": causes[layer.name].key,
                }
                for layer in top
            ],
            "by_cause": {
                key: {
                    "count": len(by_cause[key]),
                    "est_time_ms": ms(sum(time_of(layer) for layer in by_cause[key])),
                }
                for key in cause_order
            },
        },
    )
