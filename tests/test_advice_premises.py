"""Advice holds only where its premise does: CL402 merges branches only when merging removes
kernels, and CL201 leaves a task head's output width (classes, box coordinates) alone.

The fixtures' own expectations (tests/fixtures/cl402_hff.py, cl201_task_heads.py) say where the
rules fire; these tests check what the findings say and the predicates they rest on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES, check_on, traced_graph

from cnnlint.core import Layer, LayerGraph, OpKind
from cnnlint.ops import keeps_channel_count
from cnnlint.profile import load_profile
from cnnlint.pipeline import check_graph
from cnnlint.rules._common import is_task_head

HFF = str(FIXTURES / "cl402_hff.py")
HEADS = str(FIXTURES / "cl201_task_heads.py")
TARGETS = ("t4", "arm-cpu", "hi3519")


def _findings(spec: str, target: str, code: str):
    result = check_on(spec, target, select=[code])
    assert result.status == "ok", result.error
    return result.findings


# CL402: merging parallel branches into one conv.


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("model", ["HFF", "HFFWithNorms"])
def test_branches_also_used_outside_the_sum_are_not_merged(model: str, target: str) -> None:
    assert _findings(f"{HFF}::{model}", target, "CL402") == []


@pytest.mark.parametrize("target", TARGETS)
def test_fix_folds_bn_only_where_the_branches_have_norms(target: str) -> None:
    (normed,) = _findings(f"{HFF}::RepVGGWithNorms", target, "CL402")
    assert "fold each BN" in normed.fix and "reparameterize_model" in normed.fix
    assert "pad the 1x1 kernel and the identity to 3x3" in normed.fix

    (plain,) = _findings(f"{HFF}::RepVGGWithoutNorms", target, "CL402")
    assert "BN" not in plain.fix and "reparameterize_model" not in plain.fix
    assert plain.fix.startswith("merge the branches' kernels into one 3x3 conv")
    assert "pad the 1x1 kernel and the identity to 3x3 and add the kernels" in plain.fix
    # Both are still priced: the merged conv is faster than the branches and the adds.
    for finding in (normed, plain):
        assert finding.metrics["merged_time_ms"] < finding.metrics["est_time_ms"]


# CL201: a task head's output channels.


@pytest.mark.parametrize("target", TARGETS)
def test_task_heads_are_judged_on_their_input_channels_only(target: str) -> None:
    findings = {f.module: f for f in _findings(f"{HEADS}::DetectionHead", target, "CL201")}
    assert set(findings) == {"neck", "head"}
    head = findings["head"]
    assert "input channels" in head.message and "output channels" not in head.message
    assert head.metrics["padded_out_channels"] == head.metrics["out_channels"] == 5
    assert head.fix is None or "out_channels" not in head.fix  # None where aligning saves nothing
    # The misaligned inner layer is still judged on its output.
    assert "21 output channels" in findings["neck"].message


@pytest.mark.parametrize("model", ["SegHead", "TinyUNet"])
def test_segmentation_heads_keep_their_class_count(model: str) -> None:
    for finding in _findings(f"{HEADS}::{model}", "generic", "CL201"):
        assert finding.module not in ("head", "up1"), finding.message


def test_skip_output_layer_off_judges_task_heads_again(tmp_path: Path) -> None:
    profile = tmp_path / "heads.toml"
    profile.write_text('extends = "t4"\nname = "heads"\n\n[rules.CL201]\nskip_output_layer = false\n',
                       encoding="utf-8")  # fmt: skip
    flagged = set()
    for model in ("SegHead", "TinyUNet", "DetectionHead"):
        result = check_graph(traced_graph(f"{HEADS}::{model}"), load_profile(str(profile)), select=["CL201"])
        flagged |= {(model, f.module) for f in result.findings if "output channels" in f.message}
    assert {("SegHead", "head"), ("TinyUNet", "up1"), ("DetectionHead", "head")} <= flagged


def _layer(name: str, kind: str, op: str, channels: int = 8) -> Layer:
    shape = (1, channels, 4, 4)
    return Layer(name, kind, op, input_shapes=[shape], output_shapes=[shape])


def _chain(*layers: Layer, extra: tuple[tuple[str, str], ...] = ()) -> LayerGraph:
    """input -> conv -> layers... -> output, plus any extra edges."""
    graph = LayerGraph("heads", [(1, 3, 4, 4)])
    chain = [_layer("x", OpKind.INPUT, "input", 3), _layer("conv", OpKind.CONV, "Conv2d", 2), *layers,
             _layer("output", OpKind.OUTPUT, "output")]  # fmt: skip
    for layer in chain:
        graph.add_layer(layer)
    for a, b in zip(chain, chain[1:]):
        graph.add_edge(a.name, b.name)
    for a, b in extra:
        graph.add_edge(a, b)
    return graph


@pytest.mark.parametrize(
    ("path", "head"),
    [
        ([], True),
        ([("up", OpKind.UPSAMPLE, "interpolate"), ("act", OpKind.ACTIVATION, "sigmoid")], True),
        ([("up", OpKind.UPSAMPLE, "Upsample")], True),
        ([("act", OpKind.ACTIVATION, "sigmoid"), ("flat", OpKind.RESHAPE, "flatten")], True),
        ([("pool", OpKind.POOL, "AdaptiveAvgPool2d"), ("flat", OpKind.RESHAPE, "flatten")], True),
        ([("shuffle", OpKind.UPSAMPLE, "pixel_shuffle")], False),  # channels become pixels
        ([("cat", OpKind.CONCAT, "cat")], False),
        ([("softmax", OpKind.REDUCE, "softmax")], False),  # a reduction: not channel-keeping
        ([("next", OpKind.CONV, "Conv2d")], False),  # an inner layer
    ],
    ids=["direct", "interpolate-sigmoid", "Upsample", "sigmoid-flatten", "pool-flatten", "pixel_shuffle",
         "cat", "softmax", "inner"],
)
def test_task_head_is_a_path_of_channel_keeping_ops_to_the_output(path, head: bool) -> None:
    graph = _chain(*(_layer(name, kind, op) for name, kind, op in path))
    assert is_task_head(graph, graph["conv"]) is head


def test_a_layer_also_feeding_the_backbone_is_not_a_head() -> None:
    graph = _chain(_layer("act", OpKind.ACTIVATION, "sigmoid"))
    graph.add_layer(_layer("refine", OpKind.CONV, "Conv2d"))
    graph.add_edge("conv", "refine")
    assert not is_task_head(graph, graph["conv"])


def test_resizing_upsamples_keep_channels_and_pixel_shuffles_do_not() -> None:
    for op in ("interpolate", "Upsample", "UpsamplingBilinear2d", "upsample"):
        assert keeps_channel_count(_layer("up", OpKind.UPSAMPLE, op))
    for op in ("pixel_shuffle", "PixelShuffle", "pixel_unshuffle", "PixelUnshuffle"):
        assert not keeps_channel_count(_layer("up", OpKind.UPSAMPLE, op))
    # Other kinds answer as the op table's keeps_channels does.
    assert keeps_channel_count(_layer("act", OpKind.ACTIVATION, "relu"))
    assert not keeps_channel_count(_layer("cat", OpKind.CONCAT, "cat"))
