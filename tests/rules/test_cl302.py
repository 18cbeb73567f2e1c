"""CL302 low-channel-separable: depthwise + 1x1 pairs one regular conv would beat (MobileDets)."""

from __future__ import annotations

from conftest import FIXTURES, lint_specs

BAD = FIXTURES / "cl302_bad.py"
GOOD = FIXTURES / "cl302_good.py"


def _findings(path, name: str, target: str = "t4"):
    (result,) = lint_specs(f"{path}::{name}", target=target, select=["CL302"])
    assert result.status == "ok", result.error
    return result.findings


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


