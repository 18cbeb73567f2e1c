"""Stage 2, trace: nn.Module -> torch.fx GraphModule with every node's output shape.

Symbolic tracing records the forward-line stack trace of each node; shapes are propagated with
tensors on the ``meta`` device, so no real forward pass runs on real data and no weights exist.
Fallbacks for models plain symbolic tracing cannot handle belong in this module and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import _extract_tensor_metadata

from cnnlint.errors import TraceError
from cnnlint.graph import Shape
from cnnlint.load import LoadedModel


@dataclass
class TracedModel:
    name: str
    graph_module: fx.GraphModule
    root: nn.Module  # the original model, for module lookups by path
    input_shapes: list[Shape]
    sites: dict
    notes: list[str] = field(default_factory=list)


class _ShapeRecorder(fx.Interpreter):
    """Run the graph on meta tensors and store each node's output as ``tensor_meta``.

    Like fx's ShapeProp, but a failure names the node and its forward line instead of printing a
    traceback.
    """

    def run_node(self, node: fx.Node):
        try:
            result = super().run_node(node)
        except Exception as exc:  # noqa: BLE001 - re-raised with the node that failed
            raise _NodeFailure(node, exc) from exc
        node.meta["tensor_meta"] = _tensor_meta(result)
        return result


class _NodeFailure(Exception):
    def __init__(self, node: fx.Node, cause: Exception) -> None:
        super().__init__(str(cause))
        self.node, self.cause = node, cause


def _tensor_meta(value):
    if isinstance(value, torch.Tensor):
        return _extract_tensor_metadata(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_tensor_meta(v) for v in value) if isinstance(value, list) else tuple(
            _tensor_meta(v) for v in value
        )
    if isinstance(value, dict):
        return {k: _tensor_meta(v) for k, v in value.items()}
    return None


class _RecordingTracer(fx.Tracer):
    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True


def _meta_inputs(shapes: list[Shape]) -> list[torch.Tensor]:
    return [torch.empty(shape, device="meta") for shape in shapes]


def trace(model: LoadedModel) -> TracedModel:
    """Symbolically trace ``model`` and propagate shapes for its input shapes."""
    tracer = _RecordingTracer()
    try:
        graph = tracer.trace(model.module)
    except Exception as exc:  # noqa: BLE001 - fx raises many types; the message is what matters
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise TraceError(
            f"{model.name}: torch.fx symbolic tracing failed: {type(exc).__name__}: {first_line}"
        ) from None
    graph_module = fx.GraphModule(tracer.root, graph, type(model.module).__name__)

    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(model.input_shapes):
        given = ", ".join(str(list(s)) for s in model.input_shapes)
        raise TraceError(
            f"{model.name}: forward() takes {len(placeholders)} input(s) "
            f"({', '.join(p.target for p in placeholders)}) but {len(model.input_shapes)} shape(s) "
            f"were given ({given}); set input-shape for this model in [tool.cnnlint.models] "
            "as a list of shapes."
        )
    try:
        _ShapeRecorder(graph_module).run(*_meta_inputs(model.input_shapes))
    except _NodeFailure as failure:
        raise TraceError(
            f"{model.name}: forward() failed for input shape "
            f"{' and '.join(str(list(s)) for s in model.input_shapes)}: "
            f"{type(failure.cause).__name__}: {_first_line(failure.cause)}"
            f"{_where_in_forward(failure.node)}. "
            "Check the layer sizes, or pass the shape the model expects with --input-shape."
        ) from None
    return TracedModel(
        name=model.name,
        graph_module=graph_module,
        root=model.module,
        input_shapes=model.input_shapes,
        sites=model.sites,
        notes=list(model.notes),
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _where_in_forward(node: fx.Node) -> str:
    """' at file:line' of the forward line that created the failing node."""
    from cnnlint.paths import display_path

    frames = re.findall(r'File "([^"]+)", line (\d+)', node.meta.get("stack_trace") or "")
    if not frames:
        return f" (at node {node.name})"
    path, line = frames[-1]
    return f" (at {display_path(path)}:{line}, {node.format_node()})"
