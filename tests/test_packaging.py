"""The installed package carries every built-in rule and profile (a wheel missing rules/ fails)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pytest

import cnnlint
from cnnlint.check import all_rules
from cnnlint.profile import builtin_profile_names

REPO = Path(__file__).resolve().parent.parent


def test_every_rule_module_in_the_source_tree_is_installed():
    source_rules = {p.stem.split("_")[0].upper() for p in (REPO / "rules").glob("cl*.py")}
    installed = {rule.code for rule in all_rules()}
    assert source_rules and source_rules <= installed


def test_every_profile_in_the_source_tree_is_installed():
    source_profiles = {p.stem for p in (REPO / "rules" / "profiles").glob("*.toml")}
    assert source_profiles == set(builtin_profile_names())
    assert resources.files("cnnlint.rules.profiles").joinpath("t4.toml").is_file()


def test_ci_tests_the_installed_wheel_not_the_checkout():
    if os.environ.get("CNNLINT_EXPECT_INSTALLED") != "1":
        pytest.skip("CNNLINT_EXPECT_INSTALLED is not set: developers may use an editable install")
    installed = Path(cnnlint.__file__).resolve().parent
    # The venv may live inside the checkout (.venv), so compare with the source folder itself.
    assert installed != REPO / "cnnlint" and installed.parent.name == "site-packages", installed


def test_every_engine_subpackage_is_installed():
    # pyproject.toml lists packages by hand (rules/ installs as cnnlint.rules): a new one must be added.
    import importlib

    for init in (REPO / "cnnlint").glob("*/__init__.py"):
        name = f"cnnlint.{init.parent.name}"
        module = importlib.import_module(name)
        assert Path(module.__file__).parent.parent == Path(cnnlint.__file__).parent, name
