"""The rule contract: options on one base class, and a rule that owns its fix.

A throwaway rule, written into a temp dir as a third-party plugin (a module and an installed
distribution's entry point in the ``cnnlint.rules`` group, found on ``sys.path`` as pip would
leave it), declares a one-click edit and a measured fix in its own module. Its fixture passes
the ``# expect:`` runner on every built-in target, ``cnnlint --diff`` offers its edit, and the
measure stage builds and times its variant: nothing in ``cnnlint/fixes.py`` or
``cnnlint/measure.py`` names it.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from pydantic import BaseModel, Field

import cnnlint.fixes
import cnnlint.measure
from cnnlint.check import RuleOptions, all_rules, rule_by_code, rule_from_object, settings_for
from cnnlint.cli import main
from cnnlint.errors import ConfigError, ProfileError
from cnnlint.profile import builtin_profile_names, load_profile
from cnnlint.proposal import EDIT_ARGUMENTS, LiteralEdit, Measured
from conftest import lint_specs

RULE = '''\
"""A conv wider than a cap: a throwaway rule with a one-click edit and a measured fix.

What it flags
    A dense convolution with more than ``max_out_channels`` output channels.

Why
    It exists to show that a rule owns its fix: tests/test_rule_contract.py adds it as a plugin.

Example
    nn.Conv2d(64, 512, 3, padding=1)

Use instead
    nn.Conv2d(64, 256, 3, padding=1)
"""

from __future__ import annotations

from pydantic import Field

from cnnlint.check import RuleContext, RuleOptions
from cnnlint.cost import saving, spatial
from cnnlint.graph import Layer, OpKind
from cnnlint.proposal import LiteralEdit, Measured, Variant, conv_of
from cnnlint.results import Finding
from cnnlint.wording import duration, ms

CODE = "X901"
NAME = "capped-out-channels"
SEVERITY = "warning"
EDIT = LiteralEdit(
    argument="out_channels", current="out_channels", suggested="capped_out_channels", prefer="min",
    follow_up="the layers that read its output must take {new} channels too",
)


class Options(RuleOptions):
    max_out_channels: int = Field(default=256, ge=1, description="the widest conv output allowed")


def check(ctx: RuleContext):
    cost, cap = ctx.cost, ctx.options.max_out_channels
    for layer in ctx.graph.layers(OpKind.CONV):
        c_in, c_out = layer.attrs["in_channels"], layer.attrs["out_channels"]
        if c_out <= cap:
            continue
        shape = (tuple(layer.attrs["kernel_size"]), spatial(layer.input_shape), spatial(layer.output_shape))
        now = cost.estimate_conv(c_in, c_out, *shape, batch=layer.input_shape[0])
        capped = cost.estimate_conv(c_in, cap, *shape, batch=layer.input_shape[0])
        yield Finding(
            message=f"{layer.label}: {c_out} output channels, above the cap of {cap}",
            layer=layer,
            fix=f"use {cap} output channels: est. {duration(now)} -> {duration(capped)}",
            metrics={"out_channels": c_out, "capped_out_channels": cap, "est_conv_time_ms": ms(now),
                     "est_capped_time_ms": ms(capped), "est_saving_ms": ms(saving(now, capped))},
        )


def _capped(finding: Finding, layer: Layer) -> Variant:
    new = finding.metrics["capped_out_channels"]
    return Variant(f"out_channels {finding.metrics['out_channels']} -> {new}", conv_of(layer),
                   conv_of(layer, out_channels=new), layer.input_shape)


MEASURED = Measured(_capped, estimated=("est_conv_time_ms", "est_capped_time_ms"))
'''

FIXTURE = '''\
"""X901: a conv wider than the cap."""

from torch import nn


class Wide(nn.Module):
    pretrained_cfg = {"input_size": (64, 32, 32)}

    def __init__(self):
        super().__init__()
        self.wide = nn.Conv2d(64, 512, 3, padding=1)  # expect: X901 warning

    def forward(self, x):
        return self.wide(x).relu()


class Narrow(nn.Module):  # expect: nothing
    pretrained_cfg = {"input_size": (64, 32, 32)}

    def __init__(self):
        super().__init__()
        self.narrow = nn.Conv2d(64, 256, 3, padding=1)

    def forward(self, x):
        return self.narrow(x).relu()
'''
WIDE_LINE = 11


@pytest.fixture
def throwaway(tmp_path: Path):
    """The plugin installed in a folder on sys.path, and its fixture in a project folder."""
    site = tmp_path / "site"
    (site / "throwaway_cap-0.1.dist-info").mkdir(parents=True)
    (site / "throwaway_cap.py").write_text(RULE, encoding="utf-8")
    (site / "throwaway_cap-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: throwaway-cap\nVersion: 0.1\n", encoding="utf-8")  # fmt: skip
    (site / "throwaway_cap-0.1.dist-info" / "entry_points.txt").write_text(
        "[cnnlint.rules]\ncapped-out-channels = throwaway_cap\n", encoding="utf-8")  # fmt: skip
    project = tmp_path / "project"
    project.mkdir()
    fixture = project / "x901_wide.py"
    fixture.write_text(FIXTURE, encoding="utf-8")
    sys.path.insert(0, str(site))
    all_rules.cache_clear()
    try:
        yield fixture
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("throwaway_cap", None)
        all_rules.cache_clear()


def test_the_throwaway_rule_is_found_with_the_fix_it_declares(throwaway):
    rule = rule_by_code("X901")
    assert rule is not None and rule.origin.startswith("capped-out-channels (throwaway_cap)")
    assert rule.edit is not None and rule.edit.suggested == "capped_out_channels"
    assert rule.measured is not None and rule.measured.estimated == ("est_conv_time_ms", "est_capped_time_ms")
    # The machinery knows no rule: nothing there names this one.
    for module in (cnnlint.fixes, cnnlint.measure):
        text = Path(module.__file__).read_text(encoding="utf-8")
        assert "X901" not in text and "capped" not in text


def test_the_throwaway_fixture_passes_the_expect_runner_on_every_target(throwaway):
    from cnnlint.pipeline import check_graph
    from test_rule_fixtures import fixture_graphs, parse_fixture

    fixture = parse_fixture(throwaway)
    assert fixture.codes == ("X901",)
    graphs = fixture_graphs(throwaway)
    for target in builtin_profile_names():
        found: Counter = Counter()
        for graph in graphs:
            result = check_graph(graph, load_profile(target), select=["X901"])
            assert result.status == "ok", result.error
            found.update((f.line, f.code, f.severity) for f in result.findings)
        assert found == fixture.expected(target), f"on {target}"


def test_diff_offers_the_throwaway_rules_edit(throwaway, monkeypatch):
    monkeypatch.chdir(throwaway.parent)
    done = CliRunner().invoke(main, [throwaway.name, "--target", "t4", "--select", "X901", "--diff"])
    assert done.exit_code == 1, done.output  # 1: there are edits
    assert "-        self.wide = nn.Conv2d(64, 512, 3, padding=1)  # expect: X901 warning" in done.output
    assert "+        self.wide = nn.Conv2d(64, 256, 3, padding=1)  # expect: X901 warning" in done.output
    assert "self.narrow" not in done.output
    results = lint_specs(str(throwaway), target="t4", select=["X901"])
    (edit,) = cnnlint.fixes.plan_results(results)
    assert (edit.line, edit.codes) == (WIDE_LINE, ("X901",))
    assert edit.summary == "out_channels 512 -> 256; the layers that read its output must take 256 channels too"


def test_the_measure_stage_builds_and_times_the_throwaway_rules_variant(throwaway):
    from torch import nn

    results = lint_specs(str(throwaway), target="t4", select=["X901"])
    (finding,) = [f for r in results for f in r.findings]
    timed = cnnlint.measure.variant(finding)
    assert timed is not None and timed.fix == "out_channels 512 -> 256"
    before, after = timed.before(), timed.after()
    assert isinstance(before, nn.Conv2d) and (before.in_channels, before.out_channels) == (64, 512)
    assert isinstance(after, nn.Conv2d) and (after.in_channels, after.out_channels) == (64, 256)
    assert (after.kernel_size, after.padding) == (before.kernel_size, before.padding) == ((3, 3), (1, 1))

    summary = cnnlint.measure.measure(results, "cpu", budget_s=2.0, threads=1)
    assert (summary.findings, summary.measured, summary.no_fix) == (1, 1, 0)
    m = finding.metrics
    assert m["measured_fix"] == "out_channels 512 -> 256" and m["measured_speedup"] > 0
    assert cnnlint.measure.predicted_speedup("X901", m) == pytest.approx(
        m["est_conv_time_ms"] / m["est_capped_time_ms"])  # fmt: skip


# ----------------------------------------------------------------------------- the contract itself
def _rule(**declared):
    return SimpleNamespace(CODE="X920", NAME="contract", SEVERITY="info", check=lambda ctx: iter(()), **declared)


def test_every_rules_options_forbid_unknown_keys():
    profile = load_profile("t4")
    for rule in all_rules():
        assert issubclass(rule.options_model, RuleOptions), rule.code
        bad = profile.model_copy(update={"rules": {rule.code: {"no_such_option": 1}}})
        with pytest.raises(ProfileError, match="no_such_option"):
            settings_for(rule, bad)


def test_options_must_subclass_rule_options():
    class Plain(BaseModel):
        limit: int = Field(1, description="a limit")

    class Based(RuleOptions):
        limit: int = Field(1, description="a limit")

    with pytest.raises(ConfigError, match="RuleOptions"):
        rule_from_object(_rule(Options=Plain), "test")
    assert rule_from_object(_rule(Options=Based), "test").options_model is Based
    assert rule_from_object(_rule(), "test").options_model is RuleOptions  # no thresholds


def test_edit_and_measured_are_checked_when_the_rule_loads():
    edit = LiteralEdit(argument="groups", current="groups", suggested="fewer_groups", prefer="min")
    measured = Measured(lambda finding, layer: None, estimated=("a_ms", "b_ms"))
    rule = rule_from_object(_rule(EDIT=edit, MEASURED=measured), "test")
    assert (rule.edit, rule.measured) == (edit, measured)
    with pytest.raises(ConfigError, match="EDIT"):
        rule_from_object(_rule(EDIT={"argument": "groups"}), "test")
    with pytest.raises(ConfigError, match="MEASURED"):
        rule_from_object(_rule(MEASURED=lambda finding, layer: None), "test")
    with pytest.raises(ValueError, match="kernel_size"):
        LiteralEdit(argument="kernel_size", current="k", suggested="k3", prefer="min")
    # Every argument an edit may name is one the fixes machinery can find in a torch layer call.
    assert set(EDIT_ARGUMENTS) == set(cnnlint.fixes._KEYWORDS)
    assert all(set(signature) <= set(EDIT_ARGUMENTS) for signature in cnnlint.fixes._SIGNATURES.values())
