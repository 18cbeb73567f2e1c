"""What the rules say about real architectures (torchvision, timm): one table, one row per claim.

Each row: a model, a rule, the targets the claim holds on, how many findings the rule gives there
(at ``severity`` when given), and optionally a check of what they say. The fixtures in
tests/fixtures pin each rule's lines and severities on every target; this table pins what the rules
find in networks people deploy, each claim tied to the paper or design it comes from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from conftest import FIXTURES, traced_graph

from cnnlint.pipeline import check_graph
from cnnlint.profile import load_profile
from cnnlint.results import Finding

GPUS = ("t4", "a4000", "generic")  # where CL303's 3x3-vs-KxK gap is measured
SPREAD = ("t4", "arm-cpu", "x3", "hi3519")  # a GPU, the CPU, a depthwise-friendly and a strict NPU
TIMM = str(FIXTURES / "timm_repvgg.py")


@dataclass(frozen=True)
class Arch:
    model: str  # a torchvision name, or a spec
    code: str
    targets: tuple[str, ...]
    count: int
    severity: str | None = None  # count only findings at this severity
    check: Callable[[list[Finding]], None] | None = None
    input_shape: tuple[int, ...] | None = None
    why: str = ""
    also_active: tuple[str, ...] = ()  # other rules running beside it (CL501 defers to CL301)

    @property
    def spec(self) -> str:
        return self.model if ":" in self.model else f"torchvision.models:{self.model}"


def _modules(expected: list[str]) -> Callable[[list[Finding]], None]:
    def check(findings: list[Finding]) -> None:
        assert [f.module for f in findings] == expected

    return check


def _mobilenet_v2_cl101(findings: list[Finding]) -> None:
    modules = {f.module for f in findings}
    assert "features.2.conv.0.0" in modules  # 16 -> 96 on 112x112
    assert "features.3.conv.2" in modules  # 144 -> 24 on 56x56
    assert not any(m.startswith("features.15") for m in modules)  # 7x7 maps: weights dominate
    assert all(f.metrics["ratio"] >= 6 for f in findings)
    assert {f.severity for f in findings} == {"info"}


def _resnext_cl102(findings: list[Finding]) -> None:
    assert all(f.module.endswith(".conv2") for f in findings)
    assert {f.metrics["groups"] for f in findings} == {32}


def _regnet_cl102(findings: list[Finding]) -> None:
    # Group width 16: stages 1-2 have g = 2 and 4 (not flagged), stages 3-4 g = 10 and 25.
    assert {f.metrics["groups"] for f in findings} == {10, 25}
    assert all(f.module.startswith(("trunk_output.block3", "trunk_output.block4")) for f in findings)


def _googlenet_cl103(findings: list[Finding]) -> None:
    joins = sorted(f.metrics["join"] for f in findings)
    assert joins == [f"inception{s}" for s in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")]
    assert all(f.metrics["branches"] == 4 and f.module.endswith("branch1.conv") for f in findings)


def _inception_v3_cl103(findings: list[Finding]) -> None:
    joins = {f.metrics["join"] for f in findings}
    assert {"Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6b", "Mixed_6e", "Mixed_7a", "Mixed_7c"} <= joins
    assert "Mixed_6a" not in joins  # 3 branches, 6 kernels: below max_kernels


def _densenet_cl104(findings: list[Finding]) -> None:
    (warning,) = [f for f in findings if f.severity == "warning"]
    assert 0.35 < warning.metrics["elementwise_latency_share"] < 0.45
    assert set(warning.metrics["by_cause"]) == {"after_concat"}
    assert len(warning.metrics["top"]) == 5
    assert warning.module == warning.metrics["top"][0]["layer"]


def _mobilenet_v2_cl302(findings: list[Finding]) -> None:
    flagged = sorted((f.module for f in findings), key=lambda m: int(m.split(".")[1]))
    assert flagged == [f"features.{i}.conv.{0 if i == 1 else 1}.0" for i in range(1, 11)]


def _shufflenet_cl304(findings: list[Finding]) -> None:
    (finding,) = findings
    assert finding.metrics["occurrences"] == 16  # one shuffle per InvertedResidual block
    assert finding.module == "stage2.0"
    assert "1x116x28x28" in finding.message  # the view-transpose-view tensor, as the model sees it


def _shufflenet_fix(findings: list[Finding]) -> None:
    (finding,) = findings
    assert "nn.Conv2d(116, 116, 1, bias=False)" in finding.fix
    assert 0 < finding.metrics["permutation_conv_ms"] < finding.metrics["fallback_ms"]
    assert "CPU round trip for the first" in finding.fix


def _unlisted(*names: str) -> Callable[[list[Finding]], None]:
    """CL304 warnings for these ops, one each (named as the profiles' [supported_ops] spell them)."""

    def check(findings: list[Finding]) -> None:
        assert sorted(f.metrics["op_list_name"] for f in findings) == sorted(names)
        assert all("it may fall back to the CPU or fail to convert" in f.message for f in findings)

    return check


def _all_at(severity: str) -> Callable[[list[Finding]], None]:
    def check(findings: list[Finding]) -> None:
        assert findings and {f.severity for f in findings} == {severity}

    return check


def _densenet_cl401(findings: list[Finding]) -> None:
    assert [f.module for f in findings] == [f"features.denseblock{i}.denselayer1.conv1" for i in (1, 2, 3, 4)]
    assert [f.metrics["concats"] for f in findings] == [7, 13, 25, 17]  # layers + the block's output


def _timm_repvgg_cl402(findings: list[Finding]) -> None:
    assert all(f.module.endswith("conv_kxk.conv") for f in findings)
    assert sum(f.metrics["branches"] == 3 for f in findings) == 22 - 5  # stem + 4 stride-2 blocks


def _vgg16_cl501(findings: list[Finding]) -> None:
    assert [f.module for f in findings] == ["classifier.0", "classifier.3"]
    assert findings[0].metrics["latency_share"] > 0.3
    assert "global-average-pool" in findings[0].fix


def _cl501_a_handful(findings: list[Finding]) -> None:
    assert len(findings) <= 5
    assert {f.severity for f in findings} <= {"info"}
    for finding in findings:
        assert finding.metrics["latency_share"] >= 0.04
        assert finding.metrics["arithmetic_intensity"] < finding.metrics["op_class_ridge_point"]


def _no_depthwise(findings: list[Finding]) -> None:
    assert all(f.metrics["kind"] != "depthwise_conv" for f in findings)  # CL301 reports those


def _cases() -> list[Arch]:
    rows = [
        # CL101 (ShuffleNetV2 G1): the 4x bottlenecks and equal-width designs are balanced.
        *(Arch(m, "CL101", SPREAD, 0) for m in ("resnet50", "resnet18", "vgg16", "resnext50_32x4d",
                                                "regnet_x_400mf", "shufflenet_v2_x1_0", "convnext_tiny")),
        Arch("mobilenet_v2", "CL101", SPREAD, -1, None, _mobilenet_v2_cl101,
             why="expansion 6 is a G1 violation by the paper's own account"),
        # CL102 (ShuffleNetV2 G2)
        Arch("resnext50_32x4d", "CL102", ("t4",), 16, "warning", _resnext_cl102),
        Arch("regnet_x_400mf", "CL102", ("t4",), 19, None, _regnet_cl102),
        *(Arch(m, "CL102", SPREAD, 0) for m in ("resnet50", "resnet18", "vgg16", "mobilenet_v2",
                                                "mobilenet_v3_large", "efficientnet_b0", "shufflenet_v2_x1_0",
                                                "googlenet", "densenet121", "convnext_tiny", "inception_v3")),
        # CL103 (ShuffleNetV2 G3)
        Arch("googlenet", "CL103", ("t4",), 9, "warning", _googlenet_cl103),
        Arch("inception_v3", "CL103", ("t4",), -1, None, _inception_v3_cl103, (1, 3, 299, 299)),
        *(Arch(m, "CL103", SPREAD, 0) for m in ("resnet50", "shufflenet_v2_x1_0", "densenet121",
                                                "mobilenet_v3_large", "efficientnet_b0")),
        # CL104 (ShuffleNetV2 G4): the model-level warning.
        Arch("densenet121", "CL104", ("t4", "hi3519", "x3", "cv22"), 1, "warning"),
        Arch("densenet121", "CL104", ("t4",), 1, "warning", _densenet_cl104),
        Arch("densenet121", "CL104", ("arm-cpu",), 0, "warning"),
        Arch("convnext_tiny", "CL104", ("t4",), 1, "warning"),
        Arch("convnext_tiny", "CL104", ("arm-cpu", "x3", "hi3519", "cv22"), 0, "warning"),
        Arch("resnet50", "CL104", ("hi3519",), 0, why="NNIE pays ~22% for its Eltwise adds, below 25%"),
        *(Arch(m, "CL104", ("t4", "arm-cpu", "x3", "hi3519", "cv22"), 0, "warning")
          for m in ("resnet50", "resnet18", "vgg16", "mobilenet_v2", "mobilenet_v3_large",
                    "efficientnet_b0", "shufflenet_v2_x1_0", "googlenet", "resnext50_32x4d",
                    "regnet_x_400mf")),
        *(Arch(m, "CL104", ("t4",), 0) for m in ("resnet50", "vgg16")),
        # CL302 (MobileDets, EfficientNetV2's fused-MBConv)
        Arch("mobilenet_v2", "CL302", ("t4",), 10, "warning", _mobilenet_v2_cl302),
        Arch("mobilenet_v2", "CL302", ("hi3519",), 6),
        Arch("mobilenet_v2", "CL302", ("arm-cpu", "x3"), 0),
        Arch("mobilenet_v3_large", "CL302", ("t4",), 3),
        Arch("efficientnet_b0", "CL302", ("t4",), 3, why="through the squeeze-excitation gate"),
        *(Arch(m, "CL302", ("t4",), 0) for m in ("resnet50", "vgg16", "regnet_x_400mf", "convnext_tiny")),
        # CL303 (RepVGG Table 1)
        *(Arch(m, "CL303", GPUS, 0) for m in ("resnet50", "resnet18", "googlenet", "densenet121",
                                              "resnext50_32x4d", "vgg16", "convnext_tiny", "mobilenet_v2",
                                              "efficientnet_b0", "shufflenet_v2_x1_0", "regnet_x_400mf",
                                              "mobilenet_v3_large")),
        Arch("inception_v3", "CL303", GPUS, 3, "info",
             _modules([f"Mixed_5{b}.branch5x5_2.conv" for b in "bcd"]), (1, 3, 299, 299)),
        # CL304: channel shuffle where the toolchain has none, a note on the CPU.
        Arch("shufflenet_v2_x1_0", "CL304", ("hi3519", "cv22"), 1, "error", _shufflenet_cl304),
        Arch("shufflenet_v2_x1_0", "CL304", ("arm-cpu",), 1, "info", _shufflenet_cl304),
        Arch("shufflenet_v2_x1_0", "CL304", ("hi3519",), 1, None, _shufflenet_fix,
             why="the fix names the full channel count and beats the CPU round trip"),
        Arch("shufflenet_v2_x1_0", "CL304", ("x3",), 1, "warning", _shufflenet_cl304,
             why="Horizon's X3 operator table runs Transpose on the CPU"),
        Arch("shufflenet_v2_x1_0", "CL304", ("t4",), 0),
        *(Arch(m, "CL304", ("hi3519", "cv22"), 0, "error")
          for m in ("resnet50", "resnet18", "vgg16", "mobilenet_v2", "mobilenet_v3_large",
                    "efficientnet_b0", "googlenet", "densenet121", "resnext50_32x4d",
                    "regnet_x_400mf", "convnext_tiny")),
        *(Arch(m, "CL304", ("arm-cpu",), 0)
          for m in ("resnet50", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny")),
        # CL304: ops outside the vendor's operator list (the profiles' [supported_ops]).
        *(Arch(m, "CL304", ("hi3519", "x3", "cv22"), 0)
          for m in ("resnet50", "resnet18", "vgg16", "googlenet", "densenet121", "resnext50_32x4d",
                    "regnet_x_400mf")),
        Arch("efficientnet_b0", "CL304", ("hi3519",), 1, "warning", _unlisted("silu"),
             why="the NNIE layer list names ReLU, Sigmoid and TanH"),
        Arch("efficientnet_b0", "CL304", ("x3", "cv22"), 0),
        Arch("mobilenet_v2", "CL304", ("hi3519",), 1, "warning", _unlisted("relu6")),
        Arch("mobilenet_v2", "CL304", ("x3", "cv22"), 0),
        Arch("mobilenet_v3_large", "CL304", ("hi3519", "x3"), 2, "warning",
             _unlisted("hardsigmoid", "hardswish"), why="X3: HardSigmoid is a CPU row"),
        Arch("mobilenet_v3_large", "CL304", ("cv22",), 0),
        Arch("convnext_tiny", "CL304", ("hi3519", "cv22"), 2, "warning", _unlisted("gelu", "layernorm")),
        Arch("convnext_tiny", "CL304", ("x3",), 3, "warning", _unlisted("gelu", "layernorm", "permute")),
        # CL401 (VoVNet)
        Arch("densenet121", "CL401", ("t4",), 4, "warning", _densenet_cl401),
        Arch("densenet121", "CL401", ("arm-cpu",), -1, None, _all_at("info")),
        Arch("densenet121", "CL401", ("x3",), -1, None, _all_at("warning")),
        *(Arch(m, "CL401", ("t4",), 0) for m in ("googlenet", "shufflenet_v2_x1_0", "resnet50")),
        # CL402 (RepVGG)
        Arch(f"{TIMM}::RepVggA0", "CL402", ("t4",), 22, None, _timm_repvgg_cl402),
        Arch(f"{TIMM}::RepVggA0Deploy", "CL402", ("t4",), 0, why="after reparameterize_model"),
        *(Arch(m, "CL402", ("t4", "x3"), 0) for m in ("resnet50", "resnet18", "mobilenet_v2",
                                                      "efficientnet_b0", "convnext_tiny")),
        # CL501 (roofline)
        Arch("vgg16", "CL501", ("t4",), 2, "info", _vgg16_cl501),
        *(Arch(m, "CL501", SPREAD, 0) for m in ("resnet50", "convnext_tiny", "densenet121")),
        *(Arch(m, "CL501", ("t4",), -1, None, _no_depthwise, also_active=("CL301",))
          for m in ("mobilenet_v2", "efficientnet_b0", "mobilenet_v3_large")),
        *(Arch(m, "CL501", SPREAD, -1, None, _cl501_a_handful)
          for m in ("resnet18", "vgg16", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0",
                    "shufflenet_v2_x1_0", "googlenet", "resnext50_32x4d", "regnet_x_400mf")),
    ]  # fmt: skip
    return [(row, target) for row in rows for target in row.targets]


CASES = _cases()


@pytest.mark.parametrize(
    ("row", "target"), CASES, ids=[f"{row.code}-{row.model.rsplit(':', 1)[-1]}-{t}" for row, t in CASES]
)
def test_architecture(row: Arch, target: str) -> None:
    graph = traced_graph(row.spec, row.input_shape)
    result = check_graph(graph, load_profile(target), select=[row.code, *row.also_active])
    assert result.status == "ok", result.error
    findings = [f for f in result.findings
                if f.code == row.code and (row.severity is None or f.severity == row.severity)]
    if row.count >= 0:  # -1: any number, the check says what matters
        assert len(findings) == row.count, [(f.module, f.severity) for f in findings]
    if row.check is not None:
        row.check(findings)
