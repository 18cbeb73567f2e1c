"""CL102 excessive-group-conv (ShuffleNetV2 G2): fixtures, the MAC model, real architectures."""

from __future__ import annotations

from math import sqrt

import pytest
from conftest import FIXTURES, lint_specs, traced_graph

from cnnlint.graph import Layer, OpKind
from cnnlint.pipeline import check_graph
from cnnlint.profile import load_profile
from cnnlint.rules.cl102_excessive_group_conv import group_conv_mac

CODE = "CL102"


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


