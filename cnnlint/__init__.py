"""cnnlint: lint a PyTorch CNN's architecture against the hardware it will run on.

Pipeline (each stage imports only the ones before it):
load -> trace -> graph -> cost -> check -> report

Python API: ``cnnlint.lint(model_or_spec, target="t4") -> cnnlint.Report`` (see
:mod:`cnnlint.api`); ``cnnlint.testing.assert_clean`` for tests. Both are imported on first use,
so ``import cnnlint`` stays light (no torch).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Report", "__version__", "lint"]


def __getattr__(name: str) -> Any:
    if name in ("lint", "Report"):
        from cnnlint import api

        return getattr(api, name)
    raise AttributeError(f"module 'cnnlint' has no attribute {name!r}")
