"""Stage 4, cost: LayerGraph x Profile -> per-layer FLOPs, MACs, bytes and estimated time.

Work formulas are registered by the name the op table (:mod:`cnnlint.ops`) gives each kind
(``@register_formula``, in the manner of ``torch.utils.flop_counter``), and build on shape-level
formulas (``conv_work(c_in, c_out, kernel, in_hw, out_hw, groups, precision)``) that rules also use
to price a layer that does not exist yet (``ModelCost.estimate_conv``). Conventions:

- ``macs`` counts the multiply-accumulates of conv, linear and matmul layers only: the convention
  of published model tables (torchvision's ``_ops``, fvcore). ``flops`` counts all arithmetic,
  2 per MAC plus element-wise work.
- Memory access cost (bytes) is inputs read + weights read + outputs written at the target's
  precision. Layers an inference engine fuses into the preceding conv (norm, activation, residual
  add: the profile's ``[fusion]`` table) share that conv's kernel: their intermediate tensors are
  never written to memory, and they launch no kernel of their own.
- Time per kernel is a roofline: ``max(flops / (peak x efficiency[op class]), bytes / bandwidth)``
  plus the profile's per-kernel overhead (per op class where the profile says so). A profile's
  ``[small_gemm]`` lowers the efficiency of convs and linears whose per-group matrix product is
  thin (few input channels per group, few outputs per group: ``gemm_dims``); one whose channels
  per group are off the target's granule (``channel_widths``) runs at ``Profile.alignment`` of
  that rate: padded to the granule, or at the slower kernel's share a calibration measured. A profile
  with a cache (``memory.cache_mb``) moves a kernel's bytes up to its size at the cache's
  bandwidth and the rest at the memory's (``cnnlint.profile.cached_bandwidth``). A conv with a
  stride above 1 also gathers its input (``Profile.strided_input_gbps``) where the profile measured it.
  A pool or depthwise conv, which slides a window over one channel, pays for each output beyond
  its taps (its window's bounds, the store: ``Profile.window_output_ns``) where the profile
  measured it.
  A kernel that writes a fresh output (not an in-place one: ``Layer.attrs["in_place"]``) writes
  it to memory no recent kernel touched, at ``memory.fresh_output_gbps`` on top, where the
  profile measured it. An in-place kernel writes the lines it just read: its roofline moves
  ``memory.in_place_output_share`` of its output bytes, where the profile measured it
  (``Profile.output_bytes_moved``).
  A call counted whole (a library function kept by ``torch.fx.wrap``, as Swin's window
  attention) is, on an eager target, the kernels eager torch launches for it, each priced in its
  own class (``_price_inner_kernels``); an engine that fuses prices it as one kernel.
  A layout call that copies (``reshape`` of a permuted tensor, ``contiguous`` of one that is
  not: ``Layer.attrs["copies"]``, from the strides the trace recorded) is a kernel that reads
  and writes its tensor once; the views around it are free.
  Latency is the sum at batch 1; throughput repeats the sum at the profile's
  ``throughput_batch``, where weights are read once per batch.
- Layers computed from parameters alone (``Layer.param_only``: a weight standardised in
  ``forward``) are work on weights, not on images. A target whose profile fuses layers is an
  inference engine, which folds them into constants at conversion: they launch no kernel and take
  no time (``ModelCost.folded``). An eager target (a profile that fuses nothing) runs them on
  every call, once for the whole batch. Either way their FLOPs and MACs stay in the totals, as
  torch's FLOP counter counts them, and the layers that read their result read it as weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from math import ceil, prod

from cnnlint import ops
from cnnlint.core import BYTES_PER_ELEMENT, Layer, LayerGraph, OpKind
from cnnlint.profile import Profile


@dataclass(frozen=True)
class Work:
    flops: int = 0
    macs: int = 0


Formula = Callable[[Layer], Work]
_BY_NAME: dict[str, Formula] = {}


def register_formula(*names: str) -> Callable[[Formula], Formula]:
    """Register the work formula the op table (``cnnlint.ops``) names; registering a name twice is
    an error."""

    def decorator(formula: Formula) -> Formula:
        for name in names:
            if name in _BY_NAME:
                raise ValueError(f"a cost formula for {name!r} is already registered")
            if name not in ops.FORMULA_NAMES:
                raise ValueError(f"no op kind uses a formula named {name!r} (cnnlint.ops.OPS)")
            _BY_NAME[name] = formula
        return formula

    return decorator


# Shape-level formulas: what a layer of these shapes costs, whether or not it exists yet.


def _taps(kernel: int | Sequence[int]) -> int:
    return kernel if isinstance(kernel, int) else prod(kernel or (1,))


def conv_macs(
    c_in: float, c_out: float, kernel: int | Sequence[int], out_hw: int, groups: int = 1, batch: int = 1
) -> float:
    """Multiply-accumulates of a conv computing an ``out_hw``-pixel map (h*w, or d*h*w)."""
    per_group = c_in // groups if isinstance(c_in, int) else c_in / groups
    return batch * out_hw * c_out * per_group * _taps(kernel)


def conv_work(
    c_in: float,
    c_out: float,
    kernel: int | Sequence[int],
    in_hw: int,
    out_hw: int,
    groups: int = 1,
    precision: str = "fp32",
    batch: int = 1,
) -> tuple[float, float]:
    """(FLOPs, bytes) of a conv: 2 FLOPs per MAC; ``conv_traffic`` at the precision's width.
    Channel counts may be fractional for a conv sized by a formula (c/sqrt(g))."""
    flops = 2 * conv_macs(c_in, c_out, kernel, out_hw, groups, batch)
    elements = conv_traffic(c_in, c_out, kernel, in_hw, out_hw, groups, batch)
    return flops, elements * BYTES_PER_ELEMENT[precision]


def conv_traffic(
    c_in: float, c_out: float, kernel: int | Sequence[int], in_hw: int, out_hw: int, groups: int = 1, batch: int = 1
) -> float:
    """Elements a conv moves (ShuffleNetV2's MAC): input read, weights read, output written."""
    weights = _taps(kernel) * c_in * c_out
    weights = weights // groups if isinstance(weights, int) else weights / groups
    return batch * (in_hw * c_in + out_hw * c_out) + weights


def linear_work(
    in_features: float, out_features: float, rows: int = 1, precision: str = "fp32"
) -> tuple[float, float]:
    """(FLOPs, bytes) of a linear layer applied to ``rows`` vectors: 2 FLOPs per MAC; the rows
    read and written, and the weights read once, at the precision's width."""
    flops = 2 * rows * in_features * out_features
    elements = rows * (in_features + out_features) + in_features * out_features
    return flops, elements * BYTES_PER_ELEMENT[precision]


def spatial(shape: Sequence[int]) -> int:
    """Pixels of an N x C x ... map (1 for N x C)."""
    return prod(shape[2:]) if len(shape) > 2 else 1


# The roofline's rounding: two estimated times within 2% of each other are the same time.
SAME_TIME = 0.02


def is_slower(after: float, before: float) -> bool:
    """Whether an estimated time is slower than another: by more than ``SAME_TIME`` (2%), the
    roofline's rounding (a proposal within it costs the same time)."""
    return after > (1 + SAME_TIME) * before


def saving(before: float, after: float) -> float:
    """Seconds a change saves, from the estimated times before and after it: negative for a
    slower change, 0 where the two are within the roofline's rounding (``SAME_TIME``): a fix
    the estimate cannot tell from the layer saves nothing. Rules record it as a finding's
    ``est_saving_ms``; the check stage offers a fix only where it is positive."""
    if abs(before - after) <= SAME_TIME * before:
        return 0.0
    return before - after


def round_to(value: float, granule: int) -> int:
    """The multiple of ``granule`` nearest to ``value`` (at least one granule)."""
    return max(granule, ceil(value / granule - 0.5) * granule)


def kernel_volume(layer: Layer) -> int:
    return _taps(layer.attrs.get("kernel_size") or (1,))


def conv_gemm(c_in: float, c_out: float, kernel: int | Sequence[int], groups: int = 1,
              rows: float = 0.0) -> tuple[float, float, float]:  # fmt: skip
    """(k, n, m) of the matrix product a conv computes per group: input channels per group x
    kernel taps, output channels per group, and its rows, the output pixels of the batch
    (``Profile.small_gemm``; 0 rows: not known)."""
    return c_in / groups * _taps(kernel), c_out / groups, rows


def conv_widths(c_in: float, c_out: float, groups: int = 1, depthwise: bool = False) -> tuple[float, float]:
    """The channels per group a conv reads and writes, as ``Profile.alignment`` judges them
    against the granule; a depthwise conv's channels alone (one lane each)."""
    return (c_in, 0.0) if depthwise else (c_in / groups, c_out / groups)


def channel_widths(layer: Layer) -> tuple[float, float]:
    """``conv_widths`` of a conv layer, a linear layer's features; (0, 0) for other layers."""
    attrs = layer.attrs
    if layer.kind in OpKind.CONVOLUTIONS:
        return conv_widths(attrs.get("in_channels") or 0, attrs.get("out_channels") or 0, attrs.get("groups") or 1,
                           layer.kind == OpKind.DEPTHWISE_CONV)  # fmt: skip
    if layer.kind == OpKind.LINEAR:
        return gemm_dims(layer)[:2]
    return 0.0, 0.0


def gemm_dims(layer: Layer) -> tuple[float, float, float]:
    """(k, n, m) of the matrix product a conv or linear layer computes per group: the reduction
    length (``conv_gemm``, or in_features), the outputs per group, and the rows (output pixels, or
    tokens, of the batch); (0, 0, 0) for other layers and for depthwise convs, whose class
    efficiency covers their fixed shape (``Profile.small_gemm``)."""
    attrs = layer.attrs
    if layer.kind in (OpKind.CONV, OpKind.GROUP_CONV, OpKind.CONV_TRANSPOSE):
        kernel = attrs.get("kernel_size") or (1,)
        out_channels = attrs["out_channels"]
        rows = layer.output_numel / out_channels if out_channels else 0.0
        return conv_gemm(attrs["in_channels"], out_channels, kernel, attrs.get("groups") or 1, rows)
    if layer.kind == OpKind.LINEAR:
        in_features = attrs.get("in_features") or (layer.input_shape[-1] if layer.input_shape else 0)
        out_features = attrs.get("out_features") or (layer.output_shape[-1] if layer.output_shape else 0)
        rows = layer.output_numel / out_features if out_features else 0.0
        return in_features, out_features, rows
    return 0.0, 0.0, 0.0


# Per-layer formulas, by the name the op table gives.


@register_formula("conv")
def _conv(layer: Layer) -> Work:
    attrs = layer.attrs
    per_pixel = conv_macs(attrs["in_channels"], 1, kernel_volume(layer), 1, attrs["groups"])
    macs = layer.output_numel * per_pixel
    return Work(flops=2 * macs, macs=macs)


@register_formula("conv_transpose")
def _conv_transpose(layer: Layer) -> Work:
    # Each input value is scattered to out_channels/groups x kernel outputs.
    per_input = conv_macs(layer.attrs["out_channels"], 1, kernel_volume(layer), 1, layer.attrs["groups"])
    macs = prod(layer.input_shape) * per_input
    return Work(flops=2 * macs, macs=macs)


@register_formula("linear")
def _linear(layer: Layer) -> Work:
    in_features = layer.attrs.get("in_features") or (layer.input_shape[-1] if layer.input_shape else 0)
    macs = layer.output_numel * in_features
    return Work(flops=2 * macs, macs=macs)


def attention_macs(query: Sequence[int], key: Sequence[int], batch_first: bool = True) -> int:
    """nn.MultiheadAttention: the q, k, v and output projections plus the two attention products.

    Rows are all dims but the last (the embedding). The sequence is the second-to-last dim with
    ``batch_first`` (B, L, E), the first without (L, B, E, torch's default), and the only one of
    an unbatched (L, E) input.
    """
    dim = query[-1]
    q_rows, k_rows = prod(query[:-1]), prod(key[:-1])
    axis = -2 if batch_first and len(query) > 2 else 0
    q_len, k_len = query[axis], key[axis]
    projections = (2 * q_rows + 2 * k_rows) * dim * dim
    return projections + 2 * (q_rows // max(q_len, 1)) * q_len * k_len * dim


def window_attention_macs(tokens: Sequence[int], window: Sequence[int]) -> int:
    """Swin's shifted-window attention on a B x H x W x C map (B x T x H x W x C for video): the
    map is padded to whole windows, and each window's tokens are one attention
    (``attention_macs``) of their own."""
    batch, *sides, dim = tokens
    padded = [ceil(size / w) * w for size, w in zip(sides, window)]
    per_window = prod(window)
    windows = batch * prod(padded) // per_window
    return attention_macs((windows, per_window, dim), (windows, per_window, dim))


def sdpa_macs(query: Sequence[int], key: Sequence[int], value: Sequence[int]) -> int:
    """``F.scaled_dot_product_attention``: the two products, Q K^T (L x S x E per head) and the
    weights times V (L x S x Ev). Key and value heads broadcast to the query's (grouped-query
    attention), so the query's leading dims count the heads."""
    rows = prod(query[:-1])
    return rows * key[-2] * query[-1] + rows * key[-2] * value[-1]


def einsum_macs(equation: str, operands: Sequence[Sequence[int]]) -> int | None:
    """Multiply-accumulates of ``torch.einsum``, contracting the operands left to right as torch
    does without a path optimiser: each pairwise product costs the product of the sizes of every
    index either side has. None when the equation cannot be read against the shapes."""
    equation = equation.replace(" ", "")
    inputs, _, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(operands) or len(terms) < 2:
        return 0 if len(terms) == len(operands) else None
    indices = [term.replace("...", "") for term in terms]  # each operand's named dims
    sizes: dict[str, int] = {}
    ellipsis = 1
    for term, letters, shape in zip(terms, indices, operands):
        if len(letters) > len(shape) or ("..." not in term and len(letters) != len(shape)):
            return None
        head, _, tail = term.partition("...")
        # "...": the dims between the head's letters and the tail's, broadcast like a batch.
        ellipsis = max(ellipsis, prod(shape[len(head): len(shape) - len(tail)]))
        named = [*shape[: len(head)], *shape[len(shape) - len(tail):]] if "..." in term else shape
        for letter, size in zip(letters, named):
            sizes[letter] = max(sizes.get(letter, 1), size)
    if not output and "->" not in equation:  # implicit output: the indices seen once, sorted
        seen = "".join(indices)
        output = "".join(sorted(c for c in set(seen) if seen.count(c) == 1))
    output = output.replace("...", "")
    macs, current = 0, set(indices[0])
    for i, letters in enumerate(indices[1:], start=1):
        other = set(letters)
        macs += ellipsis * prod(sizes[c] for c in current | other)
        current = (current | other) & set(output).union(*map(set, indices[i + 1:]))
    return macs


@register_formula("matmul")
def _matmul(layer: Layer) -> Work:
    operands = layer.attrs.get("operand_shapes") or []
    if layer.op == "scaled_dot_product_attention" and len(operands) >= 3:
        macs = sdpa_macs(*operands[:3])
        return Work(flops=2 * macs, macs=macs)
    if layer.op == "einsum" and "equation" in layer.attrs:
        macs = einsum_macs(layer.attrs["equation"], operands)
        if macs is not None:
            return Work(flops=2 * macs, macs=macs)
    if layer.op == "MultiheadAttention" and layer.input_shapes:
        query = layer.input_shapes[0]
        key = layer.input_shapes[1] if len(layer.input_shapes) > 1 else query
        macs = attention_macs(query, key, layer.attrs.get("batch_first", True))
        return Work(flops=2 * macs, macs=macs)
    window = layer.attrs.get("window_size")
    if window and len(layer.input_shape) == len(window) + 2:
        macs = window_attention_macs(layer.input_shape, window)
        return Work(flops=2 * macs, macs=macs)
    if len(layer.input_shapes) < 2:  # other attention modules, einsum: estimate from the first operand
        inner = layer.input_shape[-1] if layer.input_shape else 0
    else:
        inner = layer.input_shapes[0][-1]
    macs = layer.output_numel * inner
    return Work(flops=2 * macs, macs=macs)


@register_formula("activation")
def _activation(layer: Layer) -> Work:
    return Work(flops=ops.activation_flops(layer.op) * layer.output_numel)


@register_formula("norm")
def _norm(layer: Layer) -> Work:
    return Work(flops=ops.norm_flops(layer.op) * layer.output_numel)


@register_formula("per_output_element")
def _per_output_element(layer: Layer) -> Work:
    return Work(flops=layer.output_numel)


@register_formula("per_input_element")
def _per_input_element(layer: Layer) -> Work:
    return Work(flops=layer.input_numel)


def window_taps(kernel: int | Sequence[int], spatial_dims: int) -> int:
    """Taps of a pooling window: ``kernel_size=3`` of a 2-d pool is 3 x 3 (torch's int shorthand)."""
    return kernel**spatial_dims if isinstance(kernel, int) else _taps(kernel)


@register_formula("pool")
def _pool(layer: Layer) -> Work:
    """A windowed pool: one compare or add per tap of each output; an adaptive or global pool:
    one per input element."""
    if not ops.is_windowed_pool(layer):
        return Work(flops=layer.input_numel)
    dims = max(len(layer.output_shape) - 2, 1) if layer.output_shape else 2
    return Work(flops=layer.output_numel * window_taps(layer.attrs["kernel_size"], dims))


@register_formula("none")
def _data_movement(layer: Layer) -> Work:
    return Work()


# The formula of each op kind, as the op table names it.
FORMULAS: dict[str, Formula] = {kind: _BY_NAME[op.formula] for kind, op in ops.OPS.items()}


def layer_work(layer: Layer) -> Work:
    """The layer's work by its kind's formula; for a model library's function kept as one call,
    the multiply-accumulates torch's FLOP counter found inside it (``counted_macs``, trace stage)
    when they are more than the formula knows of."""
    work = FORMULAS[layer.kind](layer)
    counted = layer.attrs.get("counted_macs", 0)
    if counted > work.macs:
        return Work(flops=max(work.flops, 2 * counted), macs=counted)
    return work


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
    # output_bytes when written to a fresh buffer, 0 when written into its input (an in-place
    # op: Layer.attrs["in_place"]); see Kernel.fresh_output_bytes
    fresh_output_bytes: int = 0
    time_s: float = 0.0  # kernel time, on the kernel's head layer; 0 for fused, free and folded layers
    time_at_batch_s: float = 0.0

    @property
    def bytes(self) -> int:
        return self.input_bytes + self.weight_bytes + self.output_bytes

    @property
    def arithmetic_intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else float("inf")


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
    gemm_k: float = 0.0  # the head's per-group matrix product (gemm_dims), for Profile.small_gemm
    gemm_n: float = 0.0
    gemm_m: float = 0.0  # its rows at the graph's batch
    alignment: float = 1.0  # the share of its rate the head keeps at its channel widths (Profile.alignment)
    # the head conv's input when its stride is above 1, gathered before it computes
    # (Profile.strided_input_gbps)
    strided_input_bytes: int = 0
    # the head's outputs when it slides a window over one channel (a windowed pool, a depthwise
    # conv: ops.WINDOWED_CLASSES), each of which costs beyond its taps (Profile.window_output_ns)
    window_outputs: int = 0
    # its output when it goes to a fresh buffer, not into its input's memory (an in-place ReLU,
    # ``out += identity``): what a model's kernel writes to memory no recent kernel touched
    # (Profile.fresh_output_s)
    fresh_output_bytes: int = 0
    # every layer of it writes into its input: its output goes to the lines it just read
    # (Profile.output_bytes_moved)
    in_place: bool = False
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
    # Layers computed from parameters alone that the target folds into constants at conversion:
    # counted in flops and macs, run in no kernel (folds_parameter_work).
    folded: frozenset[str] = frozenset()
    # Why each layer that heads a kernel was not fused into the kernel before it (KernelPlan.reasons).
    unfused: dict[str, UnfusedReason] = field(default_factory=dict)

    def of(self, layer: Layer | str) -> LayerCost:
        return self.layers[layer if isinstance(layer, str) else layer.name]

    def kernel_of(self, layer: Layer | str) -> Kernel | None:
        return self.kernels.get(self.of(layer).kernel)

    def is_folded(self, layer: Layer | str) -> bool:
        """Whether the target folds the layer into a constant before it runs (``folded``): it
        never runs there, so no rule judges it."""
        return (layer if isinstance(layer, str) else layer.name) in self.folded

    def why_unfused(self, layer: Layer | str) -> UnfusedReason | None:
        """Why the layer runs as a kernel of its own; None when it is fused into another layer's
        kernel, free, or folded."""
        return self.unfused.get(layer if isinstance(layer, str) else layer.name)

    def overhead_of(self, heads: Iterable[str]) -> float:
        """Seconds of fixed cost (launch, dispatch) the kernels headed by these layers pay: each
        its op class's ``Profile.kernel_overhead_s``, as their estimated times include it."""
        return sum(self.profile.kernel_overhead_s(self.kernels[head].op_class) for head in heads)

    def time_of(self, layer: Layer | str) -> float:
        """Estimated time of the kernel that runs this layer (fused layers included)."""
        kernel = self.kernel_of(layer)
        return kernel.time_s if kernel else 0.0

    def latency_share(self, layer: Layer | str) -> float:
        return self.share(self.time_of(layer))

    def share(self, seconds: float) -> float:
        """``seconds`` as a fraction of the model's estimated latency (0 when it has none)."""
        return seconds / self.latency_s if self.latency_s else 0.0

    def flops_share(self, layer: Layer | str) -> float:
        return self.of(layer).flops / self.flops if self.flops else 0.0

    @property
    def ridge_point(self) -> float:
        return self.profile.ridge_point(self.precision)

    def rate_of(self, kernel: Kernel) -> float:
        """FLOP/s the kernel's class and matrix shape attain on the target (``rate``)."""
        return rate(self.profile, self.precision, kernel.op_class, (kernel.gemm_k, kernel.gemm_n, kernel.gemm_m),
                    kernel.alignment)  # fmt: skip

    def is_memory_bound(self, kernel: Kernel) -> bool:
        """Whether the roofline puts the kernel's batch-1 time on the memory slope: moving its
        bytes takes longer than its FLOPs."""
        return kernel.bytes / self.profile.bandwidth_for(kernel.bytes) > kernel.flops / self.rate_of(kernel)

    def estimate_time(
        self, flops: float, bytes_moved: float, op_class_name: str, gemm: tuple[float, ...] = (0, 0),
        alignment: float = 1.0, output_bytes: float = 0.0, weight_bytes: float = 0.0,
    ) -> float:
        """Roofline time of a hypothetical kernel, for rules that compare alternatives; ``gemm``:
        its per-group (k, n, m) when it is a conv or linear (``gemm_dims``); ``alignment``: the
        share of the rate it keeps at its channel widths (``Profile.alignment``); ``output_bytes``:
        the fresh output it writes, which a model's kernel pays for on top where the profile
        measured it (``Profile.fresh_output_s``), as the kernels it would replace do;
        ``weight_bytes``: its weights (of ``bytes_moved``), which a model's kernel reads cold where
        the profile measured it (``Profile.cold_weights_s``)."""
        return (kernel_time(self.profile, self.precision, flops, bytes_moved, op_class_name, gemm, alignment)
                + self.profile.fresh_output_s(output_bytes) + self.profile.cold_weights_s(weight_bytes))  # fmt: skip

    def estimate_conv(
        self,
        c_in: float,
        c_out: float,
        kernel: int | Sequence[int],
        in_hw: int,
        out_hw: int,
        groups: int = 1,
        batch: int = 1,
        aligned: bool = False,
    ) -> float:
        """Estimated time on the target of a conv that does not exist yet (the fix a rule
        proposes): ``conv_work`` at the target's precision, at its op class's efficiency and
        the share of it its channel widths keep (``Profile.alignment``; ``aligned``: as if they
        were on the granule, the rate the layer would run at without its misalignment)."""
        flops, bytes_moved = conv_work(c_in, c_out, kernel, in_hw, out_hw, groups, self.precision, batch)
        op_cls = ops.conv_class(kernel, groups, c_in if isinstance(c_in, int) else 0)
        gemm = (0, 0) if op_cls == "depthwise_conv" else conv_gemm(c_in, c_out, kernel, groups, batch * out_hw)
        widths = conv_widths(c_in, c_out, groups, op_cls == "depthwise_conv")
        alignment = 1.0 if aligned else self.profile.alignment(self.precision, op_cls, *widths)
        width = BYTES_PER_ELEMENT[self.precision]
        strided = batch * in_hw * c_in * width if out_hw < in_hw else 0
        outputs = batch * out_hw * c_out if op_cls in ops.WINDOWED_CLASSES else 0  # a depthwise conv's
        weights = c_in * c_out * _taps(kernel) / groups * width
        return (self.estimate_time(flops, bytes_moved, op_cls, gemm, alignment, batch * out_hw * c_out * width, weights)
                + self.profile.strided_input_s(op_cls, strided) + self.profile.window_output_s(op_cls, outputs))  # fmt: skip

    def estimate_linear(self, in_features: float, out_features: float, rows: int = 1, aligned: bool = False) -> float:
        """Estimated time on the target of a linear layer that does not exist yet: ``linear_work``
        at the target's precision, in the ``linear`` class (``aligned``: as ``estimate_conv``)."""
        flops, bytes_moved = linear_work(in_features, out_features, rows, self.precision)
        alignment = 1.0 if aligned else self.profile.alignment(self.precision, "linear", in_features, out_features)
        width = BYTES_PER_ELEMENT[self.precision]
        return self.estimate_time(flops, bytes_moved, "linear", (in_features, out_features, rows), alignment,
                                  rows * out_features * width, in_features * out_features * width)  # fmt: skip


def rate(profile: Profile, precision: str, op_cls: str, gemm: tuple[float, ...] = (0, 0), alignment: float = 1.0) -> float:
    """FLOP/s a kernel of this class (and per-group matrix shape) attains on the target;
    ``alignment``: the share its channel widths keep (``Profile.alignment``)."""
    return profile.peak_flops(precision) * profile.efficiency[op_cls] * profile.small_gemm.factor(*gemm) * alignment


def roofline(flops: float, flop_rate: float, bytes_moved: float, bandwidth: float, overhead_s: float = 0.0) -> float:
    """The cost model's time for one kernel: ``max(flops / flop_rate, bytes / bandwidth)`` plus
    its fixed cost. Every estimated time is this: a layer's kernel (``kernel_time``), a kernel at
    the throughput batch, a fix a rule proposes, and calibrate's fit of rates to timings."""
    compute = flops / flop_rate if flops else 0.0
    return max(compute, bytes_moved / bandwidth) + overhead_s


def kernel_time(
    profile: Profile, precision: str, flops: float, bytes_moved: float, op_cls: str, gemm: tuple[float, ...] = (0, 0),
    alignment: float = 1.0,
) -> float:
    """``roofline`` on the target: the op class's rate (``rate``), the bandwidth for this many
    bytes (the cache's when they fit in it), the class's fixed cost per kernel."""
    return roofline(flops, rate(profile, precision, op_cls, gemm, alignment), bytes_moved,
                    profile.bandwidth_for(bytes_moved), profile.kernel_overhead_s(op_cls))  # fmt: skip


def folds_parameter_work(profile: Profile) -> bool:
    """Whether the target folds layers computed from parameters alone into constants before it
    runs: an inference engine (TensorRT, an NPU toolchain, ncnn, TFLite) does at conversion, and
    an ONNX export already has (``torch.onnx.export``'s ``do_constant_folding``, on by default).
    A profile says it is such an engine by fusing layers into convs (``[fusion]``). Eager
    PyTorch fuses nothing and runs them on every call."""
    return any(profile.fusion.values())


class Unfused(str, Enum):
    """Why a layer runs as a kernel of its own rather than in the kernel of the layer before it."""

    PRODUCER = "producer"  # a conv or linear layer: it opens the kernel others fuse into
    NO_ROLE = "no_role"  # the op table gives it no part in conv fusion (a pool, a concat, a gate)
    TARGET = "target"  # the target lacks a fusion that would take it (profile [fusion])
    NO_PRODUCER = "no_producer"  # no conv or linear kernel reads into it
    SHARED_OUTPUT = "shared_output"  # the producer's output has other readers: it is written anyway
    SECOND_ADD = "second_add"  # the conv kernel before it already holds a residual add
    NORM_NOT_DIRECT = "norm_not_direct"  # a norm folds into a conv only directly after it
    PARAMETER_WORK = "parameter_work"  # work on weights runs apart from work on images


@dataclass(frozen=True)
class UnfusedReason:
    """Why a layer runs as its own kernel: a code, a sentence, and the layer the reason is about
    (what it reads for NO_PRODUCER, the producer whose output others read for SHARED_OUTPUT, the
    head of the kernel that holds the add for SECOND_ADD, that kernel's last layer for
    NORM_NOT_DIRECT, the kernel's head for PARAMETER_WORK; empty when none)."""

    code: Unfused
    text: str
    layer: str = ""


@dataclass
class KernelPlan:
    """Which layers run in which kernel under a ``[fusion]`` table: the grouping, no numbers, and
    why each layer that heads a kernel of its own was not fused (``reasons``)."""

    head: dict[str, str]  # layer -> head of the kernel that runs it (itself when not fused)
    members: dict[str, list[str]]  # kernel head -> its layers in execution order; free layers have none
    with_residual_add: set[str] = field(default_factory=set)  # heads that hold a residual add
    folded: list[str] = field(default_factory=list)  # parameter-only layers folded into constants
    # norms (and constant scales) fused as norms: folded into the conv's weights and bias, so the
    # kernel does none of their arithmetic
    into_weights: set[str] = field(default_factory=set)
    reasons: dict[str, UnfusedReason] = field(default_factory=dict)  # kernel head -> why not fused

    def kernel_of(self, layer: Layer | str) -> str:
        return self.head[layer if isinstance(layer, str) else layer.name]

    def runs_alone(self, layer: Layer | str) -> bool:
        """True when the layer is not fused into another layer's kernel."""
        name = layer if isinstance(layer, str) else layer.name
        return self.head[name] == name


def plan_kernels(graph: LayerGraph, fusion: Mapping[str, bool], fold_parameter_work: bool = False) -> KernelPlan:
    """Group layers into kernels: norms, activations and residual adds that ``fusion`` turns on
    join the kernel of the conv or linear layer they follow (see ``cnnlint.ops.fusion_role``),
    looking through pass-through layers between them (``nn.Identity``, dropout at inference:
    ``cnnlint.ops.is_passthrough``), which then belong to that kernel too. Layers computed from
    parameters alone run in no kernel with ``fold_parameter_work`` (``folds_parameter_work``), and
    otherwise never share one with layers that read the input."""
    plan = KernelPlan(head={}, members={})
    for layer in graph:
        plan.head[layer.name] = layer.name
        if layer.param_only and fold_parameter_work:
            plan.folded.append(layer.name)
            continue
        if ops.is_free(layer) and not layer.attrs.get("copies"):
            continue
        found = _fusion_host(graph, layer, plan, fusion)
        if isinstance(found, UnfusedReason):
            plan.members[layer.name] = [layer.name]
            plan.reasons[layer.name] = found
            continue
        host, passed, role = found
        if role == ops.NORM:
            plan.into_weights.add(layer.name)
        plan.members[host].append(layer.name)
        plan.head[layer.name] = host
        for name in passed:
            plan.head[name] = host
        if ops.fusion_role(layer) == ops.RESIDUAL_ADD:
            plan.with_residual_add.add(host)
    missing = [role for role in ops.FUSED_ROLES if not fusion.get(role, False)]
    if missing and any(r.code in _WIRING for r in plan.reasons.values()):
        # What the wiring refuses, no engine fuses; what every fusion on would fuse, the target
        # refuses. The reason is the wiring's, as with every fusion on.
        full = plan_kernels(graph, dict.fromkeys(ops.FUSED_ROLES, True), fold_parameter_work)
        lacks = f"the target does not fuse {_roles_text(missing)} into a conv (profile [fusion])"
        for name, reason in plan.reasons.items():
            if reason.code not in _WIRING:
                continue
            if not full.runs_alone(name):
                plan.reasons[name] = UnfusedReason(Unfused.TARGET, lacks, full.kernel_of(name))
            else:
                plan.reasons[name] = full.reasons[name]
    return plan


# Reasons that depend on the wiring and the fusions on, and so may differ with every fusion on.
_WIRING = frozenset(set(Unfused) - {Unfused.PRODUCER, Unfused.NO_ROLE})


def _roles_text(roles: Sequence[str]) -> str:
    names = [role.replace("_", " ") + "s" for role in roles]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def fusion_source(graph: LayerGraph, producer: Layer) -> tuple[Layer, list[str]]:
    """The layer that computed ``producer``'s tensor, looking back through pass-through layers
    that are its only reader (``cnnlint.ops.is_passthrough``), and the names of those layers."""
    passed: list[str] = []
    while ops.is_passthrough(producer):
        sources = graph.producers(producer)
        if len(sources) != 1 or len(graph.consumers(sources[0])) != 1:
            break
        passed.append(producer.name)
        producer = sources[0]
    return producer, passed


def _fusion_host(
    graph: LayerGraph, layer: Layer, plan: KernelPlan, fusion: Mapping[str, bool]
) -> tuple[str, list[str], str] | UnfusedReason:
    """The kernel this layer fuses into, the pass-through layers between and the role it fuses
    in, or why it runs as its own kernel."""
    role = ops.fusion_role(layer)
    if constant_affine(graph, layer):
        # Folded into the conv's weights and bias right after it, as a norm; later in the chain,
        # an epilogue like an activation (or what the op table says it is, a bias add). Refused
        # in every role, it is refused for the last role's reason.
        found: UnfusedReason = _no_role(layer)
        for as_role in dict.fromkeys((ops.NORM, ops.ACTIVATION, role)):
            tried = _fusion_host_as(graph, layer, plan, fusion, as_role)
            if not isinstance(tried, UnfusedReason):
                return (*tried, as_role)
            if tried.code != Unfused.NO_ROLE:
                found = tried
        return found
    tried = _fusion_host_as(graph, layer, plan, fusion, role)
    return tried if isinstance(tried, UnfusedReason) else (*tried, role)


def _no_role(layer: Layer) -> UnfusedReason:
    if ops.fusion_role(layer) == ops.PRODUCER:
        return UnfusedReason(Unfused.PRODUCER, f"`{layer.op}` opens the kernel that later layers fuse into")
    return UnfusedReason(Unfused.NO_ROLE, f"no engine fuses `{layer.op}` into a conv kernel (op table)")


def constant_affine(graph: LayerGraph, layer: Layer) -> bool:
    """``x * c``, ``x + c``, ``x - c`` or ``x / c`` where ``c`` is a number or a per-channel tensor
    computed from parameters alone: torchvision's FrozenBatchNorm2d (``x * scale + bias``), a
    layer scale, NF-ResNet's alpha and beta. A deployment engine folds it into the conv before
    it, as it folds BatchNorm (TensorRT's scale fusion)."""
    if layer.kind != OpKind.ELEMENTWISE or layer.param_only:
        return False
    if not (ops.is_multiplication(layer) or ops.is_addition(layer) or ops.is_division(layer)
            or ops.normalise(layer.op) in ("sub", "isub")):  # fmt: skip
        return False
    images = [p for p in graph.producers(layer) if not p.param_only]
    if len(images) != 1 or len(images[0].output_shape) < 2:
        return False
    image = images[0].output_shape
    sizes = layer.attrs.get("operand_sizes", [])
    others = list(sizes)
    if prod(image) in others:
        others.remove(prod(image))
    # the rest: numbers (no size), or one value per channel, or one in all
    return len(others) == len(sizes) - 1 and all(size in (1, image[1]) for size in others)


def _fusion_host_as(
    graph: LayerGraph, layer: Layer, plan: KernelPlan, fusion: Mapping[str, bool], role: str | None
) -> tuple[str, list[str]] | UnfusedReason:
    """The kernel this layer fuses into in ``role``, or why it does not: the reason the first
    conv or linear kernel it reads refused it, or that it reads none."""
    if role not in ops.FUSED_ROLES:
        return _no_role(layer)
    if not fusion.get(role, False):
        return UnfusedReason(Unfused.TARGET, f"the target does not fuse {_roles_text([role])} into a conv (profile [fusion])")
    refused: UnfusedReason | None = None
    sources = []
    for direct in graph.producers(layer):
        producer, passed = fusion_source(graph, direct)
        sources.append(producer)
        host = plan.head[producer.name]
        members = plan.members.get(host)
        if members is None or not _can_host(graph, graph[host], layer, role):
            continue
        reason = _refusal(graph, layer, plan, role, direct, producer, host, members)
        if reason is None:
            return host, passed
        refused = refused or reason
    if refused is not None:
        return refused
    tensors = [p for p in sources if p.kind != OpKind.INPUT] or sources
    if not tensors:
        return UnfusedReason(Unfused.NO_PRODUCER, "it has no producer to fuse into")
    return UnfusedReason(Unfused.NO_PRODUCER, f"it reads `{tensors[0].op}`, not a conv or linear kernel", tensors[0].name)


def _can_host(graph: LayerGraph, head: Layer, layer: Layer, role: str) -> bool:
    """Whether the kernel ``head`` opens can take ``layer`` in ``role``: a conv or linear kernel
    takes every fused role; an element-wise kernel (an activation, or a constant scale or shift,
    that no conv took) takes an activation or a constant scale after it, as a deployment engine
    fuses a chain of element-wise ops into one kernel (NF-ResNet's pre-activation
    ``relu(x) * beta``; TensorRT's Layer Fusion Catalog: "multiple adjacent PointWise layers can
    be fused into a single PointWise layer")."""
    if ops.fusion_role(head) == ops.PRODUCER:
        return True
    if role != ops.ACTIVATION or not _pointwise(graph, layer):
        return False
    return _pointwise(graph, head)


def _pointwise(graph: LayerGraph, layer: Layer) -> bool:
    """A unary element-wise layer: an activation, or an op with a constant operand."""
    return ops.fusion_role(layer) == ops.ACTIVATION or constant_affine(graph, layer)


def _refusal(
    graph: LayerGraph, layer: Layer, plan: KernelPlan, role: str, direct: Layer, producer: Layer, host: str,
    members: list[str],
) -> UnfusedReason | None:
    """Why the kernel headed by ``host``, which computed ``producer`` (read through ``direct``),
    cannot take ``layer`` in ``role``; None when it can."""
    if graph[host].param_only != layer.param_only:
        return UnfusedReason(Unfused.PARAMETER_WORK, "work on weights runs apart from work on images", host)
    # Only the chain's last layer may feed us, and only us: otherwise its output must be
    # written to memory anyway.
    readers = len(graph.consumers(producer))
    if members[-1] != producer.name or readers != 1:
        others = max(readers - 1, 0)
        return UnfusedReason(
            Unfused.SHARED_OUTPUT,
            f"the output of {producer.label} is also read by {others} other layer{'s' if others != 1 else ''}",
            producer.name,
        )
    if role == ops.RESIDUAL_ADD and host in plan.with_residual_add:
        return UnfusedReason(
            Unfused.SECOND_ADD, f"the conv kernel before it ({graph[host].label}) already holds a residual add", host
        )
    if role == ops.NORM and any(
        graph[m].kind != graph[host].kind and not constant_affine(graph, graph[m]) for m in members[1:]
    ):
        # A norm folds into the conv's weights only directly after it (or another norm).
        return UnfusedReason(
            Unfused.NORM_NOT_DIRECT,
            f"a norm folds into a conv only directly after it; this one follows `{graph[members[-1]].op}`",
            members[-1],
        )
    if len(graph.consumers(direct)) != 1:
        others = len(graph.consumers(direct)) - 1
        return UnfusedReason(
            Unfused.SHARED_OUTPUT,
            f"the output of {direct.label} is also read by {others} other layer{'s' if others != 1 else ''}",
            producer.name,
        )
    return None


def compute_cost(graph: LayerGraph, profile: Profile, precision: str | None = None) -> ModelCost:
    precision = precision or profile.default_precision
    if precision not in profile.precisions:
        from cnnlint.errors import ProfileError

        raise ProfileError(
            f"target {profile.name} does not run {precision}; it runs {', '.join(profile.precisions)}."
        )
    width = BYTES_PER_ELEMENT[precision]
    plan = plan_kernels(graph, profile.fusion, folds_parameter_work(profile))
    layers: dict[str, LayerCost] = {}
    for layer in graph:
        work = layer_work(layer)
        constant = _read_as_weights(graph, layer)
        layers[layer.name] = LayerCost(
            flops=work.flops, macs=work.macs, params=layer.params,
            input_bytes=max(layer.input_numel - constant, 0) * width,
            weight_bytes=(layer.params + constant) * width, output_bytes=layer.output_numel * width,
            kernel=plan.head[layer.name], op_class=ops.op_class(layer),
            fresh_output_bytes=0 if layer.attrs.get("in_place") else layer.output_numel * width,
        )  # fmt: skip

    kernels: dict[str, Kernel] = {}
    for head_name, members in plan.members.items():
        head = layers[head_name]
        gemm_k, gemm_n, gemm_m = gemm_dims(graph[head_name])
        kernel = Kernel(
            head=head_name, members=list(members),
            flops=sum(layers[m].flops for m in members if m not in plan.into_weights),
            gemm_k=gemm_k, gemm_n=gemm_n, gemm_m=gemm_m,
            alignment=profile.alignment(precision, head.op_class, *channel_widths(graph[head_name])),
            strided_input_bytes=head.input_bytes if _strided_conv(graph[head_name]) else 0,
            window_outputs=_window_outputs(graph[head_name], head),
            input_bytes=head.input_bytes, weight_bytes=head.weight_bytes,
            output_bytes=layers[members[-1]].output_bytes, op_class=head.op_class,
            in_place=all(graph[m].attrs.get("in_place") for m in members),
            has_residual_add=head_name in plan.with_residual_add,
        )  # fmt: skip
        # a kernel whose first layer writes a new tensor writes it fresh, whatever follows in place
        kernel.fresh_output_bytes = 0 if kernel.in_place else layers[members[-1]].output_bytes
        for member in members[1:]:
            # The chain's intermediate never reaches memory; other operands are read.
            producers = graph.producers(member)
            chain_input = next((p.name for p in producers if plan.head[p.name] == head_name), "")
            extra = [p for p in producers if p.name != chain_input]
            if member in plan.into_weights:  # its operands are in the conv's weights now
                extra = [p for p in extra if not p.param_only]
            kernel.input_bytes += sum(p.output_numel for p in extra if not p.param_only) * width
            kernel.weight_bytes += sum(p.output_numel for p in extra if p.param_only) * width
        kernels[head_name] = kernel

    batch = profile.throughput_batch
    peak = profile.peak_flops(precision)
    eager = not folds_parameter_work(profile)
    for kernel in kernels.values():
        inner = graph[kernel.head].attrs.get("inner_kernels")
        if eager and inner and kernel.members == [kernel.head]:
            _price_inner_kernels(kernel, inner, profile, precision, batch)
        else:
            kernel.time_s, kernel.time_at_batch_s = _kernel_times(
                profile, precision, batch, kernel.op_class, kernel.flops, kernel.input_bytes, kernel.weight_bytes,
                profile.output_bytes_moved(kernel.output_bytes, kernel.in_place), (kernel.gemm_k, kernel.gemm_n, kernel.gemm_m),
                kernel.strided_input_bytes, kernel.alignment, kernel.fresh_output_bytes, kernel.window_outputs,
            )  # fmt: skip
        if graph[kernel.head].param_only:  # once per call, for the whole batch
            kernel.time_at_batch_s = kernel.time_s
        head = layers[kernel.head]
        head.time_s, head.time_at_batch_s = kernel.time_s, kernel.time_at_batch_s

    latency = sum(k.time_s for k in kernels.values())
    batch_time = sum(k.time_at_batch_s for k in kernels.values())
    flops = sum(c.flops for c in layers.values())
    run_flops = flops - sum(layers[name].flops for name in plan.folded)
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
        utilization=(run_flops / latency / peak) if latency else 0.0,
        # Opaque submodules whose products torch's counter could not see either (none inside).
        opaque=[layer.label for layer in graph.layers(OpKind.OPAQUE) if not layer.attrs.get("counted_macs")],
        folded=frozenset(plan.folded),
        unfused=dict(plan.reasons),
    )


def _price_inner_kernels(kernel: Kernel, inner: Sequence[tuple], profile: Profile, precision: str, batch: int) -> None:
    """A call counted whole (a library function under torch.fx.wrap, a torch layer without a
    formula) on an eager target: the kernels eager torch launches for it (the trace stage's
    ``inner_kernels``: each aten op's class, FLOPs, elements read and written, matrix product),
    each priced as a kernel of its class, their bytes the call's memory traffic. An engine that
    fuses (TensorRT's attention fusion) prices the call as one kernel, as before."""
    width = BYTES_PER_ELEMENT[precision]
    kernel.time_s = kernel.time_at_batch_s = 0.0
    kernel.input_bytes = kernel.weight_bytes = kernel.output_bytes = kernel.fresh_output_bytes = 0
    for op_class, flops, reads, weights, writes, k, n, m in inner:
        kernel.input_bytes += reads * width
        kernel.weight_bytes += weights * width
        kernel.output_bytes += writes * width
        kernel.fresh_output_bytes += writes * width
        one, at_batch = _kernel_times(profile, precision, batch, op_class, flops, reads * width, weights * width,
                                      writes * width, (k, n, m), fresh_output_bytes=writes * width)  # fmt: skip
        kernel.time_s += one
        kernel.time_at_batch_s += at_batch


def _kernel_times(
    profile: Profile, precision: str, batch: int, op_class: str, flops: float, input_bytes: float,
    weight_bytes: float, output_bytes: float, gemm: tuple[float, float, float], strided_input_bytes: float = 0,
    alignment: float = 1.0, fresh_output_bytes: float = 0, window_outputs: float = 0,
) -> tuple[float, float]:
    """A kernel's time at the graph's batch, and at ``batch`` times it: the work, the activations
    and the product's rows scale with the batch; the weights are read once. A strided conv's
    input gather (``strided_input_bytes``, ``Profile.strided_input_s``), the writes of a fresh
    output (``fresh_output_bytes``, ``Profile.fresh_output_s``), the work per output of a
    windowed pool or depthwise conv (``window_outputs``, ``Profile.window_output_s``) and the
    weights a model's forward evicted since the last call (``Profile.cold_weights_s``) come on top."""
    k, n, m = gemm
    gather = _beyond_roofline_s(profile, op_class, strided_input_bytes, fresh_output_bytes, window_outputs)
    cold = profile.cold_weights_s(weight_bytes)  # once per call, as the weights
    one = kernel_time(profile, precision, flops, input_bytes + weight_bytes + output_bytes, op_class, gemm,
                      alignment) + gather + cold  # fmt: skip
    at_batch = kernel_time(profile, precision, batch * flops, batch * (input_bytes + output_bytes) + weight_bytes,
                           op_class, (k, n, batch * m), alignment) + batch * gather + cold  # fmt: skip
    return one, at_batch


def _beyond_roofline_s(profile: Profile, op_class: str, strided_input_bytes: float, fresh_output_bytes: float,
                       window_outputs: float) -> float:  # fmt: skip
    """What a kernel pays on top of its roofline, where the profile measured it: a strided conv's
    gather, a fresh output's writes, a windowed op's work per output."""
    return (profile.strided_input_s(op_class, strided_input_bytes) + profile.fresh_output_s(fresh_output_bytes)
            + profile.window_output_s(op_class, window_outputs))  # fmt: skip


def alone_beyond_roofline_s(profile: Profile, layer: Layer, own: LayerCost) -> float:
    """What ``layer`` pays on top of its roofline on ``profile`` when it runs as a kernel of its
    own (``own``: its costs, from ``compute_cost``), as the cost stage adds it to a kernel."""
    return (_beyond_roofline_s(profile, own.op_class, own.input_bytes if _strided_conv(layer) else 0,
                               own.fresh_output_bytes, _window_outputs(layer, own))
            + profile.cold_weights_s(own.weight_bytes))  # fmt: skip


def _window_outputs(layer: Layer, own: LayerCost) -> int:
    """The outputs of a layer whose class slides a window over one channel (a windowed pool, a
    depthwise conv: ``ops.WINDOWED_CLASSES``), each of which costs beyond its taps; 0 for others."""
    return layer.output_numel if own.op_class in ops.WINDOWED_CLASSES else 0


def _strided_conv(layer: Layer) -> bool:
    """A convolution (not a transposed one) with a stride above 1 in some dimension."""
    if layer.kind not in OpKind.CONVOLUTIONS or layer.kind == OpKind.CONV_TRANSPOSE:
        return False
    stride = layer.attrs.get("stride") or (1,)
    return any(s > 1 for s in (stride if isinstance(stride, (list, tuple)) else (stride,)))


def _read_as_weights(graph: LayerGraph, layer: Layer) -> int:
    """Elements a layer that reads the input takes from layers computed from parameters alone
    (a standardised weight): weights, read once per batch; 0 for a parameter-only layer."""
    if layer.param_only:
        return 0
    return sum(p.output_numel for p in graph.producers(layer) if p.param_only)
