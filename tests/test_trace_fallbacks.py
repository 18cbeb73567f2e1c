"""Trace fallbacks: each hard part of a model still yields the findings inside it.

One fixture model per fallback path (leaf retrace, runtime capture, opaque + CL001), then the
model shapes every path must handle.
"""

from __future__ import annotations

import pytest
from conftest import FIXTURES, lint_specs, traced_graph

from cnnlint.graph import OpKind

LEAF = FIXTURES / "trace_leaf.py"
CAPTURE = FIXTURES / "trace_capture.py"
OPAQUE = FIXTURES / "trace_opaque.py"
SHAPES = FIXTURES / "trace_shapes.py"


def _lint(spec: str, target: str = "t4", input_shapes=None):
    (result,) = lint_specs(spec, target=target, input_shapes=input_shapes)
    assert result.status == "ok", result.error
    return result


def _findings(result, *codes: str):
    return [f for f in result.findings if f.code in codes]


def test_shape_dependent_submodule_is_retraced_as_a_leaf_and_inlined() -> None:
    result = _lint(f"{LEAF}::LeafNet", input_shapes=[(1, 3, 60, 60)])
    assert any(n.startswith("trace: leaf retrace") and "block by meta-trace" in n for n in result.notes)
    (depthwise,) = _findings(result, "CL301", "CL302")  # CL302 supersedes CL301 on its pairs
    assert (depthwise.path.endswith("trace_leaf.py"), depthwise.line) == (True, 11)
    assert depthwise.module == "block.dw"
    # 30x30 after the stem, padded to 32x32 inside the leaf: the shape the leaf really sees.
    stem, dw, head = 32 * 3 * 9 * 30 * 30, 32 * 9 * 32 * 32, 64 * 32 * 32 * 32
    assert result.summary.macs == stem + dw + head


def test_control_flow_in_the_root_forward_is_captured_at_run_time() -> None:
    result = _lint(f"{CAPTURE}::CaptureNet", input_shapes=[(1, 3, 16, 16)])
    assert any(n.startswith("trace: runtime capture") for n in result.notes)
    (depthwise,) = _findings(result, "CL301", "CL302")  # CL302 supersedes CL301 on its pairs
    assert (depthwise.path.endswith("trace_capture.py"), depthwise.line) == (True, 10)
    assert result.summary.macs == 16 * 16 * (16 * 3 * 9 + 16 * 9 + 32 * 16)
    graph = traced_graph(f"{CAPTURE}::CaptureNet", (1, 3, 16, 16))
    ops = [layer.op for layer in graph]
    assert ops[:4] == ["input", "Conv2d", "Conv2d", "Conv2d"]
    assert "relu" in ops and "add" in ops
    add = next(layer for layer in graph if layer.op == "add")
    assert add.called_at is not None and add.called_at.line == 17


def test_data_dependent_submodule_is_opaque_and_reported_by_cl001() -> None:
    result = _lint(f"{OPAQUE}::OpaqueNet", input_shapes=[(1, 3, 16, 16)])
    (partial,) = _findings(result, "CL001")
    assert (partial.severity, partial.module, partial.line) == ("info", "gate", 21)
    assert "needs tensor values" in partial.message
    (depthwise,) = _findings(result, "CL301")  # the layers after the opaque part are still seen
    assert depthwise.line == 22
    graph = traced_graph(f"{OPAQUE}::OpaqueNet", (1, 3, 16, 16))
    (opaque,) = graph.layers(OpKind.OPAQUE)
    assert opaque.output_shape == (1, 16, 16, 16)
    # The opaque part gets no finding but CL001; its products are counted by torch's FLOP
    # counter on its CPU run (all-ones values take the conv branch), and CL001 says so.
    assert not [f for f in result.findings if f.module == "gate" and f.code != "CL001"]
    assert "counted by torch's FLOP counter" in partial.message
    assert result.summary.not_counted == []
    stem_and_depthwise = 16 * 16 * 16 * (3 * 9 + 9)  # output elements x MACs per output
    gate_conv = 16 * 16 * 16 * 16
    assert result.summary.macs == stem_and_depthwise + gate_conv


def test_a_model_that_cannot_run_at_all_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "hopeless.py"
    path.write_text(
        "from torch import nn\n\n"
        "class Hopeless(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 8, 3)\n\n"
        "    def forward(self, x):\n"
        "        if x.item() > 0:  # x has 768 values: no device runs this\n"
        "            return self.conv(x)\n"
        "        return x\n"
    )
    (result,) = lint_specs(f"{path}::Hopeless", input_shapes=[(1, 3, 16, 16)])
    assert result.status == "error"
    # It fails the same way on meta and on CPU tensors: the error names the cause and the line.
    assert "forward() failed for input shape [1, 3, 16, 16]" in result.error
    assert "\n" not in result.error and "hopeless.py:9" in result.error
    assert "768 elements cannot be converted to Scalar" in result.error


SHAPE_CASES = [
    # (class, input shapes, expected MACs, expected layer ops that must appear)
    ("Conv1dNet", [(1, 8, 32)], 32 * (16 * 8 * 5 + 16 * 3), ["Conv1d", "Conv1d"]),
    ("Conv3dNet", [(1, 3, 4, 8, 8)], 4 * 8 * 8 * 8 * 3 * 27, ["Conv3d", "AdaptiveAvgPool3d"]),
    ("TransposedNet", [(1, 3, 16, 16)], 8 * 8 * 16 * 3 * 9 + 16 * 16 * 8 * 16 * 4 // 4,
     ["Conv2d", "ConvTranspose2d"]),
    ("LoopNet", [(1, 3, 8, 8)], 64 * 16 * 9 * (3 + 16 + 16), ["Conv2d", "ReLU"] * 3),
    ("SharedNet", [(1, 3, 8, 8)], 64 * 16 * 9 * (3 + 16 + 16), ["Conv2d"] * 3),
    ("TwoInTwoOut", [(1, 3, 8, 8), (1, 1, 8, 8)], 64 * 8 * 9 * 4, ["Conv2d", "Conv2d", "add", "cat"]),
    ("DictOut", [(1, 3, 8, 8)], 64 * (8 * 27 + 4 * 8 + 16 * 8), ["Conv2d"] * 3),
]  # fmt: skip


@pytest.mark.parametrize(("name", "shapes", "macs", "ops"), SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_model_shapes(name: str, shapes, macs: int, ops: list[str]) -> None:
    result = _lint(f"{SHAPES}::{name}", target="generic", input_shapes=shapes)
    assert result.summary.macs == macs
    if len(shapes) == 1:  # traced_graph takes one input shape
        graph = traced_graph(f"{SHAPES}::{name}", shapes[0])
        seen = [layer.op for layer in graph if layer.kind not in (OpKind.INPUT, OpKind.OUTPUT)]
        assert [op for op in seen if op in set(ops)] == ops


def test_weight_shared_module_counts_its_parameters_once() -> None:
    graph = traced_graph(f"{SHAPES}::SharedNet", (1, 3, 8, 8))
    calls = [layer for layer in graph if layer.module_path == "shared"]
    assert len(calls) == 2 and calls[1].attrs.get("shared_with_earlier_call")
    assert graph.params_total == (3 * 9 * 16 + 16) + (16 * 9 * 16 + 16)


def test_dict_output_reaches_the_output_layer() -> None:
    graph = traced_graph(f"{SHAPES}::DictOut", (1, 3, 8, 8))
    (output,) = graph.layers(OpKind.OUTPUT)
    assert sorted(output.input_shapes) == [(1, 4, 8, 8), (1, 16, 8, 8)]


def test_traceable_op_that_needs_values_makes_its_submodule_opaque() -> None:
    result = _lint(f"{OPAQUE}::SelectNet", input_shapes=[(1, 3, 16, 16)])
    (partial,) = _findings(result, "CL001")
    assert partial.module == "select" and "needs tensor values" in partial.message
    assert [f.module for f in _findings(result, "CL301")] == ["dw"]
