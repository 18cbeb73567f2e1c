"""Advice that pays: every finding is priced by its fix on the target, and a warning stays one only
where what the fix saves, or what is at stake, reaches the profile's share of latency.

The rules record ``est_saving_ms`` (the layer now minus the layer with the fix, from the cost
model) or, without a concrete fix, ``est_share_at_stake``; the check stage adds
``est_saving_share``, drops a fix the estimate calls no faster and makes such findings info. Each
rule also checks its premise on the target's estimate: CL301 only where the depthwise conv is
below the target's ridge point, and a large depthwise kernel is CL303's, with a stack the estimate says is faster.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, traced_graph
from torch import nn

import cnnlint
from cnnlint.check import find_rule, settings_for
from cnnlint.cost import compute_cost
from cnnlint.pipeline import check_graph
from cnnlint.profile import load_profile

DEPTHWISE = str(FIXTURES / "cl303_depthwise_kernels.py")
PREMISE_TARGETS = ("t4", "a4000", "arm-cpu", "hi3519")


class SqueezeExcite(nn.Module):
    """A 3x3 conv on a 56x56 map and a squeeze-excitation gate whose 1x1 convs (64 -> 12 -> 64)
    are misaligned on the T4's fp16 granule of 8: padded, but launch-bound on a 1x1 map."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 3, stride=4, padding=1)
        self.body = nn.Conv2d(64, 64, 3, padding=1)
        self.fc1 = nn.Conv2d(64, 12, 1)
        self.fc2 = nn.Conv2d(12, 64, 1)
        self.project = nn.Conv2d(64, 64, 1)

    def forward(self, x):
        x = self.body(self.stem(x).relu()).relu()
        gate = torch.sigmoid(self.fc2(self.fc1(x.mean((2, 3), keepdim=True)).relu()))
        return self.project(x * gate)


class Expansion(nn.Module):
    """A 1:6 1x1 expansion (ShuffleNetV2 G1) on a 56x56 map."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 24, 3, stride=4, padding=1)
        self.expand = nn.Conv2d(24, 144, 1)

    def forward(self, x):
        return self.expand(self.stem(x).relu())


class WideMisaligned(nn.Module):
    """A compute-bound 3x3 conv to 36 channels, padded to 40 on the T4's fp16 granule."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 3, stride=4, padding=1)
        self.narrow = nn.Conv2d(64, 36, 3, padding=1)
        self.wide = nn.Conv2d(36, 64, 3, padding=1)

    def forward(self, x):
        return self.wide(self.narrow(self.stem(x)))


def _lint(model: nn.Module, target: str, code: str):
    report = cnnlint.lint(model, target=target, select=[code], input_shape=(1, 3, 224, 224))
    assert not report.errors, report.errors
    return report.findings


def test_squeeze_excite_1x1_padding_is_info_without_a_fix() -> None:
    findings = {f.module: f for f in _lint(SqueezeExcite(), "t4", "CL201")}
    assert {"fc1", "fc2"} <= set(findings)
    threshold = load_profile("t4").min_saving_share
    for module in ("fc1", "fc2"):
        finding = findings[module]
        # Padded or not, the layer costs its launch: the estimate cannot tell them apart.
        assert finding.metrics["est_saving_ms"] <= 0
        assert finding.metrics["est_saving_share"] < threshold
        assert finding.severity == "info" and finding.fix is None


def test_a_balanced_conv_that_saves_nothing_is_not_offered() -> None:
    (finding,) = _lint(Expansion(), "arm-cpu", "CL101")
    # Compute-bound on the CPU: the equal-width conv has the same FLOPs and the same estimated time.
    assert finding.metrics["est_balanced_time_ms"] == pytest.approx(finding.metrics["est_conv_time_ms"], rel=0.02)
    assert finding.metrics["est_saving_ms"] == 0 and finding.metrics["est_saving_share"] == 0
    assert finding.severity == "info" and finding.fix is None
    # Memory-bound on the T4, the same layer's balanced conv moves fewer bytes: offered, priced.
    (gpu,) = _lint(Expansion(), "t4", "CL101")
    assert gpu.metrics["est_saving_ms"] > 0 and gpu.fix is not None


def test_a_fix_that_pays_stays_a_warning_with_its_price() -> None:
    (finding,) = [f for f in _lint(WideMisaligned(), "t4", "CL201") if f.module == "narrow"]
    assert finding.severity == "warning"
    metrics = finding.metrics
    # The target pads 36 to 40: the conv costs what it would at 40, and the padding is the
    # saving (the same conv at the aligned rate, its compute 36/40 of the padded one's).
    assert metrics["est_aligned_time_ms"] == pytest.approx(metrics["est_conv_time_ms"], abs=2e-6)
    overhead_ms = load_profile("t4").kernel_overhead_s("conv3x3") * 1e3
    compute_ms = metrics["est_conv_time_ms"] - overhead_ms
    assert metrics["est_saving_ms"] == pytest.approx(compute_ms * (1 - 36 / 40), abs=2e-6)
    assert metrics["est_saving_share"] >= load_profile("t4").min_saving_share
    assert finding.fix == "use out_channels 32 or 40"


def test_the_profile_sets_the_share_a_warning_needs(tmp_path: Path) -> None:
    base = _lint(WideMisaligned(), "t4", "CL201")
    share = next(f.metrics["est_saving_share"] for f in base if f.module == "narrow")
    strict = tmp_path / "strict.toml"
    strict.write_text(f'extends = "t4"\nname = "strict"\nmin_saving_share = {2 * share}\n', encoding="utf-8")
    (finding,) = [f for f in _lint(WideMisaligned(), str(strict), "CL201") if f.module == "narrow"]
    # Below the profile's share: info, and the fix (which still saves time) is still offered.
    assert finding.severity == "info" and finding.fix is not None


def test_an_error_keeps_its_severity_but_not_a_fix_that_saves_nothing(tmp_path: Path) -> None:
    strict = tmp_path / "errors.toml"
    strict.write_text('extends = "t4"\nname = "errors"\n\n[rules.CL201]\nseverity = "error"\n', encoding="utf-8")
    findings = {f.module: f for f in _lint(SqueezeExcite(), str(strict), "CL201")}
    assert findings["fc1"].severity == "error" and findings["fc1"].fix is None


@pytest.mark.parametrize("target", PREMISE_TARGETS)
def test_cl301_fires_exactly_where_the_depthwise_conv_is_below_the_ridge(target: str) -> None:
    profile = load_profile(target)
    cl301_runs = settings_for(find_rule("CL301"), profile).enabled
    for model in ("RepLKBlock", "SmallDepthwise"):
        graph = traced_graph(f"{DEPTHWISE}::{model}")
        cost = compute_cost(graph, profile)
        starved = cost.kernel_of(graph["dw"]).arithmetic_intensity < cost.ridge_point
        flagged = {f.module for f in check_graph(graph, profile, select=["CL301"]).findings}
        assert ("dw" in flagged) == (cl301_runs and starved), (model, target)
    # The 31x31 depthwise conv is above the ridge everywhere: never CL301's.
    repl = traced_graph(f"{DEPTHWISE}::RepLKBlock")
    cost = compute_cost(repl, profile)
    assert cost.kernel_of(repl["dw"]).arithmetic_intensity >= cost.ridge_point


@pytest.mark.parametrize("target", PREMISE_TARGETS)
def test_cl303_stacks_a_31x31_depthwise_conv_only_where_the_stack_is_faster(target: str) -> None:
    graph = traced_graph(f"{DEPTHWISE}::RepLKBlock")
    profile = load_profile(target)
    findings = check_graph(graph, profile, select=["CL301", "CL303"]).findings
    assert all(f.code == "CL303" for f in findings)
    for finding in findings:
        metrics = finding.metrics
        assert metrics["depthwise"] is True and metrics["stack_depth"] == 15
        assert metrics["est_stack_time_ms"] < metrics["est_conv_time_ms"] and metrics["est_saving_ms"] > 0
        assert "15 stacked 3x3 depthwise convs" in finding.fix
    # Where CL303 runs (the GPUs; the profiles turn it off on arm-cpu and hi3519) it reports the layer.
    assert bool(findings) == settings_for(find_rule("CL303"), profile).enabled


TORCHVISION_SAMPLE = ("resnet18", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "regnet_x_400mf",
                      "shufflenet_v2_x1_0", "squeezenet1_0", "densenet121")  # fmt: skip
# Not performance advice: whether the model traced (CL0xx) and whether the target runs an op (CL304).
NOT_PRICED = ("CL0", "CL304")


@pytest.mark.parametrize("model", TORCHVISION_SAMPLE)
def test_every_warning_on_torchvision_pays_its_share(model: str) -> None:
    profile = load_profile("t4")
    result = check_graph(traced_graph(f"torchvision.models:{model}"), profile)
    assert result.status == "ok", result.error
    by_line: dict[tuple[str, str, int], float] = {}  # one edit on a line changes all it builds
    priced = [f for f in result.findings if not f.code.startswith(NOT_PRICED)]
    for finding in priced:
        metrics = finding.metrics
        assert "est_saving_share" in metrics or "est_share_at_stake" in metrics, (finding.code, finding.module)
        if "est_saving_ms" in metrics and metrics["est_saving_ms"] <= 0:
            assert finding.fix is None and finding.severity == "info", (finding.code, finding.module)
        share = metrics.get("est_saving_share", metrics.get("est_share_at_stake"))
        key = (finding.code, finding.path, finding.line)
        by_line[key] = by_line.get(key, 0.0) + max(share, 0.0)
    for finding in priced:
        if finding.severity == "warning":
            share = by_line[(finding.code, finding.path, finding.line)]
            assert share >= profile.min_saving_share, (finding.code, finding.module, share)


class Unaligned(nn.Module):
    """A 1x1 conv to 120 channels and a depthwise conv on them, off a 16-channel granule."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 3, stride=4, padding=1)
        self.expand = nn.Conv2d(64, 120, 1)
        self.dw = nn.Conv2d(120, 120, 3, padding=1, groups=120)
        self.project = nn.Conv2d(120, 64, 1)

    def forward(self, x):
        return self.project(self.dw(self.expand(self.stem(x)).relu()).relu())


def test_misalignment_is_priced_as_the_target_measured_it(tmp_path: Path) -> None:
    """A calibrated CPU that runs 1x1 convs at the same rate off the granule and depthwise convs
    at half of it: the 1x1 conv's misalignment saves nothing (info, no fix); the depthwise
    conv's is a warning, and rounding it up to 128 channels is faster outright."""
    measured = tmp_path / "measured.toml"
    measured.write_text('extends = "x86-avx512"\nname = "measured"\n'
                        "[unaligned_efficiency]\nconv1x1 = 1.0\ndepthwise_conv = 0.5\n", encoding="utf-8")  # fmt: skip
    findings = {f.module: f for f in _lint(Unaligned(), str(measured), "CL201")}
    assert {"expand", "dw"} <= set(findings)  # project is the model's output: a head, not judged
    assert findings["expand"].metrics["est_saving_ms"] == 0
    assert findings["expand"].severity == "info" and findings["expand"].fix is None
    dw = findings["dw"].metrics
    assert findings["dw"].severity == "warning" and findings["dw"].fix is not None
    assert dw["est_aligned_time_ms"] < dw["est_conv_time_ms"]
    assert dw["est_saving_ms"] > 0
    # Padded instead (the base profile measured nothing): every one of them pays its padding.
    padded = {f.module: f for f in _lint(Unaligned(), "x86-avx512", "CL201")}
    assert all(padded[m].metrics["est_saving_ms"] > 0 for m in ("expand", "dw"))
