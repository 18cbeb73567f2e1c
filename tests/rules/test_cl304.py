"""CL304 unsupported-op: op kinds the target's toolchain does not run (channel shuffle on NPUs)."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, lint_specs, traced_graph

from cnnlint.graph import OpKind

BAD = FIXTURES / "cl304_bad.py"
GOOD = FIXTURES / "cl304_good.py"
MODULE_LINE = 19  # self.shuffle = nn.ChannelShuffle(2)
FUNCTIONAL_LINE = 9  # x.view(n, groups, c // groups, h, w).transpose(1, 2)


def _lint(path, target: str):
    (result,) = lint_specs(f"{path}::ShuffleUnit", target=target, select=["CL304"])
    assert result.status == "ok", result.error
    return result.findings


@pytest.mark.parametrize("target", ["hi3519", "cv22"])
def test_bad_fixture_grouped_on_npus(target: str) -> None:
    (finding,) = _lint(BAD, target)
    assert (finding.code, finding.severity, finding.line) == ("CL304", "error", MODULE_LINE)
    assert finding.path.endswith("cl304_bad.py")
    metrics = finding.metrics
    assert metrics["occurrences"] == 2
    assert metrics["op_kind"] == OpKind.CHANNEL_SHUFFLE
    assert metrics["locations"] == ["shuffle", "transpose"]
    assert metrics["tensor_bytes"] == 2 * 64 * 56 * 56  # int8 input + output
    assert 0 < metrics["permutation_conv_ms"] < metrics["fallback_ms"]
    assert "not in" in finding.message and "2 occurrences" in finding.message
    assert "nn.Conv2d(64, 64, 1, bias=False)" in finding.fix


def test_bad_fixture_note_on_arm_cpu() -> None:
    (finding,) = _lint(BAD, "arm-cpu")
    assert (finding.code, finding.severity, finding.line) == ("CL304", "info", MODULE_LINE)
    assert finding.metrics["supported"] is True
    assert "fallback_ms" not in finding.metrics
    assert "reshape + transpose" in finding.fix


def _ungrouped(tmp_path):
    profile = tmp_path / "each.toml"
    profile.write_text('extends = "hi3519"\n\n[rules.CL304]\ngroup_occurrences = false\n')
    return _lint(BAD, str(profile))


def test_one_finding_per_occurrence_when_not_grouped(tmp_path) -> None:
    findings = _ungrouped(tmp_path)
    assert len(findings) == 2
    assert {f.metrics["locations"][0] for f in findings} == {"shuffle", "transpose"}
    assert MODULE_LINE in {f.line for f in findings}
    assert all(f.metrics["occurrences"] == 1 for f in findings)


def test_functional_shuffle_is_located_at_its_forward_line(tmp_path) -> None:
    lines = {f.metrics["locations"][0]: (f.path, f.line) for f in _ungrouped(tmp_path)}
    assert lines["transpose"][0].endswith("cl304_bad.py")
    assert lines["transpose"][1] == FUNCTIONAL_LINE


def test_unknown_caution_op_is_a_profile_error(tmp_path) -> None:
    profile = tmp_path / "typo.toml"
    profile.write_text('extends = "arm-cpu"\n\n[rules.CL304]\ncaution_ops = ["shuffle"]\n')
    (result,) = lint_specs(f"{BAD}::ShuffleUnit", target=str(profile), select=["CL304"])
    assert result.status == "error"
    assert "caution_ops" in result.error and "shuffle" in result.error


# Real architectures.
def test_shufflenet_v2_has_one_shuffle_per_block() -> None:
    graph = traced_graph("torchvision.models:shufflenet_v2_x1_0")
    shuffles = list(graph.layers(OpKind.CHANNEL_SHUFFLE))
    assert len(shuffles) == 16  # 4 + 8 + 4 InvertedResidual blocks
    assert all(layer.attrs.get("groups") == 2 for layer in shuffles)


