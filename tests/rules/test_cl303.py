"""CL303 large-kernel-on-gpu (RepVGG): fixtures, stems, options, real architectures."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, lint_specs, traced_graph

from cnnlint.pipeline import check_graph
from cnnlint.profile import load_profile
from cnnlint.rules.cl303_large_kernel_on_gpu import stack_plan

CODE = "CL303"


def test_finding_compares_with_stacked_3x3() -> None:
    (result,) = lint_specs(str(FIXTURES / "cl303_bad.py") + "::Wide7x7", target="t4",
                           select=[CODE])  # fmt: skip
    (finding,) = result.findings
    metrics = finding.metrics
    assert metrics["kernel"] == [7, 7] and metrics["stack_depth"] == 3
    assert metrics["stem"] is False
    efficiency = load_profile("t4").efficiency
    assert (metrics["efficiency_kxk"], metrics["efficiency_3x3"]) == (efficiency["conv_kxk"], efficiency["conv3x3"])
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


