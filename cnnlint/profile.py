"""Per-platform profiles: hardware numbers and rule settings as TOML data, validated by pydantic.

Built-in profiles live in ``cnnlint/rules/profiles/*.toml`` (the ``rules/profiles`` folder of the
source tree); the folder is the list of targets. A profile may ``extends = "t4"`` (a built-in name,
or a path relative to the file) and override a few keys; tables merge key by key, everything else
replaces. A profile states only what differs: a rule's defaults live in the rule module, and a
``[rules.CODE]`` table holds only the keys that differ from them (or from the extended profile),
with a ``why`` that the generated docs show. ``[unsupported_ops]`` maps each op kind the target's
toolchain does not run to its source; every other kind runs, including kinds added later.
``[limits.KEY]`` tables state the parameter ranges the vendor documents for an op (kernel, stride,
padding, dilation, depth multiplier, resize factors, tensor rank and batch), each with its source
(:class:`Limit`, :data:`LIMITS`). An accelerator target (an ``npu``, or any profile with an operator
list) places each layer on the accelerator or on its ``fallback_device`` (``cnnlint.placement``);
``[placement]`` says how its toolchain cuts the graph and what a switch between the two costs
(:class:`PlacementTable`).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, prod
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cnnlint.core import PRECISIONS, OpKind
from cnnlint.errors import ProfileError
from cnnlint.ops import OP_CLASS_FALLBACK, OP_CLASSES, OP_LIST_NAMES, op_list_spelling
from cnnlint.paths import builtin_profile_names  # noqa: F401  (the targets, for callers)
from cnnlint.tables import profile_table

Precision = Literal[PRECISIONS]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Granule(_Strict):
    """Channel counts the hardware computes in; anything else is padded up to the next multiple."""

    input: int = Field(gt=0)
    output: int = Field(gt=0)


class Memory(_Strict):
    bandwidth_gbps: float = Field(gt=0, description="DRAM bandwidth in GB/s")
    cache_mb: float | None = Field(
        default=None, gt=0, description="the cache a kernel's working set stays in, in MiB: a "
        "kernel's first cache_mb of bytes move at cache_bandwidth_gbps, the rest at bandwidth_gbps"
    )
    cache_bandwidth_gbps: float | None = Field(
        default=None, gt=0, description="bandwidth in GB/s of the bytes a kernel keeps in cache_mb"
    )
    fresh_output_gbps: float | None = Field(
        default=None, gt=0, description="the extra cost, as GB/s of output, of a kernel in a model "
        "writing a fresh output: the allocator hands it a buffer no recent kernel touched, whose "
        "lines come from memory before they are written, where a benchmark looping on one op "
        "writes one buffer kept in cache. On top of the roofline; an in-place op does not pay it"
    )
    cold_weights_gbps: float | None = Field(
        default=None, gt=0, description="the extra cost, as GB/s of weights, of a kernel in a model "
        "reading weights that a benchmark looping on it finds in cache: between two calls of a "
        "model the rest of its forward evicts them. On top of the roofline, once per call "
        "whatever the batch, for a kernel's first cache_mb of weights (beyond it, looped alone "
        "it reads them from memory too)"
    )
    in_place_output_share: float | None = Field(
        default=None, ge=0, le=1, description="the share of its output bytes a kernel moves when it "
        "writes into its input (an in-place ReLU, out += identity) against writing a new tensor: "
        "on a CPU the output goes to the lines the kernel just read, and timed alone an in-place "
        "op takes about half the time. Unset: 1, every output byte moves (a GPU writes either way)"
    )

    @model_validator(mode="after")
    def _cache_is_whole(self) -> "Memory":
        if (self.cache_mb is None) != (self.cache_bandwidth_gbps is None):
            raise ValueError("cache_mb and cache_bandwidth_gbps go together: give both or neither")
        return self


class SmallGemm(_Strict):
    """How a conv or linear layer's rate falls when its per-group matrix product is thin:
    the class's efficiency x k / (k + half_k) x n / (n + half_n), with k the reduction length
    (input channels per group x kernel taps, or in_features) and n the outputs per group
    (output channels per group, or out_features), times m / (m + half_m) with m its rows (output
    pixels, or tokens, of the batch: a late-stage 7 x 7 map or a ViT-B/32's 50 tokens leave a
    CPU's matrix kernels part idle). Depthwise convs are left out: their shape is fixed, so their
    class efficiency already says it. Fitted by ``cnnlint calibrate``; 0 (the built-in profiles)
    leaves the class efficiency as it is."""

    half_k: float = Field(default=0.0, ge=0, description="reduction length at which the rate halves")
    half_n: float = Field(default=0.0, ge=0, description="outputs per group at which the rate halves")
    half_m: float = Field(default=0.0, ge=0, description="rows (output pixels or tokens) at which the rate halves")

    def factor(self, k: float, n: float, m: float = 0.0) -> float:
        return small_gemm_factor(k, n, self.half_k, self.half_n, m, self.half_m)


def _by_known_class(table: dict[str, float]) -> dict[str, float]:
    """A profile's table keyed by op class, once every key is checked to be one."""
    for op_class in table:
        if op_class not in OP_CLASSES:
            raise ValueError(f"unknown op class {op_class!r}; known: {', '.join(OP_CLASSES)}")
    return table


def _non_negative_by_known_class(table: dict[str, float], name: str) -> dict[str, float]:
    """``_by_known_class`` for a table of costs, each >= 0."""
    for op_class, value in _by_known_class(table).items():
        if value < 0:
            raise ValueError(f"{name}.{op_class} must be >= 0, got {value}")
    return table


def _shares_by_known_class(table: dict[str, float], name: str) -> dict[str, float]:
    """``_by_known_class`` for a table of fractions of a rate, each in (0, 1]."""
    for op_class, share in _by_known_class(table).items():
        if not 0 < share <= 1:
            raise ValueError(f"{name}.{op_class} must be in (0, 1], got {share}")
    return table


def cached_bandwidth(bytes_moved: float, bandwidth: float, cache_bytes: float, cache_bandwidth: float) -> float:
    """Bytes/s of a kernel whose first ``cache_bytes`` move at the cache's bandwidth and the rest
    at ``bandwidth`` (``Memory.cache_mb``). The time grows smoothly past the cache's size, as a
    working set spills from it a part at a time: a step at one size put the edge anywhere from 2.4
    to 13 MiB in four calibrations of one Xeon, this 0.8 to 1.7 MiB in seven (its L2 is 2 MiB a
    core)."""
    if bytes_moved <= cache_bytes:
        return cache_bandwidth
    return bytes_moved / (cache_bytes / cache_bandwidth + (bytes_moved - cache_bytes) / bandwidth)


def small_gemm_factor(k: float, n: float, half_k: float, half_n: float, m: float = 0.0, half_m: float = 0.0) -> float:
    """The share of its class's rate a (k, n, m) matrix product attains (``SmallGemm``); 1 where a
    dimension or its half-rate point is 0."""
    kf = k / (k + half_k) if k and half_k else 1.0
    nf = n / (n + half_n) if n and half_n else 1.0
    mf = m / (m + half_m) if m > 1 and half_m else 1.0  # one row is a matrix-vector product, bound by memory
    return kf * nf * mf


class OpList(_Strict):
    """``[supported_ops]``: the operators the vendor documents as converted, by op kind and, where
    a kind covers several ops, by op name (``ops.activation = ["relu", "sigmoid"]``; ``"*"``: every
    op of the kind), in ``cnnlint.ops.op_list_spelling`` (``ReLU``, ``relu`` and ``relu_`` are one
    name). An op outside the list may fall back to the CPU or fail to convert (rule CL304)."""

    source: str = Field(min_length=1, description="the vendor's list, as findings name it")
    ops: dict[str, list[str]] = Field(description="op kind -> the op names the list has")

    @field_validator("ops")
    @classmethod
    def _known_names(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        spelled: dict[str, list[str]] = {}
        for kind, names in value.items():
            known = OP_LIST_NAMES.get(kind)
            if known is None:
                kinds = ", ".join(sorted(OP_LIST_NAMES))
                raise ValueError(f"supported_ops.ops.{kind}: not an op kind a list names; known: {kinds}")
            unknown = [n for n in names if n != "*" and op_list_spelling(n) not in known]
            if unknown:
                raise ValueError(
                    f"supported_ops.ops.{kind} lists {', '.join(map(repr, unknown))}, which cnnlint "
                    f"never names a {kind} layer; known: {', '.join(sorted(known))}"
                )
            spelled[kind] = [n if n == "*" else op_list_spelling(n) for n in names]
        return spelled

    def lists(self, kind: str, name: str) -> bool:
        """Whether the list has this op (a kind and an ``op_list_name``); never for a kind or
        name it does not know."""
        names = self.ops.get(kind, ())
        return "*" in names or name in names


# ------------------------------------------------------------------------------- limits
# The parameter limits a profile may state, by name: what the value means and which layers it
# applies to. A ``[limits.KEY]`` table is keyed by an op kind (``conv``, ``depthwise_conv``,
# ``pool``, ``upsample``), by an op kind and the name an operator list knows the op by
# (``pool.maxpool``, ``upsample.bilinear``: ``cnnlint.ops.op_list_name``), or by ``tensor`` for
# limits on every operator's input and output tensors. Rule CL304 checks them.
_CONVS = frozenset(OpKind.CONVOLUTIONS)
_POOL = frozenset({OpKind.POOL})
_RESIZE = frozenset({OpKind.UPSAMPLE})
TENSOR = "tensor"  # the [limits.tensor] table: every operator's input and output tensors


@dataclass(frozen=True)
class LimitName:
    value: type | tuple[type, ...]  # int, float, bool or list (of int)
    keys: frozenset[str]  # the op kinds it applies to (TENSOR: every operator)
    description: str


LIMITS: dict[str, LimitName] = {
    "max_kernel": LimitName(int, _CONVS | _POOL, "largest kernel (or pooling window) height or "
                            "width; an adaptive pool's window is its input over its output size"),
    "max_kernel_height": LimitName(int, _POOL, "largest pooling window height"),
    "max_kernel_area": LimitName(int, _POOL, "largest pooling window height x width"),
    "max_stride": LimitName(int, _CONVS, "largest stride, height or width"),
    "strides": LimitName(list, _CONVS, "the strides allowed, each of height and width"),
    "stride_factors": LimitName(list, _CONVS, "the prime factors a stride may have"),
    "max_padding": LimitName(int, _CONVS, "largest padding on any side ('same' padding: half "
                             "the dilated kernel)"),
    "max_dilation": LimitName(int, _CONVS, "largest dilation, height or width"),
    "max_dilated_kernel_height": LimitName(int, _CONVS, "largest (kernel height - 1) x "
                                           "dilation + 1"),
    "max_dilated_kernel_area": LimitName(int, _CONVS, "largest dilated kernel height x width"),
    "max_depth_multiplier": LimitName(int, frozenset({OpKind.DEPTHWISE_CONV}), "largest output "
                                      "channels per input channel of a depthwise conv"),
    "max_groups": LimitName(int, _CONVS, "largest number of groups"),
    "max_channels": LimitName(int, _CONVS, "largest input or output channel count"),
    "scale_factors": LimitName(list, _RESIZE, "the resize factors allowed, each of height and "
                               "width (output over input size)"),
    "max_scale": LimitName((int, float), _RESIZE, "largest resize factor, height or width"),
    "integer_scales": LimitName(bool, _RESIZE, "true: height and width factors must be whole "
                                "numbers"),
    "equal_scales": LimitName(bool, _RESIZE, "true: the height and width factors must be equal"),
    "max_rank": LimitName(int, frozenset({TENSOR}), "most dimensions a tensor may have"),
    "max_batch": LimitName(int, frozenset({TENSOR}), "largest batch (first dimension) of a "
                           "tensor of rank 3 or more"),
    "max_dim": LimitName(int, frozenset({TENSOR}), "largest size of any dimension but the batch"),
    "max_dims_over_one": LimitName(int, frozenset({TENSOR}), "most dimensions of size > 1 a "
                                   "tensor may have"),
    "io_min_last_axis_bytes": LimitName(int, frozenset({TENSOR}), "fewest bytes the last axis "
                                        "of the model's input and output tensors should hold "
                                        "(a shorter one is padded up to it)"),
}
# What breaking a limit does: the layer leaves the accelerator (or fails to convert), or it runs
# there more slowly than the vendor's guide says it should.
FALLBACK, SLOW = "fallback", "slow"


class Limit(_Strict):
    """One documented limit: its value, where the vendor documents it, and what breaking it does
    (``fallback``: the toolchain runs the layer elsewhere or rejects it; ``slow``: it runs, more
    slowly, by the vendor's performance guide)."""

    value: bool | int | float | list[int]
    source: str = Field(min_length=1, description="the vendor's document and section")
    effect: Literal["fallback", "slow"] = FALLBACK


def _limit_key_kind(key: str) -> str:
    """The op kind a [limits.KEY] table applies to (TENSOR for [limits.tensor])."""
    kind, _, name = key.partition(".")
    if key == TENSOR:
        return TENSOR
    if kind not in OpKind.ALL:
        known = ", ".join(sorted(OpKind.ALL))
        raise ValueError(f"limits.{key}: {kind!r} is not an op kind (nor 'tensor'); known: {known}")
    if name and op_list_spelling(name) not in OP_LIST_NAMES.get(kind, ()):
        names = ", ".join(sorted(OP_LIST_NAMES.get(kind, ()))) or "none"
        raise ValueError(f"limits.{key}: cnnlint never names a {kind} layer {name!r}; known: {names}")
    return kind


def _parse_limits(value: Any) -> dict[str, dict[str, Limit]]:
    """``[limits.KEY]`` tables: each limit a bare value (the table's ``source`` is its source) or
    a ``{ value, source, effect }`` table; the names and value types of :data:`LIMITS`."""
    if not isinstance(value, dict):
        raise ValueError("limits must be a table of [limits.KEY] tables")
    parsed: dict[str, dict[str, Limit]] = {}
    for key, table in value.items():
        if not isinstance(table, dict):
            raise ValueError(f"limits.{key} must be a table of limits")
        kind = _limit_key_kind(key)
        spelled = key if "." not in key else f"{kind}.{op_list_spelling(key.partition('.')[2])}"
        default_source = table.get("source")
        limits: dict[str, Limit] = {}
        for name, item in table.items():
            if name == "source":
                continue
            known = LIMITS.get(name)
            if known is None:
                raise ValueError(f"limits.{key}.{name}: not a limit cnnlint checks; known: "
                                 f"{', '.join(LIMITS)}")
            if kind not in known.keys:
                raise ValueError(f"limits.{key}.{name}: applies to {', '.join(sorted(known.keys))}, "
                                 f"not {kind}")
            raw = dict(item) if isinstance(item, dict) else {"value": item}
            raw.setdefault("source", default_source)
            if not raw["source"]:
                raise ValueError(f"limits.{key}.{name} needs a source: give the table a `source` "
                                 f"or write {{ value = ..., source = \"...\" }}")
            wanted = known.value if isinstance(known.value, tuple) else (known.value,)
            number = raw.get("value")
            if isinstance(number, bool) and bool not in wanted or not isinstance(number, wanted):
                kinds = " or ".join(t.__name__ for t in wanted)
                raise ValueError(f"limits.{key}.{name} must be a {kinds}, got {number!r}")
            if isinstance(number, list) and not all(isinstance(n, int) and n > 0 for n in number):
                raise ValueError(f"limits.{key}.{name} must list positive whole numbers, got {number!r}")
            limits[name] = Limit.model_validate(raw)
        parsed[spelled] = limits
    return parsed


# How a toolchain places the layers it cannot take (``[placement] mode``): each on the fallback
# device and the rest on the accelerator (TensorRT's GPU fallback, Vela, the NPU toolchains), or
# everything from the first such layer on (the Edge TPU compiler maps one subgraph).
PER_OP, FIRST_UNSUPPORTED_TAIL = "per-op", "first-unsupported-tail"


class PlacementTable(_Strict):
    """``[placement]``: how the accelerator's toolchain splits a model between the accelerator
    and the profile's ``fallback_device``, and what each switch between them costs. Every key is
    optional; without the table an ``npu`` profile, or one with ``[supported_ops]``, places
    layers per op."""

    device: str | None = Field(
        default=None, min_length=1, description="what runs the layers the toolchain takes, as "
        "reports name it (the DLA, the Edge TPU); unset: NPU on an npu target, else the kind",
    )
    mode: Literal["per-op", "first-unsupported-tail"] = Field(
        default=PER_OP, description="per-op: each layer the accelerator does not take runs on the "
        "fallback device, the rest on the accelerator; first-unsupported-tail: the first such "
        "layer and every layer after it (in the order they run) run on the fallback device",
    )
    switch_overhead_us: float | None = Field(
        default=None, ge=0, description="fixed cost of one switch between the accelerator and the "
        "fallback device (synchronising, launching the other side), in microseconds; unset: "
        "kernel_overhead_us (estimate)",
    )
    transfer_gbps: float | None = Field(
        default=None, gt=0, description="GB/s at which a tensor that changes device is copied "
        "(read and written once); unset: the memory bandwidth (memory.bandwidth_gbps)",
    )
    fallback_profile: str | None = Field(
        default=None, min_length=1, description="a built-in profile (or a path to one) whose "
        "rates time the layers the fallback device runs (the SoC's CPU cores); unset: they are "
        "timed at the accelerator's own rates, and the result says so",
    )


class Profile(_Strict):
    name: str
    description: str = ""
    kind: Literal["gpu", "cpu", "npu", "generic"]
    default_precision: Precision
    precisions: list[Precision] = Field(min_length=1, description="precisions the target runs")
    peak_tflops: dict[Precision, float]
    memory: Memory
    kernel_overhead_us: float = Field(ge=0, description="fixed cost per launched kernel/layer")
    model_overhead_us: float = Field(
        default=0.0, ge=0, description="fixed cost per kernel inside a whole model beyond the same op "
        "timed alone (eager: the Python module calls between ops); measured by cnnlint calibrate"
    )
    overhead_us: dict[str, float] = Field(
        default_factory=dict, description="fixed cost per kernel of an op class, where it differs "
        "from kernel_overhead_us (an eager conv's setup costs more than an add's)"
    )
    throughput_batch: int = Field(default=64, gt=0, description="batch used for throughput")
    min_saving_share: float = Field(
        default=0.01, ge=0, le=1,
        description="a performance finding is a warning only when its fix is estimated to save at "
        "least this fraction of the model's estimated latency (est_saving_share), or, for a rule "
        "without a concrete fix, when the layers it flags take at least this fraction "
        "(est_share_at_stake); below it the finding is info. 0.01: 1% of latency",
    )
    efficiency: dict[str, float] = Field(
        description="fraction of peak per op class; transcendental (sigmoid, SiLU, GELU) and norm "
        "take elementwise's where left out"
    )
    small_gemm: SmallGemm = Field(default_factory=SmallGemm, description=SmallGemm.__doc__.split(":")[0])
    strided_input_gbps: dict[str, float] = Field(
        default_factory=dict, description="per op class, the bandwidth at which a conv with stride "
        "> 1 gathers its input before it computes, on top of its roofline time (eager oneDNN "
        "copies a strided 1x1 conv's input to unit stride, and its strided depthwise kernels read "
        "at a fraction of the rate); measured by cnnlint calibrate; a class left out pays nothing"
    )
    window_output_ns: dict[str, float] = Field(
        default_factory=dict, description="per op class (pool, avg_pool, depthwise_conv), the "
        "nanoseconds each output of an op that slides a window over one channel (a windowed pool, "
        "a depthwise conv) costs beyond its taps, on top of its roofline time (the window's bounds "
        "and the store: one thread of a Xeon runs a max pool at 29 ns an output plus 2.9 a tap, an "
        "average pool at 20.5 plus 0.75); measured by cnnlint calibrate from ops of two window "
        "sizes or more; a class left out pays nothing"
    )
    unaligned_efficiency: dict[str, float] = Field(
        default_factory=dict, description="per op class, the share of its rate a conv or linear "
        "keeps when its channels per group are off the channel granule (a slower kernel: one "
        "thread of a Xeon runs a depthwise conv of 120 channels at 0.46 of one of 128); measured "
        "by cnnlint calibrate; a class left out is priced as padded to the granule"
    )
    channel_granule: dict[Precision, Granule]
    unsupported_ops: dict[str, str] = Field(
        default_factory=dict,
        description="op kinds the deployment toolchain does not run, each with its source; "
        "every other kind runs, including kinds added to cnnlint later",
    )
    supported_ops: OpList | None = Field(
        default=None, description="the operators the vendor documents as converted, with the "
        "list's source; none: every op that unsupported_ops does not name is taken as converted",
    )
    limits: dict[str, dict[str, Limit]] = Field(
        default_factory=dict, description="[limits.KEY] tables: the parameter ranges the vendor "
        "documents per op (cnnlint.profile.LIMITS), each with its source; rule CL304 reports a "
        "layer outside them",
    )
    fallback_device: str = Field(
        default="CPU", min_length=1, description="what runs a layer the accelerator does not "
        "take (the GPU, for a Jetson's DLA)",
    )
    placement: PlacementTable | None = Field(
        default=None, description="how the toolchain splits a model between the accelerator and "
        "fallback_device, and what a switch costs (PlacementTable)",
    )
    fusion: dict[str, bool] = Field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="[rules.CODE] tables: only what differs from the rule"
    )
    rule_notes: dict[str, str] = Field(
        default_factory=dict, description="why a [rules.CODE] table differs (its `why` key)"
    )
    source: str = Field(default="", description="file the profile was loaded from")

    @model_validator(mode="before")
    @classmethod
    def _rule_notes_apart(cls, data: Any) -> Any:
        """A ``why`` key in ``[rules.CODE]`` documents the table; the rule never sees it."""
        if not isinstance(data, dict) or not isinstance(data.get("rules"), dict):
            return data
        rules, notes = {}, dict(data.get("rule_notes") or {})
        for code, table in data["rules"].items():
            if isinstance(table, dict) and "why" in table:
                table = dict(table)
                notes[code] = table.pop("why")
            rules[code] = table
        return {**data, "rules": rules, "rule_notes": notes}

    @field_validator("unsupported_ops")
    @classmethod
    def _known_kinds_with_sources(cls, value: dict[str, str]) -> dict[str, str]:
        for kind, source in value.items():
            if kind not in OpKind.ALL:
                raise ValueError(f"unknown op kind {kind!r}; known: {', '.join(sorted(OpKind.ALL))}")
            if not source.strip():
                raise ValueError(f"unsupported_ops.{kind} must say why (its source), got ''")
        return value

    @field_validator("limits", mode="before")
    @classmethod
    def _documented_limits(cls, value: Any) -> Any:
        return _parse_limits(value) if value is not None else {}

    def limits_for(self, kind: str, name: str = "") -> dict[str, Limit]:
        """The limits on a layer of this kind and operator-list name: the kind's table, with its
        named op's table over it (``[limits.pool]`` and ``[limits."pool.maxpool"]``)."""
        found = dict(self.limits.get(kind, {}))
        if name:
            found.update(self.limits.get(f"{kind}.{name}", {}))
        return found

    @field_validator("peak_tflops")
    @classmethod
    def _positive_peaks(cls, value: dict[str, float]) -> dict[str, float]:
        for precision, tflops in value.items():
            if tflops <= 0:
                raise ValueError(f"peak_tflops.{precision} must be > 0, got {tflops}")
        return value

    @field_validator("efficiency")
    @classmethod
    def _known_op_classes(cls, value: dict[str, float]) -> dict[str, float]:
        _shares_by_known_class(value, "efficiency")
        missing = set(OP_CLASSES) - set(value) - set(OP_CLASS_FALLBACK)
        if missing:
            raise ValueError(f"efficiency is missing op classes: {', '.join(sorted(missing))}")
        # A class a profile may leave out runs at its fallback class's efficiency.
        return {**{c: value[fallback] for c, fallback in OP_CLASS_FALLBACK.items()}, **value}

    @field_validator("overhead_us")
    @classmethod
    def _overheads_by_known_class(cls, value: dict[str, float]) -> dict[str, float]:
        return _non_negative_by_known_class(value, "overhead_us")

    @field_validator("strided_input_gbps")
    @classmethod
    def _gather_by_known_class(cls, value: dict[str, float]) -> dict[str, float]:
        for op_class, gbps in _by_known_class(value).items():
            if gbps <= 0:
                raise ValueError(f"strided_input_gbps.{op_class} must be > 0, got {gbps}")
        return value

    @field_validator("window_output_ns")
    @classmethod
    def _window_outputs_by_known_class(cls, value: dict[str, float]) -> dict[str, float]:
        return _non_negative_by_known_class(value, "window_output_ns")

    @field_validator("unaligned_efficiency")
    @classmethod
    def _unaligned_by_known_class(cls, value: dict[str, float]) -> dict[str, float]:
        return _shares_by_known_class(value, "unaligned_efficiency")

    @model_validator(mode="after")
    def _precisions_are_described(self) -> "Profile":
        for precision in self.precisions:
            if precision not in self.peak_tflops:
                raise ValueError(f"peak_tflops has no entry for precision {precision!r}")
            if precision not in self.channel_granule:
                raise ValueError(f"channel_granule has no entry for precision {precision!r}")
        if self.default_precision not in self.precisions:
            raise ValueError(f"default_precision {self.default_precision!r} is not in precisions")
        return self

    # Derived numbers the cost model and rules share.
    def peak_flops(self, precision: str) -> float:
        return self.peak_tflops[precision] * 1e12  # type: ignore[index]

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.memory.bandwidth_gbps * 1e9

    def bandwidth_for(self, bytes_moved: float) -> float:
        """Bytes/s for a kernel that moves ``bytes_moved`` (``cached_bandwidth``)."""
        memory = self.memory
        if memory.cache_mb is None:
            return self.bandwidth_bytes_per_s
        return cached_bandwidth(bytes_moved, self.bandwidth_bytes_per_s, memory.cache_mb * 2**20,
                                memory.cache_bandwidth_gbps * 1e9)  # type: ignore[operator]  # fmt: skip

    def kernel_overhead_s(self, op_class: str) -> float:
        """Fixed seconds per launched kernel of ``op_class``."""
        overhead = self.overhead_us.get(op_class)
        if overhead is None:
            overhead = self.overhead_us.get(OP_CLASS_FALLBACK.get(op_class, ""), self.kernel_overhead_us)
        return (overhead + self.model_overhead_us) * 1e-6

    def strided_input_s(self, op_class: str, input_bytes: float) -> float:
        """Seconds a conv of ``op_class`` with stride > 1 takes to gather ``input_bytes`` of input
        before it computes (``strided_input_gbps``; 0 for a class the profile does not list)."""
        gbps = self.strided_input_gbps.get(op_class)
        return input_bytes / (gbps * 1e9) if gbps else 0.0

    def window_output_s(self, op_class: str, outputs: float) -> float:
        """Seconds a windowed pool or depthwise conv of ``op_class`` spends on ``outputs`` outputs
        beyond its taps (``window_output_ns``; 0 for a class the profile does not list)."""
        return outputs * self.window_output_ns.get(op_class, 0.0) * 1e-9

    def fresh_output_s(self, output_bytes: float) -> float:
        """Seconds a kernel in a model spends writing ``output_bytes`` of fresh output beyond its
        roofline (``memory.fresh_output_gbps``; 0 where the profile did not measure it)."""
        gbps = self.memory.fresh_output_gbps
        return output_bytes / (gbps * 1e9) if gbps else 0.0

    def cold_weights_s(self, weight_bytes: float) -> float:
        """Seconds a kernel in a model spends reading ``weight_bytes`` of weights the forward
        evicted since its last call, beyond its roofline (``memory.cold_weights_gbps``, up to
        ``cache_mb`` of them; 0 where the profile did not measure it)."""
        gbps = self.memory.cold_weights_gbps
        if not gbps:
            return 0.0
        cache = self.memory.cache_mb
        return (min(weight_bytes, cache * 2**20) if cache else weight_bytes) / (gbps * 1e9)

    def output_bytes_moved(self, output_bytes: float, in_place: bool) -> float:
        """The output bytes a kernel's roofline moves: all of them, or for a kernel that writes
        into its input, the share ``memory.in_place_output_share`` says (all where unset)."""
        share = self.memory.in_place_output_share
        return output_bytes * share if in_place and share is not None else output_bytes

    def alignment(self, precision: str, op_class: str, in_width: float, out_width: float = 0.0) -> float:
        """The share of its class's rate a conv or linear kernel keeps at these channels per group
        (input and output; a depthwise conv's channels as ``in_width`` alone, one lane each): 1
        when every width of at least one granule is a multiple of it (``channel_granule``); else
        the class's measured ``unaligned_efficiency``, or, where the profile has none, the share
        of the padded channels that are real, as the hardware computes them padded. A width under
        one granule (an RGB input, a 4-channel group) is not judged: it runs in a kernel of its
        own, not a padded one."""
        granule = self.channel_granule[precision]  # type: ignore[index]
        sides = [(width, size) for width, size in ((in_width, granule.input), (out_width, granule.output))
                 if width >= size and width % size]  # fmt: skip
        if not sides:
            return 1.0
        if op_class in self.unaligned_efficiency:
            return self.unaligned_efficiency[op_class]
        return prod(width / (ceil(width / size) * size) for width, size in sides)

    def ridge_point(self, precision: str) -> float:
        """FLOP per byte above which a kernel is compute-bound (roofline)."""
        return self.peak_flops(precision) / self.bandwidth_bytes_per_s

    @property
    def places_layers(self) -> bool:
        """Whether the target is an accelerator whose layers a report places on it or off it: an npu
        target, one with an operator list, or one with a ``[placement]`` table. GPUs and CPUs
        without a list run every layer themselves."""
        return self.placement is not None or self.kind == "npu" or self.supported_ops is not None

    @property
    def accelerator(self) -> str:
        """What runs the layers the toolchain takes, as reports name it ("NPU", "DLA")."""
        if self.placement is not None and self.placement.device:
            return self.placement.device
        return self.kind.upper()

    @property
    def placement_mode(self) -> str:
        return self.placement.mode if self.placement is not None else PER_OP

    @property
    def switch_overhead_s(self) -> float:
        """Fixed seconds of one switch between the accelerator and the fallback device:
        ``[placement] switch_overhead_us``, else the per-kernel overhead (estimate)."""
        table = self.placement
        overhead = table.switch_overhead_us if table is not None else None
        return (self.kernel_overhead_us if overhead is None else overhead) * 1e-6

    @property
    def transfer_bytes_per_s(self) -> float:
        """Bytes/s at which a tensor that changes device is copied: ``[placement]
        transfer_gbps``, else the memory bandwidth."""
        table = self.placement
        if table is not None and table.transfer_gbps is not None:
            return table.transfer_gbps * 1e9
        return self.bandwidth_bytes_per_s

    def supports(self, op_kind: str) -> bool:
        """False only for kinds the profile lists as unsupported: an unknown kind runs."""
        return op_kind not in self.unsupported_ops


def _format_validation_error(label: str, exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        problems.append(f"key '{key}': {err['msg']}")
    return f"profile {label}: " + "; ".join(problems) + "."


_cache: dict[tuple[str, str], Profile] = {}


def load_profile(target: str, base_dir: Path | None = None) -> Profile:
    """Load a built-in profile by name or a user profile from a ``.toml`` path."""
    cache_key = (target, str(base_dir))
    if cache_key in _cache:
        return _cache[cache_key]
    label, raw = profile_table(target, base_dir)
    raw.setdefault("source", label)
    try:
        profile = Profile.model_validate(raw)
    except ValidationError as exc:
        raise ProfileError(_format_validation_error(label, exc)) from None
    _cache[cache_key] = profile
    return profile
