"""The kinds of third-party code that failed on public model zoos, one minimal model each
(tests/fixtures/zoo_failures/), linted whole and counted against torch's own FLOP counter.

Each failure is a class of code, fixed where its cause is: fx's node names, value-dependent
forwards, scripting helpers, fx-wrapped functions, factory files, declared and guessed input
sizes, parameters after a real run, third-party warnings, and attention products.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, lint_specs
from torch.utils.flop_counter import FlopCounterMode

MODELS = FIXTURES / "zoo_failures" / "models.py"
FACTORIES = FIXTURES / "zoo_failures" / "factories.py"
CNNLINT = str(Path(sys.executable).with_name("cnnlint"))


def _fixture_class(name: str) -> type[torch.nn.Module]:
    spec = importlib.util.spec_from_file_location("zoo_failure_models", MODELS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def oracle_macs(model: torch.nn.Module, shapes: list[list[int]], device: str = "meta") -> int:
    """torch.utils.flop_counter's conv and matmul FLOPs / 2, on meta tensors (where attention
    decomposes into counted bmm's) or on CPU for a forward that needs values."""
    model = model.to(device).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*(torch.ones(shape, device=device) for shape in shapes))
    return counter.get_total_flops() // 2


def _ok(spec: str, **options):
    (result,) = lint_specs(spec, target="t4", **options)
    assert result.status == "ok", result.error
    return result


def _counted_like_torch(name: str, result, device: str = "meta") -> None:
    model_class = _fixture_class(name)
    with torch.device(device):
        model = model_class()
    assert result.summary.macs == oracle_macs(model, result.input_shapes, device)
    assert result.summary.params == sum(p.numel() for p in model.parameters())


def test_submodules_named_as_fx_names_its_nodes() -> None:
    result = _ok(f"{MODELS}::FxNames")
    assert {f.module for f in result.findings} <= {"input", "getattr_1", "x", "pool", "output", "sum_1", ""}
    _counted_like_torch("FxNames", result)


def test_a_detection_head_that_decodes_boxes_is_run_once_on_cpu() -> None:
    result = _ok(f"{MODELS}::DecodingDetector")
    assert any(n.startswith("trace: runtime capture on CPU tensors") for n in result.notes), result.notes
    (cl001,) = [f for f in result.findings if f.code == "CL001"]
    assert cl001.path.endswith("models.py") and cl001.line == 49  # stride = self.stride[0].item()
    _counted_like_torch("DecodingDetector", result, device="cpu")
    assert result.summary.params_unused == 0


def test_a_model_with_its_own_apply_is_run_on_cpu_too() -> None:
    result = _ok(f"{MODELS}::OwnApply")
    assert any(n.startswith("trace: runtime capture on CPU tensors") for n in result.notes), result.notes
    _counted_like_torch("OwnApply", result, device="cpu")


def test_torchvision_detector_traces(tmp_path) -> None:
    wrapper = tmp_path / "detector.py"
    wrapper.write_text(
        "import torchvision.models.detection as d\n\n"
        "def ssd():\n"
        "    return d.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)\n\n"
        "def faster_rcnn():\n"
        "    return d.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None)\n"
    )
    results = lint_specs(f"{wrapper}::faster_rcnn", f"{wrapper}::ssd")
    assert [r.status for r in results] == ["ok", "ok"], [r.error for r in results]
    faster = results[0]
    assert any("CPU tensors" in n for n in faster.notes)
    import torchvision.models.detection as d

    with torch.device("meta"):
        model = d.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None)
    assert faster.summary.params + faster.summary.params_unused == sum(p.numel() for p in model.parameters())


def test_scripting_helpers_take_the_eager_branch() -> None:
    result = _ok(f"{MODELS}::ScriptedUNet")
    assert not any(n.startswith("trace:") for n in result.notes)  # plain symbolic trace
    _counted_like_torch("ScriptedUNet", result)


def test_a_wrapped_function_may_edit_the_lists_it_gets() -> None:
    result = _ok(f"{MODELS}::WrappedListEdit", input_shapes=[(1, 3, 32, 32)])
    _counted_like_torch("WrappedListEdit", result)


def test_a_file_whose_class_needs_arguments_lints_its_factories() -> None:
    results = lint_specs(str(FACTORIES))
    assert sorted(r.model.rsplit("::", 1)[1] for r in results) == ["build", "net"]
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    by_name = {r.model.rsplit("::", 1)[1]: r for r in results}
    assert by_name["build"].summary.params == 16 * 3 * 9 + 16 + 16 * 16 * 9 + 16


@pytest.mark.parametrize(
    ("name", "shape"),
    [("DeclaredSize", [1, 3, 299, 299]), ("DeclaredImageSize", [1, 3, 300, 300])],
)
def test_declared_sizes_in_zoo_spellings(name: str, shape: list[int]) -> None:
    result = _ok(f"{MODELS}::{name}")
    assert (result.input_shape, result.input_shape_source) == (shape, "declared")
    _counted_like_torch(name, result)


def test_a_failing_guess_is_tried_again_larger_and_said() -> None:
    result = _ok(f"{MODELS}::DeepUNet3d")
    assert result.input_shape == [1, 1, 32, 128, 128]
    assert any("guessed shape 1x1x16x112x112 failed" in n and "traced at 1x1x32x128x128" in n
               for n in result.notes), result.notes
    _counted_like_torch("DeepUNet3d", result)


def test_a_real_run_counts_the_parameters_it_used() -> None:
    result = _ok(f"{MODELS}::ValueBranch")
    assert any(f.code == "CL001" for f in result.findings)
    assert (result.summary.params, result.summary.params_unused) == (16 * 27 + 16 + 16 * 9 + 16 + 16 * 16 + 16, 0)
    assert result.summary.unused_modules == []


def test_third_party_warnings_stay_out_of_the_report() -> None:
    proc = subprocess.run([CNNLINT, f"{MODELS}::Warns", "-t", "t4"], capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr
    assert "Overwriting" not in proc.stdout + proc.stderr
    assert "deprecated" not in proc.stdout + proc.stderr
    assert "Warns [t4" in proc.stdout


def test_attention_products_are_counted() -> None:
    result = _ok(f"{MODELS}::Attention")
    _counted_like_torch("Attention", result)
    tokens, dim, heads = (224 // 8) ** 2, 64, 4
    products = 2 * 2 * heads * tokens * tokens * (dim // heads)  # sdpa's two, the einsums' two
    projections = tokens * dim * 3 * dim + tokens * dim * dim
    stem = tokens * dim * 3 * 64
    assert result.summary.macs == products + projections + stem


@pytest.mark.parametrize("spec", ["torchvision.models.video:swin3d_t", "torchvision.models:swin_v2_t"])
def test_a_library_function_kept_as_one_call_is_counted_by_torch(spec: str) -> None:
    """torchvision's Swins wrap their window attention with torch.fx.wrap: the call stays one
    node, and torch's FLOP counter counts the products inside it. A stage's blocks call it with
    the same shapes (their shifts alternate): each distinct call is run once, reused for the rest."""
    import importlib

    (result,) = lint_specs(spec)
    assert result.status == "ok", result.error
    module, name = spec.split(":")
    with torch.device("meta"):
        model = getattr(importlib.import_module(module), name)()
    assert result.summary.macs == oracle_macs(model, result.input_shapes)


def test_a_detectors_box_head_runs_on_the_proposals_of_a_freshly_built_model(tmp_path) -> None:
    """The real run rebuilds the model on CPU with its own initialisation: the anchors computed in
    its constructor have their values, proposals survive, and the box head is counted."""
    import torchvision.models.detection as d

    wrapper = tmp_path / "detector.py"
    wrapper.write_text(
        "import torchvision.models.detection as d\n\n"
        "def faster_rcnn():\n"
        "    return d.fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None)\n"
    )
    (result,) = lint_specs(f"{wrapper}::faster_rcnn")
    assert result.status == "ok", result.error
    torch.manual_seed(0)
    model = d.fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None)
    oracle = oracle_macs(model, result.input_shapes, device="cpu")
    assert abs(result.summary.macs - oracle) <= 0.02 * oracle


def test_a_torch_layer_without_a_formula_is_counted_by_torch() -> None:
    """nn.LSTM has no formula in the op table (timm's Sequencer runs one along each axis): torch's
    FLOP counter counts the products it runs."""
    import timm

    (result,) = lint_specs("timm.models.sequencer:sequencer2d_s")
    assert result.status == "ok", result.error
    with torch.device("meta"):
        model = timm.create_model("sequencer2d_s")
    assert result.summary.macs == oracle_macs(model, result.input_shapes)


def test_the_guess_reads_an_image_through_a_space_to_depth_stem() -> None:
    result = _ok(f"{MODELS}::SpaceToDepthStem")
    assert result.input_shape == [1, 3, 224, 224]
    _counted_like_torch("SpaceToDepthStem", result)


def test_a_tensor_made_on_cpu_in_forward_sends_the_model_to_a_cpu_run() -> None:
    result = _ok(f"{MODELS}::CpuTensorInForward")
    assert any("CPU tensors" in n for n in result.notes), result.notes
    assert result.summary.macs == 224 * 224 * 8 * 27


def test_a_model_taking_two_images_is_told_it_got_one_shape() -> None:
    (result,) = lint_specs("torchvision.models.optical_flow:raft_small", input_shapes=[(1, 3, 224, 224)])
    assert result.status == "error"
    assert "forward() takes 2 input(s) (image1, image2) but 1 shape(s) were given" in result.error


@pytest.mark.parametrize(
    ("equation", "shapes"),
    [("bhqd,bhkd->bhqk", [(2, 4, 10, 8), (2, 4, 12, 8)]), ("...qd,...kd->...qk", [(2, 4, 10, 8), (2, 4, 12, 8)]),
     ("i...j,jk->i...k", [(3, 5, 6, 4), (4, 7)]), ("ij,jk,kl->il", [(3, 4), (4, 5), (5, 6)]),
     ("ij,jk", [(3, 4), (4, 5)]), ("b i d, b j d -> b i j", [(2, 5, 8), (2, 6, 8)])],
)  # fmt: skip
def test_einsum_is_counted_as_torch_counts_it(equation: str, shapes: list[tuple[int, ...]]) -> None:
    from cnnlint.cost import einsum_macs

    tensors = [torch.empty(shape, device="meta") for shape in shapes]
    with FlopCounterMode(display=False) as counter:
        torch.einsum(equation, *tensors)
    assert einsum_macs(equation, shapes) == counter.get_total_flops() // 2
