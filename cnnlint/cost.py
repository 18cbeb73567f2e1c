"""Stage 4, cost: LayerGraph x Profile -> per-layer FLOPs, MACs, bytes and estimated time.

Work formulas live in one table keyed by op kind (``@register_formula``, in the manner of
``torch.utils.flop_counter``). Conventions:

- ``macs`` counts the multiply-accumulates of conv, linear and matmul layers only: the convention
  of published model tables (torchvision's ``_ops``, fvcore). ``flops`` counts all arithmetic,
  2 per MAC plus element-wise work.
- Memory access cost (bytes) is inputs read + weights read + outputs written at the target's
  precision. Layers an inference engine fuses into the preceding conv (norm, activation, residual
  add: the profile's ``[fusion]`` table) share that conv's kernel: their intermediate tensors are
  never written to memory, and they launch no kernel of their own.
- Time per kernel is a roofline: ``max(flops / (peak x efficiency[op class]), bytes / bandwidth)``
  plus the profile's per-kernel overhead. Latency is the sum at batch 1; throughput repeats the
  sum at the profile's ``throughput_batch``, where weights are read once per batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from math import prod

from cnnlint.graph import Layer, LayerGraph, OpKind
from cnnlint.profile import BYTES_PER_ELEMENT, Profile


@dataclass(frozen=True)
class Work:
    flops: int = 0
    macs: int = 0


Formula = Callable[[Layer], Work]
FORMULAS: dict[str, Formula] = {}


def register_formula(*kinds: str) -> Callable[[Formula], Formula]:
    """Register the work formula for op kinds; registering a kind twice is an error."""

    def decorator(formula: Formula) -> Formula:
        for kind in kinds:
            if kind in FORMULAS:
                raise ValueError(f"a cost formula for {kind!r} is already registered")
            if kind not in OpKind.ALL:
                raise ValueError(f"unknown op kind {kind!r}")
            FORMULAS[kind] = formula
        return formula

    return decorator


def kernel_volume(layer: Layer) -> int:
    kernel = layer.attrs.get("kernel_size") or (1,)
    return prod(kernel) if isinstance(kernel, (tuple, list)) else int(kernel)


@register_formula(OpKind.CONV, OpKind.DEPTHWISE_CONV, OpKind.GROUP_CONV)
def conv_work(layer: Layer) -> Work:
    per_output = layer.attrs["in_channels"] // layer.attrs["groups"] * kernel_volume(layer)
    macs = layer.output_numel * per_output
    return Work(flops=2 * macs, macs=macs)


@register_formula(OpKind.CONV_TRANSPOSE)
def conv_transpose_work(layer: Layer) -> Work:
    per_input = layer.attrs["out_channels"] // layer.attrs["groups"] * kernel_volume(layer)
    macs = prod(layer.input_shape) * per_input
    return Work(flops=2 * macs, macs=macs)


@register_formula(OpKind.LINEAR)
def linear_work(layer: Layer) -> Work:
    in_features = layer.attrs.get("in_features") or (layer.input_shape[-1] if layer.input_shape else 0)
    macs = layer.output_numel * in_features
    return Work(flops=2 * macs, macs=macs)


@register_formula(OpKind.MATMUL)
def matmul_work(layer: Layer) -> Work:
    if len(layer.input_shapes) < 2:  # attention modules, einsum: estimate from the first operand
        inner = layer.input_shape[-1] if layer.input_shape else 0
    else:
        inner = layer.input_shapes[0][-1]
    macs = layer.output_numel * inner
    return Work(flops=2 * macs, macs=macs)


# FLOPs per element for activations (estimates of the arithmetic in a typical implementation).
ACTIVATION_FLOPS = {"ReLU": 1, "relu": 1, "relu_": 1, "ReLU6": 2, "relu6": 2, "hardtanh": 2,
                    "Hardtanh": 2, "clamp": 2, "LeakyReLU": 2, "leaky_relu": 2, "PReLU": 2,
                    "Hardswish": 4, "hardswish": 4, "Hardsigmoid": 3, "hardsigmoid": 3,
                    "Sigmoid": 4, "sigmoid": 4, "SiLU": 5, "silu": 5, "Tanh": 4, "tanh": 4,
                    "GELU": 8, "gelu": 8, "Mish": 8, "mish": 8, "ELU": 4, "elu": 4}  # fmt: skip


@register_formula(OpKind.ACTIVATION)
def activation_work(layer: Layer) -> Work:
    return Work(flops=ACTIVATION_FLOPS.get(layer.op, 2) * layer.output_numel)


@register_formula(OpKind.NORM)
def norm_work(layer: Layer) -> Work:
    # Inference BatchNorm is a per-channel scale and shift; other norms compute statistics.
    per_element = 2 if "batch" in layer.op.lower() else 5
    return Work(flops=per_element * layer.output_numel)


@register_formula(OpKind.ELEMENTWISE)
def elementwise_work(layer: Layer) -> Work:
    return Work(flops=layer.output_numel)


@register_formula(OpKind.POOL)
def pool_work(layer: Layer) -> Work:
    if layer.attrs.get("adaptive") or not layer.attrs.get("kernel_size"):
        return Work(flops=layer.input_numel)
    return Work(flops=layer.output_numel * kernel_volume(layer))


@register_formula(OpKind.REDUCE)
def reduce_work(layer: Layer) -> Work:
    return Work(flops=layer.input_numel)


@register_formula(OpKind.UPSAMPLE)
def upsample_work(layer: Layer) -> Work:
    return Work(flops=layer.output_numel)


@register_formula(OpKind.CONCAT, OpKind.SPLIT, OpKind.CHANNEL_SHUFFLE, OpKind.RESHAPE,
                  OpKind.IDENTITY, OpKind.INPUT, OpKind.OUTPUT, OpKind.OPAQUE, OpKind.OTHER)  # fmt: skip
def data_movement_work(layer: Layer) -> Work:
    return Work()


# Kinds that launch no kernel: views and bookkeeping.
# Opaque submodules are here too: their work is unknown, and a guess would be a number cnnlint
# did not compute. The summary says what they leave out (``ModelCost.opaque``).
FREE_KINDS = frozenset(
    {OpKind.INPUT, OpKind.OUTPUT, OpKind.RESHAPE, OpKind.IDENTITY, OpKind.SPLIT, OpKind.OPAQUE}
)


def dense_conv_class(layer: Layer) -> str:
    """The efficiency class a groups=1 conv with this layer's kernel falls in."""
    kernel = tuple(layer.attrs.get("kernel_size") or (1,))
    if all(k == 1 for k in kernel):
        return "conv1x1"
    if all(k == 3 for k in kernel):
        return "conv3x3"
    return "conv_kxk"


def op_class(layer: Layer) -> str:
    """The efficiency-table class of a layer (see profile.OP_CLASSES)."""
    if layer.kind == OpKind.CONV or layer.kind == OpKind.CONV_TRANSPOSE:
        return dense_conv_class(layer)
    return {
        OpKind.DEPTHWISE_CONV: "depthwise_conv",
        OpKind.GROUP_CONV: "group_conv",
        OpKind.LINEAR: "linear",
        OpKind.MATMUL: "matmul",
        OpKind.ACTIVATION: "elementwise",
        OpKind.NORM: "elementwise",
        OpKind.ELEMENTWISE: "elementwise",
        OpKind.POOL: "pool",
        OpKind.REDUCE: "pool",
    }.get(layer.kind, "other")


@dataclass
class LayerCost:
    flops: int
    macs: int
    params: int
    input_bytes: int  # activations read
    weight_bytes: int
    output_bytes: int  # activations written
    kernel: str  # name of the layer whose kernel runs this one (itself when not fused)
    op_class: str
    time_s: float = 0.0  # kernel time, on the kernel's head layer; 0 for fused and free layers
    time_at_batch_s: float = 0.0

    @property
    def bytes(self) -> int:
        return self.input_bytes + self.weight_bytes + self.output_bytes

    @property
    def arithmetic_intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else float("inf")

    @property
    def fused(self) -> bool:
        return False


@dataclass
class Kernel:
    """One launched kernel: a head layer and the layers fused into it."""

    head: str
    members: list[str] = field(default_factory=list)
    flops: int = 0
    input_bytes: int = 0
    weight_bytes: int = 0
    output_bytes: int = 0
    op_class: str = "other"
    has_residual_add: bool = False
    time_s: float = 0.0
    time_at_batch_s: float = 0.0

    @property
    def bytes(self) -> int:
        return self.input_bytes + self.weight_bytes + self.output_bytes

    @property
    def arithmetic_intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else float("inf")


@dataclass
class ModelCost:
    profile: Profile
    precision: str
    layers: dict[str, LayerCost]
    kernels: dict[str, Kernel]  # by head layer name
    flops: int
    macs: int
    params: int
    memory_access_bytes: int
    latency_s: float
    throughput_per_s: float
    utilization: float  # achieved FLOP/s at batch 1 / peak
    opaque: list[str] = field(default_factory=list)  # submodules whose work is not counted

    def of(self, layer: Layer | str) -> LayerCost:
        return self.layers[layer if isinstance(layer, str) else layer.name]

    def kernel_of(self, layer: Layer | str) -> Kernel | None:
        return self.kernels.get(self.of(layer).kernel)

    def time_of(self, layer: Layer | str) -> float:
        """Estimated time of the kernel that runs this layer (fused layers included)."""
        kernel = self.kernel_of(layer)
        return kernel.time_s if kernel else 0.0

    def latency_share(self, layer: Layer | str) -> float:
        return self.time_of(layer) / self.latency_s if self.latency_s else 0.0

    def flops_share(self, layer: Layer | str) -> float:
        return self.of(layer).flops / self.flops if self.flops else 0.0

    @property
    def ridge_point(self) -> float:
        return self.profile.ridge_point(self.precision)

    def estimate_time(self, flops: int, bytes_moved: int, op_class_name: str) -> float:
        """Roofline time of a hypothetical kernel, for rules that compare alternatives."""
        return _roofline(self.profile, self.precision, flops, bytes_moved, op_class_name)


def _roofline(profile: Profile, precision: str, flops: float, bytes_moved: float, op_cls: str) -> float:
    compute = flops / (profile.peak_flops(precision) * profile.efficiency[op_cls])
    memory = bytes_moved / profile.bandwidth_bytes_per_s
    return max(compute, memory) + profile.kernel_overhead_us * 1e-6


_FUSE_AFTER = frozenset(OpKind.CONVOLUTIONS | {OpKind.LINEAR})


def _fusable(layer: Layer, profile: Profile) -> bool:
    if layer.kind == OpKind.NORM:
        return profile.fusion.get("norm", False)
    if layer.kind == OpKind.ACTIVATION:
        return profile.fusion.get("activation", False)
    if layer.kind == OpKind.ELEMENTWISE and layer.op in ("add", "iadd", "add_"):
        return profile.fusion.get("residual_add", False) and layer.attrs.get("tensor_operands") == 2
    return False


def compute_cost(graph: LayerGraph, profile: Profile, precision: str | None = None) -> ModelCost:
    precision = precision or profile.default_precision
    if precision not in profile.precisions:
        from cnnlint.errors import ProfileError

        raise ProfileError(
            f"target {profile.name} does not run {precision}; it runs {', '.join(profile.precisions)}."
        )
    width = BYTES_PER_ELEMENT[precision]
    layers: dict[str, LayerCost] = {}
    kernels: dict[str, Kernel] = {}

    for layer in graph:
        work = FORMULAS[layer.kind](layer)
        weight_elements = layer.params
        cost = LayerCost(
            flops=work.flops, macs=work.macs, params=layer.params,
            input_bytes=layer.input_numel * width, weight_bytes=weight_elements * width,
            output_bytes=layer.output_numel * width, kernel=layer.name, op_class=op_class(layer),
        )  # fmt: skip
        layers[layer.name] = cost
        if layer.kind in FREE_KINDS:
            continue
        host = _fusion_host(graph, layer, layers, kernels, profile)
        if host is not None:
            kernel = kernels[host]
            chain_input = _chain_producer(graph, layer, layers, host)
            kernel.members.append(layer.name)
            kernel.flops += cost.flops
            # The chain's intermediate never reaches memory; other operands are read.
            extra_inputs = sum(
                p.output_numel for p in graph.producers(layer) if p.name != chain_input
            )
            kernel.input_bytes += extra_inputs * width
            kernel.output_bytes = cost.output_bytes
            if layer.kind == OpKind.ELEMENTWISE:
                kernel.has_residual_add = True
            cost.kernel = host
            continue
        kernels[layer.name] = Kernel(
            head=layer.name, members=[layer.name], flops=cost.flops,
            input_bytes=cost.input_bytes, weight_bytes=cost.weight_bytes,
            output_bytes=cost.output_bytes, op_class=cost.op_class,
        )  # fmt: skip

    batch = profile.throughput_batch
    bandwidth = profile.bandwidth_bytes_per_s
    overhead = profile.kernel_overhead_us * 1e-6
    peak = profile.peak_flops(precision)
    for kernel in kernels.values():
        kernel.time_s = _roofline(profile, precision, kernel.flops, kernel.bytes, kernel.op_class)
        compute = batch * kernel.flops / (peak * profile.efficiency[kernel.op_class])
        memory = (batch * (kernel.input_bytes + kernel.output_bytes) + kernel.weight_bytes) / bandwidth
        kernel.time_at_batch_s = max(compute, memory) + overhead
        head = layers[kernel.head]
        head.time_s, head.time_at_batch_s = kernel.time_s, kernel.time_at_batch_s

    latency = sum(k.time_s for k in kernels.values())
    batch_time = sum(k.time_at_batch_s for k in kernels.values())
    flops = sum(c.flops for c in layers.values())
    return ModelCost(
        profile=profile,
        precision=precision,
        layers=layers,
        kernels=kernels,
        flops=flops,
        macs=sum(c.macs for c in layers.values()),
        params=graph.params_total,
        memory_access_bytes=sum(k.bytes for k in kernels.values()),
        latency_s=latency,
        throughput_per_s=batch / batch_time if batch_time else 0.0,
        utilization=(flops / latency / peak) if latency else 0.0,
        opaque=[layer.label for layer in graph.layers(OpKind.OPAQUE)],
    )


def _chain_producer(graph: LayerGraph, layer: Layer, layers: dict[str, LayerCost], host: str) -> str:
    for producer in graph.producers(layer):
        if layers[producer.name].kernel == host:
            return producer.name
    return ""


def _fusion_host(
    graph: LayerGraph,
    layer: Layer,
    layers: dict[str, LayerCost],
    kernels: dict[str, Kernel],
    profile: Profile,
) -> str | None:
    """The kernel this layer fuses into, or None when it runs as its own kernel."""
    if not _fusable(layer, profile):
        return None
    for producer in graph.producers(layer):
        host = layers[producer.name].kernel
        kernel = kernels.get(host)
        if kernel is None or graph[kernel.head].kind not in _FUSE_AFTER:
            continue
        # Only the chain's last layer may feed us, and only us: otherwise its output must be
        # written to memory anyway.
        if kernel.members[-1] != producer.name or len(graph.consumers(producer)) != 1:
            continue
        if layer.kind == OpKind.ELEMENTWISE and kernel.has_residual_add:
            continue
        if layer.kind == OpKind.NORM and any(graph[m].kind != graph[kernel.head].kind for m in kernel.members[1:]):
            continue  # a norm folds into the conv's weights only directly after it
        return host
    return None
