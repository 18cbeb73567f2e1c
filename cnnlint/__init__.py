"""cnnlint: lint a PyTorch CNN's architecture against the hardware it will run on.

Pipeline (each stage imports only the ones before it):
load -> trace -> graph -> cost -> check -> report

Python API: ``cnnlint.lint(model_or_spec, target="t4") -> cnnlint.Report`` (see
:mod:`cnnlint.api`); ``cnnlint.testing.assert_clean`` for tests. Both are imported on first use,
so ``import cnnlint`` stays light (no torch).
"""

from __future__ import annotations

import os
import sys
from typing import Any

__version__ = "0.1.0"
__all__ = ["Report", "__version__", "lint"]


# The built-in rules live in the top-level rules/ folder, which pyproject.toml installs as
# cnnlint.rules. Python started in a checkout's root imports cnnlint from the source folder, which
# has no rules/ of its own (an editable install maps it; a regular one's is not this source's):
# there, ``cnnlint.rules`` is the checkout's rules/ folder.
_SOURCE = os.path.dirname(os.path.abspath(__file__))
_CHECKOUT_RULES = os.path.join(os.path.dirname(_SOURCE), "rules")


class _CheckoutRules:
    """Finds ``cnnlint.rules`` (and nothing else) in a checkout's rules/ folder."""

    rules_folder = _CHECKOUT_RULES

    @classmethod
    def find_spec(cls, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "cnnlint.rules":
            return None
        from importlib.util import spec_from_file_location

        init = os.path.join(cls.rules_folder, "__init__.py")
        return spec_from_file_location(fullname, init, submodule_search_locations=[cls.rules_folder])


if (
    not os.path.isdir(os.path.join(_SOURCE, "rules"))  # an installed wheel: cnnlint/rules/ is there
    and os.path.isfile(os.path.join(_CHECKOUT_RULES, "__init__.py"))
    and os.path.isdir(os.path.join(_CHECKOUT_RULES, "profiles"))
    and not any(getattr(f, "rules_folder", None) == _CHECKOUT_RULES for f in sys.meta_path)  # a reload
):
    sys.meta_path.append(_CheckoutRules)


def __getattr__(name: str) -> Any:
    if name in ("lint", "Report"):
        from cnnlint import api

        return getattr(api, name)
    raise AttributeError(f"module 'cnnlint' has no attribute {name!r}")
