"""Stage 3, graph: a shape-annotated torch.fx graph -> LayerGraph.

Every fx node that produces tensors becomes a typed Layer. Nodes that only pick an element of a
tuple (``getitem`` after ``chunk``) are folded into their producer; nodes that compute Python
values (``x.size(0)``) and constants (``get_attr``) are left out.

A layer that no model input reaches, computed from parameters, buffers and constants alone (the
weight standardisation of a normalizer-free ResNet's ``ScaledStdConv2d`` or BiT's ``StdConv2d``,
a relative-position bias gathered from its table), is marked ``param_only``: the cost stage
prices it as work done once per call, not per image.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import linecache
import operator
import re
from collections.abc import Iterator
from math import prod
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from cnnlint import ops
from cnnlint.core import Layer, LayerGraph, OpKind, Shape, SourceLocation
from cnnlint.paths import display_path
from cnnlint.trace import OPAQUE_REASON, TracedModel
from cnnlint.trace.fx_trace import COUNTED_FLOPS, INNER_KERNELS, OPERATOR_IN_PLACE, PASSES_INPUT
from cnnlint.frames import CALL_CHAIN, CALL_SITE, ShownSites, pick_site, user_frame
from cnnlint.trace.torch_kinds import call_kind, call_name, module_kind

_CONV_ATTRS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
               "groups")  # fmt: skip


def _tensor_shapes(meta: Any) -> list[Shape]:
    """Flatten an fx ``tensor_meta`` (possibly nested in tuples, lists or dicts) into shapes."""
    if meta is None:
        return []
    if hasattr(meta, "shape") and hasattr(meta, "dtype"):
        return [tuple(int(d) for d in meta.shape)]
    if isinstance(meta, dict):
        meta = list(meta.values())
    if isinstance(meta, (list, tuple)):
        shapes: list[Shape] = []
        for item in meta:
            shapes.extend(_tensor_shapes(item))
        return shapes
    return []


def _dtype(meta: Any) -> str:
    if hasattr(meta, "dtype"):
        return str(meta.dtype).removeprefix("torch.")
    if isinstance(meta, (list, tuple)) and meta:
        return _dtype(meta[0])
    return "float32"


def _called_at(
    node: fx.Node, model_dir: str | None, shown: ShownSites
) -> tuple[SourceLocation | None, list[SourceLocation]]:
    """The forward line that made this node, and every user frame of that call, outermost first.

    The line is chosen as a construction line is (:func:`cnnlint.frames.pick_site`): in a
    library model's own package, else the innermost line outside installed packages (the
    user's wrapper that called the library's forward), with the column of the call the tracer
    noted. A stack trace from elsewhere gives its innermost user line's first non-blank column.
    """
    chain = node.meta.get(CALL_CHAIN)
    if chain:
        sites = [shown(site) for site in chain]
        return sites[chain.index(pick_site(chain, model_dir))], sites[::-1]
    site = node.meta.get(CALL_SITE)
    if site is not None:
        return shown(site), []
    frame = user_frame(node.meta.get("stack_trace") or "")
    if frame is None:
        return None, []
    path, line, function = frame
    text = linecache.getline(path, line)
    column = len(text) - len(text.lstrip()) + 1 if text.strip() else 1
    return SourceLocation(display_path(path), line, column, function), []


def _conv_attrs_from_module(module: nn.Module) -> dict[str, Any]:
    attrs = {name: getattr(module, name) for name in _CONV_ATTRS}
    for key in ("kernel_size", "stride", "dilation"):
        attrs[key] = tuple(attrs[key])
    if isinstance(attrs["padding"], str):
        attrs["padding"] = attrs["padding"]
    else:
        attrs["padding"] = tuple(attrs["padding"])
    attrs["bias"] = module.bias is not None
    return attrs


def _refine_conv_kind(kind: str, attrs: dict[str, Any]) -> str:
    if kind != OpKind.CONV:
        return kind
    groups, in_channels = attrs.get("groups", 1), attrs.get("in_channels", 0)
    if groups > 1 and groups == in_channels:
        return OpKind.DEPTHWISE_CONV
    if groups > 1:
        return OpKind.GROUP_CONV
    return OpKind.CONV


def _module_attrs(module: nn.Module, kind: str) -> dict[str, Any]:
    if kind in (OpKind.CONV, OpKind.CONV_TRANSPOSE):
        return _conv_attrs_from_module(module)
    if isinstance(module, nn.Linear):
        return {"in_features": module.in_features, "out_features": module.out_features,
                "bias": module.bias is not None}  # fmt: skip
    if kind == OpKind.POOL:
        kernel = getattr(module, "kernel_size", None)
        return {"kernel_size": kernel, "adaptive": "Adaptive" in type(module).__name__}
    if kind == OpKind.CHANNEL_SHUFFLE:
        return {"groups": getattr(module, "groups", None)}
    if isinstance(module, nn.MultiheadAttention):  # which input dim is the sequence
        return {"batch_first": bool(module.batch_first)}
    if kind == OpKind.UPSAMPLE and isinstance(getattr(module, "mode", None), str):
        return {"mode": module.mode}  # nn.Upsample's resize mode ("nearest", "bilinear", ...)
    if isinstance(module, nn.Hardtanh):  # and ReLU6
        return {"bounds": (float(module.min_val), float(module.max_val))}
    return {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _argument(node: fx.Node, index: int, name: str, default: Any = None) -> Any:
    return node.args[index] if len(node.args) > index else node.kwargs.get(name, default)


def _functional_pool_attrs(node: fx.Node) -> dict[str, Any]:
    """``F.max_pool2d(x, 3, 2)``'s window, as ``nn.MaxPool2d(3, 2)`` records it; adaptive pools
    (``F.adaptive_avg_pool2d(x, 1)``) have none."""
    if "adaptive" in _op_name(node):
        return {"kernel_size": None, "adaptive": True}
    kernel = _argument(node, 1, "kernel_size")
    if isinstance(kernel, list):
        kernel = tuple(kernel)
    valid = isinstance(kernel, int) or (isinstance(kernel, tuple) and all(isinstance(k, int) for k in kernel))
    return {"kernel_size": kernel if valid else None, "adaptive": False}


def _scalar_attrs(node: fx.Node, name: str) -> dict[str, Any]:
    """The number an element-wise op applies to its one tensor operand (``x + 3``, ``x / 6``)."""
    operands = [*node.args, *node.kwargs.values()]
    numbers = [(i, _number(a)) for i, a in enumerate(operands) if _number(a) is not None]
    if len(numbers) != 1 or sum(isinstance(a, fx.Node) for a in operands) != 1:
        return {}
    index, value = numbers[0]
    if index == 0 and name in ("truediv", "div"):
        return {}  # 6 / x is not a scale
    return {"scalar": value}


def _bounds_attrs(node: fx.Node, name: str) -> dict[str, Any]:
    """The clamp bounds of ``F.hardtanh(x, lo, hi)``, ``x.clamp(lo, hi)``, ``torch.clamp``."""
    if name == "hardtanh":
        low, high = _argument(node, 1, "min_val", -1.0), _argument(node, 2, "max_val", 1.0)
    elif name in ("clamp", "clip", "clamp_"):
        low, high = _argument(node, 1, "min"), _argument(node, 2, "max")
    else:
        return {}
    low, high = _number(low), _number(high)
    if low is None and high is None:
        return {}
    return {"bounds": (low if low is not None else float("-inf"), high if high is not None else float("inf"))}


def _functional_conv_attrs(node: fx.Node, kind: str) -> dict[str, Any]:
    """Attributes of F.conv*d from the weight's shape (weight = args[1])."""
    weight = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
    weight_shape = _tensor_shapes(weight.meta.get("tensor_meta")) if isinstance(weight, fx.Node) else []
    if not weight_shape:
        return {}
    w = weight_shape[0]
    groups = node.kwargs.get("groups", node.args[6] if len(node.args) > 6 else 1)
    groups = groups if isinstance(groups, int) else 1
    if kind == OpKind.CONV_TRANSPOSE:
        in_channels, out_channels = w[0], w[1] * groups
    else:
        in_channels, out_channels = w[1] * groups, w[0]
    return {"in_channels": in_channels, "out_channels": out_channels, "kernel_size": tuple(w[2:]),
            "groups": groups, "bias": False}  # fmt: skip


# Swin's window attention functions (2-D and video 3-D): their window_size argument says how the
# tokens are split into attentions (cnnlint.cost.window_attention_macs).
WINDOW_ATTENTION = ("shifted_window_attention", "shifted_window_attention_3d")


def _matmul_attrs(node: fx.Node) -> dict[str, Any]:
    """A product's tensor operands' shapes in argument order, repeats kept (``einsum("ij,jk",
    a, a)`` and ``sdpa(x, x, x)`` read one tensor twice, which the layer's inputs list once), and
    an einsum's equation."""
    operands: list[Shape] = []
    equation = None
    for value in [*node.args, *node.kwargs.values()]:
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, fx.Node):
                operands += _tensor_shapes(item.meta.get("tensor_meta"))[:1]
            elif isinstance(item, str) and equation is None:
                equation = item
    attrs: dict[str, Any] = {"operand_shapes": [tuple(s) for s in operands]}
    if _op_name(node) == "einsum" and equation is not None:
        attrs["equation"] = equation
    return attrs


def writes_in_place(node: fx.Node, module: nn.Module | None = None) -> bool:
    """Whether the op writes its result into its input's memory, not into a fresh buffer: a
    module built with ``inplace=True`` (torchvision's ``ReLU(inplace=True)``), a call given
    ``inplace=True``, a method or function whose name ends in one underscore (``x.relu_()``,
    ``torch.relu_``), an augmented assignment (``out += identity``)."""
    if module is not None:
        return getattr(module, "inplace", False) is True
    name = str(node.target) if node.op == "call_method" else getattr(node.target, "__name__", "")
    if node.op == "call_function" and getattr(node.target, "__module__", None) == "_operator":
        return name in OPERATOR_IN_PLACE or _augmented_assignment(node)
    if name.endswith("_") and not name.endswith("__"):
        return True
    return node.op == "call_function" and _inplace_argument(node) is True


# The operators Python falls back to for an augmented assignment on an fx Proxy, which has no
# ``__iadd__``: torch.fx records ``out += identity`` as ``operator.add``.
_AUGMENTED = {operator.add: "+=", operator.sub: "-=", operator.mul: "*=", operator.truediv: "/="}


def _augmented_assignment(node: fx.Node) -> bool:
    """Whether the line that made an ``operator.add`` (``sub``, ``mul``, ``truediv``) node is an
    augmented assignment to a name or attribute, as ``out += identity`` (torchvision's ResNet
    blocks): eager torch computes it in place, fx cannot record it so."""
    symbol = _AUGMENTED.get(node.target)  # type: ignore[call-overload]
    chain = node.meta.get(CALL_CHAIN)
    site = chain[0] if chain else node.meta.get(CALL_SITE)
    if symbol is None or site is None:
        return False
    text = linecache.getline(site.path, site.line)
    return re.match(rf"\s*[\w.]+(\[[^\]]*\])?\s*{re.escape(symbol)}", text) is not None


def _inplace_argument(node: fx.Node) -> Any:
    """The ``inplace`` argument of a call to a function that takes one, given by name or by
    position (``F.relu(x, True)``, ``F.dropout(x, 0.1, False, True)``)."""
    if "inplace" in node.kwargs:
        return node.kwargs["inplace"]
    position = _inplace_position(node.target)
    return node.args[position] if position is not None and len(node.args) > position else None


@functools.lru_cache(maxsize=None)
def _inplace_position(target: Any) -> int | None:
    try:
        names = list(inspect.signature(target).parameters)
    except (TypeError, ValueError):  # a builtin without a signature
        return None
    return names.index("inplace") if "inplace" in names else None


def _op_name(node: fx.Node) -> str:
    return call_name(str(node.target) if node.op == "call_method" else node.target)


def _enclosing_module(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    last = next(reversed(stack.values()))
    return last[0] if isinstance(last, tuple) else str(last)


def build_layer_graph(traced: TracedModel) -> LayerGraph:
    graph = LayerGraph(traced.name, traced.input_shapes)
    graph.notes.extend(traced.notes)
    graph.value_branches.extend(traced.value_branches)
    gm = traced.graph_module
    alias: dict[fx.Node, str] = {}  # fx node -> layer name carrying its tensor
    seen_modules: set[str] = set()
    param_total = 0
    used: set[int] = set()  # ids of the parameters the forward uses
    param_only = _param_only_nodes(gm.graph)
    submodules = _Submodules(gm, traced.root)
    shown = ShownSites()

    for node in gm.graph.nodes:
        meta = node.meta.get("tensor_meta")
        if node.op == "get_attr":
            value = _resolve_attr(gm, str(node.target))
            if isinstance(value, nn.Parameter) and id(value) not in used:
                param_total += value.numel()
                used.add(id(value))
            continue
        input_nodes = [n for n in node.all_input_nodes if n in alias]
        if node.op == "output":
            # fx names its nodes uniquely: a submodule called `output` is node "output" and the
            # graph's own output is then "output_1".
            layer = Layer(name=node.name, kind=OpKind.OUTPUT, op="output",
                          input_shapes=[s for n in input_nodes for s in graph[alias[n]].output_shapes])  # fmt: skip
            graph.add_layer(layer)
            for producer in input_nodes:
                graph.add_edge(alias[producer], layer.name)
            continue
        shapes = _tensor_shapes(meta)
        if not shapes:
            continue  # Python values (sizes, ints) are not layers
        if node.op == "call_function" and node.target is operator.getitem:
            source = node.args[0]
            if isinstance(source, fx.Node) and source in alias and not hasattr(
                source.meta.get("tensor_meta"), "shape"
            ):
                alias[node] = alias[source]  # picking one output of chunk/split: same producer
                continue

        layer = _make_layer(node, submodules, traced, shapes, meta, shown)
        layer.param_only = node in param_only
        if layer.kind == OpKind.RESHAPE and _materialises(node, layer.op):
            layer.attrs["copies"] = True
        if node.op == "call_module":
            if layer.module_path in seen_modules:
                layer.attrs["shared_with_earlier_call"] = True
            else:
                seen_modules.add(layer.module_path)
                params = _parameters(submodules.traced(layer.module_path))
                layer.params = sum(p.numel() for p in params)
                # A parameter read on its own before (``F.linear(x, self.proj.weight)``) is one
                # parameter, whichever node used it first.
                param_total += sum(p.numel() for p in params if id(p) not in used)
                used.update(id(p) for p in params)
        layer.input_shapes = [s for n in input_nodes for s in graph[alias[n]].output_shapes]
        graph.add_layer(layer)
        alias[node] = layer.name
        for producer in dict.fromkeys(alias[n] for n in input_nodes):
            graph.add_edge(producer, layer.name)

    graph.params_total = param_total
    graph.params_unused, graph.unused_modules = _unused_parameters(traced.root, used)
    recognise_patterns(graph)
    _note_parameter_work(graph)
    return graph


def recognise_patterns(graph: LayerGraph) -> None:
    """Relabel what a chain of layers is as one op: channel shuffles written as reshapes and a
    permute, activations written out element by element (also for an ONNX file's graph)."""
    _mark_channel_shuffles(graph)
    _collapse_written_out_activations(graph)


def _note_parameter_work(graph: LayerGraph) -> None:
    """Say which layers that launch a kernel compute from parameters alone, and how they are
    priced (cnnlint.cost)."""
    work = [layer for layer in graph if layer.param_only and not ops.is_free(layer)]
    if not work:
        return
    where = list(dict.fromkeys(layer.label for layer in work))
    shown = ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
    graph.notes.append(
        f"{len(work)} layer{'s' if len(work) != 1 else ''} compute from parameters alone, not "
        f"from the input ({shown}): a target that fuses layers (an inference engine) folds them "
        "into constants at conversion and they take no time; an eager target runs them once per "
        "call, whatever the batch"
    )


def _param_only_nodes(graph: fx.Graph) -> set[fx.Node]:
    """The nodes no placeholder reaches: attributes (``get_attr``: parameters, buffers, constant
    tensors) and every call whose inputs are all such nodes, or that has none (``torch.arange(8)``).
    A call that reads a size of the input (``torch.zeros(x.size(0))``) reads the input."""
    found: set[fx.Node] = set()
    for node in graph.nodes:
        if node.op == "get_attr" or (
            node.op in ("call_function", "call_method", "call_module")
            and all(source in found for source in node.all_input_nodes)
        ):
            found.add(node)
    return found


def _parameters(module: nn.Module) -> list[nn.Parameter]:
    """``list(module.parameters())``: a leaf module's own, without walking a tree it does not
    have (the graph asks for every layer's)."""
    if module._modules:
        return list(module.parameters())
    return list({id(p): p for p in module._parameters.values() if p is not None}.values())


def _unused_parameters(root: nn.Module, used: set[int]) -> tuple[int, list[str]]:
    """Parameters the model holds but its forward never uses (an aux head in eval mode), and the
    outermost submodules (or parameters) that hold them."""
    unused = {id(p): p for p in root.parameters() if id(p) not in used}
    if not unused:
        return 0, []
    holders: list[str] = []
    for path, module in root.named_modules():
        if not path or any(path.startswith(holder + ".") for holder in holders):
            continue
        params = list(module.parameters())
        if params and all(id(p) in unused for p in params):
            holders.append(path)
    covered = {id(p) for holder in holders for p in root.get_submodule(holder).parameters()}
    holders += [name for name, p in root.named_parameters() if id(p) in unused and id(p) not in covered]
    return sum(p.numel() for p in unused.values()), holders


def _resolve_attr(gm: fx.GraphModule, target: str) -> Any:
    value: Any = gm
    for part in target.split("."):
        value = getattr(value, part, None)
    return value


class _Submodules:
    """Submodules by path, looked up once each: a graph asks for the same ones many times (every
    op inside a block names the block)."""

    def __init__(self, gm: fx.GraphModule, root: nn.Module) -> None:
        self.gm, self.root = gm, root
        self._traced: dict[str, nn.Module] | None = None
        self._torch_layer: dict[str, bool] = {}

    def traced(self, path: str) -> nn.Module:
        """A module the traced graph calls."""
        if self._traced is None:  # one walk of the tree, not one per path
            self._traced = dict(self.gm.named_modules(remove_duplicate=False))
        module = self._traced.get(path)
        if module is None:
            module = self._traced[path] = self.gm.get_submodule(path)
        return module

    def is_torch_layer(self, path: str) -> bool:
        """Whether the model's submodule at ``path`` is a torch layer (an nn.Conv2d subclass, say)."""
        answer = self._torch_layer.get(path)
        if answer is None:
            try:
                answer = module_kind(self.root.get_submodule(path)) != OpKind.OTHER
            except AttributeError:
                answer = False
            self._torch_layer[path] = answer
        return answer


def _make_layer(
    node: fx.Node, submodules: _Submodules, traced: TracedModel, shapes: list[Shape], meta: Any,
    shown: ShownSites,
) -> Layer:
    called_at, called_via = _called_at(node, traced.model_dir, shown)
    if node.op == "placeholder":
        return Layer(name=node.name, kind=OpKind.INPUT, op="input", output_shapes=shapes,
                     dtype=_dtype(meta))  # fmt: skip
    if node.op == "call_module":
        path = str(node.target)
        module = submodules.traced(path)
        kind = module_kind(module)
        attrs = _module_attrs(module, kind)
        kind = _refine_conv_kind(kind, attrs)
        if OPAQUE_REASON in node.meta:  # a submodule the trace stage could not look inside
            kind, attrs = OpKind.OPAQUE, {"reason": node.meta[OPAQUE_REASON]}
        if node.meta.get(PASSES_INPUT):  # ran no kernel and returned its input (trace stage)
            kind, attrs = OpKind.IDENTITY, {}
        if node.meta.get(COUNTED_FLOPS):  # its products, by torch's FLOP counter (trace stage)
            attrs["counted_macs"] = node.meta[COUNTED_FLOPS] // 2
        if node.meta.get(INNER_KERNELS):  # the kernels eager torch runs for it (trace stage)
            attrs["inner_kernels"] = node.meta[INNER_KERNELS]
        if writes_in_place(node, module):
            attrs["in_place"] = True
        return Layer(
            name=node.name, kind=kind, op=type(module).__name__, module_path=path,
            output_shapes=shapes, dtype=_dtype(meta), attrs=attrs,
            built_at=traced.sites.get(path), called_at=called_at,
            built_via=list(traced.chains.get(path, [])), called_via=called_via,
        )  # fmt: skip
    kind = call_kind(node.target if node.op == "call_function" else str(node.target))
    if node.meta.get(PASSES_INPUT):  # ran no kernel and returned its input (trace stage)
        kind = OpKind.IDENTITY
    attrs: dict[str, Any] = {}
    if kind in (OpKind.CONV, OpKind.CONV_TRANSPOSE):
        attrs = _functional_conv_attrs(node, kind)
        kind = _refine_conv_kind(kind, attrs) if attrs else OpKind.OTHER
    if kind == OpKind.LINEAR:
        weight = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
        if isinstance(weight, fx.Node):
            w = _tensor_shapes(weight.meta.get("tensor_meta"))
            if w:
                attrs = {"in_features": w[0][1], "out_features": w[0][0]}
    if kind in (OpKind.CONCAT, OpKind.SPLIT, OpKind.REDUCE):
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        attrs["dim"] = dim if isinstance(dim, (int, list, tuple)) else None
    if kind == OpKind.POOL:
        attrs = _functional_pool_attrs(node)
    if node.meta.get(COUNTED_FLOPS):  # a library function's products, by torch's FLOP counter
        attrs["counted_macs"] = node.meta[COUNTED_FLOPS] // 2
    if node.meta.get(INNER_KERNELS):  # the kernels eager torch runs for it (trace stage)
        attrs["inner_kernels"] = node.meta[INNER_KERNELS]
    if kind == OpKind.MATMUL:
        attrs.update(_matmul_attrs(node))
    if kind == OpKind.MATMUL and _op_name(node) in WINDOW_ATTENTION:
        window = _argument(node, 4, "window_size")
        if isinstance(window, (list, tuple)) and all(isinstance(w, int) for w in window):
            attrs["window_size"] = tuple(window)
    if kind == OpKind.ELEMENTWISE:
        attrs["tensor_operands"] = sum(1 for a in node.args if isinstance(a, fx.Node))
        # each tensor operand's element count (a parameter or buffer operand is no layer of its
        # own): whether the other operand is a per-channel constant or a whole map
        attrs["operand_sizes"] = [
            prod(shape[0]) if (shape := _tensor_shapes(a.meta.get("tensor_meta"))) else 0
            for a in node.args if isinstance(a, fx.Node)
        ]  # fmt: skip
        attrs.update(_scalar_attrs(node, _op_name(node)))
    if kind == OpKind.ACTIVATION:
        attrs.update(_bounds_attrs(node, _op_name(node)))
    if kind == OpKind.UPSAMPLE and _op_name(node) in ("interpolate", "upsample"):
        mode = _argument(node, 3, "mode", "nearest")  # F.interpolate(x, size, scale_factor, mode)
        if isinstance(mode, str):
            attrs["mode"] = mode
    if kind == OpKind.RESHAPE and _op_name(node) in ("transpose", "permute"):
        dims = node.args[1:]
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        attrs["dims"] = tuple(d for d in dims if isinstance(d, int))
    if writes_in_place(node):
        attrs["in_place"] = True
    enclosing = _enclosing_module(node)
    # Inside the forward of a torch layer's subclass (a "same padding" Conv2d calling F.conv2d):
    # the user edits the line that builds that layer, not the subclass's forward.
    in_layer = enclosing and submodules.is_torch_layer(enclosing)
    return Layer(
        name=node.name, kind=kind, op=_op_name(node), module_path=enclosing,
        output_shapes=shapes, dtype=_dtype(meta), attrs=attrs,
        built_at=traced.sites.get(enclosing) if in_layer else None, called_at=called_at,
        built_via=list(traced.chains.get(enclosing, [])) if in_layer else [], called_via=called_via,
    )  # fmt: skip


# Layout calls that return a view when they can and copy when they cannot: torch's
# ``reshape``/``flatten`` of a tensor whose strides no view of the new shape can express (a
# permuted or transposed one), and ``contiguous`` of a tensor that is not.
_COPY_WHEN_STRIDED = frozenset({"reshape", "flatten", "contiguous"})


def _materialises(node: fx.Node, op: str) -> bool:
    """Whether this layout call copies its input in eager torch, from the strides the shape
    propagation recorded: Swin's window partition (``view -> permute -> reshape``) writes the
    whole map again at the reshape, as does ``transpose(1, 2).reshape(...)`` after attention."""
    if op not in _COPY_WHEN_STRIDED or not node.args or not isinstance(node.args[0], fx.Node):
        return False
    source, result = node.args[0].meta.get("tensor_meta"), node.meta.get("tensor_meta")
    if not hasattr(source, "stride") or not hasattr(result, "shape"):
        return False
    if source.memory_format == torch.contiguous_format:  # fx's own contiguity test, recorded
        return False
    if op == "contiguous":
        return True
    try:
        torch.empty_strided(tuple(source.shape), tuple(source.stride), dtype=source.dtype,
                            device="meta").view(tuple(result.shape))  # fmt: skip
    except RuntimeError:  # no view of these strides has the new shape: reshape copies
        return True
    return False


# Reshape-family calls that only re-index a contiguous tensor, and those that move data.
_PURE_VIEWS = frozenset({"view", "reshape", "flatten", "unflatten", "contiguous", "view_as"})
_AXIS_MOVES = frozenset({"transpose", "permute"})
_MAX_SIMULATED = 1 << 23  # elements (int32 labels: 32 MB); larger maps are left unmarked


def _is_pure_view(layer: Layer) -> bool:
    return layer.kind == OpKind.RESHAPE and layer.op in _PURE_VIEWS


def _mark_channel_shuffles(graph: LayerGraph) -> None:
    """Find channel shuffles by what they do to the channel axis, and relabel the layer that
    moves the data (the transpose or permute) ``channel_shuffle``.

    A chain of views that splits an N x C x ... tensor, one permute or transpose, and views that
    merge it again is a channel shuffle when, read back as N x C x ..., each output channel is
    one whole input channel and their order changed. This covers ShuffleNet's
    ``view(n, g, c // g, h, w).transpose(1, 2).view(n, c, h, w)``, the 5-D ``permute(0, 2, 1, 3,
    4)`` form, einops ``rearrange(x, "b (g c) h w -> b (c g) h w")`` and Megvii's official
    ``reshape(b * c // 2, 2, h * w).permute(1, 0, 2).reshape(2, -1, c // 2, h, w)`` (whose
    ``x[0], x[1]`` then pick the two halves). The chain is replayed on a tensor of channel
    indices, so the decision is exact whatever the code shape; the views around the permute stay
    free.
    """
    for layer in list(graph.layers(OpKind.RESHAPE)):
        if layer.op not in _AXIS_MOVES:
            continue
        before: list[Layer] = []
        start, reader = _single_input(graph, layer), layer
        while start is not None and _is_pure_view(start) and _only_reader(graph, start, reader):
            before.append(start)
            start, reader = _single_input(graph, start), start
        if start is None or len(start.output_shape) < 4:
            continue
        after: list[Layer] = []
        end = layer
        while len(graph.consumers(end)) == 1 and _is_pure_view(graph.consumers(end)[0]):
            end = graph.consumers(end)[0]
            after.append(end)
        permutation = _channel_permutation(start.output_shape, [*before[::-1], layer, *after])
        if permutation is None:
            continue
        channels = len(permutation)
        step = permutation[1] if channels > 1 else 0
        layer.kind = OpKind.CHANNEL_SHUFFLE
        layer.attrs["groups"] = channels // step if step and channels % step == 0 else None
        layer.attrs["logical_shape"] = tuple(start.output_shape)
        layer.attrs["pattern"] = " -> ".join(step_layer.op for step_layer in [*before[::-1], layer, *after])
        for step_layer in after:  # the copy a view after the permute makes is the shuffle's one
            step_layer.attrs.pop("copies", None)
        if layer.called_at is not None:
            layer.built_at = None


def _channel_permutation(shape: Shape, chain: list[Layer]) -> list[int] | None:
    """Replay ``chain`` on an N x C x ... tensor of channel indices; the new channel order when
    the result, read back as N x C x ..., is a reordering of whole channels, else None."""
    steps = tuple(
        (step.op, tuple(step.attrs.get("dims", ())) if step.op in _AXIS_MOVES else tuple(step.output_shape))
        for step in chain
    )
    order = _replayed_order(tuple(shape), steps)
    return list(order) if order is not None else None


@functools.lru_cache(maxsize=1024)
def _replayed_order(shape: Shape, steps: tuple[tuple[str, tuple[int, ...]], ...]) -> tuple[int, ...] | None:
    """:func:`_channel_permutation` for one shape and chain of (op, dims or output shape): a
    model repeats its blocks, and a zoo its families, so the same replay comes back (a Swin's
    permutes, a ShuffleNet's shuffles) and is answered from here."""
    if prod(shape) > _MAX_SIMULATED:
        return None
    channels = shape[1]
    with _one_thread():
        labels = torch.arange(channels, dtype=torch.int32)
        labels = labels.view(1, channels, *([1] * (len(shape) - 2))).expand(shape)
        try:
            for op, operand in steps:
                if op in _AXIS_MOVES:
                    labels = labels.transpose(*operand) if op == "transpose" else labels.permute(*operand)
                elif op != "contiguous":
                    labels = labels.reshape(operand)
            per_channel = labels.reshape(shape).transpose(0, 1).reshape(channels, -1)
        except (RuntimeError, TypeError, ValueError):  # shapes that do not replay: not a shuffle
            return None
        if not bool((per_channel == per_channel[:, :1]).all()):
            return None
        order = per_channel[:, 0].tolist()
    return tuple(order) if order != list(range(channels)) else None


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """torch on one intra-op thread: a replay's copies take 0.1 ms each, and a parallel region
    costs more than that to start (7 ms each on two busy cores, 24 ms a replay)."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _only_reader(graph: LayerGraph, layer: Layer, reader: Layer) -> bool:
    return [c.name for c in graph.consumers(layer)] == [reader.name]


def _single_input(graph: LayerGraph, layer: Layer) -> Layer | None:
    producers = graph.producers(layer)
    return producers[0] if len(producers) == 1 else None


def _hardsigmoid(graph: LayerGraph, layer: Layer) -> tuple[Layer, list[Layer]] | None:
    """``clamp(x + 3, 0, 6) / 6`` (or ``* (1/6)``) ending at ``layer``: (x, the matched layers)."""
    scale = ops.scalar_operand(layer)
    top = ops.HARDSIGMOID_BOUNDS[1]  # the clamp's upper bound is also the divisor
    divides = ops.is_division(layer) and scale == top
    multiplies = ops.is_multiplication(layer) and scale is not None and abs(scale - 1 / top) < 1e-6
    if not (divides or multiplies):
        return None
    clamp = _single_input(graph, layer)
    if clamp is None or ops.clamp_bounds(clamp) != ops.HARDSIGMOID_BOUNDS:
        return None
    if not _only_reader(graph, clamp, layer):
        return None
    shift = _single_input(graph, clamp)
    if (
        shift is None or not ops.is_addition(shift) or ops.scalar_operand(shift) != ops.HARDSIGMOID_SHIFT
        or not _only_reader(graph, shift, clamp)
    ):  # fmt: skip
        return None
    source = _single_input(graph, shift)
    return (source, [shift, clamp, layer]) if source is not None else None


def _gated(graph: LayerGraph, layer: Layer) -> tuple[Layer, list[Layer], str] | None:
    """``x * gate(x)`` at ``layer``, where the gate is an activation the op table names in
    GATED_ACTIVATIONS: (x, the matched layers, the activation it is)."""
    if not ops.is_multiplication(layer) or layer.attrs.get("tensor_operands") != 2:
        return None
    producers = graph.producers(layer)
    if len(producers) != 2:
        return None
    for source, gate in (producers, producers[::-1]):
        name = ops.GATED_ACTIVATIONS.get(ops.activation_name(gate))
        if name and graph.producers(gate) == [source] and _only_reader(graph, gate, layer):
            return source, [gate, layer], name
    return None


def _hardswish_scaled_last(graph: LayerGraph, layer: Layer) -> tuple[Layer, list[Layer]] | None:
    """``x * clamp(x + 3, 0, 6) / 6``, the division applied last, ending at ``layer``."""
    scale = ops.scalar_operand(layer)
    if scale is None or not ops.is_division(layer) or scale != ops.HARDSIGMOID_BOUNDS[1]:
        return None
    product = _single_input(graph, layer)
    if product is None or not ops.is_multiplication(product) or not _only_reader(graph, product, layer):
        return None
    producers = graph.producers(product)
    if len(producers) != 2:
        return None
    for source, clamp in (producers, producers[::-1]):
        if ops.clamp_bounds(clamp) != ops.HARDSIGMOID_BOUNDS or not _only_reader(graph, clamp, product):
            continue
        shift = _single_input(graph, clamp)
        if (
            shift is not None and ops.is_addition(shift) and _only_reader(graph, shift, clamp)
            and ops.scalar_operand(shift) == ops.HARDSIGMOID_SHIFT and graph.producers(shift) == [source]
        ):  # fmt: skip
            return source, [shift, clamp, product, layer]
    return None


def _collapse_written_out_activations(graph: LayerGraph) -> None:
    """Collapse activations written out element by element into one activation layer, as
    compilers fuse them: ``clamp(x + 3, 0, 6) / 6`` is hardsigmoid, ``x * sigmoid(x)`` is SiLU,
    ``x * hardsigmoid(x)`` and ``x * relu6(x + 3) / 6`` are hard-swish (``hardtanh(.., 0, 6)``
    and ``.clamp(0, 6)`` count as relu6). Each intermediate must have no other reader. The
    activations and their constants are the op table's (``cnnlint.ops.GATED_ACTIVATIONS``)."""
    for name in list(graph.digraph):
        if name not in graph.digraph:
            continue
        layer = graph[name]
        match: tuple[Layer, list[Layer], str] | None = None
        if (found := _hardsigmoid(graph, layer)) is not None:
            match = (*found, "hardsigmoid")
        elif (found := _hardswish_scaled_last(graph, layer)) is not None:
            match = (*found, "hardswish")
        else:
            match = _gated(graph, layer)
        if match is None:
            continue
        source, matched, op = match
        written = " ".join(m.op for m in matched)
        graph.replace(
            [m.name for m in matched],
            Layer(
                name=graph.unique_name(op), kind=OpKind.ACTIVATION, op=op,
                module_path=layer.module_path, input_shapes=list(source.output_shapes),
                output_shapes=list(layer.output_shapes), dtype=layer.dtype,
                attrs={"written_out": written}, called_at=layer.called_at, called_via=layer.called_via,
                param_only=all(m.param_only for m in matched),
            ),
        )  # fmt: skip
