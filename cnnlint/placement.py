"""Where each layer runs on an accelerator target: the one decision of what the accelerator takes.

A layer leaves the accelerator for the profile's ``fallback_device`` when the profile lists its op
kind in ``[unsupported_ops]``, when the vendor's operator list (``[supported_ops]``) does not name
its op, or when it breaks a parameter limit the vendor documents (``[limits.KEY]``) whose effect
is a fallback (a limit given as performance guidance, ``effect = "slow"``, keeps it there).
:func:`judge` makes that decision; rule CL304 reports what it finds, and :func:`place` turns it
into a placement: each layer's device, the runs of layers on one device in the order they run,
the partitions (runs on the accelerator: the subgraphs its toolchain compiles) and the estimated
cost of the switches between them.

The target's toolchain decides how a layer it cannot take splits the model (``[placement] mode``):
per op (TensorRT's GPU fallback, Vela, the NPU toolchains), only that layer moves; on the Edge TPU
the compiler maps one subgraph, so the first layer it cannot take and every layer after it run on
the CPU.

A switch costs the profile's ``switch_overhead_s`` (an estimate unless the profile cites one),
and every tensor that changes device is copied at ``transfer_bytes_per_s``: read and written
once, ``2 x bytes / bandwidth`` (:func:`copy_s`). A lone layer on the fallback device between two
accelerator layers so costs what CL304's round trip says. What is counted: every layer but the
model's inputs and outputs, pass-throughs an engine drops (``nn.Identity``, dropout) and layers
the target folds into constants (``ModelCost.folded``); a tensor crosses once per device that
reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from math import ceil, prod

from cnnlint.core import BYTES_PER_ELEMENT, Layer, LayerGraph, OpKind
from cnnlint.cost import ModelCost
from cnnlint.ops import is_passthrough, op_list_name
from cnnlint.profile import FALLBACK, FIRST_UNSUPPORTED_TAIL, TENSOR, Limit, Profile
from cnnlint.results import Placement, PlacementRun

# Why the accelerator does not take a layer's op: the profile lists its kind as unsupported, or
# the vendor's operator list does not name it.
UNSUPPORTED, UNLISTED = "unsupported", "unlisted"


@dataclass(frozen=True)
class OpVerdict:
    """A layer whose op the accelerator does not take: why, and the name the list knows it by."""

    status: str  # UNSUPPORTED or UNLISTED
    name: str = ""  # op_list_name, for UNLISTED


@dataclass(frozen=True)
class LimitBreak:
    """A layer outside a documented parameter limit: the ``[limits.KEY]`` table, the limit's
    name and the limit, and what the layer has ("stride 4x4")."""

    layer: Layer
    key: str
    name: str
    limit: Limit
    found: str


@dataclass
class Judgement:
    """What the accelerator does not take, layer by layer (folded layers are never judged)."""

    ops: dict[str, OpVerdict] = field(default_factory=dict)  # layer name -> why its op is out
    limits: list[LimitBreak] = field(default_factory=list)  # in the order the layers run
    folded: set[str] = field(default_factory=set)  # constants after conversion: never run there

    def off_accelerator(self) -> set[str]:
        """The layers that run on the fallback device: their op is out, or they break a limit
        whose effect is a fallback."""
        return set(self.ops) | {b.layer.name for b in self.limits if b.limit.effect == FALLBACK}


def op_verdict(layer: Layer, profile: Profile) -> OpVerdict | None:
    """Why the accelerator does not take the layer's op, or None when it does (a layer no list
    names, a pass-through or an opaque submodule, is taken)."""
    if not profile.supports(layer.kind):
        return OpVerdict(UNSUPPORTED)
    op_list = profile.supported_ops
    if op_list is not None and (name := op_list_name(layer)) and not op_list.lists(layer.kind, name):
        return OpVerdict(UNLISTED, name)
    return None


def judge(graph: LayerGraph, cost: ModelCost, profile: Profile) -> Judgement:
    """Every layer the accelerator does not take, and every documented limit a layer it does take
    by its op breaks."""
    judgement = Judgement()
    for layer in graph:
        if cost.is_folded(layer):
            judgement.folded.add(layer.name)
            continue
        verdict = op_verdict(layer, profile)
        if verdict is not None:
            judgement.ops[layer.name] = verdict
    judgement.limits = list(_limit_breaks(graph, cost, profile, judgement.ops))
    return judgement


# ---------------------------------------------------------------------------- placement
def copy_s(profile: Profile, num_bytes: float) -> float:
    """Seconds to move a tensor of ``num_bytes`` to the other device: read where one device wrote
    it and written where the other reads it, at ``transfer_bytes_per_s``."""
    return 2 * num_bytes / profile.transfer_bytes_per_s


def place(graph: LayerGraph, cost: ModelCost, profile: Profile,
          judgement: Judgement | None = None) -> Placement | None:  # fmt: skip
    """Each layer's device on an accelerator target, its runs, partitions and transfers; None on
    a target that runs every layer itself (``Profile.places_layers``)."""
    if not profile.places_layers:
        return None
    judgement = judgement or judge(graph, cost, profile)
    accelerator, fallback = profile.accelerator, profile.fallback_device
    # layer -> on the accelerator, for every layer but inputs, outputs and folded ones
    on: dict[str, bool] = {}
    placed: list[Layer] = []  # the layers counted
    off = judgement.off_accelerator()
    tail = profile.placement_mode == FIRST_UNSUPPORTED_TAIL
    cut = False
    for layer in graph:
        if layer.kind in (OpKind.INPUT, OpKind.OUTPUT) or cost.is_folded(layer):
            continue
        if is_passthrough(layer):  # dropped by the engine: wherever its input is
            producers = [on[p.name] for p in graph.producers(layer) if p.name in on]
            on[layer.name] = producers[0] if producers else not cut
            continue
        cut = cut or (tail and layer.name in off)
        on[layer.name] = not (cut or layer.name in off)
        placed.append(layer)

    runs: list[PlacementRun] = []
    for layer in placed:
        here = on[layer.name]
        if runs and runs[-1].on_accelerator == here:
            runs[-1].layers += 1
            runs[-1].last = layer.label
        else:
            runs.append(PlacementRun(device=accelerator if here else fallback, on_accelerator=here,
                                     layers=1, first=layer.label, last=layer.label))  # fmt: skip

    # A tensor crosses once to each other device that reads it.
    crossing = 0
    for name, here in on.items():
        if any(on[c.name] != here for c in graph.consumers(name) if c.name in on):
            crossing += cost.of(name).output_bytes
    switches = max(len(runs) - 1, 0)
    transfer_s = copy_s(profile, crossing) + switches * profile.switch_overhead_s if switches else 0.0
    on_accelerator = sum(run.layers for run in runs if run.on_accelerator)
    moved = [layer for layer in placed if not on[layer.name]]
    return Placement(
        accelerator=accelerator, fallback_device=fallback, mode=profile.placement_mode,
        layers=len(placed), on_accelerator=on_accelerator,
        partitions=sum(1 for run in runs if run.on_accelerator), switches=switches,
        transfer_bytes=crossing, transfer_ms=transfer_s * 1e3,
        fallback_ms=_fallback_extra_s(cost, profile, moved) * 1e3 if moved and
        profile.placement and profile.placement.fallback_profile else None,
        runs=runs, fallback_layers=[layer.label for layer in moved],
    )  # fmt: skip


def _fallback_extra_s(cost: ModelCost, profile: Profile, moved: list[Layer]) -> float:
    """What the layers on the fallback device take there, over what the accelerator's estimate
    gave them. Each runs there as a kernel of its own (cut out of the accelerator's fused
    kernels), timed on ``[placement] fallback_profile`` at the same precision where it runs it;
    on the accelerator it had its own kernel's time, or none when fused into another."""
    from cnnlint.cost import alone_beyond_roofline_s, kernel_time
    from cnnlint.profile import load_profile

    assert profile.placement is not None and profile.placement.fallback_profile is not None
    there = load_profile(profile.placement.fallback_profile)
    precision = cost.precision if cost.precision in there.precisions else there.default_precision
    extra = 0.0
    for layer in moved:
        own = cost.of(layer)
        # the bytes its roofline moves there, as the cost stage moves them (an in-place layer's output
        # on a profile that measured the share)
        written = there.output_bytes_moved(own.output_bytes, bool(layer.attrs.get("in_place")))
        moved = own.input_bytes + own.weight_bytes + written
        extra += (kernel_time(there, precision, own.flops, moved, own.op_class)
                  + alone_beyond_roofline_s(there, layer, own) - own.time_s)  # fmt: skip
    return max(extra, 0.0)


def transfer_at_batch_s(placement: Placement, profile: Profile, batch: int) -> float:
    """The placement's transfers for ``batch`` inputs: the tensors scale with the batch, the
    switches do not."""
    if not placement.switches:
        return 0.0
    return batch * copy_s(profile, placement.transfer_bytes) + placement.switches * profile.switch_overhead_s


# ---------------------------------------------------------------------------- documented limits
# A profile's [limits.KEY] tables (cnnlint.profile.LIMITS): the kernel, stride, padding, dilation,
# depth multiplier, resize factor, rank and batch ranges the vendor documents per op. A layer
# outside them is an op the toolchain does not run with those parameters.
_RESIZES_BY_PIXELS = frozenset({"pixelshuffle", "pixelunshuffle"})  # move pixels into channels


def _limit_breaks(graph: LayerGraph, cost: ModelCost, profile: Profile,
                  out: dict[str, OpVerdict]) -> Iterator[LimitBreak]:  # fmt: skip
    """Each documented limit each layer breaks, for the layers whose op the accelerator takes
    (a layer it does not take is out whatever its parameters)."""
    if not profile.limits:
        return
    bytes_per_element = BYTES_PER_ELEMENT.get(cost.precision, 4)
    tensor = profile.limits.get(TENSOR, {})
    # Shapes at the model's edges, by the layer that reads the input or writes the output.
    io_shapes: dict[str, list[tuple[int, ...]]] = {}
    for layer in graph:
        if layer.kind == OpKind.INPUT:
            for consumer in graph.consumers(layer):
                io_shapes.setdefault(consumer.name, []).extend(layer.output_shapes)
        elif layer.kind == OpKind.OUTPUT:
            for producer in graph.producers(layer):
                io_shapes.setdefault(producer.name, []).extend(producer.output_shapes)
    for layer in graph:
        if cost.is_folded(layer) or not op_list_name(layer) or layer.name in out:
            continue
        for key, name, limit in _layer_limits(profile, layer):
            if layer.kind == OpKind.POOL:
                found = _pool_break(layer, name, limit.value)
            elif layer.kind == OpKind.UPSAMPLE:
                found = _resize_break(layer, name, limit.value)
            else:
                found = _conv_break(layer, name, limit.value)
            if found:
                yield LimitBreak(layer, key, name, limit, found)
        for name, limit in tensor.items():
            found = _tensor_break(layer, name, limit.value, io_shapes.get(layer.name, []),  # type: ignore[arg-type]
                                  bytes_per_element)  # fmt: skip
            if found:
                yield LimitBreak(layer, TENSOR, name, limit, found)


def _layer_limits(profile: Profile, layer: Layer) -> list[tuple[str, str, Limit]]:
    """(table key, limit name, limit) for each limit the profile states for this layer."""
    if layer.kind in OpKind.CONVOLUTIONS or layer.kind in (OpKind.POOL, OpKind.UPSAMPLE):
        name = op_list_name(layer)
        by_kind = profile.limits.get(layer.kind, {})
        by_name = profile.limits.get(f"{layer.kind}.{name}", {}) if name else {}
        found = [(layer.kind, n, lim) for n, lim in by_kind.items() if n not in by_name]
        found += [(f"{layer.kind}.{name}", n, lim) for n, lim in by_name.items()]
        return found
    return []


def _pair(value: object, dims: int) -> tuple[int, ...] | None:
    """A per-dimension attribute as a tuple (``3`` -> ``(3, 3)``); None when not recorded."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * dims
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, int) for v in value):
        return tuple(value)
    return None


def _x(values: tuple[int, ...] | tuple[float, ...]) -> str:
    return "x".join(f"{v:g}" for v in values)


def _conv_params(layer: Layer) -> dict[str, tuple[int, ...] | None]:
    """Kernel, stride, padding (per side, 'same' resolved) and dilation of a conv, as far as the
    graph stage recorded them (a functional ``F.conv2d`` records its kernel and groups only)."""
    kernel = _pair(layer.attrs.get("kernel_size"), 2)
    dims = len(kernel) if kernel else 2
    dilation = _pair(layer.attrs.get("dilation"), dims)
    padding = layer.attrs.get("padding")
    if padding == "valid":
        padding = (0,) * dims
    elif padding == "same" and kernel:
        padding = tuple(ceil((d * (k - 1)) / 2) for k, d in zip(kernel, dilation or (1,) * dims))
    return {"kernel": kernel, "stride": _pair(layer.attrs.get("stride"), dims),
            "padding": _pair(padding, dims), "dilation": dilation}  # fmt: skip


def _pool_window(layer: Layer) -> tuple[int, ...] | None:
    """A pool's window: its kernel, or an adaptive pool's input over its output size."""
    if not layer.attrs.get("adaptive"):
        return _pair(layer.attrs.get("kernel_size"), 2)
    if len(layer.input_shape) < 3 or len(layer.input_shape) != len(layer.output_shape):
        return None
    return tuple(ceil(i / o) for i, o in zip(layer.input_shape[2:], layer.output_shape[2:]) if o)


def _resize_factors(layer: Layer) -> tuple[float, ...] | None:
    """A resize's output over input size per spatial dimension; None for a pixel (un)shuffle, a
    shape it cannot tell, or a map of one pixel (a broadcast, which the vendors allow)."""
    if op_list_name(layer) in _RESIZES_BY_PIXELS:
        return None
    inp, out = layer.input_shape, layer.output_shape
    if len(inp) < 3 or len(inp) != len(out) or not all(inp[2:]):
        return None
    if all(d == 1 for d in inp[2:]):
        return None
    return tuple(o / i for i, o in zip(inp[2:], out[2:]))


def _prime_factors(n: int) -> set[int]:
    factors, p = set(), 2
    while n > 1 and p * p <= n:
        while n % p == 0:
            factors.add(p)
            n //= p
        p += 1
    return factors | ({n} if n > 1 else set())


def _over(values: tuple[int, ...] | None, limit: float) -> bool:
    return values is not None and any(v > limit for v in values)


def _conv_break(layer: Layer, name: str, value: object) -> str | None:
    """What the conv has that breaks limit ``name`` (e.g. "kernel 35x35"), else None."""
    params = _conv_params(layer)
    kernel, stride, dilation = params["kernel"], params["stride"], params["dilation"]
    simple = {"max_kernel": "kernel", "max_stride": "stride", "max_padding": "padding",
              "max_dilation": "dilation"}  # fmt: skip
    if name in simple:
        found = params[simple[name]]
        return f"{simple[name]} {_x(found)}" if _over(found, value) else None  # type: ignore[arg-type]
    if name == "strides" and stride and any(s not in value for s in stride):  # type: ignore[operator]
        return f"stride {_x(stride)}"
    if name == "stride_factors" and stride:
        odd = set().union(*(_prime_factors(s) for s in stride)) - set(value)  # type: ignore[arg-type]
        return f"stride {_x(stride)} (factor {', '.join(map(str, sorted(odd)))})" if odd else None
    if name in ("max_dilated_kernel_height", "max_dilated_kernel_area") and kernel:
        dilated = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation or (1,) * len(kernel)))
        if name == "max_dilated_kernel_height" and dilated[0] > value:  # type: ignore[operator]
            return f"dilated kernel height {dilated[0]} (kernel {_x(kernel)})"
        if name == "max_dilated_kernel_area" and prod(dilated) > value:  # type: ignore[operator]
            return f"dilated kernel {_x(dilated)} = {prod(dilated)}"
        return None
    in_ch, out_ch = layer.attrs.get("in_channels", 0), layer.attrs.get("out_channels", 0)
    if name == "max_depth_multiplier" and in_ch and out_ch // in_ch > value:  # type: ignore[operator]
        return f"depth multiplier {out_ch // in_ch} ({in_ch} -> {out_ch} channels)"
    if name == "max_groups" and layer.attrs.get("groups", 1) > value:  # type: ignore[operator]
        return f"groups {layer.attrs.get('groups')}"
    if name == "max_channels" and max(in_ch, out_ch) > value:  # type: ignore[operator]
        return f"channels {in_ch} -> {out_ch}"
    return None


def _pool_break(layer: Layer, name: str, value: object) -> str | None:
    window = _pool_window(layer)
    if not window:
        return None
    what = f"{'adaptive pool to ' + _x(layer.output_shape[2:]) + ', ' if layer.attrs.get('adaptive') else ''}window"
    if name == "max_kernel" and _over(window, value):  # type: ignore[arg-type]
        return f"{what} {_x(window)}"
    if name == "max_kernel_height" and window[0] > value:  # type: ignore[operator]
        return f"{what} {_x(window)}"
    if name == "max_kernel_area" and prod(window) > value:  # type: ignore[operator]
        return f"{what} {_x(window)} = {prod(window)}"
    return None


def _resize_break(layer: Layer, name: str, value: object) -> str | None:
    factors = _resize_factors(layer)
    if not factors:
        return None
    found = f"resize factor {_x(factors)} ({_x(layer.input_shape[2:])} -> {_x(layer.output_shape[2:])})"
    whole = all(f == int(f) for f in factors)
    if name == "scale_factors":
        broken = not whole or any(int(f) not in value for f in factors)  # type: ignore[operator]
    elif name == "max_scale":
        broken = any(f > value for f in factors)  # type: ignore[operator]
    elif name == "integer_scales":
        broken = bool(value) and not whole
    else:  # equal_scales
        broken = bool(value) and len(set(factors)) > 1
    return found if broken else None


def _tensor_break(layer: Layer, name: str, value: int, io_shapes: list[tuple[int, ...]],
                  bytes_per_element: int) -> str | None:  # fmt: skip
    if name == "io_min_last_axis_bytes":
        shapes = io_shapes
    else:  # the data a layer reads and writes; a conv's or linear's weight operand is a constant
        inputs = layer.input_shapes[:1] if layer.kind in OpKind.WEIGHTED else layer.input_shapes
        shapes = [*inputs, *layer.output_shapes]
    for shape in shapes:
        if name == "max_rank" and len(shape) > value:
            return f"rank {len(shape)} ({_x(shape)})"
        if name == "max_batch" and len(shape) >= 3 and shape[0] > value:
            return f"batch {shape[0]} ({_x(shape)})"
        if name == "max_dim" and any(d > value for d in shape[1:]):
            return f"dimension {max(shape[1:])} ({_x(shape)})"
        if name == "max_dims_over_one" and sum(d > 1 for d in shape) > value:
            return f"{sum(d > 1 for d in shape)} dimensions > 1 ({_x(shape)})"
        if name == "io_min_last_axis_bytes" and shape and shape[-1] * bytes_per_element < value:
            used = shape[-1] * bytes_per_element
            return (f"last axis {shape[-1]} x {bytes_per_element} B = {used} B, padded to {value} B "
                    f"({value / used:.1f}x; {_x(shape)})")
    return None
