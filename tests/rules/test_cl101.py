"""CL101 unequal-channel-width (ShuffleNetV2 G1): fixtures, the bound, real architectures."""

from __future__ import annotations

from math import sqrt

import pytest
from conftest import FIXTURES, lint_specs, traced_graph

from cnnlint.pipeline import check_graph
from cnnlint.profile import load_profile
from cnnlint.rules.cl101_unequal_channel_width import mac_elements, mac_lower_bound

CODE = "CL101"
TARGETS = ("t4", "a4000", "generic", "arm-cpu", "hi3519", "x3", "cv22")


def test_finding_quantifies_the_excess() -> None:
    (result,) = lint_specs(str(FIXTURES / "cl101_bad.py") + "::InvertedBottleneck", target="t4",
                           select=[CODE])  # fmt: skip
    expand = result.findings[0]
    assert expand.module == "expand"
    # 24 -> 144 on 56x56: the activation term alone is (sqrt(6) + 1/sqrt(6))/2 - 1 = 42.9% above.
    assert 41 < expand.metrics["excess_percent"] < 43
    assert expand.metrics["ratio"] == 6.0
    assert expand.metrics["mac_bytes"] == (56 * 56 * (24 + 144) + 24 * 144) * 2  # fp16
    assert expand.metrics["est_balanced_time_ms"] < expand.metrics["est_conv_time_ms"]
    assert "42% above" in expand.message and "t4 latency" in expand.message
    assert "59 channels" in expand.fix


def test_bound_is_reached_at_equal_widths() -> None:
    for hw in (1, 49, 3136):
        assert mac_elements(hw, 64, 64) == pytest.approx(mac_lower_bound(hw, 64, 64))
        assert mac_elements(hw, 16, 256) > mac_lower_bound(hw, 16, 256)
    # Same FLOPs, balanced: 16 x 256 = 64 x 64.
    assert mac_lower_bound(3136, 16, 256) == pytest.approx(mac_elements(3136, 64, 64))
    # Activation-dominated excess depends on the ratio only (ShuffleNetV2 Table 1 ratios).
    for ratio, excess in ((2, 0.0607), (6, 0.4289), (12, 0.8764)):
        c1 = 32
        c2 = c1 * ratio
        measured = mac_elements(10**6, c1, c2) / mac_lower_bound(10**6, c1, c2) - 1
        assert measured == pytest.approx((sqrt(ratio) + 1 / sqrt(ratio)) / 2 - 1, abs=1e-3)
        assert measured == pytest.approx(excess, abs=1e-3)


def test_min_ratio_and_excess_options(tmp_path) -> None:
    profile_path = tmp_path / "strict.toml"
    profile_path.write_text('extends = "t4"\n\n[rules.CL101]\nmin_ratio = 4\n'
                            "min_excess_percent = 20\n", encoding="utf-8")  # fmt: skip
    graph = traced_graph("torchvision.models:resnet50")
    result = check_graph(graph, load_profile(str(profile_path)), select=[CODE])
    # With the threshold lowered to ResNet's 4x, the 56x56 bottleneck 1x1s show up (25% above).
    assert result.findings
    assert {f.metrics["ratio"] for f in result.findings} == {4.0}


