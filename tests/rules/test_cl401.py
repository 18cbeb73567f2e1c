"""CL401 dense-concat: a tensor concatenated into many later concats (DenseNet vs VoVNet OSA)."""

from __future__ import annotations

from pathlib import Path

from conftest import FIXTURES, check_on, traced_graph

from cnnlint.check import RuleContext
from cnnlint.cost import compute_cost
from cnnlint.profile import load_profile
from cnnlint.rules import cl401_dense_concat as rule

BAD = str(FIXTURES / "cl401_bad.py")
GOOD = str(FIXTURES / "cl401_good.py")


def _found(spec: str, target: str = "t4"):
    result = check_on(spec, target, select=["CL401"])
    assert result.status == "ok", result.error
    return [f for f in result.findings if f.code == "CL401"]


def test_bad_fixture_one_finding_per_dense_block() -> None:
    findings = _found(f"{BAD}::DenseNetTiny")
    # Both blocks anchor at their first dense layer's conv, built on line 10.
    assert [(f.code, Path(f.path).name, f.line) for f in findings] == [("CL401", "cl401_bad.py", 10)] * 2
    assert [f.module for f in findings] == ["block1.layers.0.conv", "block2.layers.0.conv"]
    for finding in findings:
        assert finding.severity == "warning"
        assert finding.message.startswith(finding.module + ":")
        # Four layers: the block input and the first two outputs feed >= 3 concats.
        assert finding.metrics["dense_tensors"] == 3
        assert finding.metrics["concats"] == 5
        assert finding.metrics["concat_bytes"] > finding.metrics["osa_bytes"] > 0
        assert finding.metrics["extra_bytes"] == finding.metrics["concat_bytes"] - finding.metrics["osa_bytes"]
        assert finding.metrics["est_saving_ms"] > 0
        assert "OSA" in finding.fix


def test_osa_bytes_read_and_write_each_feature_once() -> None:
    graph = traced_graph(f"{BAD}::DenseNetTiny")
    profile = load_profile("t4")
    cost = compute_cost(graph, profile)
    first = next(rule.check(RuleContext(graph, cost, profile, rule.Options(), {})))
    # Block 1: input 64 ch + 4 x 32 ch at 112x112, fp16 (2 bytes), read once and written once.
    assert first.metrics["osa_bytes"] == 2 * (64 + 4 * 32) * 112 * 112 * 2


def test_min_concats_option() -> None:
    graph = traced_graph(f"{GOOD}::SkipUsedTwice")
    profile = load_profile("t4")
    cost = compute_cost(graph, profile)
    assert len(list(rule.check(RuleContext(graph, cost, profile, rule.Options(min_concats=2), {})))) == 1


