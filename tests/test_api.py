"""The Python API and the pytest helper, on real models: ``cnnlint.lint`` and ``assert_clean``."""

from __future__ import annotations

import json
import linecache
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from conftest import FIXTURES, TESTS
from torch import nn

import cnnlint
from cnnlint.testing import assert_clean

REPO = TESTS.parent
LINES = FIXTURES / "core_lines.py"


def _fixture_module():
    """core_lines.py imported as a user's test would import it."""
    sys.path.insert(0, str(FIXTURES))
    try:
        import core_lines
    finally:
        sys.path.remove(str(FIXTURES))
    return core_lines


def test_import_cnnlint_stays_light():
    code = "import sys, cnnlint; assert 'torch' not in sys.modules; print(cnnlint.lint.__module__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "cnnlint.api"


def test_report_serialises_to_what_format_json_prints(monkeypatch):
    spec = "tests/fixtures/core_lines.py"
    proc = subprocess.run(
        # The installed console script: `python -m cnnlint` from the checkout would import the
        # source tree's cnnlint/, which has no rules/ inside.
        [Path(sys.executable).with_name("cnnlint"), spec, "-t", "t4", "-t", "hi3519", "--format", "json"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    monkeypatch.chdir(REPO)
    report = cnnlint.lint(spec, target=["t4", "hi3519"])
    assert isinstance(report, cnnlint.Report)
    assert report.model_dump(mode="json") == json.loads(proc.stdout)
    assert cnnlint.Report.model_validate_json(proc.stdout) == report


def test_an_instance_with_real_weights_is_left_as_it_was():
    model = torchvision.models.resnet18()  # random init: real values in every tensor
    model.layer1.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tensors = {k: id(v) for k, v in model.state_dict(keep_vars=True).items()}
    grads = {k: p.requires_grad for k, p in model.named_parameters()}

    report = cnnlint.lint(model, target="t4", input_shape=(1, 3, 160, 160))

    (result,) = report.results
    assert result.status == "ok" and result.input_shape == [1, 3, 160, 160]
    assert result.summary.params == sum(p.numel() for p in model.parameters())
    assert model.training  # not switched to eval
    state = model.state_dict(keep_vars=True)
    assert {k: id(v) for k, v in state.items()} == tensors
    assert all(v.device.type == "cpu" for v in state.values())
    assert all(torch.equal(state[k], before[k]) for k in before)
    assert {k: p.requires_grad for k, p in model.named_parameters()} == grads


def test_an_instance_is_located_by_the_forward_lines_that_call_its_layers():
    """Built before cnnlint could watch, an instance has no construction lines; its findings
    point at the forward line calling each layer, and say the same as linting its spec."""
    by_spec = cnnlint.lint(f"{LINES}::Misaligned", target="t4")
    by_instance = cnnlint.lint(_fixture_module().Misaligned(), target="t4")

    assert by_instance.results[0].model == "core_lines.Misaligned"
    assert by_instance.results[0].summary == by_spec.results[0].summary
    spec_lines = {(f.code, f.module): f.line for f in by_spec.findings}
    instance_lines = {(f.code, f.module): f.line for f in by_instance.findings}
    assert instance_lines.keys() == spec_lines.keys()
    # narrow, depthwise and wide are built on lines 11-13 and called on line 18.
    assert spec_lines[("CL302", "depthwise")] == 12 and instance_lines[("CL302", "depthwise")] == 18
    assert {instance_lines[("CL501", m)] for m in ("narrow", "wide")} == {18}


def test_a_torchvision_instance_points_into_its_forward_code():
    report = cnnlint.lint(torchvision.models.mobilenet_v3_small(), target="t4", select=["CL301"])
    assert report.findings
    for finding in report.findings:
        assert finding.path.endswith("torchvision/models/mobilenetv3.py")
        assert "self." in linecache.getline(finding.path, finding.line)  # a call in a forward()


@pytest.mark.parametrize("shape", [(1, 3, 96, 96), [(1, 3, 96, 96)], "1,3,96,96"])
def test_input_shape_takes_a_tuple_a_list_of_them_or_the_command_line_text(shape):
    report = cnnlint.lint(f"{LINES}::Misaligned", target="t4", input_shape=shape, select=["CL3"])
    assert report.results[0].input_shapes == [[1, 3, 96, 96]]


def test_select_ignore_and_precision_narrow_an_instance_as_the_command_line_does():
    model = _fixture_module().Misaligned()
    report = cnnlint.lint(model, target="t4", select=["CL3"], ignore=["CL302"], precision="int8")
    assert {f.code for f in report.findings} == {"CL301"}
    assert report.results[0].precision == "int8"
    one = cnnlint.lint(model, target="t4", select="CL3", ignore="CL302", precision="int8")
    assert one.findings == report.findings


def test_what_cannot_be_linted_is_an_error_result_not_an_exception():
    report = cnnlint.lint(nn.Sequential(nn.ReLU()), target="t4")
    (error,) = report.errors
    assert "cannot infer an input shape" in error
    assert report.results[0].status == "error"
    (error,) = cnnlint.lint(_fixture_module().Misaligned(), target="t4", select=["CL999"]).errors
    assert "'CL999' matches no rule" in error
    with pytest.raises(TypeError, match="nn.Module instance or a spec string"):
        cnnlint.lint(42)


def test_assert_clean_passes_a_clean_model_and_returns_its_report():
    report = assert_clean(torchvision.models.resnet18(), target="t4", select=["CL2", "CL3"])
    assert report.results[0].status == "ok" and not report.findings


def test_assert_clean_fails_listing_each_finding_with_file_and_line():
    with pytest.raises(AssertionError) as failure:
        assert_clean(f"{LINES}::Misaligned", target="t4", select=["CL2", "CL3"], precision="int8",
                     fail_on="info")  # fmt: skip
    message = str(failure.value)
    assert "tests/fixtures/core_lines.py::Misaligned is not clean" in message
    listed = re.findall(r"^  (\S+:\d+:\d+): (CL\d+) \[t4\]", message, re.MULTILINE)
    assert sorted(listed) == [
        ("tests/fixtures/core_lines.py:11:23", "CL201"),
        ("tests/fixtures/core_lines.py:12:26", "CL201"),
        ("tests/fixtures/core_lines.py:12:26", "CL302"),  # supersedes CL301 on this layer
        ("tests/fixtures/core_lines.py:13:21", "CL201"),
    ]


SUPPRESSED = """\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.narrow = nn.Conv2d(32, 36, 3, padding=1)  # cnnlint: disable=CL201
        self.head = nn.Conv2d(36, 36, 3, padding=1)

    def forward(self, x):
        return self.head(self.narrow(self.stem(x)))  # cnnlint: disable=CL201
"""


def test_inline_suppressions_apply_to_a_spec_and_to_an_instance(tmp_path, monkeypatch):
    (tmp_path / "suppressed_net.py").write_text(SUPPRESSED, encoding="utf-8")
    unsuppressed = SUPPRESSED.replace("  # cnnlint: disable=CL201", "")
    (tmp_path / "plain_net.py").write_text(unsuppressed, encoding="utf-8")
    # A spec: its finding points at the construction line, whose comment silences it.
    (plain,) = cnnlint.lint(f"{tmp_path / 'plain_net.py'}::Net", target="t4", select=["CL201"]).results
    assert [(f.module, f.line) for f in plain.findings] == [("narrow", 8)]
    assert_clean(f"{tmp_path / 'suppressed_net.py'}::Net", target="t4", select=["CL201"])
    # An instance: its finding points at the forward line, whose comment silences it.
    monkeypatch.syspath_prepend(str(tmp_path))
    import plain_net
    import suppressed_net

    (plain,) = cnnlint.lint(plain_net.Net(), target="t4", select=["CL201"]).results
    assert [(f.module, f.line) for f in plain.findings] == [("narrow", 12)]
    assert_clean(suppressed_net.Net(), target="t4", select=["CL201"])


def test_assert_clean_fails_on_a_model_that_cannot_be_linted():
    with pytest.raises(AssertionError, match="error: .*cannot infer an input shape"):
        assert_clean(nn.Sequential(nn.ReLU()), target="t4")


def test_docs_python_api_examples_run(monkeypatch):
    text = (REPO / "docs" / "api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert blocks, "docs/api.md has no python example"
    monkeypatch.chdir(REPO)
    ran = []
    for block in blocks:
        namespace: dict = {"__name__": "docs_example"}
        exec(compile(block, "docs/api.md", "exec"), namespace)
        for name, test in namespace.items():  # a test the example defines runs, as pytest would
            if name.startswith("test_") and callable(test):
                test()
                ran.append(name)
    assert len(blocks) >= 2 and ran
