"""Runtime capture: run a module on meta tensors and record the ops it executes as an fx graph.

A ``TorchFunctionMode`` sees every torch function and Tensor method; global module forward hooks
say which module is running. Calls of standard torch.nn layers (the modules fx treats as leaves)
become ``call_module`` nodes and the ops inside them are not recorded; everything else becomes a
``call_function`` / ``call_method`` node. Tensors are matched to nodes by identity, so every
captured tensor is kept alive until the capture ends (an ``id`` is only unique while its object
lives). The result is an ordinary GraphModule with the ``tensor_meta``, ``stack_trace`` and
``nn_module_stack`` meta that symbolic tracing gives, so the graph stage needs no special case.
"""

from __future__ import annotations

import builtins
import copy
import inspect
import itertools
import operator
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn
from torch.fx.node import map_aggregate
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from cnnlint.core import OpKind
from cnnlint.frames import CALL_CHAIN, CALL_SITE, record_call_site
from cnnlint.trace.fx_trace import (
    COUNTED_FLOPS,
    OPAQUE_REASON,
    ModuleFailure,
    first_line,
    graph_module,
    meta_flops,
    tensor_meta,
)
from cnnlint.trace.torch_kinds import TENSOR_OPERATORS, module_kind

_TENSOR_CLASSES = (torch.Tensor, torch._C.TensorBase)
# Argument values fx can write into generated code as they are; others are recorded as text.
_PLAIN_VALUES = (int, float, bool, str, type(None), type(...), torch.dtype, torch.device,
                 torch.memory_format, torch.layout)  # fmt: skip


def is_standard_layer(module: nn.Module) -> bool:
    """The modules fx's default tracer keeps as ``call_module``: torch.nn's own, not containers."""
    return type(module).__module__.startswith(("torch.nn", "torch.ao.nn")) and not isinstance(
        module, nn.Sequential
    )


class _Call:
    """One module call in progress: recorded as a node ("layer"), looked into, or ignored."""

    __slots__ = ("module", "path", "role")

    def __init__(self, module: nn.Module, path: str | None, role: str) -> None:
        self.module, self.path, self.role = module, path, role


class _Recorder(TorchFunctionMode):
    def __init__(self, root: nn.Module, opaque: dict[str, str]) -> None:
        super().__init__()
        self.graph = fx.Graph()
        self.paths = {id(m): p for p, m in root.named_modules()}
        self.attrs: dict[int, tuple[str, torch.Tensor]] = {
            id(t): (name, t)
            for name, t in itertools.chain(root.named_parameters(), root.named_buffers())
        }
        self.opaque = opaque
        self.owners: dict[str, Any] = {}  # fx target -> module or tensor, for the GraphModule
        self.env: dict[int, tuple[torch.Tensor, fx.Node]] = {}  # id -> (kept alive, node)
        self.calls: list[_Call] = []
        self.inside_layer = 0  # >0 while a recorded layer's own forward runs

    # tensors <-> nodes
    def bind(self, tensor: torch.Tensor, node: fx.Node) -> None:
        self.env[id(tensor)] = (tensor, node)

    def node_for(self, tensor: torch.Tensor) -> fx.Node:
        known = self.env.get(id(tensor))
        if known is not None and known[0] is tensor:
            return known[1]
        name, _ = self.attrs.get(id(tensor), (f"_tensor_constant{len(self.owners)}", tensor))
        node = self.graph.get_attr(name)
        node.meta["tensor_meta"] = tensor_meta(tensor)
        self.owners[name] = tensor
        self.bind(tensor, node)
        return node

    def as_arg(self, value: Any) -> Any:
        def one(v: Any) -> Any:
            if isinstance(v, torch.Tensor):
                return self.node_for(v)
            if isinstance(v, (fx.Node, slice, torch.Size, *_PLAIN_VALUES)):
                return v
            return repr(v)

        return map_aggregate(value, one)

    def add_node(self, op: str, target: Any, args: tuple, kwargs: dict, out: Any) -> fx.Node:
        node = self.graph.create_node(op, target, self.as_arg(args), self.as_arg(kwargs))
        node.meta["tensor_meta"] = tensor_meta(out)
        record_call_site(node.meta, sys._getframe(1))
        node.meta["nn_module_stack"] = {
            c.path: (c.path, type(c.module)) for c in self.calls if c.path
        }
        self.bind_output(out, node)
        return node

    def bind_output(self, out: Any, node: fx.Node) -> None:
        """Tensors inside a tuple/list/dict output are reached through getitem nodes, as fx does."""
        if isinstance(out, torch.Tensor):
            self.bind(out, node)
            return
        items = out.items() if isinstance(out, dict) else enumerate(out) if isinstance(
            out, (list, tuple)) else ()  # fmt: skip
        for key, value in items:
            if isinstance(value, (torch.Tensor, list, tuple, dict)):
                picked = self.graph.call_function(operator.getitem, (node, key))
                picked.meta.update(tensor_meta=tensor_meta(value), stack_trace=node.meta.get(
                    "stack_trace", ""), nn_module_stack=node.meta.get("nn_module_stack", {}))  # fmt: skip
                for key in (CALL_SITE, CALL_CHAIN):
                    if key in node.meta:
                        picked.meta[key] = node.meta[key]
                self.bind_output(value, picked)

    # torch functions and Tensor methods
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.inside_layer:
            return out
        name = getattr(func, "__name__", "")
        if name == "__setitem__":  # mutates its first argument: later reads see the new value
            out = args[0]
        if not _holds_tensor(out):
            return out  # sizes, dims, dtypes: Python values, not dataflow
        if name in TENSOR_OPERATORS:
            target, swapped = TENSOR_OPERATORS[name]
            self.add_node("call_function", target, tuple(reversed(args)) if swapped else args,
                          kwargs, out)  # fmt: skip
        elif name == "__get__":  # a tensor-valued property such as x.T
            self.add_node("call_function", builtins.getattr, (args[0], func.__self__.__name__), {}, out)
        elif _is_tensor_method(func):
            self.add_node("call_method", name, args, kwargs, out)
        else:
            self.add_node("call_function", func, args, kwargs, out)
        return out

    # module calls
    def before_call(self, module: nn.Module, inputs: tuple) -> None:
        if self.inside_layer:
            self.inside_layer += 1
            self.calls.append(_Call(module, None, "inner"))
            return
        path = self.paths.get(id(module))
        is_layer = path is not None and path != "" and (path in self.opaque or is_standard_layer(module))
        self.calls.append(_Call(module, path, "layer" if is_layer else "container"))
        if is_layer:
            self.inside_layer = 1

    def after_call(self, module: nn.Module, inputs: tuple, output: Any) -> None:
        call = self.calls[-1]
        if call.role in ("inner", "layer"):
            self.inside_layer -= 1
        if call.role == "layer":
            node = self.add_node("call_module", call.path, inputs, {}, output)
            if call.path in self.opaque:
                node.meta[OPAQUE_REASON] = self.opaque[call.path]
                node.meta[COUNTED_FLOPS] = getattr(module.forward, "counted_flops", 0)
            elif module_kind(module) == OpKind.OTHER:  # a torch layer with no formula (nn.LSTM)
                self.inside_layer += 1  # the count's own ops are not the model's
                try:
                    node.meta[COUNTED_FLOPS] = meta_flops(module, inputs, {})
                finally:
                    self.inside_layer -= 1
            self.owners[call.path] = module
        self.calls.pop()


def _holds_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_tensor(v) for v in value.values())
    return False


def _is_tensor_method(func: Any) -> bool:
    if getattr(func, "__objclass__", None) in _TENSOR_CLASSES:
        return True
    return getattr(func, "__qualname__", "").startswith(("Tensor.", "TensorBase."))


def flat_arguments(module: nn.Module, args: tuple, kwargs: dict) -> dict[str, Any]:
    """forward()'s arguments by name (``*args`` as ``args_0``, ...), defaults left out."""
    try:
        bound = inspect.signature(module.forward).bind(*args, **kwargs)
    except (TypeError, ValueError):
        named = {f"input_{i}": a for i, a in enumerate(args)}
        return {**named, **kwargs}
    flat: dict[str, Any] = {}
    parameters = inspect.signature(module.forward).parameters
    for name, value in bound.arguments.items():
        kind = parameters[name].kind
        if kind == inspect.Parameter.VAR_POSITIONAL:
            flat.update({f"{name}_{i}": v for i, v in enumerate(value)})
        elif kind == inspect.Parameter.VAR_KEYWORD:
            flat.update(value)
        else:
            flat[name] = value
    return flat


def cpu_twin(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """A CPU copy of a meta ``module`` with values, for a forward that needs them.

    The weights are materialised empty (no initialiser of the model's runs) and filled from
    ``generator``: parameters uniform in [-0.1, 0.1], float buffers ones, integer buffers (index
    tables) zeros, then torch.nn's own layers reset to their default initialisation; seeded, so
    every run takes the same branches.
    """
    twin = to_empty_cpu(copy.deepcopy(module))
    with torch.no_grad():
        for param in twin.parameters():
            param.uniform_(-0.1, 0.1, generator=generator)
        for buffer in twin.buffers():
            buffer.fill_(1 if buffer.is_floating_point() else 0)
        for sub in twin.modules():
            _tensor_attributes_to_cpu(sub)
    # torch's own layers then take their default initialisation (a BatchNorm's running mean 0
    # and variance 1, a conv's fan-in scaled weights), so that values flow through the network
    # as in a freshly built model: a detector's proposals survive its score and size filters,
    # and its box head runs on them as it would.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        for sub in twin.modules():
            reset = getattr(sub, "reset_parameters", None)
            if callable(reset) and type(sub).__module__.startswith("torch.nn"):
                reset()
    return twin


def to_empty_cpu(module: nn.Module) -> nn.Module:
    """``module.to_empty(device="cpu")`` without going through ``Module._apply``, which models
    override with other signatures (ultralytics' ``_apply(self, fn)`` takes no ``recurse``):
    each parameter and buffer is replaced by an uninitialised CPU tensor of its shape, in place,
    and shared ones stay shared."""
    made: dict[int, torch.Tensor] = {}

    def empty(tensor: torch.Tensor) -> torch.Tensor:
        if id(tensor) not in made:
            data = torch.empty_like(tensor, device="cpu")
            made[id(tensor)] = nn.Parameter(data, tensor.requires_grad) if isinstance(
                tensor, nn.Parameter) else data  # fmt: skip
        return made[id(tensor)]

    for sub in module.modules():
        for table in (sub._parameters, sub._buffers):
            for name, tensor in table.items():
                if tensor is not None:
                    table[name] = empty(tensor)
    return module


def _tensor_attributes_to_cpu(module: nn.Module) -> None:
    """Tensors a module keeps as plain attributes (torchvision's anchor generator keeps its cell
    anchors in a list) are neither parameters nor buffers, so ``to_empty`` leaves them on meta,
    where a CPU forward cannot read them: they get CPU values as buffers do."""

    def on_cpu(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.device.type == "meta":
            fill = 1 if value.is_floating_point() or value.dtype == torch.bool else 0
            return torch.full(value.shape, fill, dtype=value.dtype)
        if isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value):
            return type(value)(map(on_cpu, value)) if type(value) in (list, tuple) else value
        if isinstance(value, dict) and any(isinstance(v, torch.Tensor) for v in value.values()):
            return {k: on_cpu(v) for k, v in value.items()}
        return value

    for name, value in list(vars(module).items()):
        if name not in ("_parameters", "_buffers", "_modules") and not isinstance(value, nn.Module):
            converted = on_cpu(value)
            if converted is not value:
                object.__setattr__(module, name, converted)


def cpu_runner(module: nn.Module) -> Callable[..., Any]:
    """Run a copy of ``module`` on CPU with all-ones weights and inputs, returning meta outputs.

    For submodules whose forward needs tensor values (``.item()``, ``nonzero``): meta tensors have
    none. Only output shapes are kept; ones make masks keep everything, the same guess torch's
    ``meta_nonzero_assume_all_nonzero`` makes.
    """
    clone = to_empty_cpu(copy.deepcopy(module))
    with torch.no_grad():
        for tensor in itertools.chain(clone.parameters(), clone.buffers()):
            tensor.fill_(1)
        for sub in clone.modules():
            _tensor_attributes_to_cpu(sub)

    def ones(v: Any) -> Any:
        return torch.ones(v.shape, dtype=v.dtype) if isinstance(v, torch.Tensor) else v

    def to_meta(v: Any) -> Any:
        return v.to("meta") if isinstance(v, torch.Tensor) else v

    def run(*args: Any, **kwargs: Any) -> Any:
        # torch's FLOP counter counts the products inside (at all-ones values: masks keep all)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = clone(*map_aggregate(args, ones), **map_aggregate(kwargs, ones))
        run.counted_flops = counter.get_total_flops()  # type: ignore[attr-defined]
        return map_aggregate(out, to_meta)

    run.counted_flops = 0  # type: ignore[attr-defined]
    return run


def capture(
    module: nn.Module, args: tuple, kwargs: dict | None = None, opaque: dict[str, str] | None = None
) -> fx.GraphModule:
    """Run ``module`` once on meta tensors and return the ops it executed as a GraphModule.

    Submodules named in ``opaque`` (path -> reason) run on CPU with ones instead and stay one
    ``call_module`` node each. Raises ModuleFailure naming the innermost module that raised.
    """
    kwargs = kwargs or {}
    opaque = dict(opaque or {})
    recorder = _Recorder(module, opaque)
    for name, value in flat_arguments(module, args, kwargs).items():
        if isinstance(value, torch.Tensor):
            placeholder = recorder.graph.placeholder(name)
            placeholder.meta["tensor_meta"] = tensor_meta(value)
            recorder.bind(value, placeholder)
    by_path = dict(module.named_modules())
    patched = {path: by_path[path] for path in opaque}
    for path, sub in patched.items():
        sub.forward = cpu_runner(sub)  # an instance attribute: the class is untouched
    hooks = [register_module_forward_pre_hook(recorder.before_call),
             register_module_forward_hook(recorder.after_call)]  # fmt: skip
    try:
        with torch.no_grad(), recorder:
            out = module(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - user forward code raises anything
        inner = next((c.path for c in reversed(recorder.calls) if c.path is not None), "")
        raise ModuleFailure(inner or "", exc) from exc
    finally:
        for hook in hooks:
            hook.remove()
        for sub in patched.values():
            del sub.forward
    recorder.graph.output(recorder.as_arg(out))
    return graph_module(recorder.owners or nn.Module(), recorder.graph, type(module).__name__)

