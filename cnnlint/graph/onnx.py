"""Stage 3, graph, for exported models: an ONNX file -> LayerGraph, read directly (no torch tracer).

A ``.onnx`` spec (``cnnlint model.onnx --target rk3588``) skips load and trace: the file is read
with the ``onnx`` package (the optional extra ``cnnlint[onnx]``), every tensor's shape comes from
onnx's own shape inference, node by node in graph order, with the small integer tensors a
TorchScript export computes shapes with (``Shape -> Gather -> Div -> Slice``) evaluated on the
way, so a chunk's slices have shapes too. Each node becomes a typed :class:`~cnnlint.core.Layer`
through :data:`ONNX_KINDS`, with the attributes the PyTorch graph stage records (a conv's
kernel, stride, padding, dilation, groups, channels and bias; a pool's window; a resize's mode;
a clip's bounds), so the cost stage and the rules see the same graph they see for a PyTorch
model. An op the table does not know is a layer of kind ``other``; it is linted, never an error.

What a PyTorch graph has and an export does not:

- locations: a layer's location is the ONNX file, its line the node's 1-based position in the
  graph's node list and its function the node's name; its module path is the node's name (the
  TorchScript exporter names nodes after the module path, ``/features/features.1/conv/conv.0/Conv``;
  the dynamo exporter's names are ``node_Conv_12``);
- construction lines: where a PyTorch layer's findings are added up per constructor line before
  warning or info is decided (one edit there changes every layer it builds), a node's
  :attr:`~cnnlint.core.Layer.site_key` stands for that line (:func:`site_key`);
- BatchNorm: both torch exporters fold an inference BatchNorm into the conv before it, so there
  is no norm layer and the conv has a bias;
- a global average pool the dynamo exporter writes as ``ReduceMean`` over the spatial axes
  (``keepdims=1``) is read back as the adaptive pool it came from.

Nodes computed from initializers and constants alone are constants here, as an engine folds them
at conversion (PyTorch graphs mark such layers ``param_only``).
"""

from __future__ import annotations

import ast
import re
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlint.core import Layer, LayerGraph, OpKind, Shape, SourceLocation
from cnnlint.errors import LoadError
from cnnlint.paths import display_path

if TYPE_CHECKING:
    import numpy as np
    import onnx

INSTALL_HINT = "pip install 'cnnlint[onnx]'"
LOCATION_NOTE = ("locations are ONNX node names: each finding's line is the node's position in the "
                 "graph and its name the node's name")  # fmt: skip

K = OpKind
# ONNX op type -> (op kind, the op name the PyTorch graph stage gives the same op). An op type
# not listed is kind OTHER under its own name.
ONNX_KINDS: dict[str, tuple[str, str]] = {
    "Conv": (K.CONV, "Conv"),  # depthwise or group by its `group` attribute
    "ConvTranspose": (K.CONV_TRANSPOSE, "ConvTranspose"),
    "Gemm": (K.LINEAR, "Linear"),
    "MatMul": (K.MATMUL, "matmul"),  # a constant 2-D right operand makes it a linear layer
    "Einsum": (K.MATMUL, "einsum"),
    "BatchNormalization": (K.NORM, "BatchNorm"),
    "InstanceNormalization": (K.NORM, "InstanceNorm"),
    "LayerNormalization": (K.NORM, "LayerNorm"),
    "GroupNormalization": (K.NORM, "GroupNorm"),
    "LRN": (K.NORM, "LocalResponseNorm"),
    "Relu": (K.ACTIVATION, "relu"),
    "Clip": (K.ACTIVATION, "clip"),  # relu6 or relu by its bounds
    "Sigmoid": (K.ACTIVATION, "sigmoid"),
    "HardSigmoid": (K.ACTIVATION, "hardsigmoid"),
    "HardSwish": (K.ACTIVATION, "hardswish"),
    "Gelu": (K.ACTIVATION, "gelu"),
    "Tanh": (K.ACTIVATION, "tanh"),
    "LeakyRelu": (K.ACTIVATION, "leakyrelu"),
    "PRelu": (K.ACTIVATION, "prelu"),
    "Elu": (K.ACTIVATION, "elu"),
    "Selu": (K.ACTIVATION, "selu"),
    "Celu": (K.ACTIVATION, "celu"),
    "Mish": (K.ACTIVATION, "mish"),
    "Softplus": (K.ACTIVATION, "softplus"),
    "Softsign": (K.ACTIVATION, "softsign"),
    "ThresholdedRelu": (K.ACTIVATION, "threshold"),
    "Add": (K.ELEMENTWISE, "add"),
    "Sub": (K.ELEMENTWISE, "sub"),
    "Mul": (K.ELEMENTWISE, "mul"),
    "Div": (K.ELEMENTWISE, "div"),
    "Pow": (K.ELEMENTWISE, "pow"),
    "Neg": (K.ELEMENTWISE, "neg"),
    "Max": (K.ELEMENTWISE, "maximum"),
    "Min": (K.ELEMENTWISE, "minimum"),
    "Where": (K.ELEMENTWISE, "where"),
    "Concat": (K.CONCAT, "cat"),
    "Split": (K.SPLIT, "split"),
    "MaxPool": (K.POOL, "MaxPool"),
    "AveragePool": (K.POOL, "AvgPool"),
    "LpPool": (K.POOL, "LPPool"),
    "GlobalAveragePool": (K.POOL, "AdaptiveAvgPool"),
    "GlobalMaxPool": (K.POOL, "AdaptiveMaxPool"),
    "Resize": (K.UPSAMPLE, "interpolate"),  # named by its mode
    "Upsample": (K.UPSAMPLE, "interpolate"),
    "DepthToSpace": (K.UPSAMPLE, "pixel_shuffle"),
    "SpaceToDepth": (K.UPSAMPLE, "pixel_unshuffle"),
    "ReduceMean": (K.REDUCE, "mean"),
    "ReduceSum": (K.REDUCE, "sum"),
    "ReduceMax": (K.REDUCE, "amax"),
    "ReduceL2": (K.REDUCE, "norm"),
    "Softmax": (K.REDUCE, "softmax"),
    "LogSoftmax": (K.REDUCE, "log_softmax"),
    "Reshape": (K.RESHAPE, "reshape"),
    "Flatten": (K.RESHAPE, "flatten"),
    "Transpose": (K.RESHAPE, "permute"),
    "Squeeze": (K.RESHAPE, "squeeze"),
    "Unsqueeze": (K.RESHAPE, "unsqueeze"),
    "Expand": (K.RESHAPE, "expand"),
    "Slice": (K.RESHAPE, "narrow"),
    "Gather": (K.RESHAPE, "getitem"),
    "Identity": (K.IDENTITY, "Identity"),
    "Dropout": (K.IDENTITY, "Dropout"),
    "Cast": (K.IDENTITY, "to"),
    "Pad": (K.OTHER, "pad"),
    "GridSample": (K.OTHER, "grid_sample"),
}
del K

# Ops that read only their input's shape: their output is a constant once the shape is known.
_SHAPE_READERS = frozenset({"Shape", "Size"})
# Constant inputs evaluated while reading (shape arithmetic) are at most this many elements;
# larger constant-only nodes (work on weights) are left as layers.
_MAX_EVALUATED = 1 << 16
_FLOAT_TYPES = frozenset({1, 10, 11, 16})  # float, float16, double, bfloat16
# What the dynamo exporter records on each node: the paths and the classes of the modules it is
# in, outermost (the model, path "") first, then the op's own fx node and its target.
_NAME_SCOPES = "pkg.torch.onnx.name_scopes"
_CLASS_HIERARCHY = "pkg.torch.onnx.class_hierarchy"
_NUMBER = re.compile(r"\d+")


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        return None
    return onnx


def read_model(path: Path) -> onnx.ModelProto:
    """The model in ``path``; a LoadError that names the file for anything unreadable."""
    onnx = _onnx()
    shown = display_path(path)
    if onnx is None:
        raise LoadError(
            f"{shown}: reading an ONNX model needs the onnx package, which is not installed; "
            f"install it with `{INSTALL_HINT}` (or `pip install onnx`) and run again."
        )
    if not path.is_file():
        raise LoadError(f"{shown}: no such file.")
    try:
        model = onnx.load(str(path))  # with its weights' external data file, beside it
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise LoadError(f"{shown}: not a readable ONNX model ({type(exc).__name__}: {exc}). "
                        "Export it again (torch.onnx.export) or check the file is complete.") from None
    try:
        onnx.checker.check_model(str(path))  # by path: external data resolves beside the file
    except Exception as exc:  # noqa: BLE001 - onnx.checker.ValidationError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LoadError(f"{shown}: not a valid ONNX model ({first}). Export it again "
                        "(torch.onnx.export) or check the file is complete.") from None
    if not model.graph.node:
        raise LoadError(f"{shown}: the ONNX graph has no nodes; there is nothing to lint.")
    return model


class _Reader:
    """One pass over an ONNX graph in node order: types, constant values, layers."""

    def __init__(self, model: onnx.ModelProto, path: Path, input_shapes: list[Shape] | None) -> None:
        import numpy as np
        import onnx
        from onnx import numpy_helper

        self.onnx, self.np, self.numpy_helper = onnx, np, numpy_helper
        self.model = model
        self.path = display_path(path)
        self.opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
        self.types: dict[str, onnx.TypeProto] = {}
        self.values: dict[str, np.ndarray] = {}  # constants: initializers, Constant nodes, shape arithmetic
        self.producer: dict[str, str] = {}  # tensor -> layer name
        self.used_params: set[str] = set()  # initializers read by layers (after Identity aliases)
        self.alias: dict[str, str] = {}  # a tensor Identity copies from an initializer -> that initializer
        initializers = {t.name for t in model.graph.initializer}
        for tensor in model.graph.initializer:
            self.values[tensor.name] = numpy_helper.to_array(tensor)
            self.types[tensor.name] = onnx.helper.make_tensor_type_proto(tensor.data_type, list(tensor.dims))
        self.inputs = [i for i in model.graph.input if i.name not in initializers]
        self.package = _model_package(model)
        self.input_shapes = self._fix_inputs(input_shapes)
        # onnx's whole-graph inference, for what one node's inference cannot say (a function)
        try:
            inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
            self.inferred = {v.name: v.type for v in [*inferred.graph.value_info, *inferred.graph.output]}
        except Exception:  # noqa: BLE001 - the node-by-node pass still runs
            self.inferred = {}

    def _fix_inputs(self, given: list[Shape] | None) -> list[Shape]:
        """Each input's shape: its declared dims, a symbolic one from ``--input-shape`` (or 1
        for a symbolic batch)."""
        shapes: list[Shape] = []
        for index, value in enumerate(self.inputs):
            tensor = value.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
            if given and index < len(given):
                if len(given[index]) != len(dims):
                    raise LoadError(f"{self.path}: input {value.name!r} has {len(dims)} dims, "
                                    f"--input-shape gives {len(given[index])}.")  # fmt: skip
                dims = [g for g in given[index]]
            if dims and dims[0] is None:
                dims[0] = 1
            if any(d is None for d in dims):
                raise LoadError(
                    f"{self.path}: input {value.name!r} has symbolic dims "
                    f"({', '.join(d.dim_param or '?' for d in tensor.shape.dim if not d.HasField('dim_value'))}); "
                    "give its shape with --input-shape, e.g. --input-shape 1x3x224x224."
                )
            shape = tuple(int(d) for d in dims)
            self.types[value.name] = self.onnx.helper.make_tensor_type_proto(tensor.elem_type, list(shape))
            shapes.append(shape)
        return shapes

    # -- shapes and constants
    def shape(self, name: str) -> Shape | None:
        if name in self.values:
            return tuple(int(d) for d in self.values[name].shape)
        proto = self.types.get(name)
        if proto is None or not proto.tensor_type.HasField("shape"):
            return None
        dims = proto.tensor_type.shape.dim
        if not all(d.HasField("dim_value") for d in dims):
            return None
        return tuple(int(d.dim_value) for d in dims)

    def _infer(self, node: onnx.NodeProto) -> None:
        onnx = self.onnx
        outputs: dict[str, Any] = {}
        try:
            schema = onnx.defs.get_schema(node.op_type, self.opsets.get(node.domain or "ai.onnx", 1),
                                          node.domain)  # fmt: skip
            types = {n: self._type(n) for n in node.input if n in self.types or n in self.values}
            data = {n: self.numpy_helper.from_array(self.values[n], n) for n in node.input
                    if n in self.values and self.values[n].size <= _MAX_EVALUATED}  # fmt: skip
            outputs = onnx.shape_inference.infer_node_outputs(
                schema, node, types, data, opset_imports=list(self.model.opset_import),
                ir_version=self.model.ir_version,
            )  # fmt: skip
        except Exception:  # noqa: BLE001 - unknown op, custom domain: the whole-graph answer
            outputs = {}
        for name in node.output:
            if not name:
                continue
            found = outputs.get(name)
            if found is None or self._unknown(found):
                found = self.inferred.get(name, found)
            if found is not None:
                self.types[name] = found

    def _type(self, name: str) -> Any:
        if name not in self.types:  # a folded constant
            value = self.values[name]
            elem = self.onnx.helper.np_dtype_to_tensor_dtype(value.dtype)
            self.types[name] = self.onnx.helper.make_tensor_type_proto(elem, list(value.shape))
        return self.types[name]

    @staticmethod
    def _unknown(proto: Any) -> bool:
        tensor = proto.tensor_type
        return not tensor.HasField("shape") or not all(d.HasField("dim_value") for d in tensor.shape.dim)

    def _evaluate(self, node: onnx.NodeProto) -> bool:
        """Fold a node computed from constants (and input shapes) alone; True when folded."""
        np = self.np
        if node.op_type == "Constant":
            attr = node.attribute[0]
            value = self.onnx.helper.get_attribute_value(attr)
            if attr.name == "value":
                value = self.numpy_helper.to_array(value)
            self.values[node.output[0]] = np.asarray(value)
            return True
        if node.op_type in _SHAPE_READERS:
            shape = self.shape(node.input[0])
            if shape is None:
                return False
            result = np.array(shape, dtype=np.int64)
            if node.op_type == "Size":
                result = np.array(prod(shape), dtype=np.int64)
            else:
                attrs = {a.name: a.i for a in node.attribute}
                result = result[attrs.get("start", 0): attrs.get("end", len(shape))]
            self.values[node.output[0]] = result
            return True
        inputs = [n for n in node.input if n]
        if not inputs or not all(n in self.values for n in inputs):
            return False
        if node.op_type == "Identity":  # the TorchScript exporter's alias of a shared initializer
            self.values[node.output[0]] = self.values[inputs[0]]
            self.alias[node.output[0]] = self.alias.get(inputs[0], inputs[0])
            return True
        if sum(self.values[n].size for n in inputs) > _MAX_EVALUATED:
            return False
        try:
            from onnx.reference import ReferenceEvaluator

            helper = self.onnx.helper
            graph = helper.make_graph(
                [node], "fold", [],
                [helper.make_tensor_value_info(o, self.onnx.TensorProto.UNDEFINED, None) for o in node.output if o],
                [self.numpy_helper.from_array(np.asarray(self.values[n]), n) for n in dict.fromkeys(inputs)],
            )  # fmt: skip
            folded = helper.make_model(graph, opset_imports=list(self.model.opset_import),
                                       ir_version=self.model.ir_version)  # fmt: skip
            results = ReferenceEvaluator(folded).run(None, {})
        except Exception:  # noqa: BLE001 - left as a layer
            return False
        for name, value in zip([o for o in node.output if o], results):
            self.values[name] = np.asarray(value)
        return True

    # -- layers
    def build(self, name: str) -> LayerGraph:
        graph = LayerGraph(name, self.input_shapes)
        graph.notes.append(LOCATION_NOTE)
        for value, shape in zip(self.inputs, self.input_shapes):
            layer = graph.add_layer(Layer(name=graph.unique_name(value.name or "input"), kind=OpKind.INPUT,
                                          op="input", output_shapes=[shape]))  # fmt: skip
            self.producer[value.name] = layer.name
        unknown: dict[str, int] = {}
        for index, node in enumerate(self.model.graph.node):
            if self._evaluate(node):
                continue
            self._infer(node)
            data = [n for n in node.input if n in self.producer]
            if not data:  # work on constants alone: folded at conversion
                continue
            layer = self._layer(graph, index, node, data)
            if layer.kind == OpKind.OTHER and node.op_type not in ONNX_KINDS:
                unknown[node.op_type] = unknown.get(node.op_type, 0) + 1
            graph.add_layer(layer)
            for producer in dict.fromkeys(self.producer[n] for n in data):
                graph.add_edge(producer, layer.name)
            for output in node.output:
                if output:
                    self.producer[output] = layer.name
        outputs = [o.name for o in self.model.graph.output if o.name in self.producer]
        out = Layer(name=graph.unique_name("output"), kind=OpKind.OUTPUT, op="output",
                    input_shapes=[s for o in outputs if (s := self.shape(o)) is not None])  # fmt: skip
        graph.add_layer(out)
        for producer in dict.fromkeys(self.producer[o] for o in outputs):
            graph.add_edge(producer, out.name)
        graph.params_total = sum(int(self.values[n].size) for n in self.used_params)
        if unknown:
            listed = ", ".join(f"{op} ({count})" for op, count in sorted(unknown.items()))
            graph.notes.append(f"ONNX ops cnnlint does not classify, linted as kind 'other' with no "
                               f"work counted: {listed}")  # fmt: skip
        return graph

    def _layer(self, graph: LayerGraph, index: int, node: onnx.NodeProto, data: list[str]) -> Layer:
        kind, op = ONNX_KINDS.get(node.op_type, (OpKind.OTHER, node.op_type))
        attrs_in = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        constants = [n for n in node.input if n and n not in self.producer and n in self.values]
        output_shapes = [s for o in node.output if o and (s := self.shape(o)) is not None]
        input_shapes = [s for n in data if (s := self.shape(n)) is not None]
        attrs: dict[str, Any] = {}
        params = 0
        weight = self._constant(node, 1)
        if kind in (OpKind.CONV, OpKind.CONV_TRANSPOSE) and weight is not None:
            attrs = _conv_attrs(kind, weight.shape, attrs_in, len(node.input) > 2 and bool(node.input[2]))
            kind = _conv_kind(kind, attrs)
            params = self._params(node.input[1:3])
        elif kind in (OpKind.CONV, OpKind.CONV_TRANSPOSE):
            kind = OpKind.OTHER  # a weight computed at run time: not a layer cnnlint can price
        elif node.op_type == "Gemm" and weight is not None and weight.ndim == 2:
            w = weight.T if attrs_in.get("transB", 0) else weight
            attrs = {"in_features": int(w.shape[0]), "out_features": int(w.shape[1]),
                     "bias": len(node.input) > 2 and bool(node.input[2])}  # fmt: skip
            params = self._params(node.input[1:3])
        elif node.op_type == "MatMul" and weight is not None and weight.ndim == 2:
            kind, op = OpKind.LINEAR, "Linear"
            attrs = {"in_features": int(weight.shape[0]), "out_features": int(weight.shape[1]), "bias": False}
            params = self._params(node.input[1:2])
        elif kind in (OpKind.MATMUL, OpKind.LINEAR):
            kind, op = OpKind.MATMUL, op if kind == OpKind.MATMUL else "matmul"
            attrs["operand_shapes"] = [s for n in node.input if n and (s := self.shape(n)) is not None]
            if node.op_type == "Einsum":
                attrs["equation"] = attrs_in.get("equation", b"").decode()
        elif kind == OpKind.NORM:
            # BatchNorm's scale and shift (its running statistics are buffers, as in torch)
            params = self._params(node.input[1:3] if node.op_type == "BatchNormalization" else node.input[1:])
        elif kind == OpKind.POOL:
            attrs = _pool_attrs(node.op_type, attrs_in)
        elif kind == OpKind.ACTIVATION:
            op, attrs = self._activation(node, op, attrs_in)
            params = self._params(node.input[1:2]) if node.op_type == "PRelu" else 0
        elif kind == OpKind.ELEMENTWISE:
            attrs = self._elementwise(node, constants)
        elif kind in (OpKind.CONCAT, OpKind.SPLIT):
            attrs["dim"] = int(attrs_in.get("axis", 0))
        elif kind == OpKind.REDUCE:
            kind, op, attrs = self._reduce(node, op, attrs_in, input_shapes)
        elif kind == OpKind.UPSAMPLE and node.op_type in ("Resize", "Upsample"):
            attrs["mode"] = _resize_mode(attrs_in, input_shapes)
        elif kind == OpKind.RESHAPE and node.op_type == "Transpose":
            rank = len(input_shapes[0]) if input_shapes else 0
            attrs["dims"] = tuple(attrs_in.get("perm", range(rank - 1, -1, -1)))
        name = node.name or f"{node.op_type}_{index}"
        location = SourceLocation(self.path, index + 1, 1, name)
        return Layer(
            name=graph.unique_name(name), kind=kind, op=op, module_path=name,
            input_shapes=input_shapes, output_shapes=output_shapes,
            dtype=self._dtype(node.output[0]), params=params, attrs=attrs, built_at=location,
            site_key=site_key(node, kind, self.package),
        )  # fmt: skip

    def _constant(self, node: onnx.NodeProto, index: int) -> np.ndarray | None:
        if len(node.input) > index and node.input[index] and node.input[index] not in self.producer:
            return self.values.get(node.input[index])
        return None

    def _params(self, names: Any) -> int:
        """Elements of the initializers ``names`` (through Identity aliases), counted once each
        in the model's total."""
        total = 0
        for name in names:
            if not name or name not in self.values or name in self.producer:
                continue
            source = self.alias.get(name, name)
            total += int(self.values[name].size)
            self.used_params.add(source)
        return total

    def _dtype(self, name: str) -> str:
        proto = self.types.get(name)
        if proto is None:
            return "float32"
        elem = proto.tensor_type.elem_type
        return str(self.onnx.helper.tensor_dtype_to_np_dtype(elem)) if elem else "float32"

    def _activation(self, node: onnx.NodeProto, op: str, attrs_in: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if node.op_type != "Clip":
            return op, {}
        low, high = attrs_in.get("min"), attrs_in.get("max")  # opset < 11
        if len(node.input) > 1 and node.input[1] in self.values:
            low = float(self.values[node.input[1]])
        if len(node.input) > 2 and node.input[2] in self.values:
            high = float(self.values[node.input[2]])
        bounds = (float("-inf") if low is None else float(low), float("inf") if high is None else float(high))
        if bounds == (0.0, 6.0):
            return "relu6", {}
        if bounds == (0.0, float("inf")):
            return "relu", {}
        return "clamp", {"bounds": bounds}

    def _elementwise(self, node: onnx.NodeProto, constants: list[str]) -> dict[str, Any]:
        operands = [n for n in node.input if n]
        scalars = [n for n in constants if self.values[n].size == 1]
        attrs: dict[str, Any] = {
            "tensor_operands": len(operands) - len(scalars),
            "operand_sizes": [prod(s) if (s := self.shape(n)) is not None else 0
                              for n in operands if n not in scalars],
        }  # fmt: skip
        if len(scalars) == 1 and len(operands) == 2 and not (node.op_type == "Div" and operands[0] in scalars):
            attrs["scalar"] = float(self.values[scalars[0]].reshape(()))
        return attrs

    def _reduce(
        self, node: onnx.NodeProto, op: str, attrs_in: dict[str, Any], input_shapes: list[Shape]
    ) -> tuple[str, str, dict[str, Any]]:
        axes = attrs_in.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1] in self.values:
            axes = [int(a) for a in self.values[node.input[1]].reshape(-1)]
        rank = len(input_shapes[0]) if input_shapes else 0
        dims = sorted(a % rank for a in axes) if axes and rank else []
        keeps = attrs_in.get("keepdims", 1)
        if node.op_type == "ReduceMean" and rank >= 3 and keeps and dims == list(range(2, rank)):
            # adaptive_avg_pool2d(x, 1) as the dynamo exporter writes it
            return OpKind.POOL, "AdaptiveAvgPool", {"kernel_size": None, "adaptive": True}
        if node.op_type in ("Softmax", "LogSoftmax"):
            return OpKind.REDUCE, op, {"dim": attrs_in.get("axis", -1)}
        return OpKind.REDUCE, op, {"dim": tuple(dims) if dims else None}


def site_key(node: onnx.NodeProto, kind: str, package: str) -> str:
    """The code that built ``node``, as a key that stands for a PyTorch layer's constructor line
    (the check stage adds up one rule's findings per line): the module path the node is in with
    every number taken out, and its op kind.

    The numbers are what a loop or a helper varies between the layers one line builds: the block
    in a stage (``features.3``), the stage (``layer2``), ``conv1`` and ``conv2`` from one
    ``conv3x3`` helper; the kind tells a block's depthwise conv from its 1x1 convs. The
    TorchScript exporter names a node after the path (``/features/features.3/block/block.1/
    block.1.0/Conv``). The dynamo exporter records each enclosing module's path and class, and
    there the path starts below the innermost module whose class is in the model's own package
    (``package``), keyed by that class: the line a PyTorch finding points at is the innermost
    frame in the model's package that built the layer, a line of that class's ``__init__``, so
    GoogLeNet's ``inception3a.branch1`` and ``inception4b.branch1`` share one. "" for a node with
    neither (another exporter's): it counts alone, at its own position.
    """
    meta = {prop.key: prop.value for prop in node.metadata_props}
    scopes = _listed(meta.get(_NAME_SCOPES))[:-1]  # the modules; the op's own fx node is last
    if scopes:
        classes = _listed(meta.get(_CLASS_HIERARCHY))[:-1]
        owners = [i for i, name in enumerate(classes)
                  if package and name.startswith(package) and len(classes) == len(scopes)]  # fmt: skip
        anchor = owners[-1] if owners else 0
        base, path = scopes[anchor], scopes[-1]
        below = path[len(base):].lstrip(".") if path == base or path.startswith(base + ".") else path
        owner = classes[anchor] if owners else ""
        return f"{owner}:{_NUMBER.sub('#', below)}:{kind}"
    if node.name.startswith("/"):
        return f":{_NUMBER.sub('#', node.name.rsplit('/', 1)[0])}:{kind}"
    return ""


def _listed(value: str | None) -> list[str]:
    """A list of names as the dynamo exporter writes one in a node's metadata (a Python list
    literal); [] for anything else."""
    try:
        names = ast.literal_eval(value) if value else []
    except (ValueError, SyntaxError):
        return []
    return [str(name) for name in names] if isinstance(names, list) else []


def _model_package(model: onnx.ModelProto) -> str:
    """The package of the exported model's class (``torchvision.models.`` for
    ``torchvision.models.mobilenetv3.MobileNetV3``), from the dynamo exporter's class records;
    "" without them."""
    for node in model.graph.node:
        for prop in node.metadata_props:
            if prop.key == _CLASS_HIERARCHY and (classes := _listed(prop.value)):
                module = classes[0].rpartition(".")[0]  # the model's: its path is "", first
                return (module.rpartition(".")[0] or module) + "."
    return ""


def _conv_attrs(kind: str, weight: Shape, attrs_in: dict[str, Any], bias: bool) -> dict[str, Any]:
    groups = int(attrs_in.get("group", 1))
    spatial = len(weight) - 2
    if kind == OpKind.CONV_TRANSPOSE:
        in_channels, out_channels = weight[0], weight[1] * groups
    else:
        in_channels, out_channels = weight[1] * groups, weight[0]
    pads = list(attrs_in.get("pads", [0] * 2 * spatial))
    auto_pad = attrs_in.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        padding: Any = "same"
    elif auto_pad == "VALID":
        padding = tuple([0] * spatial)
    else:
        # PyTorch's padding is one number per side pair; an asymmetric pad keeps its larger side
        padding = tuple(max(pads[i], pads[i + spatial]) for i in range(spatial))
    return {
        "in_channels": int(in_channels), "out_channels": int(out_channels),
        "kernel_size": tuple(int(k) for k in weight[2:]),
        "stride": tuple(int(s) for s in attrs_in.get("strides", [1] * spatial)),
        "padding": padding,
        "dilation": tuple(int(d) for d in attrs_in.get("dilations", [1] * spatial)),
        "groups": groups, "bias": bias,
    }  # fmt: skip


def _conv_kind(kind: str, attrs: dict[str, Any]) -> str:
    if kind != OpKind.CONV:
        return kind
    groups, in_channels = attrs["groups"], attrs["in_channels"]
    if groups > 1 and groups == in_channels:
        return OpKind.DEPTHWISE_CONV
    return OpKind.GROUP_CONV if groups > 1 else OpKind.CONV


def _pool_attrs(op_type: str, attrs_in: dict[str, Any]) -> dict[str, Any]:
    if op_type.startswith("Global"):
        return {"kernel_size": None, "adaptive": True}
    # the window, as the PyTorch graph stage records a pool (nn.MaxPool2d(3, 2): kernel_size 3)
    kernel = tuple(int(k) for k in attrs_in.get("kernel_shape", ()))
    return {"kernel_size": kernel or None, "adaptive": False}


def _resize_mode(attrs_in: dict[str, Any], input_shapes: list[Shape]) -> str:
    mode = attrs_in.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    spatial = len(input_shapes[0]) - 2 if input_shapes else 2
    if mode == "linear":
        return {1: "linear", 2: "bilinear", 3: "trilinear"}.get(spatial, "linear")
    if mode == "cubic":
        return "bicubic"
    return "nearest"


def build_onnx_graph(path: Path, input_shapes: list[Shape] | None = None) -> LayerGraph:
    """The LayerGraph of the ONNX model in ``path`` (LoadError for a file that is not one)."""
    model = read_model(path)
    reader = _Reader(model, path, input_shapes)
    graph = reader.build(display_path(path))
    from cnnlint.graph.build import recognise_patterns

    recognise_patterns(graph)
    return graph
