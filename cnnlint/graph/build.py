"""Stage 3, graph: a shape-annotated torch.fx graph -> LayerGraph.

Every fx node that produces tensors becomes a typed Layer. Nodes that only pick an element of a
tuple (``getitem`` after ``chunk``) are folded into their producer; nodes that compute Python
values (``x.size(0)``) and constants (``get_attr``) are left out.
"""

from __future__ import annotations

import linecache
import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from cnnlint.core import Layer, LayerGraph, OpKind, Shape, SourceLocation
from cnnlint.paths import display_path
from cnnlint.trace import OPAQUE_REASON, TracedModel
from cnnlint.frames import CALL_SITE, user_frame
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


def _called_at(node: fx.Node) -> SourceLocation | None:
    """The forward line that made this node: the innermost frame outside torch and cnnlint (the
    last frame of an fx stack trace can be inside torch.fx itself), with the column of the call
    the tracer noted; a stack trace from elsewhere gives the line's first non-blank column."""
    site = node.meta.get(CALL_SITE)
    if site is not None:
        return SourceLocation(display_path(site.path), site.line, site.column, site.function)
    frame = user_frame(node.meta.get("stack_trace") or "")
    if frame is None:
        return None
    path, line, function = frame
    text = linecache.getline(path, line)
    column = len(text) - len(text.lstrip()) + 1 if text.strip() else 1
    return SourceLocation(display_path(path), line, column, function)


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
    return {}


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
    gm = traced.graph_module
    alias: dict[fx.Node, str] = {}  # fx node -> layer name carrying its tensor
    seen_modules: set[str] = set()
    param_total = 0
    used: set[int] = set()  # ids of the parameters the forward uses

    for node in gm.graph.nodes:
        meta = node.meta.get("tensor_meta")
        if node.op == "get_attr":
            value = _resolve_attr(gm, str(node.target))
            if isinstance(value, nn.Parameter) and node.target not in seen_modules:
                seen_modules.add(str(node.target))
                param_total += value.numel()
                used.add(id(value))
            continue
        input_nodes = [n for n in node.all_input_nodes if n in alias]
        if node.op == "output":
            layer = Layer(name="output", kind=OpKind.OUTPUT, op="output",
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

        layer = _make_layer(node, gm, traced, shapes, meta)
        if node.op == "call_module":
            if layer.module_path in seen_modules:
                layer.attrs["shared_with_earlier_call"] = True
            else:
                seen_modules.add(layer.module_path)
                params = list(gm.get_submodule(layer.module_path).parameters())
                layer.params = sum(p.numel() for p in params)
                param_total += layer.params
                used.update(id(p) for p in params)
        layer.input_shapes = [s for n in input_nodes for s in graph[alias[n]].output_shapes]
        graph.add_layer(layer)
        alias[node] = layer.name
        for producer in dict.fromkeys(alias[n] for n in input_nodes):
            graph.add_edge(producer, layer.name)

    graph.params_total = param_total
    graph.params_unused, graph.unused_modules = _unused_parameters(traced.root, used)
    _mark_channel_shuffles(graph)
    return graph


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


def _make_layer(
    node: fx.Node, gm: fx.GraphModule, traced: TracedModel, shapes: list[Shape], meta: Any
) -> Layer:
    called_at = _called_at(node)
    if node.op == "placeholder":
        return Layer(name=node.name, kind=OpKind.INPUT, op="input", output_shapes=shapes,
                     dtype=_dtype(meta))  # fmt: skip
    if node.op == "call_module":
        path = str(node.target)
        module = gm.get_submodule(path)
        kind = module_kind(module)
        attrs = _module_attrs(module, kind)
        kind = _refine_conv_kind(kind, attrs)
        if OPAQUE_REASON in node.meta:  # a submodule the trace stage could not look inside
            kind, attrs = OpKind.OPAQUE, {"reason": node.meta[OPAQUE_REASON]}
        return Layer(
            name=node.name, kind=kind, op=type(module).__name__, module_path=path,
            output_shapes=shapes, dtype=_dtype(meta), attrs=attrs,
            built_at=traced.sites.get(path), called_at=called_at,
            built_via=list(traced.chains.get(path, [])),
        )  # fmt: skip
    kind = call_kind(node.target if node.op == "call_function" else str(node.target))
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
    if kind == OpKind.ELEMENTWISE:
        attrs["tensor_operands"] = sum(1 for a in node.args if isinstance(a, fx.Node))
    if kind == OpKind.RESHAPE and _op_name(node) in ("transpose", "permute"):
        dims = node.args[1:]
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        attrs["dims"] = tuple(d for d in dims if isinstance(d, int))
    enclosing = _enclosing_module(node)
    # Inside the forward of a torch layer's subclass (a "same padding" Conv2d calling F.conv2d):
    # the user edits the line that builds that layer, not the subclass's forward.
    in_layer = enclosing and _is_torch_layer(traced.root, enclosing)
    return Layer(
        name=node.name, kind=kind, op=_op_name(node), module_path=enclosing,
        output_shapes=shapes, dtype=_dtype(meta), attrs=attrs,
        built_at=traced.sites.get(enclosing) if in_layer else None, called_at=called_at,
        built_via=list(traced.chains.get(enclosing, [])) if in_layer else [],
    )  # fmt: skip


def _is_torch_layer(root: nn.Module, path: str) -> bool:
    """Whether the submodule at ``path`` is a torch layer (an nn.Conv2d subclass, say)."""
    try:
        return module_kind(root.get_submodule(path)) != OpKind.OTHER
    except AttributeError:
        return False


def _mark_channel_shuffles(graph: LayerGraph) -> None:
    """Find ShuffleNet's view -> transpose(1, 2) -> view pattern and relabel it channel_shuffle.

    ``x.view(n, g, c // g, h, w).transpose(1, 2).contiguous().view(n, c, h, w)``: the transpose
    carries the data movement; the views around it are free.
    """
    for layer in list(graph.layers(OpKind.RESHAPE)):
        if layer.op not in ("transpose", "permute") or len(layer.output_shape) < 4:
            continue
        dims = layer.attrs.get("dims", ())
        swaps_group_axes = (
            set(dims[:2]) == {1, 2} if layer.op == "transpose" else dims[:3] == (0, 2, 1)
        )
        if not swaps_group_axes:
            continue
        producers = graph.producers(layer)
        if len(producers) != 1 or producers[0].kind != OpKind.RESHAPE:
            continue
        split_view = producers[0]
        if not split_view.input_shapes:
            continue
        before, after = split_view.input_shape, split_view.output_shape
        # The view splits the channel axis into (groups, channels_per_group).
        if len(after) != len(before) + 1 or after[1] * after[2] != before[1]:
            continue
        layer.kind = OpKind.CHANNEL_SHUFFLE
        layer.attrs["groups"] = after[1]
        layer.attrs["pattern"] = "view-transpose-view"
        if layer.called_at is not None:
            layer.built_at = None
