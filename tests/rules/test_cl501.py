"""CL501 memory-bound-hotspot: fixtures, the CL301 overlap, real architectures."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, lint_specs, traced_graph

from cnnlint.pipeline import check_graph
from cnnlint.profile import load_profile

CODE = "CL501"


def test_weight_bound_classifier_finding() -> None:
    (result,) = lint_specs(str(FIXTURES / "cl501_bad.py") + "::FlattenClassifier", target="t4",
                           select=[CODE])  # fmt: skip
    fc1, fc2 = result.findings
    assert fc1.module == "fc1" and fc2.module == "fc2"
    assert fc1.metrics["arithmetic_intensity"] < fc1.metrics["op_class_ridge_point"]
    assert fc1.metrics["ridge_point"] == pytest.approx(load_profile("t4").ridge_point("fp16"), rel=1e-3)
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


