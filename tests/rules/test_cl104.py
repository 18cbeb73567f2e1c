"""CL104 elementwise-heavy: unfused norm/activation/element-wise kernels (ShuffleNetV2 G4)."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, check_on, codes, lint_specs

BAD = FIXTURES / "cl104_bad.py"
GOOD = FIXTURES / "cl104_good.py"


def _findings(path, name: str, target: str = "t4"):
    (result,) = lint_specs(f"{path}::{name}", target=target, select=["CL104"])
    assert result.status == "ok", result.error
    return result.findings


def _where(findings) -> set[tuple[str, str, int]]:
    return {(f.code, f.severity, f.line) for f in findings}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # Model-level warning at the costliest op (the BN, ties keep graph order) + one info per op.
        (
            "NormActAfterConcat",
            {("CL104", "warning", 15), ("CL104", "info", 15), ("CL104", "info", 16)},
        ),
        ("NormAfterActivation", {("CL104", "warning", 32), ("CL104", "info", 32)}),
        # One ReLU after a pool: below the model-level threshold, reported on its own.
        ("ActivationAfterPool", {("CL104", "info", 46)}),
    ],
)
def test_bad_fixture_lines_on_t4(name: str, expected: set) -> None:
    findings = _findings(BAD, name)
    assert _where(findings) == expected
    assert all(f.path.endswith("cl104_bad.py") for f in findings)


def test_bad_fixture_counts() -> None:
    assert len(_findings(BAD, "NormActAfterConcat")) == 3
    assert len(_findings(BAD, "NormAfterActivation")) == 2


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


@pytest.mark.parametrize("name", ["NormActBeforeConcat", "ActivationBeforePool", "ResidualBlock"])
@pytest.mark.parametrize("target", ["t4", "hi3519", "arm-cpu", "x3", "cv22"])
def test_good_fixture_is_clean(name: str, target: str) -> None:
    assert _findings(GOOD, name, target) == []


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


# Real architectures. Warnings only where the literature expects element-wise overhead:
# DenseNet's pre-activation BN-ReLU after every concat, ConvNeXt's LayerNorm/layer scale on GPUs.
WARNS = {
    ("densenet121", "t4"), ("densenet121", "hi3519"), ("densenet121", "x3"),
    ("densenet121", "cv22"), ("convnext_tiny", "t4"),
}  # fmt: skip
MODELS = ["resnet50", "resnet18", "vgg16", "mobilenet_v2", "mobilenet_v3_large",
          "efficientnet_b0", "shufflenet_v2_x1_0", "googlenet", "densenet121",
          "resnext50_32x4d", "regnet_x_400mf", "convnext_tiny"]  # fmt: skip


@pytest.mark.parametrize("target", ["t4", "arm-cpu", "x3", "hi3519", "cv22"])
@pytest.mark.parametrize("model", MODELS)
def test_torchvision_warnings(model: str, target: str) -> None:
    result = check_on(f"torchvision.models:{model}", target, select=["CL104"])
    assert result.status == "ok", result.error
    expected = ["CL104"] if (model, target) in WARNS else []
    assert codes(result, "warning") == expected


def test_resnet50_and_vgg16_clean_on_t4() -> None:
    for model in ("resnet50", "vgg16"):
        assert codes(check_on(f"torchvision.models:{model}", "t4", select=["CL104"])) == []


def test_resnet50_on_hi3519_is_below_threshold() -> None:
    """NNIE runs each Eltwise as its own layer: ResNet-50 pays ~22%, the paper's ~17-20% (G4)."""
    result = check_on("torchvision.models:resnet50", "hi3519", select=["CL104"])
    assert codes(result) == []


def test_densenet121_on_t4_names_the_concat_cause() -> None:
    result = check_on("torchvision.models:densenet121", "t4", select=["CL104"])
    (warning,) = [f for f in result.findings if f.severity == "warning"]
    assert 0.35 < warning.metrics["elementwise_latency_share"] < 0.45
    assert set(warning.metrics["by_cause"]) == {"after_concat"}
    assert len(warning.metrics["top"]) == 5
    assert warning.module == warning.metrics["top"][0]["layer"]
