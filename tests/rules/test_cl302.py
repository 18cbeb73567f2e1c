"""CL302 low-channel-separable: depthwise + 1x1 pairs one regular conv would beat (MobileDets)."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, check_on, codes, lint_specs

BAD = FIXTURES / "cl302_bad.py"
GOOD = FIXTURES / "cl302_good.py"


def _findings(path, name: str, target: str = "t4"):
    (result,) = lint_specs(f"{path}::{name}", target=target, select=["CL302"])
    assert result.status == "ok", result.error
    return result.findings


@pytest.mark.parametrize("target", ["t4", "hi3519", "cv22", "a4000", "generic"])
@pytest.mark.parametrize(
    ("name", "lines"),
    [("InvertedResidualStem", [13, 18]), ("SqueezeExcitePair", [33])],
)
def test_bad_fixture_lines(name: str, lines: list[int], target: str) -> None:
    findings = _findings(BAD, name, target)
    expected = [("CL302", "warning", line) for line in lines]
    assert [(f.code, f.severity, f.line) for f in findings] == expected
    assert all(f.path.endswith("cl302_bad.py") for f in findings)


@pytest.mark.parametrize("target", ["arm-cpu", "x3"])
def test_off_where_depthwise_runs_well(target: str) -> None:
    assert _findings(BAD, "InvertedResidualStem", target) == []


def test_finding_reports_both_times_and_the_replacement() -> None:
    first, second = _findings(BAD, "InvertedResidualStem")
    metrics = first.metrics
    assert metrics["in_channels"] == 32 and metrics["out_channels"] == 16
    assert metrics["pointwise"] == "pw1"
    assert metrics["regular_time_ms"] < metrics["separable_time_ms"]
    assert metrics["regular_flops"] == 2 * 16 * 112 * 112 * 32 * 9
    assert f"{metrics['separable_time_ms'] * 1e3:.1f} us" in first.message
    assert f"{metrics['regular_time_ms'] * 1e3:.1f} us" in first.message
    assert "nn.Conv2d(32, 16, 3, padding=1)" in first.fix
    assert "nn.Conv2d(96, 24, 3, stride=2, padding=1)" in second.fix
    assert second.metrics["stride"] == [2, 2]


def test_follows_a_squeeze_excitation_gate() -> None:
    (finding,) = _findings(BAD, "SqueezeExcitePair")
    assert finding.metrics["pointwise"] == "pw"


@pytest.mark.parametrize("name", ["FusedStem", "WideSeparable"])
@pytest.mark.parametrize("target", ["t4", "hi3519", "cv22", "generic"])
def test_good_fixture_is_clean(name: str, target: str) -> None:
    assert _findings(GOOD, name, target) == []


def test_options_max_channels_and_tolerance(tmp_path) -> None:
    """960 -> 160 at 7x7: one regular conv is est. ~1.3x slower on t4; a loose tolerance flags it."""
    strict = tmp_path / "wide.toml"
    strict.write_text('extends = "t4"\n\n[rules.CL302]\nmax_channels = 1024\n')
    (result,) = lint_specs(f"{GOOD}::WideSeparable", target=str(strict), select=["CL302"])
    assert result.findings == []
    loose = tmp_path / "loose.toml"
    loose.write_text('extends = "t4"\n\n[rules.CL302]\nmax_channels = 1024\ntolerance = 0.5\n')
    (result,) = lint_specs(f"{GOOD}::WideSeparable", target=str(loose), select=["CL302"])
    (finding,) = result.findings
    assert finding.metrics["regular_time_ms"] > finding.metrics["separable_time_ms"]
    assert "slower, within the 50% tolerance" in finding.message
    assert finding.metrics["saving_ms"] < 0


# Real architectures: torchvision mobilenet_v2's narrow early blocks (width <= 64) on t4.
def test_mobilenet_v2_on_t4() -> None:
    result = check_on("torchvision.models:mobilenet_v2", "t4", select=["CL302"])
    flagged = sorted((f.module for f in result.findings), key=lambda m: int(m.split(".")[1]))
    assert flagged == [f"features.{i}.conv.{0 if i == 1 else 1}.0" for i in range(1, 11)]
    assert codes(result, "warning") == ["CL302"] * 10


@pytest.mark.parametrize(
    ("model", "target", "count"),
    [
        ("mobilenet_v2", "hi3519", 6),
        ("mobilenet_v2", "arm-cpu", 0),
        ("mobilenet_v2", "x3", 0),
        ("mobilenet_v3_large", "t4", 3),
        ("efficientnet_b0", "t4", 3),  # through the squeeze-excitation gate
        ("resnet50", "t4", 0),
        ("vgg16", "t4", 0),
        ("regnet_x_400mf", "t4", 0),
        ("convnext_tiny", "t4", 0),  # 7x7 depthwise then LayerNorm/Linear, no 1x1 conv pair
    ],
)
def test_torchvision(model: str, target: str, count: int) -> None:
    result = check_on(f"torchvision.models:{model}", target, select=["CL302"])
    assert result.status == "ok", result.error
    assert codes(result) == ["CL302"] * count
