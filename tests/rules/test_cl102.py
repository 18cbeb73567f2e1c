"""CL102 excessive-group-conv (ShuffleNetV2 G2): fixtures, the MAC model, real architectures."""

from __future__ import annotations

from math import sqrt

import pytest
from conftest import FIXTURES, check_on, lint_specs, traced_graph, findings_by_model

from cnnlint.check import active_rules
from cnnlint.graph import Layer, OpKind
from cnnlint.pipeline import check_graph
from cnnlint.profile import load_profile
from cnnlint.rules.cl102_excessive_group_conv import group_conv_mac

CODE = "CL102"
SEVERITY_ON = {"t4": "warning", "a4000": "warning", "generic": "warning", "hi3519": "warning",
               "cv22": "warning", "x3": "info", "arm-cpu": "info"}  # fmt: skip


def _lines(name: str, target: str, code: str = CODE) -> dict[str, list[tuple[str, int, str]]]:
    return findings_by_model(name, target, code)


@pytest.mark.parametrize(("target", "severity"), sorted(SEVERITY_ON.items()))
def test_bad_fixture_exact_lines_and_severity(target: str, severity: str) -> None:
    assert _lines("cl102_bad.py", target) == {
        "ResNeXtBlock": [(CODE, 13, severity)],
        "GroupedPointwise": [(CODE, 27, severity), (CODE, 28, severity)],
    }


@pytest.mark.parametrize("target", sorted(SEVERITY_ON))
def test_good_fixture_is_clean(target: str) -> None:
    found = _lines("cl102_good.py", target)
    assert set(found) == {"FewGroups", "DenseBottleneck", "Depthwise"}
    assert all(not findings for findings in found.values()), found


def test_enabled_on_every_builtin_target() -> None:
    for target, severity in SEVERITY_ON.items():
        profile = load_profile(target)
        assert CODE in [rule.code for rule, _ in active_rules(profile)]
        assert profile.rules[CODE]["severity"] == severity


def test_finding_compares_with_the_dense_conv_of_equal_flops() -> None:
    (result,) = lint_specs(str(FIXTURES / "cl102_bad.py") + "::ResNeXtBlock", target="t4",
                           select=[CODE])  # fmt: skip
    (finding,) = result.findings
    assert finding.module == "grouped"
    metrics = finding.metrics
    assert metrics["groups"] == 32 and metrics["channels_per_group"] == 8
    assert metrics["dense_in_channels"] == pytest.approx(256 / sqrt(32), abs=0.1)
    assert metrics["est_dense_time_ms"] < metrics["est_conv_time_ms"]
    assert metrics["mac_increase_percent"] > 100
    assert "32 groups of 8" in finding.message
    assert "48 -> 48" in finding.fix  # 45.3 rounded to the fp16 granule of 8


def test_mac_model_matches_the_sqrt_g_scaling() -> None:
    # 1x1 group conv, c1 = c2 = 360, g = 8 on 56x56 (ShuffleNetV2 Table 2's g = 8 row).
    layer = Layer(name="g", kind=OpKind.GROUP_CONV, op="Conv2d",
                  input_shapes=[(1, 360, 56, 56)], output_shapes=[(1, 360, 56, 56)],
                  attrs={"in_channels": 360, "out_channels": 360, "kernel_size": (1, 1),
                         "groups": 8})  # fmt: skip
    mac, dense = group_conv_mac(layer)
    activations = 2 * 56 * 56 * 360
    weights = 360 * 360 // 8
    assert mac == activations + weights
    assert dense == pytest.approx(activations / sqrt(8) + weights)
    # The dense conv with the same FLOPs is the g = 1 row of Table 2: 360 / sqrt(8) ~ 128 wide.
    assert 360 / sqrt(8) == pytest.approx(127.3, abs=0.1)


def test_min_groups_option(tmp_path) -> None:
    profile_path = tmp_path / "lenient.toml"
    profile_path.write_text('extends = "t4"\n\n[rules.CL102]\nmin_groups = 64\n', encoding="utf-8")
    graph = traced_graph("torchvision.models:resnext50_32x4d")
    result = check_graph(graph, load_profile(str(profile_path)), select=[CODE])
    assert result.status == "ok" and result.findings == []


def test_resnext50_flagged_on_t4() -> None:
    result = check_on("torchvision.models:resnext50_32x4d", "t4", select=[CODE])
    assert len(result.findings) == 16  # every bottleneck's 3x3, 32 groups
    assert {f.severity for f in result.findings} == {"warning"}
    assert all(f.module.endswith(".conv2") for f in result.findings)
    assert {f.metrics["groups"] for f in result.findings} == {32}


def test_regnet_x_400mf_flagged_from_stage_three() -> None:
    # Group width 16: stages 1-2 have g = 2 and 4 (not flagged), stages 3-4 g = 10 and 25.
    result = check_on("torchvision.models:regnet_x_400mf", "t4", select=[CODE])
    assert {f.metrics["groups"] for f in result.findings} == {10, 25}
    assert all(f.module.startswith(("trunk_output.block3", "trunk_output.block4"))
               for f in result.findings)  # fmt: skip
    assert len(result.findings) == 19


OTHER_MODELS = ["resnet50", "resnet18", "vgg16", "mobilenet_v2", "mobilenet_v3_large",
                "efficientnet_b0", "shufflenet_v2_x1_0", "googlenet", "densenet121",
                "convnext_tiny", "inception_v3"]  # fmt: skip


@pytest.mark.parametrize("target", ("t4", "arm-cpu", "x3", "hi3519"))
@pytest.mark.parametrize("model", OTHER_MODELS)
def test_no_group_convs_no_findings(model: str, target: str) -> None:
    # Depthwise convs (MobileNet, EfficientNet, ShuffleNetV2, ConvNeXt) are not CL102's.
    result = check_on(f"torchvision.models:{model}", target, select=[CODE])
    assert result.status == "ok" and result.findings == []
