"""ONNX input: a model exported with torch.onnx.export lints as the PyTorch model it came from.

Each torchvision model is exported with both of torch's exporters (TorchScript, ``dynamo=False``,
and torch.export's, ``dynamo=True``) and read back by cnnlint.graph.onnx; the graph must count
the same multiply-accumulates (within 1%) and raise the same rules at the same severities as the
traced PyTorch model on each target. The check stage adds up one rule's findings on one source
line before it decides warning or info (one edit there changes them all); an ONNX file has no
source lines, and each node's site key, built from its module path, stands for the line
(docs/cli.md, "ONNX input"). Where the two still differ, KNOWN says exactly how and why.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import cli, lint_specs, traced_graph

from cnnlint.pipeline import check_graph
from cnnlint.profile import load_profile

onnx = pytest.importorskip("onnx")

TARGETS = ("t4", "hi3519", "rk3588")
# (torchvision model, exporter); the slow ones run in CI's slow job.
CASES = [
    ("mobilenet_v3_small", "torchscript"),  # depthwise, squeeze-excitation, hard-swish
    ("mobilenet_v3_small", "dynamo"),
    pytest.param("mobilenet_v2", "torchscript", marks=pytest.mark.slow),
    pytest.param("mobilenet_v2", "dynamo", marks=pytest.mark.slow),
    pytest.param("resnet18", "torchscript", marks=pytest.mark.slow),
    pytest.param("resnet18", "dynamo", marks=pytest.mark.slow),
    pytest.param("shufflenet_v2_x1_0", "torchscript", marks=pytest.mark.slow),  # chunk as Slice
    pytest.param("shufflenet_v2_x1_0", "dynamo", marks=pytest.mark.slow),
]

# (model, target) -> ((code, severity) pairs the PyTorch spec has and its exports lack, pairs the
# exports have and the spec lacks); the same for both exporters.
KNOWN: dict[tuple[str, str], tuple[set[tuple[str, str]], set[tuple[str, str]]]] = {
    # A ShuffleNetV2 unit builds its three 1x1 convs on three lines (branch1.2, branch2.0,
    # branch2.5: 0.09%, 0.90% and 0.55% of latency for CL201, each below 1%). Their site key is one
    # (one kind, and the numbers that tell them apart are taken out, as they must be for the
    # unit's depthwise convs, which one helper line builds at branch1.0 and branch2.3), so on the
    # export the three add up to 1.6% and are a warning.
    ("shufflenet_v2_x1_0", "rk3588"): (set(), {("CL201", "warning")}),
}


def export(name: str, exporter: str, folder: Path) -> Path:
    import torch
    import torchvision

    path = folder / f"{name}_{exporter}.onnx"
    if not path.exists():
        model = getattr(torchvision.models, name)().eval()
        torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), str(path), dynamo=exporter == "dynamo")
    return path


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx")


@pytest.mark.parametrize(("name", "exporter"), CASES)
def test_export_lints_as_the_pytorch_model(name, exporter, exports, capsys):
    from cnnlint.graph.onnx import build_onnx_graph

    path = export(name, exporter, exports)
    capsys.readouterr()  # the exporter's progress lines
    from_onnx = build_onnx_graph(path)
    from_torch = traced_graph(f"torchvision.models:{name}")
    for target in TARGETS:
        profile = load_profile(target)
        ours, theirs = check_graph(from_onnx, profile), check_graph(from_torch, profile)
        assert ours.status == theirs.status == "ok", (ours.error, theirs.error)
        assert ours.summary.macs == pytest.approx(theirs.summary.macs, rel=0.01), target
        assert {f.code for f in ours.findings} == {f.code for f in theirs.findings}, target
        graded = {(f.code, f.severity) for f in theirs.findings}
        lacking, added = KNOWN.get((name, target), (set(), set()))
        assert lacking <= graded and not added & graded, (target, graded)  # still the difference
        assert {(f.code, f.severity) for f in ours.findings} == (graded - lacking) | added, target
    # every layer has its shapes (a TorchScript export's chunk is Shape -> Gather -> Div -> Slice)
    assert all(layer.output_shapes for layer in from_onnx if layer.kind != "output")


def test_cli_lints_an_onnx_file_and_says_where_locations_point(exports):
    path = export("mobilenet_v3_small", "torchscript", exports)
    ran = cli(str(path), "--target", "rk3588", "--format", "json")
    assert ran.returncode in (0, 1), ran.stderr
    (result,) = json.loads(ran.stdout)["results"]
    assert result["status"] == "ok" and result["summary"]["macs"] > 50e6
    assert any("locations are ONNX node names" in note for note in result["notes"])
    finding = result["findings"][0]
    assert finding["path"].endswith(".onnx") and finding["module"].startswith("/")


@pytest.mark.parametrize("damage", ["random", "truncated", "empty"])
def test_a_malformed_file_is_a_clear_error(damage, exports, tmp_path):
    import random

    path = tmp_path / f"{damage}.onnx"
    if damage == "random":
        path.write_bytes(random.Random(0).randbytes(4096))
    elif damage == "truncated":
        whole = export("mobilenet_v3_small", "torchscript", exports).read_bytes()
        path.write_bytes(whole[: len(whole) // 3])
    else:
        path.write_bytes(b"")
    ran = cli(str(path), "--target", "t4")
    assert ran.returncode == 2
    output = ran.stdout + ran.stderr
    assert f"{damage}.onnx" in output and "ONNX" in output
    assert "Traceback" not in output and "cnnlint bug" not in output


def test_an_op_the_table_does_not_know_is_other_and_the_model_still_lints(tmp_path):
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from cnnlint.graph.onnx import build_onnx_graph

    weight = numpy_helper.from_array(np.ones((16, 3, 3, 3), np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Erf", ["c"], ["e"], name="erf"),  # a standard op the table leaves out
        helper.make_node("Frobnicate", ["e"], ["f"], name="custom", domain="com.example"),
        helper.make_node("Relu", ["f"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 32, 32])], [weight],
        value_info=[helper.make_tensor_value_info("f", TensorProto.FLOAT, [1, 16, 32, 32])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid("com.example", 1)])  # fmt: skip
    path = tmp_path / "custom.onnx"
    onnx.save(model, path)
    layers = {layer.module_path: layer for layer in build_onnx_graph(path)}
    assert layers["erf"].kind == layers["custom"].kind == "other"
    assert not any(layer.site_key for layer in layers.values())  # no module paths: each node alone
    assert layers["conv"].kind == "conv" and layers["conv"].attrs["kernel_size"] == (3, 3)
    assert layers["relu"].output_shapes == [(1, 16, 32, 32)]
    results = lint_specs(str(path), target="rk3588") + lint_specs(str(path), target="t4")
    assert [r.status for r in results] == ["ok", "ok"], [r.error for r in results]
    assert all(r.summary.macs == 16 * 27 * 32 * 32 for r in results)  # the conv's alone
    assert all(any("Frobnicate (1)" in note for note in r.notes) for r in results)
    ran = cli(str(path), "--target", "rk3588", "--target", "t4")
    assert ran.returncode in (0, 1) and "custom.onnx" in ran.stdout, ran.stdout + ran.stderr


def test_without_onnx_installed_the_error_says_how_to_get_it(tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07")
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    ran = cli(str(path), "--target", "t4")
    assert ran.returncode == 2
    output = ran.stdout + ran.stderr
    assert "model.onnx" in output and "pip install 'cnnlint[onnx]'" in output
