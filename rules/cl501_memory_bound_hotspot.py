"""Memory-bound kernels that take a large share of the estimated latency.

What it flags
    Launched kernels (a head layer with the layers fused into it, counted once) that are
    memory-bound on the target and take at least ``min_latency_share`` of the model's estimated
    latency. Memory-bound means the roofline's memory time exceeds its compute time: the
    kernel's arithmetic intensity (FLOP per byte moved) is below the target's ridge point
    (peak / bandwidth) scaled by the efficiency of the kernel's op class. A kernel below the raw
    ridge but above that line is limited by how well the hardware runs its op class, not by
    bytes, and cutting bytes would not make it faster; other rules speak to those. So is a
    kernel whose bytes take less time than the target's per-kernel overhead: it is launch-bound.
    Kernels that compute from parameters alone (a weight standardised in ``forward``, which an
    eager target runs once per call; an inference engine folds it away) are work on weights,
    not on feature maps, and are not reported.

Why
    The roofline model (Williams, Waterman & Patterson, CACM 2009): a kernel whose intensity is
    below the ridge point cannot use the compute units, whatever its FLOPs; its time is its
    bytes over the bandwidth. At batch 1 this is common: a T4 needs 203 FLOP/B in fp16 to be
    compute-bound, while a fully connected layer does 1 FLOP per weight byte, and late-stage 3x3
    convs on 7x7 maps read more weight bytes than activation bytes. ShuffleNetV2 (Ma et al., ECCV
    2018) makes the same point for memory access cost: FLOPs do not predict time. The findings
    point at the few kernels where cutting bytes pays: the threshold, 4% of latency, is about
    twice the mean share of a kernel in a 50-kernel network, so a model gets a handful of
    findings, not one per layer (on the built-in targets: 0-5 per torchvision classifier).

    Depthwise convolutions are skipped where CL301 (depthwise-on-accelerator) is enabled on the
    target, since it reports every memory-bound depthwise layer with the same intensity and
    latency numbers;
    where CL301 is off (arm-cpu, x3) a depthwise hotspot is reported here.

Example
    nn.Linear(25088, 4096)     # VGG-16 classifier: 103M weights read for one image

Use instead
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 4096)   # pool before the classifier

Fix
    Depends on what moves the bytes. Weights (classifier FCs, late-stage convs at batch 1):
    fewer channels, global pooling before the classifier, int8 weights, or batching. Activations
    of a conv: more work per byte, e.g. fewer, wider layers at lower resolution or fused-MBConv
    instead of expand + depthwise. Unfused norm, activation, add, pool or concat: place it where
    the engine fuses it into the conv, or fold a pooling into the conv's stride. The message
    names the case and the lower bound on the kernel's time if it were compute-bound. The
    advice is not one concrete change: ``est_share_at_stake`` is the kernel's share of latency.
"""

from __future__ import annotations

from collections.abc import Iterator
from math import prod

from pydantic import Field

from cnnlint.check import RuleContext, RuleOptions
from cnnlint.cost import Kernel
from cnnlint.graph import Layer, LayerGraph, OpKind
from cnnlint.ops import is_view
from cnnlint.results import Finding
from cnnlint.rules._common import duration, megabytes, ms, percent

CODE = "CL501"
NAME = "memory-bound-hotspot"
SEVERITY = "info"

# The rule that reports depthwise convolutions with the same numbers.
_DEPTHWISE_RULE = "CL301"


class Options(RuleOptions):
    min_latency_share: float = Field(
        default=0.04, ge=0, le=1,
        description="report kernels taking at least this share of estimated latency",
    )
    skip_covered: bool = Field(
        default=True,
        description="skip depthwise convolutions when CL301 is enabled on the target",
    )


def _covered_elsewhere(layer: Layer, ctx: RuleContext) -> bool:
    """True when another rule active in this run reports the layer with the same numbers."""
    return layer.kind == OpKind.DEPTHWISE_CONV and ctx.is_active(_DEPTHWISE_RULE)


def _flattens_a_map(graph: LayerGraph, layer: Layer) -> bool:
    """True when a linear layer reads a feature map flattened with its spatial positions."""
    frontier = graph.producers(layer)
    while frontier:
        producer = frontier.pop()
        shape = producer.output_shape
        if len(shape) > 2 and prod(shape[2:]) > 1:
            return True
        if is_view(producer):
            frontier.extend(graph.producers(producer))
    return False


def _fix(graph: LayerGraph, layer: Layer, kernel: Kernel, precision: str) -> tuple[str, str]:
    """(what moves the bytes, what to do about it) for the kernel's head layer."""
    weights_dominate = kernel.weight_bytes >= kernel.input_bytes + kernel.output_bytes
    smaller_weights = "" if precision == "int8" else "int8 weights, "
    if layer.kind in (OpKind.LINEAR, OpKind.MATMUL) and weights_dominate:
        if layer.kind == OpKind.LINEAR and _flattens_a_map(graph, layer):
            shrink = "global-average-pool the feature map before this layer instead of flattening it"
        else:
            shrink = "fewer input features or hidden units"
        return ("weight-bound", f"its weights are read once per input at batch 1: {shrink}, "
                f"{smaller_weights}or batch requests so that each weight read serves several inputs")
    if layer.kind in OpKind.CONVOLUTIONS and weights_dominate:
        return ("weight-bound", "its weights outweigh its activations at this batch size: use "
                f"fewer channels in this stage (or a bottleneck around it), {smaller_weights}or "
                "batch requests")
    if layer.kind == OpKind.DEPTHWISE_CONV:
        return ("activation-bound", "a depthwise conv does k*k MACs per value it reads: use a "
                "regular KxK conv instead of expand + depthwise (fused-MBConv), or fewer "
                "expanded channels at this resolution")
    if layer.kind in OpKind.CONVOLUTIONS or layer.kind in (OpKind.LINEAR, OpKind.MATMUL):
        return ("activation-bound", "it moves large feature maps for few MACs per value: do "
                "more work per byte (fewer, wider layers; move it to a lower resolution; merge "
                "it with its neighbour, e.g. fused-MBConv instead of a 1x1 expansion)")
    if layer.kind == OpKind.POOL:
        return ("activation-bound", "fold the pooling into the preceding conv as a stride, or "
                "check that the engine fuses it")
    if layer.kind == OpKind.CONCAT:
        return ("copy", "the concat copies its inputs: let the producers write into one buffer "
                "(most engines do when the concat feeds a conv directly), or add instead of "
                "concatenating")
    return ("unfused", "it runs as its own pass over memory: place it directly after a conv "
            "(conv -> norm -> activation -> residual add) so that the engine fuses it")


def check(ctx: RuleContext) -> Iterator[Finding]:
    graph, cost, profile, options = ctx.graph, ctx.cost, ctx.profile, ctx.options
    if not cost.latency_s:
        return
    ridge = cost.ridge_point
    peak = profile.peak_flops(cost.precision)
    overhead = profile.kernel_overhead_us * 1e-6
    for kernel in cost.kernels.values():
        share = kernel.time_s / cost.latency_s
        if share < options.min_latency_share:
            continue
        efficiency = cost.rate_of(kernel) / peak
        class_ridge = ridge * efficiency
        intensity = kernel.arithmetic_intensity
        if intensity >= class_ridge:
            continue
        memory_time = kernel.bytes / profile.bandwidth_bytes_per_s
        if memory_time < overhead:
            continue  # launch-bound: its bytes take less time than starting it
        layer = graph[kernel.head]
        if layer.param_only:
            continue
        if options.skip_covered and _covered_elsewhere(layer, ctx):
            continue
        compute_floor = kernel.flops / (peak * efficiency) + overhead
        case, advice = _fix(graph, layer, kernel, cost.precision)
        fused = len(kernel.members) - 1
        fused_text = f" with {fused} fused layer{'s' if fused > 1 else ''}" if fused else ""
        yield Finding(
            message=(
                f"{layer.label}: {layer.op} kernel{fused_text} is memory-bound ({case}): "
                f"{intensity:.1f} FLOP/B "
                f"vs {profile.name} {cost.precision} ridge {ridge:.0f} ({class_ridge:.0f} at "
                f"{kernel.op_class} efficiency); moves {megabytes(kernel.bytes)}, est. "
                f"{duration(kernel.time_s)}, {percent(share)} of latency"
            ),
            layer=layer,
            fix=(
                f"{advice}; compute-bound it would take est. {duration(compute_floor)} instead of "
                f"{duration(kernel.time_s)}"
            ),
            metrics={
                "kind": layer.kind,
                "op_class": kernel.op_class,
                "arithmetic_intensity": round(intensity, 3),
                "ridge_point": round(ridge, 3),
                "op_class_ridge_point": round(class_ridge, 3),
                "bytes": kernel.bytes,
                "weight_bytes": kernel.weight_bytes,
                "activation_bytes": kernel.input_bytes + kernel.output_bytes,
                "flops": kernel.flops,
                "est_time_ms": ms(kernel.time_s),
                "est_memory_time_ms": ms(memory_time),
                "est_compute_bound_time_ms": ms(compute_floor),
                "latency_share": round(share, 6),
                "est_share_at_stake": round(share, 6),
                "fused_layers": fused,
            },
        )
