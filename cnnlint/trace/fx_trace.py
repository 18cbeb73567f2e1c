"""Plain torch.fx symbolic tracing, shape propagation on meta tensors, and the shared helpers.

The tracer remembers which module's forward was running when tracing failed, so the leaf
fallback (:mod:`cnnlint.trace.leaves`) knows which submodule to stop looking inside.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import TensorMetadata, _extract_tensor_metadata
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from cnnlint import ops
from cnnlint.core import DEFAULT_INPUT_DTYPE, OpKind, Shape
from cnnlint.frames import record_call_site, user_frame
from cnnlint.paths import display_path
from cnnlint.trace.torch_kinds import call_kind, call_name, module_kind

# fx node meta key for a submodule the tracer could not look inside: the reason, as text.
OPAQUE_REASON = "cnnlint_opaque_reason"


class ModuleFailure(Exception):
    """Tracing failed inside the forward of the submodule at ``path`` ("" = the root)."""

    def __init__(self, path: str, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {first_line(cause)}")
        self.path, self.cause = path, cause


class RecordingTracer(fx.Tracer):
    """A symbolic tracer that records stack traces, treats ``leaves`` as opaque calls and knows
    the innermost module whose forward raised."""

    def __init__(self, leaves: frozenset[str] = frozenset()) -> None:
        super().__init__()
        # fx's own stack traces format every frame of every node (half the trace time); the
        # graph stage needs only the innermost user frame, which create_proxy records.
        self.record_stack_traces = False
        self.leaves = leaves
        self._calls: list[str] = []
        self._parameters_of: nn.Module | None = None  # the root that _parameter_names describes
        self._parameter_names: dict[int, tuple[nn.Parameter, str]] = {}

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        record_call_site(proxy.node.meta, sys._getframe(1))
        return proxy

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        """fx's answer, without its search: fx finds a parameter read in forward (a ConvNeXt
        block's layer scale, a ViT's position embedding) by walking every parameter of the model
        on every read; its first name is looked up here instead (the same name and proxy)."""
        if isinstance(attr_val, nn.Parameter):
            if self._parameters_of is not self.root:
                self._parameters_of = self.root
                self._parameter_names = {}
                for name, parameter in self.root.named_parameters():
                    self._parameter_names.setdefault(id(parameter), (parameter, name))
            entry = self._parameter_names.get(id(attr_val))
            if entry is not None and entry[0] is attr_val:
                name = entry[1]
                if name not in parameter_proxy_cache:
                    factory = None if not self.param_shapes_constant else (
                        lambda node: fx.proxy.ParameterProxy(self, node, name, attr_val))  # fmt: skip
                    parameter_proxy_cache[name] = self.create_proxy("get_attr", name, (), {}, proxy_factory_fn=factory)
                return parameter_proxy_cache[name]
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name in self.leaves or super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m, forward, args, kwargs):
        path = self.path_of_module(m)
        self._calls.append(path)
        try:
            return super().call_module(m, forward, args, kwargs)
        except ModuleFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - fx raises many types
            raise ModuleFailure(path, exc) from exc
        finally:
            self._calls.pop()

    def trace(self, root, concrete_args=None):
        try:
            with _eager_jit_helpers():
                return super().trace(root, concrete_args)
        except ModuleFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - the root's own forward failed
            raise ModuleFailure("", exc) from exc


_PROXY_STAND_IN = torch.empty(0, device="meta")


@contextlib.contextmanager
def _eager_jit_helpers() -> Iterator[None]:
    """TorchScript's helpers answer for a Proxy as they would for the tensor it stands for.

    ``torch.jit.isinstance(proxy, torch.Tensor)`` is False, so code written for scripting (a
    U-Net's ``if torch.jit.isinstance(skip, Tensor)``) silently takes the other branch under
    symbolic tracing. While tracing, the check sees a meta tensor in each Proxy's place.
    ``is_scripting``, ``is_tracing`` and ``annotate`` already behave as in eager under fx.
    """
    original = torch.jit.isinstance

    def isinstance_(obj: Any, target_type: Any) -> bool:
        stand_in = fx.node.map_aggregate(obj, lambda v: _PROXY_STAND_IN if isinstance(v, fx.Proxy) else v)
        return original(stand_in, target_type)

    torch.jit.isinstance = isinstance_
    try:
        yield
    finally:
        torch.jit.isinstance = original


def defaulted_arguments(module: nn.Module, given: int) -> dict[str, Any]:
    """forward() parameters past the ``given`` inputs that have defaults (timm's ViT
    ``attn_mask=None, is_causal=False``): fixed at their defaults rather than traced as inputs."""
    try:
        parameters = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return {}
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {
        p.name: p.default
        for p in parameters[given:]
        if p.kind in kinds and p.default is not inspect.Parameter.empty
    }


def symbolic_trace(root: nn.Module, given_inputs: int, leaves=frozenset()) -> fx.GraphModule:
    """One fx symbolic trace; raises ModuleFailure naming where it failed."""
    tracer = RecordingTracer(frozenset(leaves))
    graph = tracer.trace(root, defaulted_arguments(root, given_inputs) or None)
    # Past the given inputs, a placeholder with a default was fixed at it; one without is a real
    # input the user gave no shape for, and the input count check reports it.
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    drop_fixed_inputs(graph, [p for p in placeholders[given_inputs:] if p.args])
    return graph_module(tracer.root, graph, type(root).__name__)


try:  # recompiles (generates and compiles forward's Python code) only when something runs it
    from torch.fx._lazy_graph_module import _LazyGraphModule as _GraphModule
except ImportError:  # pragma: no cover - a torch without it
    _GraphModule = fx.GraphModule


def graph_module(
    root: nn.Module | dict[str, Any], graph: fx.Graph, class_name: str = "GraphModule"
) -> fx.GraphModule:
    """A GraphModule for ``graph`` that writes its Python code only when it is called, and that
    holds ``root``'s own submodules, parameters and buffers instead of copies of the ones the
    graph names.

    Shape propagation interprets the graph node by node and never calls the module's forward;
    generating and compiling that code is a tenth of a trace (5 ms for a ResNet). fx's
    constructor copies every ``call_module`` and ``get_attr`` target into a new tree of
    modules, building each parent on the way (7% of a trace, 20,000 targets over the 80
    torchvision classifiers); every target resolves in ``root`` as it would in the copy, and
    nothing downstream changes the tree. ``root`` is always cnnlint's own (a model built on
    meta, or a meta copy of the user's instance), never the user's object.
    """
    if not isinstance(root, nn.Module):  # the targets by name (the runtime capture's)
        return _GraphModule(root, graph, class_name)
    gm = _GraphModule(nn.Module(), fx.Graph(), class_name)
    gm.training = root.training
    shared = ("_modules", "_parameters", "_buffers")
    for slot in shared:
        gm.__dict__[slot] = getattr(root, slot)
    for node in graph.nodes:  # a plain attribute of the root itself (fx's _tensor_constant0)
        target = str(node.target)
        if node.op == "get_attr" and "." not in target and not any(target in getattr(root, s) for s in shared):
            setattr(gm, target, getattr(root, target))
    gm.graph = graph
    return gm


def drop_fixed_inputs(graph: fx.Graph, fixed: list[fx.Node]) -> None:
    """Erase the ``fixed`` placeholders and everything computed from them: an argument fixed at a
    value leaves a placeholder and fx's "was specialized" asserts, and neither is part of the
    model."""
    order = {n: i for i, n in enumerate(graph.nodes)}
    for placeholder in fixed:
        dependants: set[fx.Node] = set()
        frontier = list(placeholder.users)
        while frontier:
            node = frontier.pop()
            if node not in dependants:
                dependants.add(node)
                frontier.extend(node.users)
        for node in sorted(dependants, key=order.__getitem__, reverse=True):
            graph.erase_node(node)
        graph.erase_node(placeholder)


class NodeFailure(Exception):
    def __init__(self, node: fx.Node, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.node, self.cause = node, cause


# Shape propagation hands the input on, instead of running them, for ops the op table says keep
# their input's shape, dtype and layout (cnnlint.ops.keeps_shape) and for element-wise ops
# between operands of one shape: their meta kernels run in Python, about 1 ms each, and they are
# half the nodes of a typical CNN.


def _plain(value: Any) -> bool:
    return (
        isinstance(value, torch.Tensor) and value.is_floating_point() and value.is_contiguous()
    )


def _shape_kept(target: Any, args: tuple, kwargs: dict) -> torch.Tensor | None:
    """The input tensor, when ``target`` applied to ``args`` is known to return its shape."""
    if not args or not _plain(args[0]):
        return None
    first = args[0]
    kind = call_kind(target)
    if ops.keeps_shape(kind, call_name(target)):
        return first if not any(isinstance(a, torch.Tensor) for a in args[1:]) else None
    if ops.broadcasts(kind) and len(args) == 2 and not kwargs:
        other = args[1]
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return first
        if (
            _plain(other) and other.dtype == first.dtype and other.device == first.device
            and other.dim() <= first.dim()
            and torch.broadcast_shapes(first.shape, other.shape) == first.shape
        ):  # fmt: skip
            return first  # same shape, or the other broadcast over it (an SE block's x * scale)
    return None


def _concatenated(tensors: Any, dim: int = 0) -> torch.Tensor | None:
    """``torch.cat``'s output for plain tensors of one dtype that agree off ``dim``."""
    if not isinstance(tensors, (list, tuple)) or not tensors or not all(_plain(t) for t in tensors):
        return None
    first = tensors[0]
    if not isinstance(dim, int) or not -first.dim() <= dim < first.dim():
        return None
    dim %= first.dim()
    rest = [(*t.shape[:dim], *t.shape[dim + 1:]) for t in tensors]
    if any(t.dtype != first.dtype or t.device != first.device or t.dim() != first.dim() or r != rest[0]
           for t, r in zip(tensors, rest)):  # fmt: skip
        return None
    shape = list(first.shape)
    shape[dim] = sum(t.shape[dim] for t in tensors)
    return torch.empty(shape, dtype=first.dtype, device=first.device)


def _conv_output_shape(module: nn.Module, x: torch.Tensor) -> tuple[int, ...] | None:
    """torch's convolution output size, for a plain nn.ConvNd with numeric padding."""
    dims = len(module.kernel_size)
    if x.dim() != dims + 2 or x.shape[1] != module.in_channels or isinstance(module.padding, str):
        return None
    sizes = [
        (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1
        for size, pad, dilation, kernel, stride in zip(
            x.shape[2:], module.padding, module.dilation, module.kernel_size, module.stride)
    ]  # fmt: skip
    return (x.shape[0], module.out_channels, *sizes) if min(sizes) > 0 else None


def _adaptive_pool_output_shape(module: nn.Module, x: torch.Tensor) -> tuple[int, ...] | None:
    dims = 3 if "3d" in type(module).__name__ else 2 if "2d" in type(module).__name__ else 1
    if x.dim() not in (dims + 1, dims + 2):
        return None
    size = module.output_size
    sizes = (size,) * dims if not isinstance(size, (tuple, list)) else tuple(size)
    if len(sizes) != dims:
        return None
    return (*x.shape[:-dims], *(s if s is not None else x.shape[-dims + i] for i, s in enumerate(sizes)))


def _linear_output_shape(module: nn.Module, x: torch.Tensor) -> tuple[int, ...] | None:
    if x.dim() < 1 or x.shape[-1] != module.in_features:
        return None
    return (*x.shape[:-1], module.out_features)


# Output shapes computed without running the meta kernel (a conv's takes about 150 us, a
# linear's 600 us, in Python): torch's own formulas for the exact classes, which cannot run a
# forward of their own. Anything they do not cover (a mismatch included) runs the real kernel.
_SHAPE_FORMULAS: dict[type, Callable[[nn.Module, torch.Tensor], tuple[int, ...] | None]] = {
    nn.Conv1d: _conv_output_shape, nn.Conv2d: _conv_output_shape, nn.Conv3d: _conv_output_shape,
    nn.Linear: _linear_output_shape,
    nn.AdaptiveAvgPool1d: _adaptive_pool_output_shape, nn.AdaptiveAvgPool2d: _adaptive_pool_output_shape,
    nn.AdaptiveAvgPool3d: _adaptive_pool_output_shape,
}


def _output_shape(module: nn.Module, x: torch.Tensor) -> tuple[int, ...] | None:
    formula = _SHAPE_FORMULAS.get(type(module))
    return formula(module, x) if formula is not None else None


# fx node meta key: the FLOPs torch.utils.flop_counter counted inside a library function's call.
COUNTED_FLOPS = "cnnlint_counted_flops"
# The kernels eager torch launches for a call counted whole (InnerKernel tuples), in order.
INNER_KERNELS = "cnnlint_inner_kernels"
# True on a call counted whole that ran no kernel and returned one of its tensor arguments as
# it came (torchvision's stochastic_depth at inference: ``return input``): it hands its input on.
PASSES_INPUT = "cnnlint_passes_input"


def _out_of_place(target: Any) -> bool:
    """A torch or operator function that makes a new tensor and changes none of its arguments
    (not ``operator.iadd``, ``torch.relu_``): its meta result depends on nothing but them."""
    name = getattr(target, "__name__", "")
    module = getattr(target, "__module__", None) or ""
    if module == "_operator":
        return name not in OPERATOR_IN_PLACE
    return module.partition(".")[0] == "torch" and not name.endswith("_")


# The operator module's functions that change their first argument (``out += identity`` and the
# other augmented assignments, item assignment).
OPERATOR_IN_PLACE = frozenset({
    "iadd", "iand", "iconcat", "ifloordiv", "ilshift", "imatmul", "imod", "imul", "ior", "ipow",
    "irshift", "isub", "itruediv", "ixor", "setitem", "delitem"})  # fmt: skip


def _is_library_function(target: Any) -> bool:
    """A plain Python function from outside torch and the standard library: what a model library
    wraps with ``torch.fx.wrap`` so that tracing keeps it as one call."""
    package = (getattr(target, "__module__", None) or "").partition(".")[0]
    return inspect.isfunction(target) and package not in ("torch", "operator", "builtins", "math", "cnnlint")


_KEY_SCALARS = (int, float, bool, str, type(None), torch.dtype, torch.device)


def _shapes_key(value: Any) -> tuple | None:
    """A hashable key that two calls share only when their results on meta tensors must be the
    same: each tensor by shape, strides and type, everything else by value; None when an
    argument is neither a meta tensor nor a plain value (then the call is not reused)."""
    if isinstance(value, torch.Tensor):
        if value.device.type != "meta" or value.layout != torch.strided:
            return None
        return ("tensor", tuple(value.shape), value.stride(), value.dtype, value.requires_grad)
    if isinstance(value, _KEY_SCALARS) or inspect.isfunction(value):
        return (type(value), value)
    if isinstance(value, (list, tuple)):
        items = [_shapes_key(v) for v in value]
        return None if None in items else (type(value), *items)
    if isinstance(value, dict):
        items = [(k, _shapes_key(v)) for k, v in value.items()]
        return None if any(v is None for _, v in items) else (dict, *items)
    return None


def _call_key(target: Any, args: tuple, kwargs: dict) -> tuple | None:
    """:func:`_shapes_key` of a function call: the function itself, and its arguments."""
    key = _shapes_key((args, kwargs))
    return None if key is None else (target, key)


# Module attributes that are not its configuration: its children, tensors (keyed apart) and hooks.
_NOT_CONFIG = frozenset({"_parameters", "_buffers", "_modules", "_non_persistent_buffers_set"})


def _module_key(module: nn.Module) -> tuple | None:
    """A module's configuration for :func:`_shapes_key`: each submodule's class, attributes and
    tensors' shapes; None when an attribute is not a plain value (a hook, an object)."""
    parts: list[Any] = []
    for path, sub in module.named_modules():
        tensors = [(name, _shapes_key(t)) for name, t in itertools.chain(
            sub._parameters.items(), sub._buffers.items()) if t is not None]  # fmt: skip
        config = [(name, _shapes_key(value)) for name, value in vars(sub).items() if name not in _NOT_CONFIG]
        if any(key is None for _, key in tensors + config):
            return None
        parts.append((path, type(sub), tuple(tensors), tuple(config)))
    return tuple(parts)


def _fresh_meta(value: Any) -> Any:
    """A new meta tensor like ``value`` (same shape, strides and type), so reused results never alias."""
    if isinstance(value, torch.Tensor):
        return torch.empty_strided(value.shape, value.stride(), dtype=value.dtype, device="meta")
    return value


def meta_flops(module: nn.Module, args: tuple, kwargs: dict) -> int:
    """torch's FLOP count of one call of ``module`` on meta copies of its tensors and weights.

    On meta, torch runs a layer's decomposition (an LSTM's matrix products); on CPU it may call
    one fused kernel the counter has no formula for (CPU's LSTM: 0 FLOPs). The module is called
    with meta stand-ins for its parameters and buffers, so nothing is copied or allocated.
    """
    from torch.func import functional_call

    def meta(value: Any) -> Any:
        return torch.empty_like(value, device="meta") if isinstance(value, torch.Tensor) else value

    weights = {name: meta(t) for name, t in itertools.chain(module.named_parameters(), module.named_buffers())}
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        functional_call(module, weights, fx.node.map_aggregate(args, meta), fx.node.map_aggregate(kwargs, meta))
    return counter.get_total_flops()


# One kernel of a call counted whole: its [efficiency] class, FLOPs, the elements it reads
# from activations and from parameters, the elements it writes, and (k, n, m) of its matrix
# product (zeros for other ops), all at the traced batch.
InnerKernel = tuple[str, int, int, int, int, int, int, int]


class KernelRecorder(TorchDispatchMode):
    """Records each aten op run under it as the kernel eager torch launches for it (views and
    allocations launch none): what a library function kept as one call (torchvision's Swin
    window attention: its products, softmax, bias and mask adds, and the copies its permutes
    and rolls make) runs, so an eager target can price its parts as eager runs them."""

    def __init__(self, weights: Iterable[torch.Tensor] = ()) -> None:
        super().__init__()
        self.kernels: list[InnerKernel] = []
        # the storages of the call's parameters: an op reads a view of one (F.linear's
        # transposed weight) as weights
        self.weights = {_storage(t) for t in weights}
        self.ran = False  # any aten op at all, a view or an allocation included

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.ran = True
        out = func(*args, **kwargs)
        try:
            kernel = _inner_kernel(func, args, kwargs, out, self.weights)
        except Exception:  # noqa: BLE001 - an op it cannot read is left out of the parts, never fatal
            kernel = None
        if kernel is not None:
            self.kernels.append(kernel)
        return out


def _touched(tensor: torch.Tensor) -> int:
    """Elements a kernel reads of ``tensor``: a broadcast (stride 0) axis once."""
    return int(torch.Size(s for s, st in zip(tensor.shape, tensor.stride()) if st != 0).numel())


def _storage(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage()._cdata


def _inner_kernel(func: Any, args: tuple, kwargs: dict, out: Any, weight_storages: set[int]) -> InnerKernel | None:
    packet = func.overloadpacket
    name = packet.__name__
    if func.is_view or name in ops.ATEN_NO_KERNEL:
        return None
    outs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
    if not outs:
        return None
    tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
    is_weight = [_storage(t) in weight_storages for t in tensors]
    weights = sum(_touched(t) for t, w in zip(tensors, is_weight) if w)
    reads = sum(_touched(t) for t, w in zip(tensors, is_weight) if not w)
    writes = sum(t.numel() for t in outs)
    if name in ("convolution", "_convolution"):
        op_class = ops.aten_op_class(name, tuple(args[1].shape), args[8] if len(args) > 8 else 1, args[0].shape[1])
    else:
        op_class = ops.aten_op_class(name)
    gemm = (0, 0, 0)
    if packet in flop_registry:
        flops = int(flop_registry[packet](*args, **kwargs, out_val=out))
        if name in ("mm", "addmm", "bmm", "baddbmm"):  # per product: reduction, outputs, rows
            a, b = args[-2], args[-1]
            gemm = (a.shape[-1], b.shape[-1], a.shape[-2])
    elif name in ("_softmax", "_log_softmax"):
        flops = writes * ops.SOFTMAX_FLOPS
    elif op_class == "transcendental":
        flops = writes * ops.activation_flops(name)
    elif op_class == "norm":
        flops = writes * ops.norm_flops(name)
    else:
        flops = writes
    return (op_class, flops, reads, weights, writes, *gemm)


class ShapeRecorder(fx.Interpreter):
    """Run the graph on meta tensors and store each node's output as ``tensor_meta``.

    Like fx's ShapeProp, but a failure names the node and its forward line. A call_module node
    listed in ``fallbacks`` runs that function instead of the module (opaque submodules).
    """

    def __init__(self, gm: fx.GraphModule, fallbacks: dict[str, Callable[..., Any]] | None = None):
        super().__init__(gm)
        self.fallbacks = fallbacks or {}
        # The result (and the FLOPs torch's counter counted) of a library function or a torch
        # layer, by the function or the module's configuration and its arguments' shapes and
        # values: on meta tensors nothing else can change them, and a network makes the same
        # call in every block of a stage (Swin's window attention 2 to 18 times, a ViT's
        # nn.MultiheadAttention 12 to 32, each of their LayerNorms).
        self._calls: dict[tuple, tuple[Any, int]] = {}

    def call_module(self, target, args, kwargs):
        fallback = self.fallbacks.get(str(target))
        if fallback is not None:
            result = fallback(*args, **kwargs)
            self._node.meta[COUNTED_FLOPS] = getattr(fallback, "counted_flops", 0)
            return result
        module = self.fetch_attr(target)
        if len(args) == 1 and not kwargs and _plain(args[0]):
            if ops.keeps_shape(module_kind(module), type(module).__name__):
                return args[0]
            shape = _output_shape(module, args[0])
            if shape is not None:
                return torch.empty(shape, dtype=args[0].dtype, device="meta")
        config, shapes = _module_key(module), _shapes_key((args, kwargs))
        key = (config, shapes) if config is not None and shapes is not None else None
        # A torch layer the op table has no formula for (nn.LSTM) is counted by torch's counter.
        counted = module_kind(module) == OpKind.OTHER
        return self._once(key, super().call_module, target, args, kwargs, counted)

    def _once(self, key: tuple | None, run: Callable[..., Any], target: Any, args: tuple, kwargs: dict,
              counted: bool = True) -> Any:  # fmt: skip
        """``run(target, args, kwargs)`` (with torch's FLOP counter if ``counted``), or the
        result of an earlier call with the same ``key``, as a new meta tensor of its shape."""
        if key is not None and key in self._calls:
            result, flops, kernels, passes = self._calls[key]
            if counted:
                self._node.meta[COUNTED_FLOPS] = flops
                self._node.meta[INNER_KERNELS] = kernels
                if passes:
                    self._node.meta[PASSES_INPUT] = True
            return fx.node.map_aggregate(result, _fresh_meta)
        result = self._counted(run, target, args, kwargs) if counted else run(target, args, kwargs)
        if key is not None:
            meta = self._node.meta
            self._calls[key] = (result, meta.get(COUNTED_FLOPS, 0) if counted else 0, meta.get(INNER_KERNELS, ()),
                                meta.get(PASSES_INPUT, False))  # fmt: skip
        return result

    def _counted(self, run: Callable[..., Any], target: Any, args: tuple, kwargs: dict) -> Any:
        """``run(target, args, kwargs)`` with torch's FLOP counter counting the products it
        runs, recorded on the node (``COUNTED_FLOPS``; the graph stage makes them its MACs),
        and the kernels eager torch would launch for it (``INNER_KERNELS``)."""
        parameters = [t for t in tree_leaves((args, kwargs)) if isinstance(t, nn.Parameter)]
        if isinstance(target, str):  # a call_module: the submodule's own weights
            module = self.fetch_attr(target)
            parameters += list(module.parameters()) if isinstance(module, nn.Module) else []
        with FlopCounterMode(display=False) as counter, KernelRecorder(parameters) as recorder:
            result = run(target, args, kwargs)
        self._node.meta[COUNTED_FLOPS] = counter.get_total_flops()
        self._node.meta[INNER_KERNELS] = tuple(recorder.kernels)
        if not recorder.ran and isinstance(result, torch.Tensor) and any(
                result is t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)):  # fmt: skip
            self._node.meta[PASSES_INPUT] = True
        return result

    def call_function(self, target, args, kwargs):
        if target is torch.cat:
            joined = _concatenated(*args, **kwargs)
            if joined is not None:
                return joined
        kept = _shape_kept(target, args, kwargs)
        if kept is not None:
            return kept
        if _is_library_function(target):
            # A model library's own function kept as one call (torch.fx.wrap: Swin's window
            # attention), counted by torch's counter.
            return self._once(_call_key(target, args, kwargs), super().call_function, target, args, kwargs)
        if _out_of_place(target):  # torch's own: the result's shape only, once per shapes
            return self._once(_call_key(target, args, kwargs), super().call_function, target, args,
                              kwargs, counted=False)  # fmt: skip
        return super().call_function(target, args, kwargs)

    def call_method(self, target, args, kwargs):
        kept = _shape_kept(target, args, kwargs)
        return kept if kept is not None else super().call_method(target, args, kwargs)

    def fetch_args_kwargs_from_env(self, n: fx.Node) -> tuple[tuple, dict]:
        # fx stores a node's list and dict arguments as immutable_list / immutable_dict; a
        # function the model wrapped with torch.fx.wrap gets them at run time and may edit them
        # (torchvision's Swin3D does), as it would the plain lists of an eager call.
        args, kwargs = super().fetch_args_kwargs_from_env(n)
        return tuple(mutable(a) for a in args), {k: mutable(v) for k, v in kwargs.items()}

    def run_node(self, node: fx.Node):
        self._node = node
        try:
            result = super().run_node(node)
        except Exception as exc:  # noqa: BLE001 - re-raised with the node that failed
            raise NodeFailure(node, exc) from exc
        node.meta["tensor_meta"] = tensor_meta(result)
        return result


def mutable(value: Any) -> Any:
    """``value`` with fx's immutable lists and dicts (nested too) made plain again."""
    if isinstance(value, fx.immutable_collections.immutable_list):
        return [mutable(v) for v in value]
    if isinstance(value, fx.immutable_collections.immutable_dict):
        return {k: mutable(v) for k, v in value.items()}
    if type(value) is tuple:
        return tuple(mutable(v) for v in value)
    return value


def tensor_meta(value: Any) -> Any:
    """fx ``tensor_meta`` for a value: TensorMetadata for tensors, nested like the value."""
    if isinstance(value, torch.Tensor):
        return _tensor_metadata(value)
    if isinstance(value, (list, tuple)):
        items = [tensor_meta(v) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {k: tensor_meta(v) for k, v in value.items()}
    return None


# A dense tensor's TensorMetadata is a function of its shape, strides, dtype and requires_grad
# (its memory format is read from the shape and strides); nodes of one model, and models of one
# run, share a few hundred of them. fx's extraction asks torch for each memory format in Python,
# 40 us a node: each distinct one is extracted once. Named tuples, never changed once made.
_METADATA: dict[tuple, TensorMetadata] = {}


def _tensor_metadata(tensor: torch.Tensor) -> TensorMetadata:
    if tensor.layout != torch.strided or tensor.is_quantized:
        return _extract_tensor_metadata(tensor)
    try:
        key = (tuple(tensor.shape), tensor.stride(), tensor.dtype, tensor.requires_grad)
        found = _METADATA.get(key)
    except TypeError:  # symbolic sizes do not hash
        return _extract_tensor_metadata(tensor)
    if found is None:
        if len(_METADATA) > 100_000:
            _METADATA.clear()
        found = _METADATA[key] = _extract_tensor_metadata(tensor)
    return found


def example_inputs(
    shapes: list[Shape], dtypes: list[str] | None = None, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """One tensor per input shape, of its stated type (float32 where none is stated): on meta,
    or, given a generator, real CPU tensors: floats seeded normal; integers 1, a valid index
    into any table of two or more rows and a length that is not empty; booleans False (a mask
    that hides nothing)."""
    tensors = []
    for shape, name in zip(shapes, dtypes or [DEFAULT_INPUT_DTYPE] * len(shapes), strict=True):
        dtype = getattr(torch, name)
        if generator is None:
            tensors.append(torch.empty(shape, dtype=dtype, device="meta"))
        elif dtype.is_floating_point:
            tensors.append(torch.randn(shape, generator=generator).to(dtype))
        else:
            tensors.append(torch.full(shape, dtype != torch.bool, dtype=dtype))
    return tensors


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def where_in_forward(node: fx.Node) -> str:
    """' at file:line' of the forward line that created the failing node."""
    frame = user_frame(node.meta.get("stack_trace") or "")
    if frame is None:
        return f" (at node {node.name})"
    return f" (at {display_path(frame[0])}:{frame[1]}, {node.format_node()})"
