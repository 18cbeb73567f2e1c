"""What cnnlint knows about each op kind, in one table, and the predicates every stage asks.

One row per :class:`~cnnlint.core.OpKind`:

- ``op_class``: the profile's ``[efficiency]`` class (``CONV_BY_KERNEL``: conv1x1, conv3x3 or
  conv_kxk by the layer's kernel; ``POOL_BY_WINDOW``: pool for a pooling window, reduce for an
  adaptive or global pool; ``ACTIVATION_BY_NAME``: transcendental for sigmoid, SiLU, GELU and
  the like, elementwise for the rest);
- ``free``: launches no kernel (views and bookkeeping; opaque submodules, whose work is unknown);
- ``fusion``: its role when an engine fuses layers into one kernel: a ``producer`` (conv, linear)
  that norms, activations and residual adds fold into, or one of those three roles (the keys of
  a profile's ``[fusion]`` table);
- ``shape``: ``SAME`` when the output has the input's shape, dtype and layout, ``BROADCAST`` for
  element-wise ops between tensors (the first operand's shape when the operands agree), ``NEW``
  otherwise;
- ``keeps_channels``: the output has the input's channel count (an image's 3 channels survive it);
- ``view``: the output holds the input's values unchanged (a reshape, dropout at inference);
- ``formula``: the name of the work formula the cost stage registers for it
  (``cnnlint.cost.register_formula``).

Some facts belong to the op name rather than the kind (an activation's FLOPs per element, which
element-wise ops are additions); names are compared in one spelling (:func:`normalise`: ``ReLU``,
``relu`` and ``relu_`` are all ``relu``). This module imports only :mod:`cnnlint.core`, so the
trace stage, the cost stage and the rules can all ask it. Adding an op kind means one row here
(and the torch calls that map to it, in :mod:`cnnlint.trace.torch_kinds`).
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnlint.core import Layer, OpKind

# The op classes a profile's [efficiency] table is keyed by.
OP_CLASSES = (
    "conv3x3",
    "conv1x1",
    "conv_kxk",
    "group_conv",
    "depthwise_conv",
    "linear",
    "matmul",
    "elementwise",
    "transcendental",
    "norm",
    "pool",
    "avg_pool",
    "reduce",
    "other",
)
CONV_BY_KERNEL = "conv by kernel"  # op_class of dense convs: conv1x1, conv3x3 or conv_kxk
# op_class of activations: "transcendental" for those that evaluate exp, tanh or erf
# (TRANSCENDENTAL_ACTIVATIONS), whose eager CPU kernels cost several times relu's per element;
# "elementwise" for the rest.
ACTIVATION_BY_NAME = "activation by name"
# Classes a profile may leave out of [efficiency] and [overhead_us]: they then take the class
# named here (a profile written before the class existed, or a target where they do not differ).
OP_CLASS_FALLBACK = {"transcendental": "elementwise", "norm": "elementwise", "avg_pool": "pool"}
# op_class of pools: "pool" for a max pool slid over the map with a kernel, "avg_pool" for an
# average one, whose eager CPU kernels loop over each window's taps at rates of their own (one
# thread of a Xeon: 6 ns per tap for a 3 x 3 max pool, 2.7 for a 3 x 3 average pool, so one
# class priced Inception-v3's average pools at twice their time); "reduce" for an adaptive or
# global pool, which streams its input once like torch.mean.
POOL_BY_WINDOW = "pool by window"

# Fusion roles. The last three are the keys of a profile's [fusion] table.
PRODUCER = "producer"
NORM = "norm"
ACTIVATION = "activation"
RESIDUAL_ADD = "residual_add"
FUSED_ROLES = (NORM, ACTIVATION, RESIDUAL_ADD)

# Output shapes.
SAME = "same"
BROADCAST = "broadcast"
NEW = "new"


@dataclass(frozen=True)
class Op:
    op_class: str
    formula: str
    free: bool = False
    fusion: str | None = None
    shape: str = NEW
    keeps_channels: bool = False
    view: bool = False


K = OpKind
OPS: dict[str, Op] = {
    K.INPUT: Op("other", "none", free=True),
    K.OUTPUT: Op("other", "none", free=True),
    K.CONV: Op(CONV_BY_KERNEL, "conv", fusion=PRODUCER),
    K.DEPTHWISE_CONV: Op("depthwise_conv", "conv", fusion=PRODUCER),
    K.GROUP_CONV: Op("group_conv", "conv", fusion=PRODUCER),
    K.CONV_TRANSPOSE: Op(CONV_BY_KERNEL, "conv_transpose", fusion=PRODUCER),
    K.LINEAR: Op("linear", "linear", fusion=PRODUCER),
    K.MATMUL: Op("matmul", "matmul"),
    K.NORM: Op("norm", "norm", fusion=NORM, shape=SAME, keeps_channels=True),
    K.ACTIVATION: Op(ACTIVATION_BY_NAME, "activation", fusion=ACTIVATION, shape=SAME, keeps_channels=True),
    # Only an addition of two tensors is a residual add (see is_residual_add).
    K.ELEMENTWISE: Op("elementwise", "per_output_element", fusion=RESIDUAL_ADD, shape=BROADCAST,
                      keeps_channels=True),
    K.CONCAT: Op("other", "none"),
    K.SPLIT: Op("other", "none", free=True),
    K.CHANNEL_SHUFFLE: Op("other", "none", keeps_channels=True),
    K.POOL: Op(POOL_BY_WINDOW, "pool", keeps_channels=True),
    K.UPSAMPLE: Op("other", "per_output_element"),  # pixel_shuffle changes the channels
    K.REDUCE: Op("reduce", "per_input_element"),
    K.RESHAPE: Op("other", "none", free=True, view=True),
    K.IDENTITY: Op("other", "none", free=True, shape=SAME, keeps_channels=True, view=True),
    # Opaque submodules: their work is unknown, and a guess would be a number cnnlint did not
    # compute; the summary says what they leave out (cost.ModelCost.opaque).
    K.OPAQUE: Op("other", "none", free=True),
    K.OTHER: Op("other", "none"),
}  # fmt: skip
del K

FORMULA_NAMES = frozenset(op.formula for op in OPS.values())
FREE_KINDS = frozenset(kind for kind, op in OPS.items() if op.free)
VIEW_KINDS = frozenset(kind for kind, op in OPS.items() if op.view)
CHANNEL_KEEPING_KINDS = frozenset(kind for kind, op in OPS.items() if op.keeps_channels)


def normalise(op: str) -> str:
    """One spelling per op name: ``ReLU``, ``relu`` and ``relu_`` -> ``relu``;
    ``LeakyReLU`` and ``leaky_relu`` -> ``leakyrelu``."""
    return op.lower().replace("_", "")


# FLOPs per element for activations (estimates of the arithmetic in a typical implementation);
# others count 2.
ACTIVATION_FLOPS = {"relu": 1, "relu6": 2, "hardtanh": 2, "clamp": 2, "leakyrelu": 2, "prelu": 2,
                    "hardswish": 4, "hardsigmoid": 3, "sigmoid": 4, "silu": 5, "tanh": 4,
                    "gelu": 8, "mish": 8, "elu": 4}  # fmt: skip
# Activations computed through exp, tanh or erf (op class "transcendental").
TRANSCENDENTAL_ACTIVATIONS = frozenset({"sigmoid", "silu", "swish", "tanh", "gelu", "mish", "elu",
                                        "selu", "celu", "softplus", "logsigmoid"})  # fmt: skip
_ADDITIONS = frozenset({"add", "iadd"})
_MULTIPLICATIONS = frozenset({"mul", "imul"})
_DIVISIONS = frozenset({"truediv", "itruediv", "div"})
# Names whose output shape (or dtype) is not their kind's: GLU halves a dimension; casts change
# the dtype.
_NEW_SHAPE = frozenset({"glu", "to", "typeas", "float", "half"})
# Layout calls of an already contiguous tensor hand it back as it is.
_SAME_SHAPE = frozenset({"contiguous"})


# Activations that models write out element by element; compilers (TensorRT, TVM, XLA) fuse each
# pattern like the module, so the graph stage collapses it into one activation layer with this
# name. ``x * gate(x)``, by the gate's name:
GATED_ACTIVATIONS = {"sigmoid": "silu", "hardsigmoid": "hardswish"}
# hardsigmoid(x) = clamp(x + 3, 0, 6) / 6 (PyTorch's definition; MobileNetV3, Howard et al. 2019).
HARDSIGMOID_SHIFT = 3.0
HARDSIGMOID_BOUNDS = (0.0, 6.0)
# Activations that clamp to fixed bounds whatever their arguments.
_FIXED_BOUNDS = {"relu6": (0.0, 6.0)}


def activation_name(layer: Layer) -> str:
    """The normalised op name of an activation layer ("" for any other layer)."""
    return normalise(layer.op) if layer.kind == OpKind.ACTIVATION else ""


def clamp_bounds(layer: Layer) -> tuple[float, float] | None:
    """(low, high) of an activation that clamps to fixed bounds (relu6, hardtanh, clamp), else
    None; the graph stage records the bounds of a call in ``attrs["bounds"]``."""
    name = activation_name(layer)
    if name in _FIXED_BOUNDS:
        return _FIXED_BOUNDS[name]
    bounds = layer.attrs.get("bounds")
    return tuple(bounds) if name and bounds else None


def scalar_operand(layer: Layer) -> float | None:
    """The number an element-wise op applies to one tensor (``x + 3``, ``x / 6``), else None;
    the graph stage records it in ``attrs["scalar"]`` (for division only as the divisor)."""
    return layer.attrs.get("scalar") if layer.kind == OpKind.ELEMENTWISE else None


def is_division(layer: Layer) -> bool:
    return layer.kind == OpKind.ELEMENTWISE and normalise(layer.op) in _DIVISIONS


def activation_flops(op: str) -> int:
    """FLOPs per output element of an activation."""
    return ACTIVATION_FLOPS.get(normalise(op), 2)


def norm_flops(op: str) -> int:
    """FLOPs per output element of a norm: inference BatchNorm is a per-channel scale and shift;
    other norms compute statistics."""
    return 2 if "batch" in op.lower() else 5


def conv_class(kernel: int | tuple[int, ...] | list[int], groups: int = 1, in_channels: int = 0) -> str:
    """The efficiency class of a conv with this kernel and grouping."""
    if groups > 1:
        return "depthwise_conv" if groups == in_channels else "group_conv"
    taps = (kernel,) if isinstance(kernel, int) else tuple(kernel or (1,))
    if all(k == 1 for k in taps):
        return "conv1x1"
    if all(k == 3 for k in taps):
        return "conv3x3"
    return "conv_kxk"


# The kernels eager torch runs inside a call kept whole (a library function under
# torch.fx.wrap, a torch layer the op table has no formula for), by aten op: the [efficiency]
# class each is priced in (cnnlint.cost). Matrix products of a weight (mm, addmm: what F.linear
# runs) are ``linear``, of two activations (bmm) ``matmul``, as the calibration times them; data
# movement (a copy, a concat, a pad, a roll, a gather) is ``other``, as a concat or a copying
# reshape is; a softmax, an exp per element, is ``transcendental`` (SOFTMAX_FLOPS); an op not
# listed is element-wise. Views and allocations launch nothing.
ATEN_CLASSES = {
    "mm": "linear", "addmm": "linear", "bmm": "matmul", "baddbmm": "matmul",
    "_softmax": "transcendental", "_log_softmax": "transcendental", "mean": "reduce", "sum": "reduce", "amax": "reduce",
    "max": "reduce", "native_layer_norm": "norm", "native_group_norm": "norm",
    "_native_batch_norm_legit_no_training": "norm", "native_batch_norm": "norm",
    "gelu": "transcendental", "sigmoid": "transcendental", "silu": "transcendental", "tanh": "transcendental",
    "exp": "transcendental", "erf": "transcendental", "mish": "transcendental", "elu": "transcendental",
    "softplus": "transcendental", "log_sigmoid_forward": "transcendental",
    "clone": "other", "copy_": "other", "_to_copy": "other", "cat": "other", "stack": "other", "roll": "other",
    "constant_pad_nd": "other", "index": "other", "index_select": "other", "gather": "other",
}  # fmt: skip
# FLOPs per element of a softmax (estimate): an exp, and the row's max, sum and division.
SOFTMAX_FLOPS = 8
ATEN_NO_KERNEL = frozenset({"empty", "empty_strided", "empty_like", "new_empty", "new_empty_strided", "detach",
                            "alias", "_unsafe_view", "lift_fresh", "lift_fresh_copy", "scalar_tensor",
                            "_local_scalar_dense", "sym_size", "sym_stride", "sym_numel"})  # fmt: skip


def aten_op_class(name: str, weight_shape: tuple[int, ...] = (), groups: int = 1, in_channels: int = 0) -> str:
    """The [efficiency] class of one aten op a kept-whole call runs (``ATEN_CLASSES``); a
    convolution's by its weight's kernel and its groups."""
    if name in ("convolution", "_convolution"):
        return conv_class(tuple(weight_shape[2:]) or (1,), groups, in_channels)
    return ATEN_CLASSES.get(name, "elementwise")


def op_class(layer: Layer) -> str:
    """The [efficiency] class of a layer (one of OP_CLASSES)."""
    cls = OPS[layer.kind].op_class
    if cls == CONV_BY_KERNEL:
        return conv_class(layer.attrs.get("kernel_size") or (1,))
    if cls == POOL_BY_WINDOW:
        if not is_windowed_pool(layer):
            return "reduce"
        return "avg_pool" if "avg" in normalise(layer.op) else "pool"
    if cls == ACTIVATION_BY_NAME:
        return "transcendental" if activation_name(layer) in TRANSCENDENTAL_ACTIVATIONS else "elementwise"
    return cls


def is_windowed_pool(layer: Layer) -> bool:
    """A pool that slides a known window over the map (``nn.MaxPool2d(3, 2)``), not an adaptive or
    global one; the graph stage records the window in ``attrs["kernel_size"]``."""
    return layer.kind == OpKind.POOL and not layer.attrs.get("adaptive") and bool(layer.attrs.get("kernel_size"))


# The classes of ops that slide a window over one channel (a windowed pool, a depthwise conv; an
# adaptive or global pool is a ``reduce``): each output's window bounds and store cost beyond its
# taps (Profile.window_output_ns).
WINDOWED_CLASSES = frozenset({"pool", "avg_pool", "depthwise_conv"})


def is_free(layer: Layer | str) -> bool:
    """Launches no kernel: views, bookkeeping, opaque submodules."""
    return OPS[_kind(layer)].free


def is_view(layer: Layer | str) -> bool:
    """Holds its input's values unchanged (reshape, permute, dropout at inference)."""
    return OPS[_kind(layer)].view


def is_passthrough(layer: Layer) -> bool:
    """Hands its input on unchanged, same shape and dtype, and launches no kernel (``nn.Identity``,
    dropout at inference, ``contiguous``): fusion looks through it, as an engine drops it."""
    return is_free(layer) and is_view(layer) and keeps_shape(layer)


def keeps_channels(layer: Layer | str) -> bool:
    """The output has the input's channel count."""
    return OPS[_kind(layer)].keeps_channels


# Upsampling calls that move pixels into channels or back; the kind's other calls (interpolate,
# nn.Upsample) resize the map and keep its channels.
_CHANNEL_REARRANGING = frozenset({"pixelshuffle", "pixelunshuffle"})


def keeps_channel_count(layer: Layer) -> bool:
    """The output has the input's channel count: a channel-keeping kind (:func:`keeps_channels`),
    or an upsample that only resizes the map (``F.interpolate``, ``nn.Upsample``; a pixel
    (un)shuffle moves pixels into channels or back)."""
    if layer.kind == OpKind.UPSAMPLE:
        return normalise(layer.op) not in _CHANNEL_REARRANGING
    return keeps_channels(layer)


def keeps_shape(layer: Layer | str, op: str = "") -> bool:
    """A one-input op whose output has its input's shape, dtype and layout. Give a layer, or a
    kind and the op's name (``keeps_shape(OpKind.ACTIVATION, "GLU")`` is False)."""
    if isinstance(layer, Layer):
        layer, op = layer.kind, layer.op
    name = normalise(op)
    if name in _SAME_SHAPE:
        return True
    return OPS[layer].shape == SAME and name not in _NEW_SHAPE


def broadcasts(layer: Layer | str) -> bool:
    """An element-wise op between tensors: its output has the first operand's shape when the
    operands have the same shape (or the other is a number)."""
    return OPS[_kind(layer)].shape == BROADCAST


def is_addition(layer: Layer) -> bool:
    return layer.kind == OpKind.ELEMENTWISE and normalise(layer.op) in _ADDITIONS


def is_multiplication(layer: Layer) -> bool:
    return layer.kind == OpKind.ELEMENTWISE and normalise(layer.op) in _MULTIPLICATIONS


def is_residual_add(layer: Layer) -> bool:
    """An addition of two tensors (not of a tensor and a constant)."""
    return is_addition(layer) and layer.attrs.get("tensor_operands", 2) >= 2


def fusion_role(layer: Layer) -> str | None:
    """PRODUCER, NORM, ACTIVATION, RESIDUAL_ADD, or None for a layer that takes no part in
    conv fusion."""
    role = OPS[layer.kind].fusion
    if role == RESIDUAL_ADD and not is_residual_add(layer):
        return None
    return role


def _kind(layer: Layer | str) -> str:
    return layer if isinstance(layer, str) else layer.kind


# ---------------------------------------------------------------------------- operator lists
# A target's toolchain documents the operators it converts by name (the NNIE mapper's layer list,
# Horizon's BPU operator table); a profile's ``[supported_ops]`` copies that list, by op kind and
# op name, in the spelling of :func:`op_list_spelling`. These are the names cnnlint gives layers of
# each kind, the vocabulary such a list is checked against when the profile loads (a name outside
# it is a typo that would silently disable the check). ``tests/test_vendor_ops.py`` checks it
# against the torch calls that map to each kind (:mod:`cnnlint.trace.torch_kinds`).
OP_LIST_NAMES: dict[str, frozenset[str]] = {
    OpKind.CONV: frozenset({"conv"}),
    OpKind.DEPTHWISE_CONV: frozenset({"conv"}),
    OpKind.GROUP_CONV: frozenset({"conv"}),
    OpKind.CONV_TRANSPOSE: frozenset({"convtranspose"}),
    OpKind.LINEAR: frozenset({"linear", "bilinear"}),
    OpKind.MATMUL: frozenset({"matmul", "mm", "bmm", "einsum", "multiheadattention",
                              "scaleddotproductattention", "shiftedwindowattention"}),
    OpKind.NORM: frozenset({"batchnorm", "instancenorm", "layernorm", "groupnorm", "rmsnorm",
                            "localresponsenorm", "normalize"}),
    OpKind.ACTIVATION: frozenset({"relu", "relu6", "leakyrelu", "prelu", "rrelu", "elu", "selu",
                                  "celu", "gelu", "silu", "mish", "sigmoid", "hardsigmoid",
                                  "hardswish", "tanh", "hardtanh", "clamp", "clip", "clampmin",
                                  "softplus", "softsign", "tanhshrink", "logsigmoid", "threshold",
                                  "glu"}),
    OpKind.ELEMENTWISE: frozenset({"add", "iadd", "sub", "isub", "mul", "imul", "truediv",
                                   "itruediv", "div", "pow", "neg", "maximum", "minimum", "where"}),
    OpKind.CONCAT: frozenset({"cat", "concat", "stack"}),
    OpKind.SPLIT: frozenset({"chunk", "split", "tensorsplit", "unbind"}),
    OpKind.CHANNEL_SHUFFLE: frozenset({"channelshuffle"}),
    OpKind.POOL: frozenset({"maxpool", "avgpool", "adaptiveavgpool", "adaptivemaxpool", "lppool"}),
    # A resize is named by its mode (interpolate's and nn.Upsample's); "interpolate" and
    # "upsample" name one whose mode the graph stage could not read.
    OpKind.UPSAMPLE: frozenset({"nearest", "nearestexact", "linear", "bilinear", "bicubic",
                                "trilinear", "area", "pixelshuffle", "pixelunshuffle",
                                "interpolate", "upsample"}),
    OpKind.REDUCE: frozenset({"mean", "sum", "amax", "max", "norm", "softmax", "logsoftmax",
                              "softmin"}),
    OpKind.RESHAPE: frozenset({"view", "viewas", "reshape", "flatten", "unflatten", "squeeze",
                               "unsqueeze", "expand", "expandas", "permute", "transpose", "t",
                               "narrow", "getitem"}),
    # Only the calls the op table names; any other call of kind "other" is one the linter does
    # not classify, and no list names it.
    OpKind.OTHER: frozenset({"pad", "gridsample"}),
}  # fmt: skip
# Kinds no operator list names: not operators (inputs, outputs), gone at export (dropout and
# other identities), or of unknown content (opaque submodules).
_UNLISTED_KINDS = frozenset({OpKind.INPUT, OpKind.OUTPUT, OpKind.IDENTITY, OpKind.OPAQUE})
# Torch spellings that are another op at inference: a synchronised or lazy module is the plain one.
_SAME_OP = {"syncbatchnorm": "batchnorm", "lazybatchnorm": "batchnorm",
            "lazyinstancenorm": "instancenorm", "lazyconv": "conv",
            "lazyconvtranspose": "convtranspose", "lazylinear": "linear"}  # fmt: skip


def op_list_spelling(name: str) -> str:
    """One spelling for an op name in an operator list: :func:`normalise`d, without a module's
    dimension suffix or a mode's hyphen (``BatchNorm2d`` and ``batch_norm`` -> ``batchnorm``,
    ``nearest-exact`` -> ``nearestexact``)."""
    spelled = normalise(name).replace("-", "")
    if len(spelled) > 2 and spelled[-1] == "d" and spelled[-2] in "123" and spelled[-3].isalpha():
        spelled = spelled[:-2]
    return _SAME_OP.get(spelled, spelled)


def op_list_name(layer: Layer) -> str:
    """The name a target's operator list knows this layer by (:data:`OP_LIST_NAMES`): its op in
    :func:`op_list_spelling`, a resize by its mode (``nearest``, ``bilinear``), any channel
    shuffle as ``channelshuffle``; "" for a layer no list names (inputs and outputs, dropout and
    other pass-throughs, opaque submodules, calls of kind ``other`` the op table has no name
    for). A name outside the vocabulary (a kind added later, a subclass's own name) is returned
    as it is spelled: a list does not name it."""
    if layer.kind in _UNLISTED_KINDS or is_passthrough(layer):
        return ""
    if layer.kind == OpKind.CHANNEL_SHUFFLE:
        return "channelshuffle"
    name = op_list_spelling(layer.op)
    mode = layer.attrs.get("mode")
    if layer.kind == OpKind.UPSAMPLE and name not in _CHANNEL_REARRANGING and isinstance(mode, str):
        name = op_list_spelling(mode)
    if layer.kind == OpKind.OTHER and name not in OP_LIST_NAMES[OpKind.OTHER]:
        return ""
    return name
