"""What a newcomer meets on the command line: --help shows the lint options, targets in any case
(listed from the profile folder), natural order, one note and one error per model, error results
per target, grouped text findings, --statistics, and parameters the forward never uses."""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources

import pytest

from cnnlint.profile import load_profile
from cnnlint.results import natural_key
from conftest import TESTS, Ran, cli

MODELS = TESTS / "cli_polish"
SPECS = ["models.py::Deep", "models.py::WithAux", "models.py::NeedsLeafRetrace", "models.py::Broken"]
TARGETS = ["t4", "arm-cpu"]


def cnnlint(*args: str) -> Ran:
    return cli(*args, cwd=MODELS)


@pytest.fixture(scope="module")
def report() -> dict:
    done = cnnlint(*SPECS, "-t", "T4,Arm-CPU", "--format", "json")  # any case
    assert done.returncode == 2, done.stderr  # Broken cannot be built
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def text() -> str:
    done = cnnlint(*SPECS, "-t", "t4,arm-cpu")
    assert done.returncode == 2, done.stderr
    return done.stdout


def test_help_shows_the_lint_options_and_the_targets_from_the_profile_folder() -> None:
    done = cnnlint("--help")
    assert done.returncode == 0
    for option in ("--target", "--select", "--format", "--input-shape", "--statistics"):
        assert option in done.stdout
    assert re.search(r"Commands:\n(\s+\w+ .*\n)*\s+check\s[\s\S]*\s+rules\s", done.stdout)
    folder = resources.files("cnnlint.rules.profiles")
    names = [p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")]
    assert len(names) > 1
    help_text = re.sub(r"-\s+", "-", " ".join(done.stdout.split()))  # undo wrapping at hyphens
    for name in names:
        assert re.search(rf"[(, ]{re.escape(name)}[,;]", help_text), name


def test_targets_are_case_insensitive(report: dict) -> None:
    ok = [r for r in report["results"] if r["status"] == "ok"]
    assert {r["target"] for r in ok} == set(TARGETS)


def test_error_results_are_one_per_target_with_its_precision(report: dict) -> None:
    errors = [r for r in report["results"] if r["status"] == "error"]
    assert [(r["model"], r["target"], r["precision"]) for r in errors] == [
        ("models.py::Broken", t, load_profile(t).default_precision) for t in TARGETS
    ]


def test_findings_are_in_natural_order(report: dict) -> None:
    (deep,) = [r for r in report["results"] if r["model"] == "models.py::Deep" and r["target"] == "t4"]
    modules = [f["module"] for f in deep["findings"] if f["code"] == "CL301"]
    assert len(modules) == 12  # JSON keeps one finding per layer
    assert modules == sorted(modules, key=natural_key)
    assert modules.index("features.2") < modules.index("features.10")


def test_text_groups_one_code_at_one_construction_line(text: str) -> None:
    (line,) = [l for l in text.splitlines() if "CL301 [t4]" in l]
    assert "×12 layers: features.0, features.1, features.2, … (worst: features." in line
    # Two findings of one rule on one layer are not "2 layers".
    assert not re.search(r"×\d+ layers: gate, gate", text)


def test_notes_and_errors_print_once_per_model(text: str) -> None:
    assert text.count("note: models.py::NeedsLeafRetrace: trace:") == 1
    assert text.count("error: models.py::Broken:") == 1


def test_summary_says_which_parameters_the_forward_never_uses(report: dict, text: str) -> None:
    (with_aux,) = [r for r in report["results"] if r["model"] == "models.py::WithAux"
                   and r["target"] == "t4"]  # fmt: skip
    aux = 16 * 64 * 9 + 64 + 64 * 10 + 10
    assert with_aux["summary"]["params"] == 3 * 16 * 9 + 16
    assert with_aux["summary"]["params_unused"] == aux
    assert with_aux["summary"]["unused_modules"] == ["aux"]
    assert "params leave out 9.93 k of 10.38 k that forward() never uses: aux" in text
    others = [r for r in report["results"] if r["status"] == "ok" and r["model"] != "models.py::WithAux"]
    assert all(r["summary"]["params_unused"] == 0 for r in others)


def test_statistics_counts_findings_per_code_and_target(report: dict) -> None:
    done = cnnlint(*SPECS, "-t", "t4,arm-cpu", "--statistics")
    assert done.returncode == 2
    expected = Counter((f["code"], r["target"]) for r in report["results"] for f in r["findings"])
    rows = [line.split("\t") for line in done.stdout.splitlines() if not line.startswith("error:")]
    assert {(code, target.strip("[]")): int(count) for count, code, target, _ in rows} == expected
    assert [int(row[0]) for row in rows] == sorted((int(row[0]) for row in rows), reverse=True)
    assert done.stdout.count("error: models.py::Broken") == 1
