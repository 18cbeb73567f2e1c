"""Rules see which rules are active: check(ctx), the CL301/CL501 hand-over, superseding rules."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from conftest import cli

from cnnlint.check import RuleContext, rule_from_object
from cnnlint.core import Layer, LayerGraph, OpKind
from cnnlint.results import Finding


# A 3x3 depthwise conv on a 112x112 map: memory-bound on t4 and a large share of its latency,
# so CL301 reports it on t4, and CL501 would report it too if CL301 did not.
MODEL = '''\
from torch import nn


class DepthwiseStage(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.conv = nn.Conv2d(32, 256, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(self.dw(self.stem(x)))
'''
DW_LINE = 8


def _findings(tmp_path: Path, *args: str) -> list[tuple[str, int, str]]:
    model = tmp_path / "stage.py"
    model.write_text(MODEL, encoding="utf-8")
    proc = cli("check", f"{model}::DepthwiseStage", "--target", "t4", "--format", "json", *args)
    assert "Traceback" not in proc.stderr, proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    assert result["status"] == "ok", result["error"]
    return [(f["code"], f["line"], f["metrics"].get("kind", "")) for f in result["findings"]]


def test_depthwise_hotspot_is_cl301s_while_cl301_runs(tmp_path: Path) -> None:
    findings = _findings(tmp_path)
    assert ("CL301", DW_LINE, "") in findings
    assert not [f for f in findings if f[0] == "CL501" and f[1] == DW_LINE]


def test_ignoring_cl301_hands_the_depthwise_hotspot_to_cl501(tmp_path: Path) -> None:
    findings = _findings(tmp_path, "--ignore", "CL301")
    assert not [f for f in findings if f[0] == "CL301"]
    assert ("CL501", DW_LINE, "depthwise_conv") in findings


def _tiny_graph() -> LayerGraph:
    graph = LayerGraph("tiny", [(1, 8, 4, 4)])
    graph.add_layer(Layer("x", OpKind.INPUT, "input", output_shapes=[(1, 8, 4, 4)]))
    graph.add_layer(Layer("relu", OpKind.ACTIVATION, "relu", module_path="act",
                          input_shapes=[(1, 8, 4, 4)], output_shapes=[(1, 8, 4, 4)]))  # fmt: skip
    graph.add_layer(Layer("output", OpKind.OUTPUT, "output", input_shapes=[(1, 8, 4, 4)]))
    graph.add_edge("x", "relu")
    graph.add_edge("relu", "output")
    return graph


def test_a_superseding_rule_replaces_the_other_rules_finding_on_the_same_layer_only() -> None:
    from cnnlint.check import _drop_superseded

    def nothing(ctx: RuleContext):
        yield from ()

    general = rule_from_object(SimpleNamespace(CODE="X910", NAME="general", SEVERITY="warning",
                                               check=nothing), "test")  # fmt: skip
    specific = rule_from_object(SimpleNamespace(CODE="X911", NAME="specific", SEVERITY="warning",
                                                SUPERSEDES=("X910",), check=nothing), "test")  # fmt: skip
    assert specific.supersedes == ("X910",)
    graph = _tiny_graph()
    relu, output = graph["relu"], graph["output"]
    findings = [Finding(message="general on relu", layer=relu), Finding(message="general on output", layer=output),
                Finding(message="specific on relu", layer=relu)]  # fmt: skip
    for finding, code in zip(findings, ("X910", "X910", "X911")):
        finding.code = code
    kept = _drop_superseded(findings, [general, specific])
    assert [f.message for f in kept] == ["general on output", "specific on relu"]
    # Without the superseding rule in the run, the general finding stays.
    assert _drop_superseded(findings[:2], [general]) == findings[:2]


def test_supersedes_must_name_rule_codes() -> None:
    import pytest

    from cnnlint.errors import ConfigError

    with pytest.raises(ConfigError, match="SUPERSEDES"):
        rule_from_object(SimpleNamespace(CODE="X912", NAME="bad", SEVERITY="info", SUPERSEDES="CL301",
                                         check=lambda ctx: iter(())), "test")  # fmt: skip
