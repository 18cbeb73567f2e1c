"""Parallel conv+BN / BN / identity branches summed: a training-time block left in for deployment.

What it flags
    An add (or a chain of adds) whose inputs are all linear branches of the same input tensor:
    a KxK conv (+ norm), a 1x1 conv (+ norm), a norm alone, or the tensor itself, with no
    activation inside any branch, and each branch's output (after its norm, if it has one) used
    by the sum and nothing else. That is the training-time form of RepVGG, ACNet, DBB and
    MobileOne blocks: a sum of linear maps of one tensor, which is one KxK conv. The finding sits
    on the widest conv and sets the time of the branches and the adds against one merged conv.
    ResNet's residual is not flagged: its conv branch (conv-bn-relu-conv-bn) starts at a
    different tensor than its shortcut and has an activation inside. Nor is a hierarchical
    feature fusion block (ESPNet's HFF), whose branches are summed pairwise and also
    concatenated into the block's output: each branch must still be computed on its own, so
    merging them into one conv would remove no kernel.

Why
    Conv and inference-time BatchNorm are linear, so conv_kxk(x) + conv_1x1(x) + bn(x) equals
    one KxK conv whose kernel is the sum of the three (the 1x1 and the identity padded to KxK).
    RepVGG (Ding et al., CVPR 2021) trains the multi-branch form and deploys the merged plain
    form, which runs 83% faster than ResNet-50 on a 1080Ti at higher accuracy; deployed unmerged,
    the block launches two or three convs and an add, reads its input two or three times, and
    writes every branch's output once more. Under INT8 post-training quantization a merged
    RepVGG loses far more accuracy than usual: RepVGG-A0 falls from 72.4% to 52.2% top-1
    (QARepVGG, Chu et al., 2022); QARepVGG's block or RepOptimizer training (Ding et al., 2022)
    keep the drop within about 2%.

Example
    y = self.bn3(self.conv3(x)) + self.bn1(self.conv1(x)) + self.bn_id(x)   # then ReLU

Use instead
    y = self.conv(x)   # one 3x3 conv with bias: the three branches merged after training

Fix
    Re-parameterize before export: fold each BN into its branch's kernel, pad the 1x1 kernel and
    the identity to KxK, and sum kernels and biases into one conv (timm:
    ``timm.utils.reparameterize_model(model)`` or the block's ``reparameterize()``; RepVGG's
    ``repvgg_model_convert``). Branches without norms need no folding: pad the smaller kernels
    and add them into the widest. The fix names only the steps the block needs. The message gives
    the estimated time saved per block (``est_saving_ms``: the branches' and adds' kernels now
    minus the merged conv). For INT8, use a quantization-friendly variant (QARepVGG) or
    quantization-aware training.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import Field

from cnnlint.check import RuleContext, RuleOptions
from cnnlint.cost import gemm_dims, saving
from cnnlint.graph import Layer, LayerGraph, OpKind
from cnnlint.ops import is_residual_add
from cnnlint.proposal import BatchNorm, Chain, Identity, Measured, Spec, Sum, Variant, conv_of
from cnnlint.results import Finding
from cnnlint.rules._common import duration, ms, percent

CODE = "CL402"
NAME = "reparameterizable-branches"
SEVERITY = "warning"

_CONV_KINDS = (OpKind.CONV, OpKind.GROUP_CONV, OpKind.DEPTHWISE_CONV)


class Options(RuleOptions):
    min_saving_us: float = Field(
        default=0.0, ge=0,
        description=(
            "report a block only when merging saves at least this many microseconds by the cost "
            "model (0: every mergeable block)"
        ),
    )


@dataclass
class _Branch:
    kind: str  # "conv", "norm" (norm on the input) or "identity" (the input itself)
    start: str  # the tensor the branch reads
    layers: list[Layer] = field(default_factory=list)
    conv: Layer | None = None


def _up(graph: LayerGraph, layer: Layer) -> Layer:
    """Look through identity layers (dropout, drop-path, nn.Identity) towards the producer."""
    while layer.kind == OpKind.IDENTITY:
        producers = graph.producers(layer)
        if len(producers) != 1:
            break
        layer = producers[0]
    return layer


def _only_feeds(graph: LayerGraph, layer: Layer, target: Layer) -> bool:
    """True when the layer's only consumer, through identity layers, is ``target``."""
    while True:
        consumers = graph.consumers(layer)
        if len(consumers) != 1:
            return False
        layer = consumers[0]
        if layer.name == target.name:
            return True
        if layer.kind != OpKind.IDENTITY:
            return False


def _feeds_only_sum(graph: LayerGraph, branch: _Branch, adds: list[Layer]) -> bool:
    """True when the branch's output (its last layer: the norm, else the conv) is used by one of
    the sum's adds and nothing else. The identity branch is the input itself, which the other
    branches read anyway: merging keeps that read."""
    if not branch.layers:
        return True
    return any(_only_feeds(graph, branch.layers[-1], add) for add in adds)


def _add_tree(graph: LayerGraph, root: Layer) -> tuple[list[Layer], list[Layer]]:
    """(adds, leaves) of the sum rooted at ``root``: adds feeding only the next add are merged."""
    adds, leaves = [root], []
    for producer in graph.producers(root):
        source = _up(graph, producer)
        if is_residual_add(source) and _only_feeds(graph, source, root):
            sub_adds, sub_leaves = _add_tree(graph, source)
            adds.extend(sub_adds)
            leaves.extend(sub_leaves)
        else:
            leaves.append(source)
    return adds, leaves


def _branch(graph: LayerGraph, leaf: Layer) -> _Branch:
    if leaf.kind == OpKind.NORM:
        producers = graph.producers(leaf)
        if len(producers) == 1:
            before = _up(graph, producers[0])
            if before.kind in _CONV_KINDS and _only_feeds(graph, before, leaf):
                conv_in = graph.producers(before)
                if len(conv_in) == 1:
                    return _Branch("conv", _up(graph, conv_in[0]).name, [before, leaf], before)
            return _Branch("norm", before.name, [leaf])
    if leaf.kind in _CONV_KINDS:
        conv_in = graph.producers(leaf)
        if len(conv_in) == 1:
            return _Branch("conv", _up(graph, conv_in[0]).name, [leaf], leaf)
    return _Branch("identity", leaf.name)


def _kernel(layer: Layer) -> tuple[int, ...]:
    return tuple(layer.attrs.get("kernel_size") or ())


def _mergeable(branches: list[_Branch]) -> Layer | None:
    """The conv the branches merge into, or None when they do not form a linear sum of one input."""
    if len(branches) < 2 or len({b.start for b in branches}) != 1:
        return None
    convs = [b.conv for b in branches if b.conv is not None]
    if not convs:
        return None
    signature = {
        (c.attrs.get("stride"), c.attrs.get("groups"), c.attrs.get("out_channels"), c.attrs.get("in_channels"),
         c.output_shape)
        for c in convs
    }  # fmt: skip
    if len(signature) != 1:
        return None
    kernels = [_kernel(c) for c in convs]
    if any(not k or any(d % 2 == 0 for d in k) for k in kernels):
        return None
    if any(c.attrs.get("dilation") not in (None, (1,) * len(_kernel(c))) for c in convs):
        return None
    widest = max(convs, key=lambda c: _kernel(c))
    if any(any(a > b for a, b in zip(_kernel(c), _kernel(widest))) for c in convs):
        return None  # e.g. 1x3 + 3x1 without a 3x3: not nested kernels
    if any(b.kind != "conv" for b in branches):  # identity / norm-only branches need stride 1
        stride = widest.attrs.get("stride") or (1,)
        if any(s != 1 for s in stride) or widest.attrs.get("in_channels") != widest.attrs.get("out_channels"):
            return None
    return widest


def _merge_steps(branches: list[_Branch], widest: Layer) -> str:
    """How to merge these branches, naming only the steps they need: folding BN when a branch has
    a norm, padding kernels smaller than the widest and an identity branch."""
    kernel_text = "x".join(map(str, _kernel(widest)))
    normed = any(b.kind == "norm" or len(b.layers) > 1 for b in branches)
    smaller = sorted({_kernel(b.conv) for b in branches if b.conv is not None} - {_kernel(widest)}, reverse=True)
    padded = [f"the {'x'.join(map(str, k))} kernel" for k in smaller]
    padded += ["the identity"] if any(b.conv is None for b in branches) else []
    steps = [f"pad {' and '.join(padded)} to {kernel_text}"] if padded else []
    if normed:
        steps = ["fold each BN into its branch's kernel", *steps, "sum kernels and biases"]
        return (f"merge the branches into one {kernel_text} conv with bias for deployment "
                f"({', '.join(steps)}; timm: timm.utils.reparameterize_model)")  # fmt: skip
    biased = any(b.conv is not None and b.conv.attrs.get("bias") for b in branches)
    steps.append("add the kernels" + (" and biases" if biased else ""))
    return (f"merge the branches' kernels into one {kernel_text} conv{' with bias' if biased else ''} "
            f"for deployment ({' and '.join(steps)})")  # fmt: skip


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _roots(graph: LayerGraph) -> Iterator[Layer]:
    for layer in graph.layers(OpKind.ELEMENTWISE):
        if not is_residual_add(layer):
            continue
        downstream = _up_down(graph, layer)
        if downstream is not None and is_residual_add(downstream):
            continue  # an inner add of a larger sum: handled from its root
        yield layer


def _up_down(graph: LayerGraph, layer: Layer) -> Layer | None:
    """The first non-identity layer downstream of a single-consumer chain."""
    while True:
        consumers = graph.consumers(layer)
        if len(consumers) != 1:
            return None
        layer = consumers[0]
        if layer.kind != OpKind.IDENTITY:
            return layer


def check(ctx: RuleContext) -> Iterator[Finding]:
    graph, cost, profile, options = ctx.graph, ctx.cost, ctx.profile, ctx.options
    for root in _roots(graph):
        adds, leaves = _add_tree(graph, root)
        if len({leaf.name for leaf in leaves}) != len(leaves):
            continue
        branches = [_branch(graph, leaf) for leaf in leaves]
        widest = _mergeable(branches)
        if widest is None:
            continue
        if not all(_feeds_only_sum(graph, b, adds) for b in branches):
            continue  # a branch's output is used elsewhere too (ESPNet's HFF): merging removes no kernel
        members = {layer.name for b in branches for layer in b.layers} | {a.name for a in adds}
        heads = {cost.of(name).kernel for name in members} & set(cost.kernels)
        now = sum(cost.kernels[h].time_s for h in heads)
        # Work of layers outside the block that share its kernels (a fused ReLU) stays.
        outside = sum(
            cost.of(m).flops for h in heads for m in cost.kernels[h].members if m not in members
        )
        conv_cost = cost.of(widest)
        merged = cost.estimate_time(
            conv_cost.flops + outside,
            conv_cost.input_bytes + conv_cost.weight_bytes + conv_cost.output_bytes,
            conv_cost.op_class,
            gemm_dims(widest),  # the merged conv has the widest branch's shape
            output_bytes=conv_cost.output_bytes,
            weight_bytes=conv_cost.weight_bytes,
        )
        saved = now - merged
        if saved * 1e6 < options.min_saving_us or saved <= 0:
            continue
        kinds, layers = [], []
        for b in sorted(branches, key=lambda b: (b.conv is None, [-d for d in _kernel(b.conv)] if b.conv else [])):
            normed = b.kind == "norm" or len(b.layers) > 1
            if b.kind == "conv":
                text = f"{'x'.join(map(str, _kernel(b.conv)))} conv"
                kinds.append(text + ("+norm" if normed else ""))
            else:
                kinds.append("norm" if normed else "identity")
            # The block as --measure rebuilds it: each branch's kernel ([] for none) and norm.
            layers.append({"kernel": list(_kernel(b.conv)) if b.conv else [], "norm": normed})
        kernel_text = "x".join(map(str, _kernel(widest)))
        share = cost.share(saved)
        fix = f"{_merge_steps(branches, widest)}: est. {duration(now)} -> {duration(merged)} on {profile.name}"
        message = (
            f"{widest.label}: {len(branches)} parallel linear branches of "
            f"{graph[branches[0].start].label} ({' + '.join(kinds)}) summed by {_count(len(adds), 'add')}: "
            f"{_count(len(heads), 'kernel')}, est. {duration(now)} vs {duration(merged)} for one merged "
            f"{kernel_text} conv (-{duration(saved)}, {percent(share)} of {profile.name} latency)"
        )
        if cost.precision == "int8":
            message += (
                "; at int8 note that merged RepVGG-style weights lose accuracy under post-training "
                "quantization (RepVGG-A0 72.4% -> 52.2% top-1, QARepVGG)"
            )
            fix += (
                "; for int8 use a quantization-friendly block (QARepVGG, Chu et al. 2022) or "
                "RepOptimizer training (Ding et al. 2022), or quantization-aware training, "
                "rather than post-training quantization of the merged conv"
            )
        yield Finding(
            message=message,
            layer=widest,
            fix=fix,
            metrics={
                "branches": len(branches),
                "branch_kinds": kinds,
                "branch_layers": layers,
                "adds": len(adds),
                "kernels": len(heads),
                "est_time_ms": ms(now),
                "merged_time_ms": ms(merged),
                "est_saving_ms": ms(saving(now, merged)),
                "latency_share": round(share, 6),
                "int8_ptq_caution": cost.precision == "int8",
            },
        )


def _merged(finding: Finding, layer: Layer) -> Variant | None:
    """What --measure times: the multi-branch block of ``branch_layers`` (convs, norms, identity,
    summed) against one conv with the widest kernel and a bias."""
    branches = finding.metrics.get("branch_layers")
    if not isinstance(branches, list) or len(branches) < 2 or not layer.is_conv():
        return None
    out_channels = layer.attrs["out_channels"]
    widest = tuple(layer.attrs.get("kernel_size") or (1,))

    def branch(spec: dict) -> Spec:
        parts: list[Spec] = []
        kernel = tuple(spec.get("kernel") or ())
        if kernel:
            same = kernel == widest
            parts.append(conv_of(layer, kernel_size=kernel, bias=False,
                                 **({} if same else {"padding": tuple(k // 2 for k in kernel)})))  # fmt: skip
        if spec.get("norm"):
            parts.append(BatchNorm(out_channels, dims=len(widest)))
        return Chain(tuple(parts)) if parts else Identity()

    kinds = " + ".join(finding.metrics.get("branch_kinds") or [])
    return Variant(f"{kinds} -> one {'x'.join(map(str, widest))} conv", Sum(tuple(branch(b) for b in branches)),
                   conv_of(layer, bias=True), layer.input_shape)  # fmt: skip


MEASURED = Measured(_merged, estimated=("est_time_ms", "merged_time_ms"))
