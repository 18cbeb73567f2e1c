"""Which torch calls are which op kind: the trace stage's mapping from torch to cnnlint.

``MODULE_KINDS`` (module classes), ``FUNCTION_KINDS`` (``call_function`` targets) and
``METHOD_KINDS`` (Tensor methods) name the :class:`~cnnlint.core.OpKind` of each torch call;
everything cnnlint knows about a kind (its class, cost, fusion role, shape) is in the op table,
:mod:`cnnlint.ops`. The graph stage builds layers with this mapping; the trace stage asks the op
table about the kind (does it keep its input's shape?) through it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlint.core import OpKind

# Module classes -> op kind. Checked in order with isinstance; convs are refined by groups.
MODULE_KINDS: list[tuple[tuple[type, ...], str]] = [
    ((nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d), OpKind.CONV_TRANSPOSE),
    ((nn.Conv1d, nn.Conv2d, nn.Conv3d), OpKind.CONV),
    ((nn.Linear, nn.Bilinear), OpKind.LINEAR),
    (
        (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm,
         getattr(nn, "RMSNorm", nn.LayerNorm)),
        OpKind.NORM,
    ),
    (
        (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.GELU, nn.Tanh,
         nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.Mish, nn.Softplus, nn.Hardtanh,
         nn.GLU, nn.Tanhshrink, nn.Softsign, nn.LogSigmoid, nn.Threshold, nn.RReLU),
        OpKind.ACTIVATION,
    ),
    ((nn.Softmax, nn.LogSoftmax, nn.Softmin), OpKind.REDUCE),
    (
        (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
         nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd,
         nn.modules.pooling._LPPoolNd),
        OpKind.POOL,
    ),
    ((nn.Upsample, nn.PixelShuffle, nn.PixelUnshuffle), OpKind.UPSAMPLE),
    ((nn.ChannelShuffle,), OpKind.CHANNEL_SHUFFLE),
    ((nn.Flatten, nn.Unflatten), OpKind.RESHAPE),
    ((nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity),
     OpKind.IDENTITY),
    ((nn.MultiheadAttention,), OpKind.MATMUL),
]  # fmt: skip

# Functions (call_function targets) -> op kind.
FUNCTION_KINDS: dict[Callable[..., Any], str] = {
    F.conv1d: OpKind.CONV, F.conv2d: OpKind.CONV, F.conv3d: OpKind.CONV,
    F.conv_transpose1d: OpKind.CONV_TRANSPOSE, F.conv_transpose2d: OpKind.CONV_TRANSPOSE,
    F.conv_transpose3d: OpKind.CONV_TRANSPOSE,
    F.linear: OpKind.LINEAR, torch.matmul: OpKind.MATMUL, torch.bmm: OpKind.MATMUL,
    torch.mm: OpKind.MATMUL, operator.matmul: OpKind.MATMUL, torch.einsum: OpKind.MATMUL,
    F.scaled_dot_product_attention: OpKind.MATMUL,
    F.batch_norm: OpKind.NORM, F.layer_norm: OpKind.NORM, F.group_norm: OpKind.NORM,
    F.instance_norm: OpKind.NORM, F.normalize: OpKind.NORM,
    F.relu: OpKind.ACTIVATION, F.relu_: OpKind.ACTIVATION, F.relu6: OpKind.ACTIVATION,
    F.silu: OpKind.ACTIVATION, F.hardswish: OpKind.ACTIVATION, F.hardsigmoid: OpKind.ACTIVATION,
    F.gelu: OpKind.ACTIVATION, F.leaky_relu: OpKind.ACTIVATION, F.elu: OpKind.ACTIVATION,
    F.mish: OpKind.ACTIVATION, F.sigmoid: OpKind.ACTIVATION, F.tanh: OpKind.ACTIVATION,
    F.hardtanh: OpKind.ACTIVATION, F.softplus: OpKind.ACTIVATION, F.glu: OpKind.ACTIVATION,
    torch.relu: OpKind.ACTIVATION, torch.relu_: OpKind.ACTIVATION, torch.sigmoid: OpKind.ACTIVATION, torch.tanh: OpKind.ACTIVATION,
    torch.clamp: OpKind.ACTIVATION, torch.clip: OpKind.ACTIVATION,
    F.softmax: OpKind.REDUCE, F.log_softmax: OpKind.REDUCE, torch.softmax: OpKind.REDUCE,
    torch.mean: OpKind.REDUCE, torch.sum: OpKind.REDUCE, torch.amax: OpKind.REDUCE,
    operator.add: OpKind.ELEMENTWISE, operator.iadd: OpKind.ELEMENTWISE,
    operator.mul: OpKind.ELEMENTWISE, operator.imul: OpKind.ELEMENTWISE,
    operator.sub: OpKind.ELEMENTWISE, operator.isub: OpKind.ELEMENTWISE,
    operator.truediv: OpKind.ELEMENTWISE, operator.itruediv: OpKind.ELEMENTWISE,
    operator.neg: OpKind.ELEMENTWISE, operator.pow: OpKind.ELEMENTWISE,
    torch.add: OpKind.ELEMENTWISE, torch.mul: OpKind.ELEMENTWISE, torch.sub: OpKind.ELEMENTWISE,
    torch.div: OpKind.ELEMENTWISE, torch.maximum: OpKind.ELEMENTWISE,
    torch.minimum: OpKind.ELEMENTWISE, torch.where: OpKind.ELEMENTWISE,
    torch.cat: OpKind.CONCAT, torch.concat: OpKind.CONCAT, torch.stack: OpKind.CONCAT,
    torch.split: OpKind.SPLIT, torch.chunk: OpKind.SPLIT, torch.tensor_split: OpKind.SPLIT,
    torch.unbind: OpKind.SPLIT,
    torch.channel_shuffle: OpKind.CHANNEL_SHUFFLE,
    F.max_pool1d: OpKind.POOL, F.max_pool2d: OpKind.POOL, F.max_pool3d: OpKind.POOL,
    F.avg_pool1d: OpKind.POOL, F.avg_pool2d: OpKind.POOL, F.avg_pool3d: OpKind.POOL,
    F.adaptive_avg_pool1d: OpKind.POOL, F.adaptive_avg_pool2d: OpKind.POOL,
    F.adaptive_avg_pool3d: OpKind.POOL, F.adaptive_max_pool1d: OpKind.POOL,
    F.adaptive_max_pool2d: OpKind.POOL, F.adaptive_max_pool3d: OpKind.POOL,
    F.interpolate: OpKind.UPSAMPLE, F.upsample: OpKind.UPSAMPLE, F.pixel_shuffle: OpKind.UPSAMPLE,
    F.pixel_unshuffle: OpKind.UPSAMPLE, F.grid_sample: OpKind.OTHER, F.pad: OpKind.OTHER,
    torch.flatten: OpKind.RESHAPE, torch.reshape: OpKind.RESHAPE, torch.transpose: OpKind.RESHAPE,
    torch.permute: OpKind.RESHAPE, torch.squeeze: OpKind.RESHAPE, torch.unsqueeze: OpKind.RESHAPE,
    operator.getitem: OpKind.RESHAPE,
    F.dropout: OpKind.IDENTITY, F.dropout2d: OpKind.IDENTITY, F.dropout1d: OpKind.IDENTITY,
}  # fmt: skip
# Functions of model libraries that torch.fx keeps as one call (``torch.fx.wrap``), by qualified
# name, so that looking them up imports nothing.
NAMED_FUNCTION_KINDS: dict[str, str] = {
    # Swin's window attention: q/k/v and output projections plus attention within each window.
    "torchvision.models.swin_transformer.shifted_window_attention": OpKind.MATMUL,
    "torchvision.models.video.swin_transformer.shifted_window_attention_3d": OpKind.MATMUL,
}
if hasattr(torch, "native_channel_shuffle"):
    FUNCTION_KINDS[torch.native_channel_shuffle] = OpKind.CHANNEL_SHUFFLE
if hasattr(F, "channel_shuffle"):
    FUNCTION_KINDS[F.channel_shuffle] = OpKind.CHANNEL_SHUFFLE

# Tensor methods (call_method targets) -> op kind.
METHOD_KINDS: dict[str, str] = {
    "view": OpKind.RESHAPE, "reshape": OpKind.RESHAPE, "flatten": OpKind.RESHAPE,
    "permute": OpKind.RESHAPE, "transpose": OpKind.RESHAPE, "contiguous": OpKind.RESHAPE,
    "squeeze": OpKind.RESHAPE, "unsqueeze": OpKind.RESHAPE, "expand": OpKind.RESHAPE,
    "expand_as": OpKind.RESHAPE, "view_as": OpKind.RESHAPE, "t": OpKind.RESHAPE,
    "unflatten": OpKind.RESHAPE, "narrow": OpKind.RESHAPE,
    "chunk": OpKind.SPLIT, "split": OpKind.SPLIT, "unbind": OpKind.SPLIT,
    "tensor_split": OpKind.SPLIT,
    "relu": OpKind.ACTIVATION, "relu_": OpKind.ACTIVATION, "sigmoid": OpKind.ACTIVATION,
    "sigmoid_": OpKind.ACTIVATION, "tanh": OpKind.ACTIVATION, "clamp": OpKind.ACTIVATION,
    "clamp_": OpKind.ACTIVATION, "clamp_min": OpKind.ACTIVATION, "hardtanh": OpKind.ACTIVATION,
    "add": OpKind.ELEMENTWISE, "add_": OpKind.ELEMENTWISE, "mul": OpKind.ELEMENTWISE,
    "mul_": OpKind.ELEMENTWISE, "sub": OpKind.ELEMENTWISE, "div": OpKind.ELEMENTWISE,
    "div_": OpKind.ELEMENTWISE, "pow": OpKind.ELEMENTWISE, "neg": OpKind.ELEMENTWISE,
    "mean": OpKind.REDUCE, "sum": OpKind.REDUCE, "amax": OpKind.REDUCE, "max": OpKind.REDUCE,
    "softmax": OpKind.REDUCE, "norm": OpKind.REDUCE,
    "matmul": OpKind.MATMUL, "bmm": OpKind.MATMUL,
    "to": OpKind.IDENTITY, "type_as": OpKind.IDENTITY, "float": OpKind.IDENTITY,
    "half": OpKind.IDENTITY, "clone": OpKind.IDENTITY, "detach": OpKind.IDENTITY,
}  # fmt: skip

# Tensor dunder methods -> the operator fx records for them, and whether operands are swapped.
TENSOR_OPERATORS: dict[str, tuple[Callable[..., Any], bool]] = {
    "__add__": (operator.add, False), "__radd__": (operator.add, True),
    "__iadd__": (operator.iadd, False), "__sub__": (operator.sub, False),
    "__rsub__": (operator.sub, True), "__isub__": (operator.isub, False),
    "__mul__": (operator.mul, False), "__rmul__": (operator.mul, True),
    "__imul__": (operator.imul, False), "__truediv__": (operator.truediv, False),
    "__rtruediv__": (operator.truediv, True), "__itruediv__": (operator.itruediv, False),
    "__floordiv__": (operator.floordiv, False), "__mod__": (operator.mod, False),
    "__matmul__": (operator.matmul, False), "__rmatmul__": (operator.matmul, True),
    "__pow__": (operator.pow, False), "__rpow__": (operator.pow, True),
    "__neg__": (operator.neg, False), "__getitem__": (operator.getitem, False),
    "__setitem__": (operator.setitem, False), "__and__": (operator.and_, False),
    "__or__": (operator.or_, False), "__lt__": (operator.lt, False), "__le__": (operator.le, False),
    "__gt__": (operator.gt, False), "__ge__": (operator.ge, False), "__eq__": (operator.eq, False),
    "__ne__": (operator.ne, False),
}  # fmt: skip


def module_kind(module: nn.Module) -> str:
    for classes, kind in MODULE_KINDS:
        if isinstance(module, classes):
            return kind
    return OpKind.OTHER


def call_kind(target: Any) -> str:
    """The op kind of a ``call_function`` target (a callable) or ``call_method`` target (a name)."""
    if isinstance(target, str):
        return METHOD_KINDS.get(target, OpKind.OTHER)
    try:
        kind = FUNCTION_KINDS.get(target)
    except TypeError:  # an unhashable callable
        return OpKind.OTHER
    if kind is None:
        name = f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}"
        kind = NAMED_FUNCTION_KINDS.get(name, OpKind.OTHER)
    return kind


def call_name(target: Any) -> str:
    """The name of a call as the op table spells op names: "relu", "add", "contiguous"."""
    if isinstance(target, str):
        return target
    name = getattr(target, "__name__", str(target))
    return name.strip("_") if name.startswith("__") else name
