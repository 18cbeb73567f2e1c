"""Test helpers for model authors::

    from cnnlint.testing import assert_clean

    def test_my_net_suits_the_t4():
        assert_clean(MyNet(), target="t4", select=["CL2", "CL3"])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cnnlint.api import InputShape, lint
from cnnlint.core import at_or_above
from cnnlint.report.contract import Report

if TYPE_CHECKING:
    from torch import nn

__all__ = ["assert_clean"]


def assert_clean(
    model_or_spec: nn.Module | str | os.PathLike[str],
    target: str | Sequence[str] = "t4",
    *,
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    input_shape: InputShape = None,
    precision: str | None = None,
    fail_on: str = "warning",
) -> Report:
    """Lint the model (as :func:`cnnlint.lint`) and raise AssertionError when it has findings at
    or above ``fail_on`` ("error", "warning" or "info"), or could not be linted. The message lists
    each finding as ``file:line:col: CODE [target] message``. Returns the report when clean."""
    __tracebackhide__ = True  # pytest shows the assertion, not this frame
    report = lint(model_or_spec, target, input_shape=input_shape, select=select, ignore=ignore,
                  precision=precision)  # fmt: skip
    problems = [f"error: {message}" for message in report.errors]
    for result in report.results:
        for finding in result.findings:
            if at_or_above(finding.severity, fail_on):
                where = finding.where or result.model
                problems.append(f"{where}: {finding.code} [{result.target}] {finding.message}")
    if problems:
        models = sorted({r.model for r in report.results})
        raise AssertionError(
            f"{', '.join(models)} is not clean ({len(problems)} problem(s) at or above {fail_on}):\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    return report
