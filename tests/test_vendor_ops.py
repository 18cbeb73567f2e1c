"""Operator support from the vendor's list (CL304): a profile copies the operators its vendor
documents as converted ([supported_ops]); an op outside the list is a warning, an op kind the
profile lists as unsupported stays an error, and a profile without a list (GPUs, CPUs) takes
every op it does not name as unsupported as run.

The lists are spelled in the names cnnlint gives layers (``cnnlint.ops.OP_LIST_NAMES``); these
tests check that vocabulary against the torch calls that map to each kind, so a typo in a TOML
list is a load error instead of a check that silently never fires.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import check_on
from torch import nn
from torch.nn import functional as F

from cnnlint import cost, ops
from cnnlint.core import Layer, LayerGraph, OpKind
from cnnlint.errors import ProfileError
from cnnlint.graph.build import build_layer_graph
from cnnlint.load import LoadedModel
from cnnlint.ops import OP_LIST_NAMES, op_list_name, op_list_spelling
from cnnlint.pipeline import check_graph
from cnnlint.profile import builtin_profile_names, load_profile
from cnnlint.trace import torch_kinds, trace

# The resize modes torch's F.interpolate and nn.Upsample take.
RESIZE_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")
# Layers no operator list names (cnnlint.ops.op_list_name gives them "").
NEVER_LISTED = {OpKind.INPUT, OpKind.OUTPUT, OpKind.IDENTITY, OpKind.OPAQUE}
LISTS = [name for name in builtin_profile_names() if load_profile(name).supported_ops is not None]


def _module_kind(cls: type) -> str | None:
    for classes, kind in torch_kinds.MODULE_KINDS:
        if issubclass(cls, classes):
            return kind
    return None


def produced_names() -> dict[str, set[str]]:
    """Every name cnnlint gives a layer of each kind, from the torch calls that map to it
    (torch_kinds) and the layers the graph stage makes (written-out activations, shuffles)."""
    names: dict[str, set[str]] = {}

    def add(kind: str, op: str) -> None:
        if kind in NEVER_LISTED or op == "contiguous":  # contiguous: a pass-through
            return
        if kind == OpKind.CHANNEL_SHUFFLE:
            op = "channelshuffle"
        if kind == OpKind.UPSAMPLE and op_list_spelling(op) in ("interpolate", "upsample"):
            for mode in RESIZE_MODES:  # named by its mode; by the call when the mode is unread
                names.setdefault(kind, set()).add(op_list_spelling(mode))
        names.setdefault(kind, set()).add(op_list_spelling(op))
        if kind == OpKind.CONV:  # refined by groups
            names.setdefault(OpKind.DEPTHWISE_CONV, set()).add(op_list_spelling(op))
            names.setdefault(OpKind.GROUP_CONV, set()).add(op_list_spelling(op))

    for value in vars(nn).values():
        if isinstance(value, type) and issubclass(value, nn.Module):
            kind = _module_kind(value)
            if kind == OpKind.UPSAMPLE and issubclass(value, nn.Upsample):
                for mode in RESIZE_MODES:  # nn.Upsample and its subclasses: by their mode
                    add(kind, mode)
            elif kind is not None:
                add(kind, value.__name__)
    for function, kind in torch_kinds.FUNCTION_KINDS.items():
        add(kind, torch_kinds.call_name(function))
    for method, kind in torch_kinds.METHOD_KINDS.items():
        add(kind, method)
    for qualified, kind in torch_kinds.NAMED_FUNCTION_KINDS.items():
        add(kind, qualified.rsplit(".", 1)[-1])
    for activation in [*ops.GATED_ACTIVATIONS.values(), "hardsigmoid"]:  # the graph stage's
        add(OpKind.ACTIVATION, activation)
    return names


def test_the_vocabulary_is_the_names_cnnlint_produces() -> None:
    produced = produced_names()
    assert set(OP_LIST_NAMES) == set(produced)
    for kind, names in OP_LIST_NAMES.items():
        assert names == produced[kind], (
            f"{kind}: never produced {sorted(names - produced[kind])}; "
            f"produced but not nameable {sorted(produced[kind] - names)}"
        )


@pytest.mark.parametrize("target", LISTS)
def test_every_listed_name_is_one_cnnlint_produces(target: str) -> None:
    produced = produced_names()
    op_list = load_profile(target).supported_ops
    assert op_list is not None and op_list.source.strip()
    for kind, names in op_list.ops.items():
        for name in names:
            assert name == "*" or name in produced[kind], f"{target}: {kind} lists {name!r}"


@pytest.mark.parametrize("mode", RESIZE_MODES)
def test_a_resize_is_named_by_its_mode(mode: str) -> None:
    dims = {"linear": 1, "trilinear": 3}.get(mode, 2)

    class Resizes(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.Upsample(scale_factor=2, mode=mode)

        def forward(self, x):
            return F.interpolate(self.up(x), scale_factor=0.5, mode=mode)

    shape = (1, 4, *([8] * dims))
    loaded = LoadedModel(name="r", module=Resizes(), input_shapes=[shape], sites={}, built_on="cpu")
    graph = build_layer_graph(trace(loaded))
    resizes = list(graph.layers(OpKind.UPSAMPLE))
    assert [op_list_name(layer) for layer in resizes] == [op_list_spelling(mode)] * 2
    assert op_list_spelling(mode) in OP_LIST_NAMES[OpKind.UPSAMPLE]


@pytest.mark.parametrize(
    "spec", ["torchvision.models:efficientnet_b0", "timm.models.efficientnet:efficientnet_b0"]
)
def test_silu_is_a_warning_on_hi3519_and_nothing_on_t4(spec: str) -> None:
    """EfficientNet-B0's SiLU: not in the NNIE layer list (ReLU, Sigmoid, TanH); a GPU runs it.
    The other real architectures are in tests/rules/test_architectures.py."""
    (finding,) = check_on(spec, "hi3519", select=["CL304"]).findings
    assert (finding.severity, finding.metrics["op_list_name"]) == ("warning", "silu")
    op_list = load_profile("hi3519").supported_ops
    said = f"is not in {op_list.source}: it may fall back to the CPU or fail to convert"
    assert said in finding.message
    assert finding.metrics["occurrences"] == 49  # every SiLU, one finding at the first
    assert 0 < finding.metrics["fallback_latency_share"] < 1 and finding.metrics["listed"] is False
    assert "relu" in finding.fix  # an activation the NNIE list has
    assert check_on(spec, "t4", select=["CL304"]).findings == []


def test_a_documented_unsupported_kind_stays_an_error() -> None:
    result = check_on("torchvision.models:vit_b_16", "hi3519", select=["CL304"])
    severities = {f.metrics["op_kind"]: f.severity for f in result.findings}
    assert severities[OpKind.MATMUL] == "error"  # hi3519's unsupported_ops
    assert severities[OpKind.NORM] == "warning"  # LayerNorm: not in the NNIE list


def _odd_graph() -> LayerGraph:
    shape = (1, 8, 4, 4)
    graph = LayerGraph("odd", [shape])
    layers = [
        Layer("x", OpKind.INPUT, "input", output_shapes=[shape]),
        Layer("act", OpKind.ACTIVATION, "FancyAct", input_shapes=[shape], output_shapes=[shape]),
        Layer("new", "a_kind_added_later", "frobnicate", input_shapes=[shape],
              output_shapes=[shape]),
        Layer("resize", OpKind.UPSAMPLE, "interpolate", input_shapes=[shape], output_shapes=[shape],
              attrs={"mode": None}),
        Layer("helper", OpKind.OTHER, "stochastic_depth", input_shapes=[shape],
              output_shapes=[shape]),
        Layer("output", OpKind.OUTPUT, "output", input_shapes=[shape]),
    ]  # fmt: skip
    for layer in layers:
        graph.add_layer(layer)
    for producer, consumer in zip(layers, layers[1:]):
        graph.add_edge(producer.name, consumer.name)
    return graph


def test_an_op_the_list_does_not_know_is_a_warning_never_a_crash(monkeypatch) -> None:
    # A kind added to cnnlint later: a row in the op table and its work formula in the cost
    # stage, and no operator list names it.
    monkeypatch.setitem(ops.OPS, "a_kind_added_later", ops.Op("elementwise", "per_output_element"))
    monkeypatch.setitem(cost.FORMULAS, "a_kind_added_later", cost.FORMULAS[OpKind.ELEMENTWISE])
    graph = _odd_graph()
    for target in builtin_profile_names():
        result = check_graph(graph, load_profile(target), select=["CL304"])
        assert result.status == "ok", f"{target}: {result.error}"
        # Parameter limits (apple-ane's 64-byte last axis) are tests/test_vendor_limits.py's.
        found = {f.layer.name: f.severity for f in result.findings if "limit" not in f.metrics}
        if target in LISTS:
            # An unknown activation, a new kind and a resize of unknown mode are not in the list;
            # a call the linter does not classify (kind other) is no list's business.
            assert found == {"act": "warning", "new": "warning", "resize": "warning"}, target
        else:
            assert found == {}, target


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_typo_in_a_list_is_a_profile_error_naming_file_and_key(tmp_path: Path) -> None:
    typo = _write(tmp_path / "typo.toml",
                  'extends = "hi3519"\n[supported_ops]\nops.activation = ["relu", "gleu"]\n')  # fmt: skip
    with pytest.raises(ProfileError) as info:
        load_profile(str(typo))
    message = str(info.value)
    assert str(typo) in message and "supported_ops.ops.activation" in message
    assert "'gleu'" in message
    kind = _write(tmp_path / "kind.toml",
                  'extends = "hi3519"\n[supported_ops]\nops.activations = ["relu"]\n')  # fmt: skip
    with pytest.raises(ProfileError, match="supported_ops.ops.activations"):
        load_profile(str(kind))
    unsourced = _write(tmp_path / "unsourced.toml",
                       'extends = "t4"\n[supported_ops]\nops.activation = ["relu"]\n')  # fmt: skip
    with pytest.raises(ProfileError, match="supported_ops.source"):
        load_profile(str(unsourced))


def test_a_user_list_takes_torch_spellings_and_star(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.toml",
                  'extends = "t4"\nname = "mine"\n[supported_ops]\nsource = "my NPU\'s list"\n'
                  'ops.activation = ["ReLU", "leaky_relu"]\nops.conv = ["*"]\n')  # fmt: skip
    op_list = load_profile(str(path)).supported_ops
    assert op_list.lists(OpKind.ACTIVATION, "leakyrelu") and op_list.lists(OpKind.CONV, "anything")
    assert not op_list.lists(OpKind.ACTIVATION, "gelu")
    assert not op_list.lists(OpKind.NORM, "batchnorm")  # a kind the list leaves out


def test_a_profile_without_a_list_reports_no_listing() -> None:
    """GPUs and CPUs have no list: a model of GELU, LayerNorm and a bilinear resize is clean."""

    class Transformerish(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(8)
            self.act = nn.GELU()

        def forward(self, x):
            x = self.act(self.norm(x.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
            return F.interpolate(x, scale_factor=2.0, mode="bilinear")

    loaded = LoadedModel(name="t", module=Transformerish().to("meta"), input_shapes=[(1, 8, 4, 4)],
                         sites={}, built_on="meta")  # fmt: skip
    graph = build_layer_graph(trace(loaded))
    for target in builtin_profile_names():
        findings = check_graph(graph, load_profile(target), select=["CL304"]).findings
        listing = [f for f in findings if "limit" not in f.metrics]  # limits: test_vendor_limits.py
        assert listing == [] or target in LISTS, target
    # A list without LayerNorm, GELU or a bilinear resize reports them (rk3588's has all three).
    assert check_graph(graph, load_profile("hi3519"), select=["CL304"]).findings
