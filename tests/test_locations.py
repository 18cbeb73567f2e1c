"""Findings point where the user edits: the construction line in the model's own code, the
line that builds a Conv2d subclass (not its forward), the real column of functional ops, and the
whole construction chain as ``related``."""

from __future__ import annotations

import linecache

import pytest

import cnnlint
from conftest import TESTS, traced_graph

NET = str(TESTS / "locations" / "net.py") + "::Net"


def _line(site) -> str:
    return linecache.getline(site.path, site.line)


def _layer(graph, module_path: str, kind: str | None = None):
    return next(l for l in graph if l.module_path == module_path and (kind is None or l.kind == kind))


def test_a_conv2d_subclass_with_its_own_forward_points_at_its_construction_line() -> None:
    report = cnnlint.lint(NET, "t4", select=["CL301"])
    (finding,) = report.findings
    assert finding.module == "block.dw"
    assert finding.path.endswith("net.py") and finding.line == 12  # self.dw = Conv2dSame(...)
    # The chain, outermost first: Net builds Block (line 19), Block builds the conv (line 12).
    assert [(r.path.rsplit("/", 1)[-1], r.line, r.function) for r in finding.related] == [
        ("net.py", 19, "__init__"), ("net.py", 12, "__init__"),
    ]  # fmt: skip


def test_functional_ops_report_the_column_of_the_call() -> None:
    graph = traced_graph(NET)
    by_op = {layer.op: layer.called_at for layer in graph if layer.called_at is not None}
    # y = F.relu(self.stem(x)) / out = self.block.dw(y) * self.w / out += y
    assert (by_op["relu"].line, by_op["relu"].column) == (23, 13)
    assert (by_op["mul"].line, by_op["mul"].column) == (24, 15)
    assert (by_op["add"].line, by_op["add"].column) == (25, 9)
    for site in by_op.values():
        assert _line(site)[site.column - 1] != " "


def test_library_model_points_into_its_own_package_not_a_shared_helper() -> None:
    report = cnnlint.lint("torchvision.models:mobilenet_v2", "t4", select=["CL301"])
    assert report.findings
    for finding in report.findings:
        assert finding.path.endswith("torchvision/models/mobilenetv2.py"), finding.path
        # The chain ends in the helper every torchvision conv goes through, and contains the site.
        assert finding.related[-1].path.endswith("torchvision/ops/misc.py")
        assert (finding.path, finding.line) in {(r.path, r.line) for r in finding.related}
        assert finding.related[0].path != finding.related[-1].path
    assert "Conv2dNormActivation" in linecache.getline(finding.path, finding.line)


def test_timm_model_points_at_its_block_file() -> None:
    graph = traced_graph("timm.models.mobilenetv3:mobilenetv3_small_050")
    conv_dw = _layer(graph, "blocks.0.0.conv_dw")
    assert "timm/models/_efficientnet_blocks.py" in conv_dw.built_at.path
    assert any("timm/layers/create_conv2d.py" in site.path for site in conv_dw.built_via)


@pytest.mark.parametrize("module_path", ["dw", "stem"])
def test_user_model_built_with_a_package_helper_points_at_the_users_line(module_path) -> None:
    graph = traced_graph(str(TESTS / "locations" / "timm_user.py") + "::Net")
    layer = _layer(graph, module_path)
    assert layer.built_at.path.endswith("timm_user.py")
    assert layer.built_at.line == {"stem": 10, "dw": 11}[module_path]
    assert layer.built_via[0] == layer.built_at  # the user's line is the outermost call


def test_one_location_policy_for_a_users_wrapper_around_a_library_model() -> None:
    """Construction and call findings alike point at the user's own file, by a relative path;
    the library's lines are in ``related``, never the finding's own location."""
    wrapper = TESTS / "locations" / "wrapper.py"
    report = cnnlint.lint(str(wrapper) + "::Net", "hi3519")
    codes = {f.code for f in report.findings}
    assert {"CL104", "CL201", "CL304"} <= codes, codes  # a call finding among them
    for finding in report.findings:
        assert finding.path == "tests/locations/wrapper.py", (finding.code, finding.path)
        assert not finding.path.startswith("/")
    called = [f for f in report.findings if f.code == "CL104"]
    assert all(f.line == 14 for f in called)  # forward's `self.head(self.backbone(x))`
    assert all(any("site-packages" in r.path and "timm" in r.path for r in f.related) for f in called)
    built = [f for f in report.findings if f.code == "CL201"]
    assert all(f.line == 10 for f in built)  # `timm.create_model(...)`


def test_a_helper_called_from_several_lines_names_each_call_site() -> None:
    helpers = str(TESTS / "locations" / "helpers.py")
    report = cnnlint.lint(helpers + "::Net", "t4", select=["CL201"])
    by_module = {f.module: f for f in report.findings}
    assert set(by_module) == {"a.0", "b.0", "c.0"}
    for module, caller in {"a.0": 18, "b.0": 19, "c.0": 20}.items():
        finding = by_module[module]
        assert finding.line == 8  # nn.Conv2d(...) inside conv_bn()
        lines = [r.line for r in finding.related]
        assert lines[lines.index(8) - 1] == caller
    from click.testing import CliRunner

    from cnnlint.cli import main

    text = CliRunner().invoke(main, [helpers, "-t", "t4", "--select", "CL201", "--no-cache"]).output
    assert "via: tests/locations/helpers.py:18 (a.0), :19 (b.0), :20 (c.0)" in text, text
