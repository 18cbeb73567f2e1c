"""Operators the target's deployment toolchain does not run, or does not list.

What it flags
    Layers whose op kind the target profile lists in ``unsupported_ops`` (each with its source),
    at error severity: the accelerator toolchain either refuses to convert the model or cuts the
    graph there and runs the op on the host CPU. On a target whose profile copies the vendor's
    list of supported operators (``[supported_ops]``: hi3519, x3, cv22), every other op that is
    not in that list, at warning severity ("not in the NNIE layer list: it may fall back to the
    CPU or fail to convert"). The list names ops, not only kinds: one activation layer is ReLU
    and another GELU, a resize is nearest or bilinear, a reshape is a view or a permute. An op
    the list does not know (a kind added to cnnlint later, a subclass's own name) is not in it.
    Occurrences of one op are grouped into one finding, located at the first occurrence, with
    the count and every location in the metrics (``group_occurrences = false`` reports each
    occurrence on its own line). Kinds named in ``caution_ops`` that the target does run are
    reported at info severity: they work on the target's reference runtime but are missing from
    some inference frameworks. Profiles without a list (GPUs, CPUs) take every op they do not
    name in ``unsupported_ops`` as run. Ops computed from parameters alone (a weight
    standardised in ``forward``) are not reported: the toolchain folds them into a constant at
    conversion (``ModelCost.folded``), so they never run on the target.

    Layers outside a parameter limit the vendor documents for their op (the profile's
    ``[limits.KEY]`` tables, each limit with its source): a kernel, stride, padding or dilation
    out of range, a dilated kernel too large, a depthwise conv with a depth multiplier, a resize
    by a factor the target does not take, a tensor of too many dimensions or a batch over the
    limit. At warning severity, like an op outside the list ("stride 4x4, outside ethos-u55's
    limit (stride <= 3; Vela SUPPORTED_OPS.md, CONV_2D constraints)"); a limit the vendor gives
    as performance guidance (``effect = "slow"``: apple-ane's strides with prime factors other
    than 2 and 3) at info. Layers already reported as unsupported or unlisted are not checked
    against limits. One finding per broken limit, grouped like ops outside the list. The report's
    placement (``cnnlint.placement``) takes the same decision: a layer reported here as
    unsupported, unlisted or outside a limit (not a ``slow`` one) runs on the profile's
    ``fallback_device``.

Why
    Unsupported ops are errors where the toolchain has no layer to map them to. An op outside
    the vendor's list is the quiet failure: the model converts, and the op runs on the CPU, or
    conversion stops at it. The NNIE mapper takes only the Caffe layers and HiSilicon extensions
    it lists, and any other layer must be cut out by hand as a "Custom" CPU layer (HiSilicon's
    NNIE sample guide, section 4.3.1); the engine's feature list names ReLU, Sigmoid and TanH,
    so GELU, SiLU, hard-swish and LayerNorm used to pass on hi3519 unreported. Horizon's X3
    operator table marks each ONNX op "BPU" or "CPU" and runs the CPU ones on the ARM CPU
    (HardSigmoid, Erf, Transpose and Sub, so hard-swish, GELU, permute and LayerNorm, are CPU
    rows); Ambarella's amba-tvm lists the Relay ops it offloads to the CV22 (no erf, exp,
    layer_norm or batch_matmul). A host fallback costs a round trip through DRAM: the
    accelerator writes the op's input, the CPU reads it and writes the result, and the
    accelerator reads it back, plus a segment switch on each side. The finding estimates that as
    2 x (input + output bytes) / the profile's transfer bandwidth (``[placement] transfer_gbps``,
    else DRAM's) plus two segment switches (``fallback_overhead_us``, default two of the
    profile's ``[placement] switch_overhead_us``, itself the per-kernel overhead unless the
    profile says), times the occurrences, against the model's estimated latency before
    transfers. torchvision's efficientnet_b0 has 49 SiLU layers: an estimated 2.41 ms of round
    trips on hi3519, 54% of its estimated 4.50 ms latency. Channel shuffle, the op ShuffleNet
    (Zhang et al., CVPR 2018) and ShuffleNetV2 (Ma et al., ECCV 2018) are built on, has no
    layer type in the NNIE mapper's operator list (the hi3519 profile's ``unsupported_ops``);
    torchvision's shufflenet_v2_x1_0 has 16 of them (one per block): an estimated 0.42 ms of
    round trips on hi3519, 29% of its estimated 1.44 ms latency, where a 1x1 permutation conv
    on the NNIE would take 26 us for the first.
    The vendors' lists come with ranges the list alone does not show: Vela places a CONV_2D on
    the Ethos-U only with stride <= 3 (SUPPORTED_OPS.md: "If the constraints are not met, then
    that operator will be scheduled on the CPU instead"), so torchvision's convnext_tiny stem
    (4x4, stride 4) runs on the Cortex-M; Rockchip's operator list takes depthwise kernels up
    to 8 and conv kernels up to 31 on the RK3588 NPU; TensorRT takes resize factors up to 4
    (linear) or 32 (nearest) on a DLA; a channel shuffle's rank-5 view breaks Vela's 4-D limit
    and the Edge TPU's "at most 3 dimensions > 1".

Example
    nn.ChannelShuffle(2)                     # or x.view(n, g, c // g, h, w).transpose(1, 2), or
                                             # any reshape-permute-reshape that reorders channels
    nn.SiLU(), nn.GELU(), nn.LayerNorm(c)    # on hi3519: not in the NNIE layer list
    nn.Upsample(scale_factor=2, mode="bilinear")
    nn.Conv2d(c, c, 4, stride=4)             # on ethos-u55: stride <= 3 (Vela)
    nn.Conv2d(c, c, 9, groups=c, padding=4)  # on rk3588: depthwise kernel <= 8

Use instead
    nn.Conv2d(c, c, 1, bias=False)           # weights = a fixed permutation matrix
    nn.ReLU(), nn.BatchNorm2d(c)             # ops the target's list has
    nn.Upsample(scale_factor=2, mode="nearest")
    nn.Conv2d(c, c, 2, stride=2), then nn.Conv2d(c, c, 2, stride=2)
    two nn.Conv2d(c, c, 5, groups=c, padding=2)   # the same 9x9 receptive field

Fix
    Channel shuffle on an accelerator: replace it with a 1x1 conv whose weight is the
    permutation matrix (the message estimates that conv's time on the target), or, where only
    convs read the shuffled tensor, reorder those convs' input channels at export and drop the
    shuffle. Channel shuffle as a caution on a CPU: check the runtime has the operator, else
    export it as a 4-D reshape + transpose. An op outside the vendor's list: the fix names the
    ops of the same kind the list has; else convert the model and see where the toolchain put
    it. Any other unsupported op: the message names the op; replace it with an operator the
    toolchain runs, or register it as a custom CPU layer and accept the round trip. A layer
    outside a limit: the fix names the change that brings it within (smaller kernels stacked
    for the same receptive field, a stride split over two layers, a resize in steps, fewer
    dimensions).

Known problems
    The lists are copied by hand from the vendors' documents and go stale with toolchain
    releases; entries the documents do not name outright are marked "estimate" in the
    profiles. HiSilicon's full NNIE layer list (the HiSVP development guide) is not public, so
    much of hi3519's list is an estimate; Ambarella's list is the one its TVM flow uses, not its
    CNNGen converter's. Limits are checked only where a profile states them (rk3588,
    jetson-orin's DLA, ethos-u55/u65, edgetpu, apple-ane) and only on what the graph records:
    a functional ``F.conv2d`` records its kernel and groups but not its stride, padding or
    dilation, and no pool records its stride or padding, so those limits are not checked there;
    a resize's factor is read off its input and output sizes, and a resize of a 1x1 map (a
    broadcast, which the vendors allow) is not judged. Limits with conditions the graph cannot
    see (Vela's wider stride when the output is one row high, a pool's padding mode) are taken
    in their plain form, as the profiles say. PyTorch ops are matched to the ONNX or Relay ops an export writes for them; an export that
    decomposes an op differently can land elsewhere. Calls of kind ``other`` that the op table
    does not name (``stochastic_depth``, a model's own helpers) and opaque submodules are not
    checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from math import prod

from pydantic import Field, field_validator

from cnnlint.check import RuleContext, RuleOptions
from cnnlint.core import severity_rank
from cnnlint.core import BYTES_PER_ELEMENT
from cnnlint.cost import ModelCost
from cnnlint.graph import Layer, OpKind
from cnnlint.ops import op_list_name, op_list_spelling
from cnnlint.placement import UNLISTED, UNSUPPORTED, LimitBreak, copy_s, judge
from cnnlint.profile import SLOW, Limit, Profile
from cnnlint.results import Finding
from cnnlint.rules._common import duration, ms, percent, size

CODE = "CL304"
NAME = "unsupported-op"
SEVERITY = "error"

_MAX_LISTED = 3  # locations named in a grouped message; the metrics list them all


def _occurrences(layers: list[Layer]) -> str:
    """Where a grouped finding's layers are, for its message: the first is the finding's own."""
    others = [layer.label for layer in layers[1:_MAX_LISTED + 1]]
    more = f", +{len(layers) - 1 - len(others)} more" if len(layers) - 1 > len(others) else ""
    return f"{len(layers)} occurrences, first here; also {', '.join(others)}{more}"
# Why a layer is reported: its kind is in the profile's unsupported_ops (error), its op is not
# in the vendor's list of supported operators (warning): the accelerator does not take it
# (cnnlint.placement decides, for this rule and the placement report alike); or the target runs
# it but some inference frameworks lack it (caution_ops, info).
CAUTION = "caution"


class Options(RuleOptions):
    caution_ops: list[str] = Field(
        default_factory=list,
        description=(
            "op kinds the target runs but some inference frameworks lack; reported at info "
            "severity"
        ),
    )
    group_occurrences: bool = Field(
        default=True,
        description=(
            "one finding per op kind (per op name for ops outside the vendor's list) with a "
            "count; false gives one finding per occurrence"
        ),
    )
    fallback_overhead_us: float | None = Field(
        default=None, ge=0,
        description=(
            "fixed cost of one CPU fallback (leaving the accelerator and coming back), in "
            "microseconds; unset: two of the profile's switches ([placement] "
            "switch_overhead_us, itself kernel_overhead_us unless the profile says: estimate)"
        ),
    )

    @field_validator("caution_ops")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        unknown = [kind for kind in value if kind not in OpKind.ALL]
        if unknown:
            raise ValueError(
                f"unknown op kind(s) {', '.join(unknown)}; known: {', '.join(sorted(OpKind.ALL))}"
            )
        return value


def _logical_shape(layer: Layer) -> tuple[int, ...]:
    """The tensor as the model sees it: a shuffle written as views around a permute is the
    N x C x H x W map it reorders (the graph stage records it as ``logical_shape``)."""
    shape = tuple(layer.attrs.get("logical_shape") or layer.output_shape)
    if layer.kind == OpKind.CHANNEL_SHUFFLE and len(shape) == 5:
        return (shape[0], shape[1] * shape[2], *shape[3:])
    return shape


def _shape(layer: Layer) -> str:
    return "x".join(str(d) for d in _logical_shape(layer)) or "?"


def _what(layer: Layer, name: str = "") -> str:
    """The op as the user wrote it: the kind, and the call when it says more (and the name an
    operator list knows it by, a resize's mode, where that is not the call's)."""
    if layer.kind == OpKind.OTHER and name:  # a call the op table names (F.pad)
        return f"`{layer.op}`"
    if layer.kind in (OpKind.OPAQUE, OpKind.OTHER):
        return f"`{layer.op}` (an op the linter does not classify)"
    if layer.kind == OpKind.CHANNEL_SHUFFLE:
        groups = layer.attrs.get("groups")
        return f"channel shuffle{f' ({groups} groups)' if groups else ''}"
    if name and name != op_list_spelling(layer.op):
        return f"{layer.kind} (`{layer.op}`, {name})"
    return f"{layer.kind} (`{layer.op}`)"


def _permutation_conv_time(layer: Layer, cost: ModelCost) -> float:
    """Estimated time of a 1x1 conv that applies a fixed channel permutation to the tensor."""
    shape = _logical_shape(layer)
    if len(shape) < 2:
        return 0.0
    channels = shape[1]
    pixels = prod(shape[2:]) if len(shape) > 2 else 1
    return cost.estimate_conv(channels, channels, 1, pixels, pixels, batch=shape[0])


def _fix(
    layers: list[Layer], cost: ModelCost, profile: Profile, status: str, first_trip_s: float
) -> str:
    first = layers[0]
    if first.kind == OpKind.CHANNEL_SHUFFLE and status != CAUTION:
        conv_time = _permutation_conv_time(first, cost)
        shape = _logical_shape(first)
        channels = shape[1] if len(shape) > 1 else "c"
        return (
            f"replace each shuffle with nn.Conv2d({channels}, {channels}, 1, bias=False) holding "
            f"the fixed permutation matrix (runs on the accelerator: est. {duration(conv_time)} "
            f"on {profile.name} against a {duration(first_trip_s)} {profile.fallback_device} "
            "round trip for the first), "
            "or, where only convs read the shuffled tensor, reorder their input channels at "
            "export and drop the shuffle (free)"
        )
    if status == CAUTION and first.kind == OpKind.CHANNEL_SHUFFLE:
        return (
            "check that your runtime has a channel-shuffle operator (ncnn: ShuffleChannel); if "
            "not, export it as a 4-D reshape + transpose (view(n, g, c // g, h * w)) or fold the "
            "permutation into the input channels of the convs that read it"
        )
    if status == CAUTION:
        return (
            f"check that your inference framework has an operator for `{first.op}`; if it does "
            "not, rewrite it with plain conv/reshape ops before export"
        )
    if status == UNLISTED:
        op_list = profile.supported_ops
        assert op_list is not None
        names = [n for n in op_list.ops.get(first.kind, []) if n != "*"]
        instead = (
            f"use an op {op_list.source} has instead ({first.kind}: {', '.join(names)})"
            if names else f"{op_list.source} has no {first.kind} op: rewrite it with ops it has"
        )
        return (
            f"{instead}; or convert the model and check where the toolchain placed `{first.op}`: "
            f"on the {profile.fallback_device}, keep it next to the model's input or output so the "
            "accelerator's graph "
            "is not cut in two, or accept the round trip"
        )
    why = profile.unsupported_ops.get(first.kind, "")
    return (
        f"replace `{first.op}` with an operator the {profile.name} toolchain runs ({profile.name} "
        f"lacks {first.kind}: {why}), or register it as a custom CPU layer and accept the round trip"
    )


def check(ctx: RuleContext) -> Iterator[Finding]:
    graph, cost, profile, options = ctx.graph, ctx.cost, ctx.profile, ctx.options
    overhead_us = (
        options.fallback_overhead_us
        if options.fallback_overhead_us is not None
        else 2 * profile.switch_overhead_s * 1e6
    )
    judgement = judge(graph, cost, profile)  # what the accelerator does not take (folded: never)
    # (status, op kind, name in the vendor's list) -> layers, in the order they run
    reported: dict[tuple[str, str, str], list[Layer]] = {}
    for layer in graph:
        verdict = judgement.ops.get(layer.name)
        if verdict is not None and verdict.status == UNSUPPORTED:
            key = (UNSUPPORTED, layer.kind, "")
        elif layer.kind in options.caution_ops and layer.name not in judgement.folded:
            key = (CAUTION, layer.kind, "")
        elif verdict is not None:
            key = (UNLISTED, layer.kind, verdict.name)
        else:
            continue
        reported.setdefault(key, []).append(layer)

    configured = getattr((ctx.settings or {}).get(CODE), "severity", SEVERITY)
    # Not in the list: a warning, or less where the profile has the rule report less.
    unlisted_severity = min("warning", configured, key=severity_rank)
    for (status, _kind, name), layers in reported.items():
        groups = [layers] if options.group_occurrences else [[layer] for layer in layers]
        for group in groups:
            finding = _finding(group, len(layers), cost, profile, status, name, overhead_us)
            if status == UNLISTED:
                finding.severity = unlisted_severity
            yield finding
    yield from _limit_findings(judgement.limits, cost, profile, options, unlisted_severity,
                               overhead_us)  # fmt: skip


def _finding(
    group: list[Layer],
    total: int,
    cost: ModelCost,
    profile: Profile,
    status: str,
    name: str,
    overhead_us: float,
) -> Finding:
    first = group[0]
    tensor_bytes = [cost.of(layer).input_bytes + cost.of(layer).output_bytes for layer in group]
    # The layer's input and output cross to the fallback device and back (cnnlint.placement).
    trips = [copy_s(profile, b) + overhead_us * 1e-6 for b in tensor_bytes]
    first_trip_s, fallback_s = trips[0], sum(trips)
    share = cost.share(fallback_s)
    on_target_s = sum(cost.of(layer).time_s for layer in group)
    target = f"{profile.name} {cost.precision}"
    count = len(group)
    if count > 1:
        where = _occurrences(group)
        each = f"{_shape(first)}, {size(tensor_bytes[0])} in + out at the first"
    else:
        where = "1 occurrence" if total == 1 else f"1 of {total} occurrences"
        each = f"{_shape(first)}, {size(tensor_bytes[0])} in + out"
    round_trip = (
        f"est. {profile.fallback_device} round trip {duration(fallback_s)} ({percent(share)} of "
        f"est. {target} latency; {each})"
    )
    if status == CAUTION:
        on_share = cost.share(on_target_s)
        what = (
            f"{_what(first)} runs on {target} but is missing from some inference frameworks "
            f"({where}); est. {duration(on_target_s)} here ({percent(on_share)} of latency; "
            f"{each}), but a runtime without it rejects the model"
        )
    elif status == UNLISTED:
        source = profile.supported_ops.source if profile.supported_ops else "the operator list"
        what = (
            f"{_what(first, name)} is not in {source}: it may fall back to the "
            f"{profile.fallback_device} or fail to "
            f"convert ({where}); {round_trip}"
        )
    else:
        what = (
            f"{_what(first)} is not in {profile.name}'s supported operators ({where}): the "
            f"toolchain falls back to the {profile.fallback_device} or fails to convert; {round_trip}"
        )
    metrics = {
        "op_kind": first.kind,
        "op": first.op,
        "occurrences": count,
        "occurrences_in_model": total,
        "supported": status == CAUTION,
        "tensor_bytes": tensor_bytes[0],
        "tensor_bytes_total": sum(tensor_bytes),
        "on_target_ms": ms(on_target_s),
        "locations": [layer.label for layer in group],
    }
    if status == UNLISTED:
        metrics["listed"] = False
        metrics["op_list_name"] = name
    if status != CAUTION:
        metrics["fallback_ms"] = ms(fallback_s)
        metrics["fallback_latency_share"] = round(share, 6)
        metrics["fallback_overhead_us"] = overhead_us
        if first.kind == OpKind.CHANNEL_SHUFFLE:
            metrics["permutation_conv_ms"] = ms(_permutation_conv_time(first, cost))
    return Finding(
        message=f"{first.label}: {what}",
        layer=first,
        fix=_fix(group, cost, profile, status, first_trip_s),
        metrics=metrics,
        severity="info" if status == CAUTION else None,
    )


# ---------------------------------------------------------------------- documented parameter limits
# A profile's [limits.KEY] tables (cnnlint.profile.LIMITS): the kernel, stride, padding, dilation,
# depth multiplier, resize factor, rank and batch ranges the vendor documents per op. A layer
# outside them is an op the toolchain does not run with those parameters (cnnlint.placement finds
# them); here they are worded.
# What each limit is called in a message: (what the layer has, what the limit allows).
_LIMIT_WORDS = {
    "max_kernel": "kernel", "max_kernel_height": "window height", "max_kernel_area": "window area",
    "max_stride": "stride", "strides": "stride", "stride_factors": "stride",
    "max_padding": "padding", "max_dilation": "dilation",
    "max_dilated_kernel_height": "dilated kernel height",
    "max_dilated_kernel_area": "dilated kernel area", "max_depth_multiplier": "depth multiplier",
    "max_groups": "groups", "max_channels": "channels", "scale_factors": "resize factor",
    "max_scale": "resize factor", "integer_scales": "resize factor", "equal_scales": "resize factor",
    "max_rank": "rank", "max_batch": "batch", "max_dim": "dimension",
    "max_dims_over_one": "dimensions > 1", "io_min_last_axis_bytes": "last axis",
}  # fmt: skip


def _allowed(name: str, value: object, layer: Layer | None = None) -> str:
    """The limit as the vendor states it: "kernel <= 31", "stride 1 or 2"."""
    word = "window" if layer is not None and layer.kind == OpKind.POOL else _LIMIT_WORDS[name]
    if name == "strides" or name == "scale_factors":
        return f"{word} {' or '.join(map(str, value))}"  # type: ignore[call-overload]
    if name == "stride_factors":
        return f"strides whose prime factors are {' and '.join(map(str, value))}"  # type: ignore[call-overload]
    if name == "integer_scales":
        return "whole resize factors"
    if name == "equal_scales":
        return "equal height and width resize factors"
    if name == "max_dims_over_one":
        return f"at most {value} dimensions > 1"
    if name == "io_min_last_axis_bytes":
        return f"model input and output last axis of at least {value} bytes"
    return f"{word} <= {value}"


def _limit_fix(name: str, limit: Limit, layer: Layer, bytes_per_element: int) -> str:
    """One concrete change that brings the layer within the limit."""
    allowed, value = _allowed(name, limit.value, layer), limit.value
    if layer.kind == OpKind.POOL:
        return (f"keep the pooling {allowed} (pool in two steps: to a larger output, then a "
                "smaller pool)")
    if name in ("max_kernel", "max_dilated_kernel_height", "max_dilated_kernel_area"):
        return (f"keep the {_LIMIT_WORDS[name]} within {allowed}: stack smaller convs for the same "
                "receptive field (k1 + k2 - 1: two 5x5 convs cover a 9x9), and factor a large "
                "dilation into a chain of smaller ones")
    if name in ("max_stride", "strides", "stride_factors"):
        return (f"use {allowed}: downsample in two steps (a stride-2 layer, then another), or "
                "with a pool the target runs")
    if name == "max_padding":
        return (f"keep {allowed}: pad the input with an explicit pad layer (if the target runs "
                "it) or use a smaller kernel")
    if name == "max_dilation":
        return f"keep {allowed}: factor the dilation into a chain of smaller ones (8 = 2 x 2 x 2)"
    if name == "max_depth_multiplier":
        return ("use a depthwise conv with one output per input channel followed by a 1x1 conv "
                "to the wider width")
    if name == "max_groups":
        return f"use {allowed}: a dense conv, or split the groups into separate convs and concat"
    if name == "max_channels":
        return f"keep {allowed}: split the layer's channels over several layers"
    if name in ("scale_factors", "max_scale", "integer_scales", "equal_scales"):
        return (f"resize with {allowed}: in steps (2x then 2x for 4x), or pick an input size that "
                "makes the factor allowed")
    if name in ("max_rank", "max_dims_over_one"):
        return f"fold dimensions together (reshape) so the tensor has {allowed}"
    if name == "max_batch":
        return f"export with batch {value} and run the images one after another"
    if name == "max_dim":
        return f"tile the tensor into pieces with {allowed}"
    elements = value // bytes_per_element if isinstance(value, int) else value
    return (f"give the last axis at least {elements} elements: move a larger dimension last "
            "(Apple's BC1S layout puts the sequence there)")


def _limit_findings(
    breaks: list[LimitBreak], cost: ModelCost, profile: Profile, options: Options, severity: str,
    overhead_us: float,
) -> Iterator[Finding]:
    bytes_per_element = BYTES_PER_ELEMENT.get(cost.precision, 4)
    # (table key, limit name) -> [(layer, what it has)], in the order the layers run
    broken: dict[tuple[str, str], list[tuple[Layer, str]]] = {}
    for hit in breaks:
        broken.setdefault((hit.key, hit.name), []).append((hit.layer, hit.found))
    for (key, name), hits in broken.items():
        limit = profile.limits[key][name]
        groups = [hits] if options.group_occurrences else [[hit] for hit in hits]
        for group in groups:
            finding = _limit_finding(group, len(hits), key, name, limit, cost, profile, overhead_us,
                                     bytes_per_element)  # fmt: skip
            finding.severity = "info" if limit.effect == SLOW else severity
            yield finding


def _limit_finding(
    hits: list[tuple[Layer, str]],
    total: int,
    key: str,
    name: str,
    limit: Limit,
    cost: ModelCost,
    profile: Profile,
    overhead_us: float,
    bytes_per_element: int,
) -> Finding:
    layers = [layer for layer, _ in hits]
    first, found = hits[0]
    target = f"{profile.name} {cost.precision}"
    count = len(hits)
    if count > 1:
        where = _occurrences(layers)
    else:
        where = "1 occurrence" if total == 1 else f"1 of {total} occurrences"
    what = f"{_what(first, op_list_name(first))}: {found}"
    allowed = _allowed(name, limit.value, first)
    on_target_s = sum(cost.of(layer).time_s for layer in layers)
    metrics: dict = {
        "op_kind": first.kind, "op": first.op, "limit": name, "limit_key": key,
        "limit_value": limit.value, "limit_source": limit.source, "limit_effect": limit.effect,
        "found": [text for _, text in hits], "occurrences": count, "occurrences_in_model": total,
        "on_target_ms": ms(on_target_s), "locations": [layer.label for layer in layers],
    }  # fmt: skip
    if limit.effect == SLOW:
        message = (
            f"{what}, outside {profile.name}'s guidance ({allowed}; {limit.source}): it runs, but "
            f"more slowly than the guide's shapes ({where}); est. {duration(on_target_s)} here "
            f"({percent(cost.share(on_target_s))} of est. {target} latency)"
        )
    else:
        tensor_bytes = [cost.of(layer).input_bytes + cost.of(layer).output_bytes for layer in layers]
        fallback_s = sum(copy_s(profile, b) + overhead_us * 1e-6 for b in tensor_bytes)
        share = cost.share(fallback_s)
        message = (
            f"{what}, outside {profile.name}'s limit ({allowed}; {limit.source}): the toolchain "
            f"runs it on the {profile.fallback_device} or fails to convert ({where}); est. "
            f"{profile.fallback_device} round trip {duration(fallback_s)} ({percent(share)} of est. "
            f"{target} latency; {size(tensor_bytes[0])} in + out at the first)"
        )
        metrics.update(fallback_ms=ms(fallback_s), fallback_latency_share=round(share, 6),
                       fallback_overhead_us=overhead_us, tensor_bytes=tensor_bytes[0],
                       tensor_bytes_total=sum(tensor_bytes))  # fmt: skip
    return Finding(
        message=f"{first.label}: {message}",
        layer=first,
        fix=_limit_fix(name, limit, first, bytes_per_element),
        metrics=metrics,
    )
