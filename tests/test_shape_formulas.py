"""Shape propagation's shortcuts (ops it does not run on meta tensors) give the shapes eager
PyTorch gives, and fall back to the real kernel where their formula does not apply."""

from __future__ import annotations

import pytest
import torch
from torch import fx, nn

from cnnlint.trace.fx_trace import ShapeRecorder, example_inputs


class Cat(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x, y):
        return torch.cat([x, y], self.dim)


class Mul(nn.Module):
    def forward(self, x, y):
        return x * y


class Add(nn.Module):
    def forward(self, x, y):
        return x + y


class Single(nn.Module):
    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)


CASES = [
    (Cat(1), [(1, 8, 5, 5), (1, 3, 5, 5)]),
    (Cat(-1), [(2, 4, 6), (2, 4, 1)]),
    (Cat(0), [(1, 8), (3, 8)]),
    (Mul(), [(1, 16, 7, 7), (1, 16, 1, 1)]),  # squeeze-excite scale
    (Mul(), [(1, 16, 1, 1), (1, 16, 7, 7)]),  # the broadcast operand first: the real kernel
    (Mul(), [(2, 16, 7, 7), (16, 1, 1)]),
    (Add(), [(1, 4, 5), (1, 4, 5)]),
    (Add(), [(4, 5), (3, 1, 5)]),  # the output is larger than either
    (Single(nn.AdaptiveAvgPool2d(1)), [(1, 32, 9, 7)]),
    (Single(nn.AdaptiveAvgPool2d((None, 3))), [(1, 32, 9, 7)]),
    (Single(nn.AdaptiveAvgPool2d((2, 3))), [(32, 9, 7)]),  # unbatched
    (Single(nn.AdaptiveAvgPool1d(4)), [(2, 8, 17)]),
    (Single(nn.AdaptiveAvgPool3d((1, 2, 2))), [(1, 4, 8, 9, 10)]),
    (Single(nn.Conv2d(3, 8, 3, stride=2, padding=1, dilation=2)), [(1, 3, 17, 16)]),
    (Single(nn.Conv2d(3, 8, 3, padding="same")), [(1, 3, 17, 16)]),
    (Single(nn.Linear(10, 4)), [(2, 5, 10)]),
]


@pytest.mark.parametrize("module, shapes", CASES, ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else None)
def test_shortcut_shapes_match_eager(module: nn.Module, shapes: list[tuple[int, ...]]) -> None:
    module.eval()
    eager = module(*(torch.randn(shape) for shape in shapes))
    gm = fx.symbolic_trace(module.to("meta"))
    ShapeRecorder(gm).run(*example_inputs(shapes))
    (output,) = [n for n in gm.graph.nodes if n.op == "output"]
    assert tuple(output.args[0].meta["tensor_meta"].shape) == tuple(eager.shape)


def test_a_shape_mismatch_still_fails() -> None:
    """A shortcut never hides an error the real kernel raises."""
    gm = fx.symbolic_trace(Cat(1))
    with pytest.raises(Exception, match="[Ss]izes"):
        ShapeRecorder(gm).run(*example_inputs([(1, 8, 5, 5), (1, 3, 4, 5)]))


def test_an_operand_on_another_device_still_goes_to_the_kernel() -> None:
    """A CPU tensor made in forward meets a meta one: the kernel's device error is what sends the
    model to a real run, so no shortcut may answer for it."""
    import operator

    graph = fx.Graph()
    x = graph.placeholder("x")
    graph.output(graph.call_function(operator.mul, (x, graph.call_function(torch.ones, ((1, 4, 1, 1),)))))
    with pytest.raises(Exception, match="device"):
        ShapeRecorder(fx.GraphModule(nn.Module(), graph)).run(*example_inputs([(1, 4, 5, 5)]))
