"""Fork-join blocks split into many parallel branches of small kernels.

What it flags
    Multi-branch blocks: a tensor read by several branches (the fork) that meet again at one layer
    (the join: the fork's immediate post-dominator in the layer graph, usually a concat or an
    add). Parallel branches are counted as the independent paths between fork and join: branches
    that share no layer (a direct fork-to-join edge, such as an identity shortcut, counts as one).
    A block is reported when it has at least ``min_branches`` parallel branches, or at least
    ``min_fragmented_branches`` branches and at least ``max_kernels`` kernels. Two-branch
    blocks (ResNet's residual, ShuffleNet V2's channel split, squeeze-and-excitation) are never
    reported, nor are DenseNet's dense connections (all its paths run through the same layers:
    one branch; CL401 covers them). Nor are blocks with fewer than two branches that compute
    (hold a conv, linear or matmul layer): a detection head's box decode (``split`` -> sigmoid,
    scale -> ``cat`` over slices of one tensor) slices an output, it does not fragment the
    network's compute. Where flagged blocks nest, only the innermost is reported, once per join.

Why
    ShuffleNet V2 (Ma et al., ECCV 2018), guideline G3, "network fragmentation reduces degree of
    parallelism": many small operators in parallel branches each pay a launch and a
    synchronisation, and none fills the device. In its Table 3, a block cut into four fragments
    (in series or in parallel) runs about 3x slower on a GPU than one fragment of the same FLOPs,
    while on an ARM CPU the slowdown is small; the GoogLeNet series and searched cells are its
    examples. RepVGG (Ding et al.,
    CVPR 2021) makes the same point for multi-branch inference-time designs. The rule counts the
    block's kernels after the target's fusion (cost.kernels) and sets their launch overhead (each
    kernel's fixed cost for its op class, as the cost model charges it: ``kernel_overhead_us``, or
    the profile's ``[overhead_us]``) against the block's estimated time.

Example
    b1 = self.b1(x); b2 = self.b2b(self.b2a(x)); b3 = self.b3b(self.b3a(x)); b4 = self.b4(self.pool(x))
    return torch.cat([b1, b2, b3, b4], 1)      # Inception: 4 branches, 7+ small kernels

Use instead
    Fewer, wider branches: a single 3x3 conv path, or two branches at most (ShuffleNet V2 unit,
    a residual block); on TensorRT, give the 1x1 convs that read the same input the same
    shape so the engine can merge them horizontally.

Fix
    Merge the 1x1 convs that read the fork into one conv and split its output (saves one launch
    per merged conv: the message gives the estimate), or redesign the block with at most two
    branches. The message gives the block's kernel count, how many are small (launch overhead at
    least ``small_kernel_ratio`` times their work), and the overhead's share of the block's time.
    The merge is proposed only where one conv is estimated faster than the convs it replaces;
    its saving is ``est_saving_ms``. Without it the rule proposes no concrete change, and
    ``est_share_at_stake`` is the block's share of latency.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import networkx as nx
from pydantic import Field

from cnnlint.check import RuleContext, RuleOptions
from cnnlint.cost import ModelCost, gemm_dims, saving
from cnnlint.graph import Layer, LayerGraph, OpKind
from cnnlint.ops import is_free
from cnnlint.profile import Profile
from cnnlint.results import Finding
from cnnlint.rules._common import common_module_path, duration, ms, percent

CODE = "CL103"
NAME = "fragmented-block"
SEVERITY = "warning"

_VIRTUAL_SINK = "__cl103_sink__"


class Options(RuleOptions):
    min_branches: int = Field(
        default=4, ge=3,
        description="parallel branches from which a block is reported whatever its size",
    )
    min_fragmented_branches: int = Field(
        default=3, ge=3,
        description=(
            "a block with at least this many branches is reported when it has ``max_kernels`` "
            "kernels or more (2-branch blocks are never reported)"
        ),
    )
    max_kernels: int = Field(
        default=8, ge=1,
        description=(
            "kernels (after fusion, the join included) from which a 3-branch block counts as "
            "fragmented (8: as many as a GoogLeNet Inception module, 6 convs, a pool and the "
            "concat; of Inception-v3's 3-branch reduction blocks it flags Mixed_7a, 8 kernels, "
            "not Mixed_6a, 6)"
        ),
    )
    small_kernel_ratio: float = Field(
        default=1.0, gt=0,
        description=(
            'a kernel is "small" when the launch overhead is at least this multiple of its '
            "roofline work time (launching costs as much as computing)"
        ),
    )


@dataclass
class _Block:
    fork: str
    join: str
    region: frozenset[str]  # layers strictly between fork and join
    branches: int
    compute_branches: int  # branches holding a conv, linear or matmul layer


def _post_dominators(digraph: nx.DiGraph) -> dict[str, str]:
    """Immediate post-dominator of every layer: the dominator tree of the reversed graph, rooted
    at the one sink (or a virtual one above several), by Cooper, Harvey and Kennedy's iteration
    ("A simple, fast dominance algorithm", 2006; networkx's immediate_dominators) on the graph's
    own adjacency, without building the reversed graph."""
    successors, predecessors = digraph.succ, digraph.pred
    sinks = [n for n in digraph if not successors[n]]
    root = sinks[0] if len(sinks) == 1 else _VIRTUAL_SINK

    def upstream(node: str) -> Iterable[str]:  # the reversed graph's successors
        return sinks if node == _VIRTUAL_SINK else predecessors[node]

    def downstream(node: str) -> Iterable[str]:  # the reversed graph's predecessors
        if root == _VIRTUAL_SINK and not successors[node]:
            return (_VIRTUAL_SINK,)
        return successors[node]

    order: list[str] = []  # post-order of a depth-first walk from the root
    visited, stack = {root}, [(root, iter(upstream(root)))]
    while stack:
        node, nodes = stack[-1]
        for child in nodes:
            if child not in visited:
                visited.add(child)
                stack.append((child, iter(upstream(child))))
                break
        else:
            stack.pop()
            order.append(node)
    number = {node: i for i, node in enumerate(order)}
    idom = {root: root}

    def intersect(u: str, v: str) -> str:
        while u != v:
            while number[u] < number[v]:
                u = idom[u]
            while number[u] > number[v]:
                v = idom[v]
        return u

    changed = True
    while changed:
        changed = False
        for node in reversed(order[:-1]):
            new = functools.reduce(intersect, (v for v in downstream(node) if v in idom))
            if idom.get(node) != new:
                idom[node] = new
                changed = True
    del idom[root]
    return idom


def _region(digraph: nx.DiGraph, fork: str, join: str) -> set[str]:
    """Layers on some path fork -> join. The join post-dominates the fork, so every layer
    reachable from the fork without passing the join lies on such a path."""
    seen: set[str] = set()
    frontier = [s for s in digraph.successors(fork) if s != join]
    while frontier:
        node = frontier.pop()
        if node in seen:
            continue
        seen.add(node)
        frontier.extend(s for s in digraph.successors(node) if s != join and s not in seen)
    return seen


def _components(digraph: nx.DiGraph, region: set[str]) -> list[set[str]]:
    """The weakly connected components of the layers in ``region`` (the branches), walked on
    the graph's own adjacency instead of a subgraph view: a ResNet or an Inception has a block
    for every fork, and each view's lookups cost more than the walk."""
    successors, predecessors = digraph.succ, digraph.pred
    left, components = set(region), []
    while left:
        start = left.pop()
        component, frontier = {start}, [start]
        while frontier:
            node = frontier.pop()
            for neighbour in (*successors[node], *predecessors[node]):
                if neighbour in left:
                    left.remove(neighbour)
                    component.add(neighbour)
                    frontier.append(neighbour)
        components.append(component)
    return components


def _computes(layer: Layer) -> bool:
    """A layer of a compute branch (ShuffleNet V2 G3's fragments are convs): weighted or matmul."""
    return layer.kind in OpKind.WEIGHTED or layer.kind == OpKind.MATMUL


def _blocks(graph: LayerGraph) -> list[_Block]:
    digraph = graph.digraph
    ipdom = _post_dominators(digraph)
    blocks = []
    for fork in digraph:
        if digraph.out_degree(fork) < 2:
            continue
        join = ipdom.get(fork)
        if join is None or join == fork or join == _VIRTUAL_SINK:
            continue
        if graph[join].kind == OpKind.OUTPUT:
            continue  # branches that only meet at the model's outputs are heads, not a block
        region = _region(digraph, fork, join)
        components = _components(digraph, region)
        branches = len(components) + (1 if digraph.has_edge(fork, join) else 0)
        computing = sum(1 for c in components if any(_computes(graph[n]) for n in c))
        blocks.append(_Block(fork, join, frozenset(region), branches, computing))
    return blocks


def _kernels(graph: LayerGraph, cost: ModelCost, block: _Block) -> list[str]:
    """Kernel heads that run the block's layers (the join included), in execution order."""
    heads: dict[str, None] = {}
    for name in [*block.region, block.join]:
        layer = graph[name]
        if is_free(layer):
            continue
        head = cost.of(layer).kernel
        if head in cost.kernels:
            heads[head] = None
    order = {name: i for i, name in enumerate(layer.name for layer in graph)}
    return sorted(heads, key=order.__getitem__)


def _first_conv(graph: LayerGraph, block: _Block) -> Layer:
    for layer in graph:
        if layer.name in block.region and layer.is_conv():
            return layer
    for layer in graph:
        if layer.name in block.region and not is_free(layer):
            return layer
    return graph[block.join]


def _block_name(graph: LayerGraph, block: _Block) -> str:
    """The deepest module path that encloses every layer of the block."""
    return common_module_path([graph[n] for n in [*block.region, block.join]])


def _named(layer: Layer) -> str:
    return layer.label if layer.label == layer.op else f"{layer.label} ({layer.op})"


def _merge_sibling_1x1(graph: LayerGraph, cost: ModelCost, block: _Block) -> tuple[int, float]:
    """1x1 convs reading the fork directly that one conv would run faster, and the time saved
    by running them as one conv."""
    siblings = [
        c for c in graph.consumers(block.fork)
        if c.kind == OpKind.CONV and all(k == 1 for k in c.attrs.get("kernel_size") or (0,))
    ]  # fmt: skip
    groups: dict[tuple, list[Layer]] = {}
    for conv in siblings:
        groups.setdefault((tuple(conv.attrs.get("stride") or ()), conv.output_shape[2:]), []).append(conv)
    merged, saved = 0, 0.0
    for convs in groups.values():
        if len(convs) < 2:
            continue
        kernels = {cost.of(c).kernel for c in convs}
        now = sum(cost.kernels[k].time_s for k in kernels if k in cost.kernels)
        flops = sum(cost.kernels[k].flops for k in kernels if k in cost.kernels)
        weights = sum(cost.kernels[k].weight_bytes for k in kernels if k in cost.kernels)
        outputs = sum(cost.kernels[k].output_bytes for k in kernels if k in cost.kernels)
        inputs = cost.of(convs[0]).input_bytes  # the fork is read once instead of len(convs) times
        # One conv1x1 with every sibling's outputs: the same reduction, the outputs side by side.
        k, _, rows = gemm_dims(convs[0])
        gemm = (k, sum(gemm_dims(c)[1] for c in convs), rows)
        after = cost.estimate_time(flops, inputs + weights + outputs, "conv1x1", gemm, output_bytes=outputs,
                                   weight_bytes=weights)
        if saving(now, after) > 0:  # merged only where one conv is estimated faster
            merged += len(convs)
            saved += saving(now, after)
    return merged, saved


def check(ctx: RuleContext) -> Iterator[Finding]:
    graph, cost, profile, options = ctx.graph, ctx.cost, ctx.profile, ctx.options
    flagged: list[tuple[_Block, list[str]]] = []
    for block in _blocks(graph):
        if block.branches < options.min_fragmented_branches or block.compute_branches < 2:
            continue
        kernels = _kernels(graph, cost, block)
        if block.branches < options.min_branches and len(kernels) < options.max_kernels:
            continue
        flagged.append((block, kernels))

    # Innermost only: drop a block that encloses another flagged block, and keep one per join.
    inner = []
    for block, kernels in flagged:
        encloses = any(
            other is not block and other.fork in block.region and other.join in (block.region | {block.join})
            for other, _ in flagged
        )  # fmt: skip
        if not encloses:
            inner.append((block, kernels))
    by_join: dict[str, tuple[_Block, list[str]]] = {}
    for block, kernels in inner:
        kept = by_join.get(block.join)
        if kept is None or len(block.region) < len(kept[0].region):
            by_join[block.join] = (block, kernels)

    for block, kernels in sorted(by_join.values(), key=lambda item: _first_conv(graph, item[0]).name):
        yield _finding(graph, cost, profile, options, block, kernels)


def _finding(
    graph: LayerGraph,
    cost: ModelCost,
    profile: Profile,
    options: Options,
    block: _Block,
    kernels: list[str],
) -> Finding:
    times = [cost.kernels[k].time_s for k in kernels]
    block_time = sum(times)
    # Each kernel's fixed cost for its op class, as the cost model charges it.
    overheads = [cost.overhead_of([k]) for k in kernels]
    uniform = len(set(overheads)) <= 1
    launch_time = overheads[0] * len(kernels) if uniform and overheads else cost.overhead_of(kernels)
    work_time = max(block_time - launch_time, 0.0)
    small = sum(1 for t, o in zip(times, overheads) if o >= options.small_kernel_ratio * max(t - o, 0.0))
    if uniform:
        launches = f"{len(kernels)} x {overheads[0] * 1e6 if overheads else 0.0:g} us"
    else:
        launches = f"{len(kernels)} kernels at {min(overheads) * 1e6:g}-{max(overheads) * 1e6:g} us"
    overhead_share = launch_time / block_time if block_time else 0.0
    latency_share = cost.share(block_time)
    merged, saved = _merge_sibling_1x1(graph, cost, block)
    # The merge is a concrete, priced fix; a redesign is not: without a merge, what is at stake
    # is the block's share of latency.
    if merged >= 2:
        priced = {"est_saving_ms": ms(saved)}
    else:
        priced = {"est_share_at_stake": round(latency_share, 6)}
    anchor = _first_conv(graph, block)
    name = _block_name(graph, block)
    where = f"block {name}" if name else "block"
    fork, join = graph[block.fork], graph[block.join]
    fork_text, join_text = _named(fork), _named(join)
    fixes = []
    if merged >= 2:
        fixes.append(
            f"merge the {merged} 1x1 convs that read {fork.label} into one conv and split its "
            f"output (est. -{duration(saved)})"
        )
    fixes.append(
        f"{'or ' if fixes else ''}redesign {name or 'the block'} with at most 2 branches of wider layers "
        f"(ShuffleNet V2 G3); its {len(kernels)} launches cost {duration(launch_time)} on "
        f"{profile.name}"
    )
    return Finding(
        message=(
            f"{anchor.label}: {where} has {block.branches} parallel branches from "
            f"{fork_text} to {join_text}, {len(kernels)} kernels after fusion, "
            f"{small} of them small; launch overhead {launches} = {duration(launch_time)} vs "
            f"{duration(work_time)} of work ({percent(overhead_share)} of the block's est. "
            f"{duration(block_time)}; block {percent(latency_share)} of {profile.name} latency)"
        ),
        layer=anchor,
        fix="; ".join(fixes),
        metrics={
            "branches": block.branches,
            "kernels": len(kernels),
            "small_kernels": small,
            "layers": sum(1 for n in block.region if not is_free(graph[n])),
            "fork": fork.label,
            "join": join.label,
            "est_time_ms": ms(block_time),
            "launch_overhead_ms": ms(launch_time),
            "overhead_share": round(overhead_share, 6),
            "latency_share": round(latency_share, 6),
            "mergeable_1x1": merged,
            **priced,
        },
    )
