"""Leaf retrace: symbolic tracing that steps over the submodules it cannot trace, then looks
inside each of them with the shapes it actually receives.

1. Trace; when a submodule's forward fails, mark every module of that class a leaf and trace
   again (a bounded number of rounds).
2. Propagate shapes through the traced graph, recording the meta tensors each leaf receives.
3. Trace each leaf alone with fx's MetaTracer (proxies carry meta tensors, so ``x.shape`` is a
   concrete value and shape-dependent control flow resolves); if that fails, capture it at run
   time (:mod:`cnnlint.trace.capture`); if that fails too, the leaf stays one opaque node.
4. Inline each leaf's graph into the parent, prefixing its module and attribute targets with the
   leaf's path, so the graph stage and the rules see inside it.
"""

from __future__ import annotations

import inspect
import operator
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch.fx.experimental.meta_tracer import MetaTracer
from torch.fx.node import map_aggregate

from cnnlint.frames import record_call_site
from cnnlint.trace.capture import capture, cpu_runner, flat_arguments
from cnnlint.trace.fx_trace import (
    OPAQUE_REASON,
    ModuleFailure,
    ShapeRecorder,
    drop_fixed_inputs,
    first_line,
    graph_module,
    symbolic_trace,
    tensor_meta,
)

MAX_ROUNDS = 16  # distinct failing module classes before giving up on leaf retrace


@dataclass
class LeafTrace:
    graph_module: fx.GraphModule
    how: dict[str, str] = field(default_factory=dict)  # leaf path -> "meta-trace" | "capture"
    opaque: dict[str, str] = field(default_factory=dict)  # leaf path -> why


def find_leaves(root: nn.Module, given_inputs: int, first: ModuleFailure) -> tuple[fx.GraphModule, list[str]]:
    """Retrace with failing submodules (and all of their class) as leaves. Raises the
    ModuleFailure of the root when the root's own forward is what fails."""
    leaves: list[str] = []
    failure = first
    for _ in range(MAX_ROUNDS):
        if failure.path == "" or failure.path in leaves:
            raise failure
        failing_class = type(root.get_submodule(failure.path))
        leaves += [p for p, m in root.named_modules() if type(m) is failing_class and p not in leaves]
        try:
            return symbolic_trace(root, given_inputs, leaves), leaves
        except ModuleFailure as again:
            failure = again
    raise failure


class _LeafInputs(ShapeRecorder):
    """Shape propagation that keeps what each leaf receives, running a leaf that fails on meta
    tensors on CPU instead (and noting why)."""

    def __init__(self, gm: fx.GraphModule, leaves: set[str]) -> None:
        super().__init__(gm)
        self.leaves = leaves
        self.received: dict[fx.Node, tuple[tuple, dict]] = {}
        self.opaque: dict[str, str] = {}

    def run_node(self, node: fx.Node):
        if node.op != "call_module" or node.target not in self.leaves:
            return super().run_node(node)
        path = str(node.target)
        args, kwargs = self.fetch_args_kwargs_from_env(node)
        self.received.setdefault(node, (args, kwargs))
        runner = self.fallbacks.get(path) or self.fetch_attr(path)
        try:
            result = runner(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - needs tensor values meta has not got
            self.opaque[path] = f"needs tensor values ({type(exc).__name__}: {first_line(exc)})"
            self.fallbacks[path] = cpu_runner(self.fetch_attr(path))
            result = self.fallbacks[path](*args, **kwargs)
        node.meta["tensor_meta"] = tensor_meta(result)
        return result


class _ShapeTracer(MetaTracer):
    """fx's MetaTracer with stack traces, and without adding modules to the user's model."""

    allow_insert_stateless_mods = False

    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True

    def create_proxy(self, *args: Any, **kwargs: Any) -> Any:
        proxy = super().create_proxy(*args, **kwargs)
        record_call_site(proxy.node.meta, sys._getframe(1))  # the column too
        return proxy


def _meta_trace(module: nn.Module, args: tuple, kwargs: dict) -> fx.Graph:
    flat = flat_arguments(module, args, kwargs)
    parameters = inspect.signature(module.forward).parameters
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters.values()):
        raise TypeError("forward(*args, **kwargs) cannot be traced with fixed arguments")
    meta_args = {k: v for k, v in flat.items() if isinstance(v, torch.Tensor)}
    concrete = {p: parameters[p].default for p in parameters if p not in meta_args}
    concrete.update({k: v for k, v in flat.items() if k not in meta_args})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MetaTracer warns for each op it cannot size
        graph = _ShapeTracer().trace(module, meta_args, concrete or None)
    # fx names a placeholder after its argument, with a number when the name is taken.
    fixed = [n for n in graph.nodes if n.op == "placeholder"
             and (n.target in concrete or n.target.rstrip("_1234567890") in concrete)]  # fmt: skip
    drop_fixed_inputs(graph, fixed)
    return graph


def trace_leaves(root: nn.Module, gm: fx.GraphModule, leaves: list[str], inputs: list[torch.Tensor]) -> LeafTrace:
    """Look inside every leaf call of ``gm`` and inline what was found."""
    recorder = _LeafInputs(gm, set(leaves))
    recorder.run(*inputs)
    result = LeafTrace(gm, opaque=dict(recorder.opaque))
    graph = gm.graph
    for node, (args, kwargs) in list(recorder.received.items()):
        path = str(node.target)
        if path in result.opaque:
            node.meta[OPAQUE_REASON] = result.opaque[path]
            continue
        module = root.get_submodule(path)
        sub, how, why = _trace_one(module, args, kwargs)
        values = flat_arguments(module, node.args, node.kwargs)
        if sub is None or not _inline(graph, node, sub, path, type(module), values):
            result.opaque[path] = why or "its graph could not be inlined"
            node.meta[OPAQUE_REASON] = result.opaque[path]
            continue
        result.how[path] = how
    graph.lint()
    result.graph_module = graph_module(root, graph, type(root).__name__)
    opaque_runners = {p: recorder.fallbacks.get(p) or cpu_runner(root.get_submodule(p))
                      for p in result.opaque}  # fmt: skip
    ShapeRecorder(result.graph_module, opaque_runners).run(*inputs)  # sizes the inlined nodes
    return result


def _trace_one(module: nn.Module, args: tuple, kwargs: dict) -> tuple[fx.Graph | None, str, str]:
    """(graph, how, why-not): meta trace, else runtime capture, else nothing."""
    try:
        graph = _meta_trace(module, args, kwargs)
        # MetaTracer can bake a traced value into a constant (a shape list standing where a
        # tensor goes); running the graph once on the same inputs tells.
        flat = flat_arguments(module, args, kwargs)
        placeholders = [n.target for n in graph.nodes if n.op == "placeholder"]
        ShapeRecorder(graph_module(module, graph)).run(*(flat[p] for p in placeholders))
        return graph, "meta-trace", ""
    except Exception:  # noqa: BLE001 - control flow that is not about shapes: capture it
        pass
    try:
        return capture(module, args, kwargs).graph, "capture", ""
    except ModuleFailure as failure:
        return None, "", f"{type(failure.cause).__name__}: {first_line(failure.cause)}"


def _inline(
    graph: fx.Graph, call: fx.Node, sub: fx.Graph, prefix: str, module_type: type, values: dict[str, Any]
) -> bool:
    """Replace the call_module node ``call`` by the nodes of ``sub`` (the module's own graph)."""
    placeholders = [n for n in sub.nodes if n.op == "placeholder"]
    if any(p.target not in values for p in placeholders):
        return False
    output = next(n for n in sub.nodes if n.op == "output")
    if not _replaceable(call, output.args[0]):
        return False
    outer_stack = dict(call.meta.get("nn_module_stack") or {})
    outer_stack.setdefault(prefix, (prefix, module_type))
    val_map: dict[fx.Node, Any] = {p: values[p.target] for p in placeholders}
    with graph.inserting_before(call):
        value = graph.graph_copy(sub, val_map)
    for copied in (val_map[n] for n in sub.nodes if n.op not in ("placeholder", "output")):
        if copied.op in ("call_module", "get_attr"):
            copied.target = f"{prefix}.{copied.target}"
        inner = copied.meta.get("nn_module_stack") or {}
        copied.meta["nn_module_stack"] = {
            **outer_stack,
            **{f"{prefix}.{k}": (f"{prefix}.{v[0]}" if isinstance(v, tuple) else v,
                                 v[1] if isinstance(v, tuple) else nn.Module)
               for k, v in inner.items() if k},
        }  # fmt: skip
        copied.meta.pop("tensor_meta", None)  # recomputed for the whole graph afterwards
    _replace(call, value)
    return True


def _is_index(user: fx.Node, node: fx.Node) -> bool:
    return (user.op == "call_function" and user.target is operator.getitem and user.args[0] is node
            and isinstance(user.args[1], (int, str)))  # fmt: skip


def _replaceable(node: fx.Node, value: Any) -> bool:
    if isinstance(value, fx.Node):
        return True
    for user in node.users:
        if _is_index(user, node):
            try:
                picked = value[user.args[1]]
            except (IndexError, KeyError, TypeError):
                return False
            if not _replaceable(user, picked):
                return False
    return True


def _replace(node: fx.Node, value: Any) -> None:
    """Point every use of ``node`` at ``value``; getitem on a tuple/dict result picks directly."""
    if isinstance(value, fx.Node):
        node.replace_all_uses_with(value)
    else:
        for user in list(node.users):
            if _is_index(user, node):
                _replace(user, value[user.args[1]])
            else:
                user.args = map_aggregate(user.args, lambda a: value if a is node else a)
                user.kwargs = map_aggregate(user.kwargs, lambda a: value if a is node else a)
    node.graph.erase_node(node)
