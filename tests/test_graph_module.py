"""The trace stage's GraphModule holds the traced root's own modules and tensors (no copy of each
target): every target resolves to the root's object, its forward computes what the root's does,
and the root's tree is left as it was."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from cnnlint.trace.fx_trace import symbolic_trace

OFFSET = torch.tensor([0.5])  # a module-level tensor: fx keeps it on the root as _tensor_constant0


class Constants(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.scale = torch.tensor(2.0)  # a plain tensor attribute, neither parameter nor buffer
        self.register_buffer("shift", torch.full((1, 4, 1, 1), 0.25))
        self.gain = nn.Parameter(torch.full((1, 4, 1, 1), 1.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv(x) * self.scale + self.shift) * self.gain + OFFSET


def test_targets_are_the_roots_own_objects_and_forward_matches() -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    before = [(name, id(module)) for name, module in model.named_modules()]
    gm = symbolic_trace(model, 1)
    assert gm.get_submodule("layer1.0.conv1") is model.layer1[0].conv1
    assert gm.get_parameter("fc.weight") is model.fc.weight
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(gm(x), model(x))
    assert [(name, id(module)) for name, module in model.named_modules()] == before


def test_constants_plain_attributes_and_buffers_resolve() -> None:
    torch.manual_seed(0)
    model = Constants().eval()
    gm = symbolic_trace(model, 1)
    constants = [n.target for n in gm.graph.nodes if n.op == "get_attr" and n.target.startswith("_tensor_constant")]
    assert constants, "fx keeps the module-level tensor as a constant of the root"
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(gm(x), model(x))
    assert gm.get_buffer("shift") is model.shift
