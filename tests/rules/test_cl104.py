"""CL104 elementwise-heavy: unfused norm/activation/element-wise kernels (ShuffleNetV2 G4)."""

from __future__ import annotations

from conftest import FIXTURES, lint_specs

BAD = FIXTURES / "cl104_bad.py"
GOOD = FIXTURES / "cl104_good.py"


def _findings(path, name: str, target: str = "t4"):
    (result,) = lint_specs(f"{path}::{name}", target=target, select=["CL104"])
    assert result.status == "ok", result.error
    return result.findings


def test_model_level_finding_quantifies_and_lists_offenders() -> None:
    (model,) = [f for f in _findings(BAD, "NormActAfterConcat") if f.severity == "warning"]
    metrics = model.metrics
    assert metrics["kernels"] == 2
    assert metrics["elementwise_latency_share"] >= 0.25
    assert [t["layer"] for t in metrics["top"]] == ["norm", "act"]
    assert metrics["by_cause"] == {
        "after_concat": {"count": 2, "est_time_ms": metrics["elementwise_ms"]}
    }
    assert model.module == "norm"
    assert "of est. t4 fp16 latency" in model.message
    assert "before the concat" in model.fix


def test_per_op_causes() -> None:
    infos = {f.line: f for f in _findings(BAD, "NormActAfterConcat") if f.severity == "info"}
    assert infos[15].metrics["cause"] == "after_concat"
    assert infos[16].metrics["cause"] == "after_concat"  # the ReLU inherits the BN's cause
    (norm,) = [f for f in _findings(BAD, "NormAfterActivation") if f.severity == "info"]
    assert norm.metrics["cause"] == "norm_after_act"
    assert "conv-norm-act" in norm.fix
    (relu,) = _findings(BAD, "ActivationAfterPool")
    assert relu.metrics["cause"] == "after_other"
    assert "`MaxPool2d`" in relu.fix


def test_target_only_fusion_gaps_get_no_per_op_finding(tmp_path) -> None:
    """hi3519 does not fuse residual adds: they count toward the share but are not design faults."""
    profile = tmp_path / "strict.toml"
    profile.write_text(
        'extends = "hi3519"\n\n[rules.CL104]\nthreshold = 0.01\nmin_latency_share = 0.0\n'
    )
    (result,) = lint_specs(f"{GOOD}::ResidualBlock", target=str(profile), select=["CL104"])
    assert result.status == "ok", result.error
    (finding,) = result.findings
    assert finding.severity == "warning"
    assert set(finding.metrics["by_cause"]) == {"target"}


def test_options_switch_per_op_findings_off(tmp_path) -> None:
    profile = tmp_path / "quiet.toml"
    profile.write_text('extends = "t4"\n\n[rules.CL104]\nreport_ops = false\n')
    (result,) = lint_specs(f"{BAD}::NormActAfterConcat", target=str(profile), select=["CL104"])
    assert [f.severity for f in result.findings] == ["warning"]


