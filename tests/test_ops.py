"""The op table: one row per kind, predicates that agree with torch, costs from one formula."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlint import ops
from cnnlint.core import Layer, LayerGraph, OpKind
from cnnlint.cost import FORMULAS, compute_cost, conv_work
from cnnlint.profile import load_profile
from cnnlint.trace.torch_kinds import FUNCTION_KINDS, MODULE_KINDS, METHOD_KINDS, module_kind


def test_every_kind_has_one_row_and_a_formula() -> None:
    assert set(ops.OPS) == set(OpKind.ALL)
    assert set(FORMULAS) == set(OpKind.ALL)
    classes = {op.op_class for op in ops.OPS.values()} - {ops.CONV_BY_KERNEL, ops.POOL_BY_WINDOW, ops.ACTIVATION_BY_NAME}
    assert classes <= set(ops.OP_CLASSES)
    assert {op.fusion for op in ops.OPS.values()} - {None} == {ops.PRODUCER, *ops.FUSED_ROLES}


def test_torch_mapping_names_only_known_kinds() -> None:
    kinds = {kind for _, kind in MODULE_KINDS} | set(FUNCTION_KINDS.values()) | set(METHOD_KINDS.values())
    assert kinds <= set(OpKind.ALL)


@pytest.mark.parametrize("spellings, flops", [
    (("ReLU", "relu", "relu_"), 1),
    (("LeakyReLU", "leaky_relu"), 2),
    (("Hardswish", "hardswish"), 4),
    (("Sigmoid", "sigmoid", "sigmoid_"), 4),
    (("GELU", "gelu"), 8),
    (("Softplus", "softplus"), 2),  # not in the table: the default
])  # fmt: skip
def test_activation_flops_have_one_spelling(spellings: tuple[str, ...], flops: int) -> None:
    assert {ops.activation_flops(name) for name in spellings} == {flops}


def _elementwise(op: str, operands: int | None) -> Layer:
    attrs = {} if operands is None else {"tensor_operands": operands}
    return Layer(op, OpKind.ELEMENTWISE, op, attrs=attrs)


def test_residual_adds_and_fusion_roles() -> None:
    for op in ("add", "add_", "iadd"):
        assert ops.is_residual_add(_elementwise(op, 2))
        assert ops.fusion_role(_elementwise(op, 2)) == ops.RESIDUAL_ADD
    assert not ops.is_residual_add(_elementwise("add", 1))  # x + 1.0
    assert ops.is_addition(_elementwise("add", 1))
    assert ops.fusion_role(_elementwise("add", 1)) is None
    assert ops.fusion_role(_elementwise("mul", 2)) is None
    assert ops.is_multiplication(_elementwise("mul_", 2))
    assert ops.fusion_role(Layer("c", OpKind.DEPTHWISE_CONV, "Conv2d")) == ops.PRODUCER
    assert ops.fusion_role(Layer("n", OpKind.NORM, "BatchNorm2d")) == ops.NORM
    assert ops.fusion_role(Layer("p", OpKind.POOL, "MaxPool2d")) is None


def test_op_classes() -> None:
    assert ops.conv_class((1, 1)) == "conv1x1"
    assert ops.conv_class((3, 3)) == "conv3x3"
    assert ops.conv_class((1, 7)) == "conv_kxk"
    assert ops.conv_class(3, groups=32, in_channels=32) == "depthwise_conv"
    assert ops.conv_class(3, groups=4, in_channels=32) == "group_conv"
    conv = Layer("c", OpKind.CONV_TRANSPOSE, "ConvTranspose2d", attrs={"kernel_size": (3, 3)})
    assert ops.op_class(conv) == "conv3x3"
    assert ops.op_class(Layer("r", OpKind.REDUCE, "mean")) == "reduce"
    window = Layer("p", OpKind.POOL, "MaxPool2d", attrs={"kernel_size": 3, "adaptive": False})
    assert ops.op_class(window) == "pool"
    assert ops.op_class(Layer("g", OpKind.POOL, "AdaptiveAvgPool2d", attrs={"adaptive": True})) == "reduce"
    # Norms have their own class; activations computed through exp/tanh/erf theirs, in any spelling.
    assert ops.op_class(Layer("n", OpKind.NORM, "BatchNorm2d")) == "norm"
    for name in ("SiLU", "silu", "Sigmoid", "sigmoid_", "GELU", "Tanh", "Mish"):
        assert ops.op_class(Layer("a", OpKind.ACTIVATION, name)) == "transcendental", name
    for name in ("ReLU", "relu6", "Hardswish", "hardsigmoid", "LeakyReLU"):
        assert ops.op_class(Layer("a", OpKind.ACTIVATION, name)) == "elementwise", name


def test_views_free_kinds_and_channels() -> None:
    assert ops.VIEW_KINDS == {OpKind.RESHAPE, OpKind.IDENTITY}
    assert ops.VIEW_KINDS <= ops.FREE_KINDS
    assert not ops.is_free(OpKind.CONCAT) and ops.is_free(OpKind.SPLIT)
    assert ops.keeps_channels(OpKind.POOL) and not ops.keeps_channels(OpKind.CONCAT)


# Modules the op table says keep their input's shape, dtype and layout: torch agrees.
SHAPE_KEEPING = [nn.BatchNorm2d(8), nn.LayerNorm([8, 5, 5]), nn.GroupNorm(2, 8), nn.ReLU(),
                 nn.PReLU(), nn.SiLU(), nn.Hardswish(), nn.GELU(), nn.Softplus(), nn.Dropout2d(),
                 nn.Identity()]  # fmt: skip


@pytest.mark.parametrize("module", SHAPE_KEEPING, ids=lambda m: type(m).__name__)
def test_shape_keeping_modules_keep_shape(module: nn.Module) -> None:
    assert ops.keeps_shape(module_kind(module), type(module).__name__)
    x = torch.randn(2, 8, 5, 5)
    y = module.eval()(x)
    assert (y.shape, y.dtype, y.stride()) == (x.shape, x.dtype, x.stride())


def test_shape_exceptions_by_name() -> None:
    assert not ops.keeps_shape(module_kind(nn.GLU()), "GLU")  # halves a dimension
    assert nn.GLU(dim=1)(torch.randn(2, 8, 5, 5)).shape[1] == 4
    assert not ops.keeps_shape(OpKind.IDENTITY, "half")  # a cast
    assert ops.keeps_shape(OpKind.RESHAPE, "contiguous")
    assert not ops.keeps_shape(OpKind.RESHAPE, "flatten")
    assert ops.broadcasts(OpKind.ELEMENTWISE) and not ops.keeps_shape(OpKind.ELEMENTWISE, "add")


def test_a_layers_cost_is_the_shape_level_formula() -> None:
    """The conv a rule proposes and the conv a model has are priced by the same formula."""
    graph = LayerGraph("one-conv", [(1, 32, 56, 56)])
    graph.add_layer(Layer("x", OpKind.INPUT, "input", output_shapes=[(1, 32, 56, 56)]))
    graph.add_layer(Layer(
        "conv", OpKind.CONV, "Conv2d", module_path="conv", params=32 * 64 * 9,
        input_shapes=[(1, 32, 56, 56)], output_shapes=[(1, 64, 28, 28)],
        attrs={"in_channels": 32, "out_channels": 64, "kernel_size": (3, 3), "groups": 1},
    ))  # fmt: skip
    graph.add_edge("x", "conv")
    profile = load_profile("t4")
    cost = compute_cost(graph, profile)
    flops, bytes_moved = conv_work(32, 64, (3, 3), 56 * 56, 28 * 28, precision=cost.precision)
    assert (cost.of("conv").flops, cost.of("conv").bytes) == (flops, bytes_moved)
    assert cost.estimate_conv(32, 64, (3, 3), 56 * 56, 28 * 28) == cost.time_of("conv")
    assert cost.share(cost.time_of("conv")) == 1.0
