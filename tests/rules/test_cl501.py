"""CL501 memory-bound-hotspot: fixtures, the CL301 overlap, real architectures."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, check_on, lint_specs, traced_graph, findings_by_model

from cnnlint.pipeline import check_graph
from cnnlint.profile import load_profile

CODE = "CL501"
ALL_TARGETS = ("t4", "a4000", "generic", "arm-cpu", "hi3519", "x3", "cv22")
FLATTEN = [(CODE, 15, "info"), (CODE, 17, "info")]  # fc1, fc2
# DepthwiseStage: stem (line 30) and the 3x3 depthwise conv (line 31). The depthwise conv is
# CL301's wherever CL301 is on; on x3 (CL301 off) CL501 reports it. On the 12.8 GB/s NPUs the
# stem, which writes a 112x112 map, is memory-bound as well.
DEPTHWISE = {
    "t4": [], "a4000": [], "generic": [], "arm-cpu": [],
    "x3": [(CODE, 30, "info"), (CODE, 31, "info")],
    "hi3519": [(CODE, 30, "info")], "cv22": [(CODE, 30, "info")],
}  # fmt: skip


def _lines(name: str, target: str) -> dict[str, list[tuple[str, int, str]]]:
    return findings_by_model(name, target, CODE)


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_bad_fixture_exact_lines(target: str) -> None:
    assert _lines("cl501_bad.py", target) == {
        "FlattenClassifier": FLATTEN,
        "DepthwiseStage": DEPTHWISE[target],
    }


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_good_fixture_is_clean(target: str) -> None:
    assert _lines("cl501_good.py", target) == {"PooledHead": []}


def test_weight_bound_classifier_finding() -> None:
    (result,) = lint_specs(str(FIXTURES / "cl501_bad.py") + "::FlattenClassifier", target="t4",
                           select=[CODE])  # fmt: skip
    fc1, fc2 = result.findings
    assert fc1.module == "fc1" and fc2.module == "fc2"
    assert fc1.metrics["arithmetic_intensity"] < fc1.metrics["op_class_ridge_point"]
    assert fc1.metrics["ridge_point"] == pytest.approx(65e12 / 320e9, rel=1e-3)
    assert fc1.metrics["weight_bytes"] > fc1.metrics["activation_bytes"]
    assert fc1.metrics["latency_share"] > 0.5
    assert fc1.metrics["est_compute_bound_time_ms"] < fc1.metrics["est_time_ms"]
    assert "weight-bound" in fc1.message and "global-average-pool" in fc1.fix
    assert "global-average-pool" not in fc2.fix  # fc2 reads a vector, not a flattened map
    assert "int8" in fc1.fix
    (x3,) = lint_specs(str(FIXTURES / "cl501_bad.py") + "::FlattenClassifier", target="x3",
                       select=[CODE])  # fmt: skip
    assert "int8" not in x3.findings[0].fix  # already int8 there


def test_skip_covered_option(tmp_path) -> None:
    path = tmp_path / "t4_all.toml"
    path.write_text('extends = "t4"\n\n[rules.CL501]\nskip_covered = false\n', encoding="utf-8")
    graph = traced_graph(str(FIXTURES / "cl501_bad.py") + "::DepthwiseStage")
    result = check_graph(graph, load_profile(str(path)), select=[CODE])
    assert [(f.module, f.line) for f in result.findings] == [("dw", 31)]
    # CL301 reports the same layer on t4.
    covered = check_graph(graph, load_profile("t4"), select=["CL301"])
    assert [f.line for f in covered.findings] == [31]


def test_vgg16_classifier_is_the_hotspot_on_t4() -> None:
    result = check_on("torchvision.models:vgg16", "t4", select=[CODE])
    assert [f.module for f in result.findings] == ["classifier.0", "classifier.3"]
    assert result.findings[0].metrics["latency_share"] > 0.3
    assert "global-average-pool" in result.findings[0].fix


MODELS = ["resnet50", "resnet18", "vgg16", "mobilenet_v2", "mobilenet_v3_large",
          "efficientnet_b0", "shufflenet_v2_x1_0", "googlenet", "densenet121",
          "resnext50_32x4d", "regnet_x_400mf", "convnext_tiny"]  # fmt: skip


@pytest.mark.parametrize("target", ("t4", "arm-cpu", "x3", "hi3519"))
@pytest.mark.parametrize("model", MODELS)
def test_a_handful_per_model(model: str, target: str) -> None:
    result = check_on(f"torchvision.models:{model}", target, select=[CODE])
    assert result.status == "ok"
    assert len(result.findings) <= 5
    assert {f.severity for f in result.findings} <= {"info"}
    for finding in result.findings:
        assert finding.metrics["latency_share"] >= 0.04
        assert finding.metrics["arithmetic_intensity"] < finding.metrics["op_class_ridge_point"]


@pytest.mark.parametrize("target", ("t4", "arm-cpu", "x3", "hi3519"))
def test_resnet50_and_convnext_have_no_hotspot(target: str) -> None:
    for model in ("resnet50", "convnext_tiny", "densenet121"):
        result = check_on(f"torchvision.models:{model}", target, select=[CODE])
        assert result.findings == [], model


def test_depthwise_left_to_cl301_on_t4() -> None:
    for model in ("mobilenet_v2", "efficientnet_b0", "mobilenet_v3_large"):
        result = check_on(f"torchvision.models:{model}", "t4", select=[CODE])
        assert all(f.metrics["kind"] != "depthwise_conv" for f in result.findings)
