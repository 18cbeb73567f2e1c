"""CL303 large-kernel-on-gpu (RepVGG): fixtures, stems, options, real architectures."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, check_on, lint_specs, traced_graph, findings_by_model

from cnnlint.check import active_rules
from cnnlint.pipeline import check_graph
from cnnlint.profile import load_profile
from cnnlint.rules.cl303_large_kernel_on_gpu import stack_plan

CODE = "CL303"
ON = ("t4", "a4000", "generic")
OFF = ("arm-cpu", "hi3519", "x3", "cv22")


def _lines(name: str, target: str) -> dict[str, list[tuple[str, int, str]]]:
    return findings_by_model(name, target, CODE)


@pytest.mark.parametrize("target", ON)
def test_bad_fixture_exact_lines(target: str) -> None:
    assert _lines("cl303_bad.py", target) == {
        "InceptionBranch5x5": [(CODE, 12, "info")],
        "Wide7x7": [(CODE, 24, "info")],
        "FeatureStem": [(CODE, 35, "info")],
    }


@pytest.mark.parametrize("target", ON)
def test_good_fixture_is_clean(target: str) -> None:
    found = _lines("cl303_good.py", target)
    assert set(found) == {"ResNetStem", "PatchifyStem", "Factorised7x7"}
    assert all(not findings for findings in found.values()), found


@pytest.mark.parametrize("target", OFF)
def test_off_on_cpu_and_npu_targets(target: str) -> None:
    profile = load_profile(target)
    assert profile.rules[CODE]["enabled"] is False
    assert CODE not in [rule.code for rule, _ in active_rules(profile)]


def test_finding_compares_with_stacked_3x3() -> None:
    (result,) = lint_specs(str(FIXTURES / "cl303_bad.py") + "::Wide7x7", target="t4",
                           select=[CODE])  # fmt: skip
    (finding,) = result.findings
    metrics = finding.metrics
    assert metrics["kernel"] == [7, 7] and metrics["stack_depth"] == 3
    assert metrics["stem"] is False
    assert metrics["efficiency_kxk"] == 0.15 and metrics["efficiency_3x3"] == 0.60
    assert metrics["est_stack_time_ms"] < metrics["est_conv_time_ms"]
    # Three 3x3 at equal width: 27/49 of a 7x7's FLOPs.
    assert metrics["stack_flops_ratio"] == pytest.approx(27 / 49, abs=1e-3)
    assert "3 stacked 3x3" in finding.message and "64 -> 64 -> 64 -> 64" in finding.fix


def test_stack_plan() -> None:
    assert stack_plan(5, 48, 64) == [(48, 48), (48, 64)]
    assert stack_plan(7, 64, 64) == [(64, 64), (64, 64), (64, 64)]
    assert stack_plan(7, 3, 64) == [(3, 32), (32, 32), (32, 64)]  # ResNet-C stem widths
    assert stack_plan(5, 512, 128) == [(512, 128), (128, 128)]


def _profile(tmp_path, body: str):
    path = tmp_path / "custom.toml"
    path.write_text('extends = "t4"\n\n[rules.CL303]\n' + body, encoding="utf-8")
    return load_profile(str(path))


def test_stem_severity_and_skip_stem(tmp_path) -> None:
    spec = str(FIXTURES / "cl303_bad.py")
    warn = _profile(tmp_path, 'severity = "warning"\n')
    graph = traced_graph(spec + "::FeatureStem")
    (stem,) = check_graph(graph, warn, select=[CODE]).findings
    assert stem.severity == "info" and stem.metrics["stem"] is True
    inner = check_graph(traced_graph(spec + "::Wide7x7"), warn, select=[CODE]).findings
    assert [f.severity for f in inner] == ["warning"]

    skip_dir = tmp_path / "skip"
    skip_dir.mkdir()
    skip = _profile(skip_dir, "skip_stem = true\n")
    assert check_graph(graph, skip, select=[CODE]).findings == []


@pytest.mark.parametrize("target", ON)
@pytest.mark.parametrize(
    "model", ["resnet50", "resnet18", "googlenet", "densenet121", "resnext50_32x4d", "vgg16",
              "convnext_tiny", "mobilenet_v2", "efficientnet_b0", "shufflenet_v2_x1_0",
              "regnet_x_400mf", "mobilenet_v3_large"],
)  # fmt: skip
def test_stems_and_3x3_networks_not_flagged(model: str, target: str) -> None:
    # ResNet/GoogLeNet/DenseNet 7x7 stems and ConvNeXt's 4x4 patchify stem read a 3-channel
    # image: the 3x3 stack would cost ~3x the FLOPs (Bag of Tricks ResNet-C) and is estimated
    # slower, so nothing is reported.
    result = check_on(f"torchvision.models:{model}", target, select=[CODE])
    assert result.status == "ok" and result.findings == []


@pytest.mark.parametrize("target", ON)
def test_inception_v3_5x5_branches(target: str) -> None:
    graph = traced_graph("torchvision.models:inception_v3", (1, 3, 299, 299))
    result = check_graph(graph, load_profile(target), select=[CODE])
    # The 5x5 branches are reported; the factorised 1x7 / 7x1 convs are not.
    assert [f.module for f in result.findings] == [
        "Mixed_5b.branch5x5_2.conv", "Mixed_5c.branch5x5_2.conv", "Mixed_5d.branch5x5_2.conv"]
    assert {f.severity for f in result.findings} == {"info"}
