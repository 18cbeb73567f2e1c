"""CL402 reparameterizable-branches: RepVGG-style linear branches summed, left unmerged."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES, check_on

BAD = str(FIXTURES / "cl402_bad.py")
GOOD = str(FIXTURES / "cl402_good.py")
TIMM = str(FIXTURES / "timm_repvgg.py")


def _found(spec: str, target: str = "t4", precision: str | None = None):
    result = check_on(spec, target, precision, select=["CL402"])
    assert result.status == "ok", result.error
    return [f for f in result.findings if f.code == "CL402"]


def test_bad_repvgg_blocks_are_flagged_at_the_3x3_conv() -> None:
    findings = _found(f"{BAD}::RepVGGTiny")
    assert [(f.code, Path(f.path).name, f.line) for f in findings] == [("CL402", "cl402_bad.py", 11)] * 2
    first, second = findings
    assert first.module == "stage.0.conv3" and first.metrics["branches"] == 2  # stride 2: no identity
    assert second.module == "stage.1.conv3" and second.metrics["branches"] == 3
    assert second.metrics["branch_kinds"] == ["3x3 conv+norm", "1x1 conv+norm", "norm"]
    for finding in findings:
        assert finding.severity == "warning"
        assert finding.message.startswith(finding.module + ":")
        assert finding.metrics["merged_time_ms"] < finding.metrics["est_time_ms"]
        assert finding.metrics["est_saving_ms"] > 0
        assert "reparameterize_model" in finding.fix
        assert "QARepVGG" not in finding.message  # fp16 on t4: no INT8 caution


def test_conv_plus_identity_is_flagged() -> None:
    findings = _found(f"{BAD}::ConvPlusIdentity")
    assert [(Path(f.path).name, f.line) for f in findings] == [("cl402_bad.py", 42)]
    assert findings[0].metrics["branch_kinds"] == ["3x3 conv+norm", "identity"]


@pytest.mark.parametrize("target", ["x3", "hi3519"])
def test_int8_adds_the_ptq_caution(target: str) -> None:
    findings = _found(f"{BAD}::RepVGGTiny", target)
    assert len(findings) == 2
    for finding in findings:
        assert finding.metrics["int8_ptq_caution"] is True
        assert "52.2%" in finding.message
        assert "QARepVGG" in finding.fix and "RepOptimizer" in finding.fix


def test_int8_caution_follows_the_precision_not_the_target() -> None:
    (finding, _) = _found(f"{BAD}::RepVGGTiny", "t4", "int8")
    assert finding.metrics["int8_ptq_caution"] is True


