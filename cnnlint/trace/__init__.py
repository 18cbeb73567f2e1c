"""Stage 2, trace: nn.Module -> torch.fx GraphModule with every node's output shape.

Shapes are propagated with tensors on the ``meta`` device: no real forward pass, no weights.
Every path ends in an ordinary GraphModule whose nodes carry ``tensor_meta``, ``stack_trace`` and
``nn_module_stack``, so the graph stage never knows which path produced it. Fallbacks for models
plain symbolic tracing cannot handle live in this package and nowhere else. Tried in order:

1. Plain fx symbolic trace (:mod:`.fx_trace`). Wins for most models and costs nothing extra;
   timm ViTs' defaulted ``attn_mask=None, is_causal=False`` arguments are fixed, not inputs.
2. Leaf retrace (:mod:`.leaves`), when a *submodule's* forward cannot be traced (control flow on
   shapes, ``len(proxy)``, ``int(proxy)``): that submodule's class becomes a leaf, the rest is
   traced symbolically, and each leaf is traced alone with the meta tensors it receives
   (shapes are concrete then), or captured at run time, and inlined. Most of the model keeps
   the cheap symbolic trace; only the hard parts pay.
3. Runtime capture (:mod:`.capture`), when the *root's* forward is the problem: the model runs
   once on meta tensors under a TorchFunctionMode and module hooks, and the executed ops become
   the graph. Also used for a leaf whose own forward defeats the meta trace.
4. Real run: when the capture on meta tensors fails (a forward that needs tensor values, such as
   ``if x.sum() > 0:`` or a detection head's ``.item()``; an op with no meta kernel; a tensor
   made on CPU inside forward) and the model's parameters fit a budget
   (:data:`REAL_RUN_MAX_PARAMS`, configurable), the capture runs once on real CPU tensors: the
   model rebuilt on CPU by its factory with its own initialisation (seeded), or else a CPU twin
   of it, and a seeded random input. The graph follows the path that input took;
   ``TracedModel.value_branches`` holds the lines that needed values, for rule CL001. When the
   CPU run fails too on something that is not about values, the input shape is blamed.
5. Opaque, over the budget: a submodule that needs tensor values is run on CPU with all-ones
   tensors for its output shapes and stays one ``OpKind.OPAQUE`` node, its products counted by
   torch's FLOP counter on that run; rule CL001 reports it. Only when nothing at all can be
   traced is it a TraceError.

Before any of these, forward() taking more required inputs than shapes were given is an error,
and a guessed input shape that fails is tried again at the larger guesses.

torch.export is not in the chain: it needs dynamo, takes seconds per model where capture takes a
fraction of one, lowers to aten ops (no nn.Module calls for the rules to name) and still fails on
data-dependent ops without hints, so it gains nothing over runtime capture on meta tensors.
The path taken is recorded in ``TracedModel.notes`` (and so in the LayerGraph and JSON notes).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import traceback
from dataclasses import dataclass, field

import torch
from torch import fx, nn

from cnnlint.core import Shape, SourceLocation
from cnnlint.errors import TraceError
from cnnlint.frames import call_chains_end_here, is_library_frame, where_raised
from cnnlint.load import LoadedModel, larger_guesses
from cnnlint.trace.capture import capture, cpu_twin
from cnnlint.trace.fx_trace import (
    OPAQUE_REASON,
    ModuleFailure,
    NodeFailure,
    ShapeRecorder,
    first_line,
    example_inputs,
    symbolic_trace,
    where_in_forward,
)
from cnnlint.trace.leaves import find_leaves, trace_leaves

__all__ = ["OPAQUE_REASON", "TracedModel", "trace"]

# How meta tensors say an op needs values they do not have (.item(), nonzero, boolean masks).
# A tensor made on CPU inside forward() meeting a meta one ("Tensor on device meta is not on the
# expected device cpu!") needs a run on CPU just the same.
_NEEDS_VALUES = re.compile(
    r"meta tensor|data-independent|register_meta|data-dependent|expected device|same device")
MAX_OPAQUE = 8  # submodules a whole-model capture may give up on before the trace fails
# Largest model run once on real CPU tensors when its own forward branches on tensor values:
# 100M fp32 parameters are 400 MB of memory (an estimate of what a CI runner spares).
REAL_RUN_MAX_PARAMS = 100_000_000


@dataclass
class TracedModel:
    name: str
    graph_module: fx.GraphModule
    # The module the graph was captured from, for module lookups by path and parameter
    # identity: the model, or its CPU twin after a real run (same paths, other tensors).
    root: nn.Module
    input_shapes: list[Shape]
    sites: dict
    notes: list[str] = field(default_factory=list)
    # Lines where the model's own forward branched on tensor values (traced by a real run).
    value_branches: list[SourceLocation] = field(default_factory=list)
    chains: dict = field(default_factory=dict)  # module path -> construction chain (load stage)
    model_dir: str | None = None  # LoadedModel.model_dir: where findings point (frames.pick_site)
    meta_failure: ModuleFailure | None = None  # why the capture on meta tensors gave way to a real run


def trace(model: LoadedModel, real_run_max_params: int = REAL_RUN_MAX_PARAMS) -> TracedModel:
    """Trace ``model`` for its input shapes, falling back as the module docstring says. A
    guessed input shape that fails is tried again at each larger guess
    (:data:`cnnlint.load.GUESSED_SIZES`), and the note says so."""
    try:
        return _trace(model, real_run_max_params)
    except InputShapeError as first:
        if model.input_source != "guess":
            raise
        failed = [_shape_text(model.input_shapes)]
        for shapes in larger_guesses(model.input_shapes):
            note = (f"input: the guessed shape {', '.join(failed)} failed "
                    f"({first.cause}); traced at {_shape_text(shapes)} instead")
            retry = dataclasses.replace(model, input_shapes=shapes, notes=[*model.notes, note])
            try:
                return _trace(retry, real_run_max_params)
            except InputShapeError:
                failed.append(_shape_text(shapes))
        if len(failed) == 1:
            raise
        tried = f"; the larger guesses {', '.join(failed[1:])} failed too"
        raise _input_shape_error(model, first.cause, first.where, tried) from None


class InputShapeError(TraceError):
    """forward() failed at the input shape given (a size or channel mismatch): another size may
    work, so a guessed shape is tried again larger. ``cause``: the exception, in one line;
    ``where``: " (at file:line ...)"."""

    def __init__(self, message: str, cause: str, where: str) -> None:
        super().__init__(message)
        self.cause, self.where = cause, where


def _input_shape_error(model: LoadedModel, cause: str, where: str, tried: str = "") -> InputShapeError:
    origin = _shape_origin(model)
    origin = f"{origin[:-1]}{tried})" if origin and tried else origin
    return InputShapeError(
        f"{model.name}: forward() failed for input shape {_shapes(model)}{origin}: {cause}{where}. "
        f"{_shape_advice(model)}{_dtype_advice(model, cause)}", cause, where,
    )  # fmt: skip


def _shapes(model: LoadedModel) -> str:
    return " and ".join(str(list(s)) for s in model.input_shapes)


def _shape_text(shapes: list[Shape]) -> str:
    return " and ".join("x".join(map(str, s)) for s in shapes)


def _trace(model: LoadedModel, real_run_max_params: int) -> TracedModel:
    _check_required_inputs(model)
    root, shapes = model.module, model.input_shapes
    traced = TracedModel(model.name, None, root, shapes, model.sites, list(model.notes),  # type: ignore[arg-type]
                         chains=model.chains, model_dir=model.model_dir)
    if model.input_dtypes:
        traced.notes.append(f"input: element types {', '.join(model.input_dtypes)} (as given)")
    with call_chains_end_here():  # the nodes' call chains end in the model's code, not in ours
        try:
            traced.graph_module = symbolic_trace(root, len(shapes))
            _check_input_count(model, traced.graph_module)
            _propagate_shapes(model, traced.graph_module)
        except ModuleFailure as failure:
            traced.graph_module = _fallback(model, failure, traced, real_run_max_params)
    return traced


def _fallback(
    model: LoadedModel, failure: ModuleFailure, traced: TracedModel, real_run_max_params: int
) -> fx.GraphModule:
    notes = traced.notes
    root, inputs = model.module, example_inputs(model.input_shapes, model.input_dtypes)
    why = f"torch.fx could not trace {_name(failure.path)} ({_reason(failure)})"
    try:
        graph_module, leaves = find_leaves(root, len(inputs), failure)
    except ModuleFailure as root_failure:
        if root_failure is not failure:
            why += f"; then {_name(root_failure.path)} ({_reason(root_failure)})"
    else:
        _check_input_count(model, graph_module)
        try:
            result = trace_leaves(root, graph_module, leaves, inputs)
        except Exception as exc:  # noqa: BLE001 - any failure here leaves runtime capture to try
            why += f"; leaf retrace failed: {type(exc).__name__}: {first_line(exc)}"
        else:
            notes.append(f"trace: leaf retrace; {why}. {_leaf_summary(result)}")
            return result.graph_module
    graph_module, opaque = _capture_whole(model, inputs, why, traced, real_run_max_params)
    summary = f"; opaque: {', '.join(opaque)}" if opaque else ""
    how = "runtime capture"
    if traced.root is not root:
        how = "runtime capture on CPU tensors"
        why += f"; running it on meta tensors failed in {_name(traced.meta_failure.path)} ({_reason(traced.meta_failure)})"
    notes.append(f"trace: {how}; {why}{summary}")
    return graph_module


def _capture_whole(
    model: LoadedModel, inputs, why: str, traced: TracedModel, real_run_max_params: int
) -> tuple[fx.GraphModule, dict[str, str]]:
    """Capture the whole model on meta tensors. When that fails (an op that needs tensor values,
    or one with no meta kernel), run it once on CPU if its parameters fit the budget (the
    docstring's 4); over the budget, give up on each submodule that needs values (opaque)."""
    opaque: dict[str, str] = {}
    try:
        return capture(model.module, tuple(inputs), {}, opaque), opaque
    except ModuleFailure as failure:
        if _parameter_count(model) <= real_run_max_params:
            return _real_run(model, failure, why, traced, opaque, real_run_max_params), opaque
        first = failure
    for _ in range(MAX_OPAQUE + 1):
        needs_values = _NEEDS_VALUES.search(str(first.cause))
        if first.path == "" and needs_values:
            return _real_run(model, first, why, traced, opaque, real_run_max_params), opaque
        if first.path == "" and not needs_values:
            # Not about values (a size, a type, an argument torch rejects): a CPU run would fail
            # the same way, so say what failed and where, as for any forward that fails.
            raise _input_shape_error(model, _one_line(first.cause), where_raised(first.cause)) from None
        if first.path == "" or first.path in opaque or len(opaque) == MAX_OPAQUE:
            over = _over_budget(model, real_run_max_params)
            raise _cannot_trace(model, why, first, over) from None
        opaque[first.path] = f"needs tensor values ({_reason(first)})"
        try:
            return capture(model.module, tuple(inputs), {}, opaque), opaque
        except ModuleFailure as failure:
            first = failure
    raise AssertionError("unreachable")  # pragma: no cover


def _parameter_count(model: LoadedModel) -> int:
    return sum(p.numel() for p in model.module.parameters())


def _over_budget(model: LoadedModel, max_params: int) -> str:
    """What to do when a model that needs values is too large for the real run ("" if it is not)."""
    params = _parameter_count(model)
    if params <= max_params:
        return ""
    return (
        " Models up to {:,} parameters are run once on CPU instead; this one has {:,}: raise the "
        "limit with --real-run-max-params or real-run-max-params in [tool.cnnlint] if it fits "
        "in memory (4 bytes a parameter)."
    ).format(max_params, params)


def _cannot_trace(model: LoadedModel, why: str, failure: ModuleFailure, more: str) -> TraceError:
    return TraceError(
        f"{model.name}: cannot trace this model. {why[0].upper()}{why[1:]}; running it "
        f"on meta tensors failed in {_name(failure.path)} with {_reason(failure)}"
        f"{where_raised(failure.cause)}. "
        "Code that needs tensor values (.item(), nonzero, data-dependent if) cannot "
        f"run without real data; move it out of forward() or behind a submodule.{more}"
    )


def _real_run(
    model: LoadedModel, failure: ModuleFailure, why: str, traced: TracedModel,
    opaque: dict[str, str], max_params: int,
) -> fx.GraphModule:  # fmt: skip
    """Capture the model once on real CPU tensors, if its parameters fit ``max_params``.

    When the meta run failed on something other than missing values (a shape mismatch) and the
    CPU run fails too, the input shape is the likely cause: that is an :class:`InputShapeError`.
    """
    over = _over_budget(model, max_params)
    if over:
        raise _cannot_trace(model, why, failure, over)
    needs_values = bool(_NEEDS_VALUES.search(str(failure.cause)))
    generator = torch.Generator().manual_seed(0)
    try:
        twin = _built_on_cpu(model) or cpu_twin(model.module, generator)
        inputs = example_inputs(model.input_shapes, model.input_dtypes, generator)
        graph_module = capture(twin, tuple(inputs), {}, opaque)
    except Exception as exc:  # noqa: BLE001 - user forward code raises anything
        cause = exc.cause if isinstance(exc, ModuleFailure) else exc
        if not needs_values:
            raise _input_shape_error(model, _one_line(cause), where_raised(cause)) from None
        raise _cannot_trace(
            model, why, failure,
            f" Running it once on CPU tensors failed too: {type(cause).__name__}: "
            f"{first_line(cause)}{where_raised(cause)}.",
        ) from None  # fmt: skip
    traced.root, traced.meta_failure = twin, failure  # the graph holds the twin's parameters, not the meta model's
    site = _raised_at(failure.cause)
    if needs_values and site is not None:
        traced.value_branches.append(site)
    return graph_module


def _built_on_cpu(model: LoadedModel) -> nn.Module | None:
    """The model rebuilt on CPU by its factory (real initial values, anchors included), if it has
    the same module paths as the model the load stage built; else None (its CPU twin is used)."""
    if model.rebuild is None:
        return None
    try:
        module = model.rebuild()
    except Exception:  # noqa: BLE001 - the factory worked once on meta; the twin still can run
        return None
    if not isinstance(module, nn.Module) or [p for p, _ in module.named_modules()] != [
            p for p, _ in model.module.named_modules()]:  # fmt: skip
        return None
    return module


def _raised_at(exc: BaseException) -> SourceLocation | None:
    """The innermost user line of ``exc``'s traceback, with its column."""
    for summary in reversed(traceback.extract_tb(exc.__traceback__)):
        if not is_library_frame(summary.filename):
            column = (getattr(summary, "colno", None) or 0) + 1
            return SourceLocation(summary.filename, summary.lineno or 0, column, summary.name)
    return None


def _leaf_summary(result) -> str:
    parts = [f"{path} by {how}" for path, how in result.how.items()]
    text = f"Inlined {len(result.how)} submodule(s): {_shorten(parts)}" if parts else ""
    if result.opaque:
        text += f"{'; ' if text else ''}opaque: {_shorten(list(result.opaque))}"
    return text


def _shorten(items: list[str], keep: int = 4) -> str:
    more = f" and {len(items) - keep} more" if len(items) > keep else ""
    return ", ".join(items[:keep]) + more


def _name(path: str) -> str:
    return f"submodule {path}" if path else "the model's own forward()"


def _reason(failure: ModuleFailure) -> str:
    return _one_line(failure.cause)


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc)}"


def _check_input_count(model: LoadedModel, graph_module: fx.GraphModule) -> None:
    placeholders = [n for n in graph_module.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(model.input_shapes):
        raise _input_count_error(model, [str(p.target) for p in placeholders])


def _check_required_inputs(model: LoadedModel) -> None:
    """forward()'s parameters without a default, before any trace: a model taking two images
    (optical flow) given one shape is told so, whichever fallback would have run it."""
    try:
        parameters = inspect.signature(model.module.forward).parameters.values()
    except (TypeError, ValueError):
        return
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p.name for p in parameters if p.kind in kinds and p.default is inspect.Parameter.empty]
    if len(required) > len(model.input_shapes):
        raise _input_count_error(model, required)


def _input_count_error(model: LoadedModel, inputs: list[str]) -> TraceError:
    given = ", ".join(str(list(s)) for s in model.input_shapes)
    return TraceError(
        f"{model.name}: forward() takes {len(inputs)} input(s) ({', '.join(inputs)}) but "
        f"{len(model.input_shapes)} shape(s) were given ({given}); set input-shape for this model "
        "in [tool.cnnlint.models] as a list of shapes."
    )


def _propagate_shapes(model: LoadedModel, graph_module: fx.GraphModule) -> None:
    """Raises ModuleFailure for an op inside a submodule that needs tensor values (the fallbacks
    make that submodule opaque), TraceError for anything else (usually a wrong input shape)."""
    try:
        ShapeRecorder(graph_module).run(*example_inputs(model.input_shapes, model.input_dtypes))
    except NodeFailure as failure:
        stack = failure.node.meta.get("nn_module_stack") or {}
        inner = next(reversed(stack.values()), ("",))
        inner = inner[0] if isinstance(inner, tuple) else str(inner)
        if _NEEDS_VALUES.search(str(failure.cause)):
            raise ModuleFailure(inner, failure.cause) from None
        raise _input_shape_error(model, _one_line(failure.cause), where_in_forward(failure.node)) from None


def _shape_origin(model: LoadedModel) -> str:
    return {"option": " (from --input-shape)", "config": " (from pyproject.toml)",
            "declared": " (the model's declared input size)",
            "guess": " (guessed: the model declares no input size)"}.get(model.input_source, "")  # fmt: skip


# How torch says a float tensor reached an op that takes indices or a mask (nn.Embedding,
# index_select, gather, tensor indexing, masked_fill): the input holds integers, a type cnnlint is
# told, not a shape. Not any message that says "mask" or "indices" (an attention mask's shape).
_WANTS_INTEGERS = re.compile(r"scalar types?: (Long|Int|Bool)|expected scalar type (Long|Int|Bool)|"
                             r"must be (Long|Int|Bool|integer)|Expected dtype int|used as indices must be|"
                             r"only supports boolean masks", re.IGNORECASE)


def _dtype_advice(model: LoadedModel, cause: str) -> str:
    if not _WANTS_INTEGERS.search(cause):
        return ""
    return (" An input that holds indices, lengths or a mask needs its type stated, one per "
            "input: --input-dtype float32,int64 for an image and an index, or input-dtype in "
            "pyproject.toml.")


def _shape_advice(model: LoadedModel) -> str:
    """What to pass: with a guessed shape, the command-line option and the pyproject.toml entry."""
    if model.input_source not in ("guess", "declared"):
        return "Check the layer sizes, or the input shape given."
    shape = model.input_shapes[0]
    dims = [*map(str, shape[:2]), *{1: ["L"], 2: ["H", "W"], 3: ["D", "H", "W"]}.get(
        len(shape) - 2, map(str, shape[2:]))]  # fmt: skip
    example, toml = ",".join(dims), ", ".join(dims)
    return (
        "Check the layer sizes, or pass the shape the model expects: "
        f"--input-shape {example}, or in pyproject.toml:\n"
        f'    [tool.cnnlint.models."{model.name}"]\n'
        f"    input-shape = [{toml}]"
    )
