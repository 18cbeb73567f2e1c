"""The types every stage shares: shapes, source locations, op kinds, severities, layers and the
LayerGraph.

The bottom of the pipeline: this module imports no stage, so load, trace, graph, cost, check and
report can all use it. A LayerGraph is a ``networkx.DiGraph`` whose nodes are typed :class:`Layer`
records (kind, shapes, params, module path, source locations). Rules and the cost model see only
these types, never torch; the builder that turns a torch.fx graph into a LayerGraph lives in
:mod:`cnnlint.graph.build`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from math import prod
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    import networkx as nx


# Number formats a target may run, and the bytes of one element in each.
BYTES_PER_ELEMENT: dict[str, int] = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}
PRECISIONS: tuple[str, ...] = tuple(BYTES_PER_ELEMENT)

# Element types a model input may be given as (``input-dtype``), by torch's names. Float32 is
# the default; an integer input (sequence lengths, class or speaker indices) or a boolean mask is
# stated. In a run on real tensors (cnnlint.trace), integer inputs are 1 and boolean ones False.
INPUT_DTYPES: tuple[str, ...] = (
    "float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
DEFAULT_INPUT_DTYPE = "float32"

# How much a finding matters, lowest first. A finding the engine has not given one yet (None)
# counts as info.
Severity = Literal["info", "warning", "error"]
SEVERITIES: tuple[str, ...] = get_args(Severity)


def severity_rank(severity: str | None) -> int:
    """0 for info (and None), 1 for warning, 2 for error; ValueError for anything else."""
    return SEVERITIES.index(severity or "info")


def at_or_above(severity: str | None, threshold: str) -> bool:
    """Whether a finding of ``severity`` reaches ``threshold``: a severity, or ``"never"``, which
    nothing reaches. The one severity comparison (``--fail-on``, ``--fail-on-new``, junit, tests)."""
    return threshold != "never" and severity_rank(severity) >= severity_rank(threshold)


class OpKind:
    """Op kinds a layer can have. Plain strings so profiles and rules can name them in TOML."""

    INPUT = "input"
    OUTPUT = "output"
    CONV = "conv"
    DEPTHWISE_CONV = "depthwise_conv"
    GROUP_CONV = "group_conv"
    CONV_TRANSPOSE = "conv_transpose"
    LINEAR = "linear"
    MATMUL = "matmul"
    NORM = "norm"
    ACTIVATION = "activation"
    ELEMENTWISE = "elementwise"  # add, mul, sub, div between tensors
    CONCAT = "concat"
    SPLIT = "split"
    CHANNEL_SHUFFLE = "channel_shuffle"
    POOL = "pool"
    UPSAMPLE = "upsample"
    REDUCE = "reduce"  # mean/sum/softmax-style reductions
    RESHAPE = "reshape"  # view, flatten, permute, slicing: no arithmetic
    IDENTITY = "identity"  # dropout & co. at inference time
    OPAQUE = "opaque"  # a submodule the tracer could not look inside
    OTHER = "other"

    # Every kind above; what each kind is (class, cost, fusion role, shape) is its row in the op
    # table, cnnlint.ops.OPS.
    ALL = frozenset(value for name, value in vars().items() if name.isupper() and isinstance(value, str))
    CONVOLUTIONS = frozenset({CONV, DEPTHWISE_CONV, GROUP_CONV, CONV_TRANSPOSE})
    WEIGHTED = CONVOLUTIONS | {LINEAR}


Shape = tuple[int, ...]


@dataclass(frozen=True)
class SourceLocation:
    """A line in a source file: its path, 1-based line and column, and the function it is in."""

    path: str
    line: int
    column: int = 1
    function: str = ""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass
class Layer:
    """One node of the LayerGraph: a module call, a function call or a method call."""

    name: str  # unique node name (the fx node name)
    kind: str  # an OpKind value
    op: str  # what was called: "Conv2d", "relu", "add", "cat", ...
    module_path: str = ""  # "features.3.conv.1" ("" for the model itself)
    input_shapes: list[Shape] = field(default_factory=list)
    output_shapes: list[Shape] = field(default_factory=list)
    dtype: str = "float32"
    params: int = 0  # parameters owned by this call (0 for a re-used, weight-shared module)
    # Computed from parameters, buffers and constants alone (a weight standardised in forward):
    # no model input reaches it, so its value is the same for every image and every call.
    param_only: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)  # kernel_size, groups, in_channels, ...
    built_at: SourceLocation | None = None  # where the layer's module was constructed
    called_at: SourceLocation | None = None  # the forward line that applies it
    # how built_at was reached: every construction frame, outermost first (model -> block ->
    # helper), so a line inside a shared block also says which caller built this instance
    built_via: list[SourceLocation] = field(default_factory=list)
    # the user frames of the call that made it, outermost first: the model's forward, a block's
    # forward, the library code a wrapper called (the frames called_at was chosen from)
    called_via: list[SourceLocation] = field(default_factory=list)
    # Layers built by the same code share one edit: the check stage adds up a rule's findings
    # per edit site. A traced layer's site is its location's line (site_key ""); an ONNX layer's
    # location is a node, so its reader keys the code that built it instead (cnnlint.graph.onnx).
    site_key: str = ""

    @property
    def location(self) -> SourceLocation | None:
        """The line a user edits to change this layer: construction site, else the forward call."""
        return self.built_at or self.called_at

    @property
    def output_shape(self) -> Shape:
        return self.output_shapes[0] if self.output_shapes else ()

    @property
    def input_shape(self) -> Shape:
        return self.input_shapes[0] if self.input_shapes else ()

    @property
    def output_numel(self) -> int:
        return sum(prod(s) for s in self.output_shapes)

    @property
    def input_numel(self) -> int:
        return sum(prod(s) for s in self.input_shapes)

    @property
    def label(self) -> str:
        return self.module_path or self.name

    def is_conv(self) -> bool:
        return self.kind in OpKind.CONVOLUTIONS


class LayerGraph:
    """A model as a DAG of :class:`Layer` nodes, in execution (topological) order."""

    def __init__(self, model_name: str, input_shapes: list[Shape] | None = None) -> None:
        self.model_name = model_name
        self.input_shapes: list[Shape] = list(input_shapes or [])
        import networkx as nx  # here: results read back from the cache need no graph library

        self.digraph: nx.DiGraph = nx.DiGraph()  # the edges; its nodes are layer names
        self._layers: dict[str, Layer] = {}  # by name: read for every query, so a plain dict
        self._order: list[str] = []
        self.notes: list[str] = []  # trace fallbacks and other facts worth reporting
        # Lines where the model's own forward branched on tensor values: the graph follows the
        # branch one random input took (rule CL001 says so).
        self.value_branches: list[SourceLocation] = []
        self.params_total = 0  # unique parameters the traced forward uses
        self.params_unused = 0  # parameters the model holds that the forward never uses
        self.unused_modules: list[str] = []  # the outermost submodules holding only those

    # construction
    def add_layer(self, layer: Layer) -> Layer:
        if layer.name in self.digraph:
            raise ValueError(f"duplicate layer name {layer.name!r}")
        self.digraph.add_node(layer.name)
        self._layers[layer.name] = layer
        self._order.append(layer.name)
        return layer

    def add_edge(self, producer: str, consumer: str) -> None:
        self.digraph.add_edge(producer, consumer)

    def replace(self, names: Iterable[str], layer: Layer) -> Layer:
        """Replace connected layers by one ``layer`` (a subgraph recognised as one op), placed
        where the last of them ran; edges from outside producers and to outside consumers move
        to it."""
        names = set(names)
        outside_in = [p for n in self._order if n in names for p in self.digraph.predecessors(n)
                      if p not in names]  # fmt: skip
        # Each outside consumer keeps its producers in their order, the new layer in place of
        # the replaced ones.
        readers = {c: [layer.name if p in names else p for p in self.digraph.predecessors(c)]
                   for n in self._order if n in names for c in self.digraph.successors(n)
                   if c not in names}  # fmt: skip
        last = max(self._order.index(n) for n in names)
        order = [n for i, n in enumerate(self._order) if n not in names or i == last]
        order[order.index(self._order[last])] = layer.name
        if layer.name in self.digraph and layer.name not in names:
            raise ValueError(f"duplicate layer name {layer.name!r}")
        self.digraph.remove_nodes_from(names)
        for name in names:
            del self._layers[name]
        self.digraph.add_node(layer.name)
        self._layers[layer.name] = layer
        self._order = order
        for producer in dict.fromkeys(outside_in):
            self.digraph.add_edge(producer, layer.name)
        for consumer, producers in readers.items():
            self.digraph.remove_edges_from([(p, consumer) for p in list(self.digraph.predecessors(consumer))])
            self.digraph.add_edges_from((p, consumer) for p in dict.fromkeys(producers))
        return layer

    def unique_name(self, base: str) -> str:
        """``base``, or ``base_1``, ``base_2``, ... : the first name no layer has."""
        name, n = base, 0
        while name in self.digraph:
            n += 1
            name = f"{base}_{n}"
        return name

    # queries
    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[Layer]:
        return map(self._layers.__getitem__, self._order)

    def __getitem__(self, name: str) -> Layer:
        return self._layers[name]

    def layers(self, kind: str | Iterable[str] | None = None) -> Iterator[Layer]:
        """Layers in execution order, optionally only those of the given kind(s)."""
        if kind is None:
            yield from self
            return
        kinds = {kind} if isinstance(kind, str) else set(kind)
        for layer in self:
            if layer.kind in kinds:
                yield layer

    def producers(self, layer: Layer | str) -> list[Layer]:
        name = layer if isinstance(layer, str) else layer.name
        return list(map(self._layers.__getitem__, self.digraph.predecessors(name)))

    def consumers(self, layer: Layer | str) -> list[Layer]:
        name = layer if isinstance(layer, str) else layer.name
        return list(map(self._layers.__getitem__, self.digraph.successors(name)))

    def reachable(self, layer: Layer, direction: str, through: Callable[[Layer], bool]) -> Iterator[Layer]:
        """Every layer reached from ``layer`` going ``"up"`` (producers) or ``"down"``
        (consumers), each once: its neighbours, and on from each one for which ``through``
        holds (e.g. ``cnnlint.ops.is_view``)."""
        step = self.producers if direction == "up" else self.consumers
        frontier, seen = list(step(layer)), set()
        while frontier:
            found = frontier.pop()
            if found.name in seen:
                continue
            seen.add(found.name)
            yield found
            if through(found):
                frontier.extend(step(found))

    def is_fed_by_input(self, layer: Layer, through: Callable[[Layer], bool]) -> bool:
        """True when a layer reads the model input directly or through layers for which
        ``through`` holds."""
        return any(found.kind == OpKind.INPUT for found in self.reachable(layer, "up", through))
