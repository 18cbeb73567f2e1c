"""A model whose own forward branches on tensor values: run once on CPU within the parameter
budget (CL001 at the branching line), today's clear error over it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli, lint_specs


BRANCHING = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 16, 3, padding=1)
        self.b = nn.Conv2d(16, 16, 3, padding=1)

    def forward(self, x):
        x = self.a(x)
        if x.sum() > -1e9:  # always true for the random input: b is in the graph
            x = self.b(x)
        return x
"""
PARAMS = (3 * 9 * 16 + 16) + (16 * 9 * 16 + 16)


@pytest.fixture
def branching(tmp_path: Path) -> str:
    (tmp_path / "branching.py").write_text(BRANCHING)
    return str(tmp_path / "branching.py")


def test_within_the_budget_it_runs_once_on_cpu_and_cl001_points_at_the_branch(branching):
    (result,) = lint_specs(branching, select=["CL001"])
    assert result.status == "ok", result.error
    assert result.summary.params == PARAMS  # both convs: the branch was taken
    assert result.summary.macs == 224 * 224 * 16 * (3 * 9 + 16 * 9)
    (finding,) = result.findings
    assert (finding.code, finding.severity) == ("CL001", "info")
    assert (Path(finding.path).name, finding.line, finding.column) == ("branching.py", 12, 12)
    assert "this graph follows the path a random input took" in finding.message
    assert any("runtime capture on CPU tensors" in note for note in result.notes)


def test_over_the_budget_it_is_the_clear_error_naming_the_budget(branching):
    (result,) = lint_specs(branching, real_run_max_params=PARAMS - 1)
    assert result.status == "error"
    assert "Tensor.item() cannot be called on meta tensors" in result.error
    assert f"Models up to {PARAMS - 1:,} parameters are run once on CPU" in result.error
    assert f"this one has {PARAMS:,}" in result.error
    assert "--real-run-max-params" in result.error and "[tool.cnnlint]" in result.error


def test_the_budget_is_a_pyproject_key_and_the_option_overrides_it(branching, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.cnnlint]\nreal-run-max-params = 10\n")
    from_config = cli("branching.py", cwd=tmp_path)
    assert from_config.returncode == 2
    assert "Models up to 10 parameters" in from_config.stdout + from_config.stderr
    from_option = cli("branching.py", "--real-run-max-params", "1000000", "--select", "CL001",
                      "--fail-on", "never", cwd=tmp_path)  # fmt: skip
    assert from_option.returncode == 0, from_option.stdout + from_option.stderr
    assert "branching.py:12:12: CL001" in from_option.stdout


RECURRENT = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(32, 64, num_layers=2, batch_first=True)
        self.gru = nn.GRU(64, 16, batch_first=True)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        y, _ = self.rnn(x)
        if y.abs().sum() >= 0:  # a branch on values: the model is run on CPU
            y, _ = self.gru(y)
        return self.head(y[:, -1])
"""


@pytest.mark.parametrize("branch", [True, False])
def test_recurrent_layers_are_counted_on_a_cpu_run_as_on_meta(tmp_path, branch):
    """CPU's nn.LSTM is one fused kernel torch's FLOP counter has no formula for (0 FLOPs); the
    count runs the layer on meta stand-ins, where torch decomposes it into its products."""
    source = RECURRENT if branch else RECURRENT.replace("if y.abs().sum() >= 0:", "if True:")
    (tmp_path / "rnn.py").write_text(source)
    (result,) = lint_specs(str(tmp_path / "rnn.py"), input_shapes=[(2, 10, 32)])
    assert result.status == "ok", result.error
    assert any("on CPU tensors" in note for note in result.notes) == branch
    steps = 2 * 10  # batch x sequence
    lstm = steps * 4 * 64 * ((32 + 64) + (64 + 64))  # four gates, two layers
    gru = steps * 3 * 16 * (64 + 16)  # three gates
    head = 2 * 16 * 4
    assert result.summary.macs == lstm + gru + head


SIZE_MISMATCH = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(10, 64))

    def forward(self, x):
        for _ in range(len(x)):  # len() of a Proxy: symbolic tracing fails, the capture runs
            pass
        return F.linear(x.flatten(1), self.w)  # 64 inputs: fails at any other size
"""


def test_over_the_budget_a_failure_not_about_values_is_the_input_error(tmp_path):
    """Over the real-run budget as under it, a forward that fails on meta tensors for a reason
    other than values (sizes that do not match) is reported as the failing line and shape, not
    as code that needs values."""
    (tmp_path / "mismatch.py").write_text(SIZE_MISMATCH)
    spec = str(tmp_path / "mismatch.py")
    for budget in (0, 10**9):
        (result,) = lint_specs(spec, input_shapes=[(1, 3, 8, 8)], real_run_max_params=budget)
        assert result.status == "error"
        assert "forward() failed for input shape [1, 3, 8, 8]" in result.error, result.error
        assert "mismatch.py:14" in result.error and "needs tensor values" not in result.error
