"""The installed package carries every built-in rule and profile (a wheel missing rules/ fails)."""

from __future__ import annotations

import os
import subprocess
import sys
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


# Python as a user starts it in the checkout's root: no PYTHON* variables (no PYTHONPATH).
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}


def test_the_api_runs_from_the_repository_root():
    # There `import cnnlint` is the source folder (the working directory comes first on sys.path),
    # whatever is installed, and the built-in rules are the sibling rules/ folder.
    code = "import cnnlint; cnnlint.lint('torchvision.models:resnet18', 't4')"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=CLEAN_ENV, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_the_checkout_finds_its_rules_without_the_installs_mapping():
    # What a regular install, or none, leaves: only Python's own finders, so the mapping of
    # cnnlint.rules to rules/ that an editable install adds cannot be what finds them.
    code = (
        "import sys\n"
        "from importlib.machinery import BuiltinImporter, FrozenImporter, PathFinder\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if f in (BuiltinImporter, FrozenImporter, PathFinder)]\n"
        "import cnnlint\n"
        "from cnnlint.check import all_rules\n"
        "from cnnlint.profile import builtin_profile_names\n"
        "import cnnlint.rules\n"
        "print(cnnlint.__file__, cnnlint.rules.__file__, ','.join(r.code for r in all_rules()),\n"
        "      ','.join(builtin_profile_names()), sep='\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=CLEAN_ENV, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    package, rules, codes, profiles = done.stdout.split()
    assert Path(package) == REPO / "cnnlint" / "__init__.py"
    assert Path(rules) == REPO / "rules" / "__init__.py"
    assert {p.stem.split("_")[0].upper() for p in (REPO / "rules").glob("cl*.py")} <= set(codes.split(","))
    assert set(profiles.split(",")) == {p.stem for p in (REPO / "rules" / "profiles").glob("*.toml")}
