"""Built-in cnnlint rules: one self-documenting module per rule (installed as ``cnnlint.rules``).

Each module declares ``CODE``, ``NAME``, ``SEVERITY``, its ``Options`` (a subclass of
``cnnlint.check.RuleOptions``), ``check(ctx)`` and, where it has a concrete fix, ``EDIT`` and
``MEASURED`` (``cnnlint.proposal``); its docstring is the rule's documentation. The contract is
written out in ``cnnlint/check.py``. The per-platform profiles are data, in ``profiles/*.toml``.
"""
