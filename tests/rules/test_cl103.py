"""CL103 fragmented-block: many parallel branches of small kernels between a fork and its join."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES, check_on, traced_graph

from cnnlint.check import RuleContext
from cnnlint.cost import compute_cost
from cnnlint.pipeline import check_graph
from cnnlint.profile import load_profile
from cnnlint.rules import cl103_fragmented_block as rule

BAD = str(FIXTURES / "cl103_bad.py")
GOOD = str(FIXTURES / "cl103_good.py")


def _found(spec: str, target: str = "t4", input_shape=None):
    if input_shape is None:
        result = check_on(spec, target, select=["CL103"])
    else:
        result = check_graph(traced_graph(spec, input_shape), load_profile(target), select=["CL103"])
    assert result.status == "ok", result.error
    return [f for f in result.findings if f.code == "CL103"]


@pytest.mark.parametrize(
    ("name", "line", "branches"),
    [("InceptionNet", 17, 4), ("ThreeDeepBranches", 8, 3)],
)
def test_bad_fixture_is_flagged_at_the_first_conv_of_the_block(name: str, line: int, branches: int) -> None:
    findings = _found(f"{BAD}::{name}")
    assert [(f.code, Path(f.path).name, f.line) for f in findings] == [("CL103", "cl103_bad.py", line)]
    finding = findings[0]
    assert finding.severity == "warning"
    assert finding.metrics["branches"] == branches
    assert finding.metrics["kernels"] >= 8
    assert 0 < finding.metrics["overhead_share"] < 1
    assert finding.message.startswith(finding.module + ":")
    assert "ShuffleNet V2 G3" in finding.fix


def test_inception_fix_merges_the_sibling_1x1_convs() -> None:
    (finding,) = _found(f"{BAD}::InceptionNet")
    assert finding.metrics["mergeable_1x1"] == 3  # b1, b2a, b3a read the fork; b4 reads the pool
    assert finding.metrics["est_saving_ms"] > 0
    assert "merge the 3 1x1 convs" in finding.fix


def test_thresholds_are_options() -> None:
    graph = traced_graph(f"{BAD}::ThreeDeepBranches")
    profile = load_profile("t4")
    cost = compute_cost(graph, profile)
    assert len(list(rule.check(RuleContext(graph, cost, profile, rule.Options(), {})))) == 1
    assert list(rule.check(RuleContext(graph, cost, profile, rule.Options(max_kernels=9), {}))) == []
    graph = traced_graph(f"{BAD}::InceptionNet")
    cost = compute_cost(graph, profile)
    assert list(rule.check(RuleContext(graph, cost, profile, rule.Options(min_branches=5, max_kernels=99), {}))) == []


