"""Shared test helpers: lint real files and real torchvision models through the real pipeline."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from cnnlint.graph import LayerGraph
from cnnlint.load import ModelSettings, load
from cnnlint.options import RunOptions
from cnnlint.pipeline import check_graph, graph_of
from cnnlint.profile import load_profile
from cnnlint.results import ModelResult
from cnnlint.spec import ModelSpec
from cnnlint.workers import run

TESTS = Path(__file__).parent
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"
# The installed console script, for the tests where a process is the point (isolation, import
# lightness, pre-commit, packaging).
CNNLINT = str(Path(sys.executable).with_name("cnnlint"))
SHARED = TESTS.parent.parent / "shared"


@pytest.fixture(autouse=True)
def _no_result_cache(monkeypatch):
    """Each test's cnnlint processes lint afresh: a result cached by an earlier test must not
    decide what a later one sees (tests/test_cache.py turns the cache back on)."""
    monkeypatch.setenv("CNNLINT_NO_CACHE", "1")


def lint_specs(*specs: str, target: str = "generic", **options) -> list[ModelResult]:
    """Run the whole pipeline as the CLI does (in this process, spec after spec)."""
    return run([ModelSpec.parse(spec) for spec in specs], RunOptions(targets=[target], **options))


@functools.cache
def traced_graph(spec: str, input_shape: tuple[int, ...] | None = None) -> LayerGraph:
    """Trace a model once per test session (tracing is the slow part); check it per target."""
    (model,) = load(ModelSpec.parse(spec), lambda _: ModelSettings(),
                    [input_shape] if input_shape else None)  # fmt: skip
    return graph_of(model)


def instance_graph(model, shape: tuple[int, ...]) -> LayerGraph:
    """The graph of a module instance (a test's own), traced as cnnlint traces one: a meta copy, in eval mode."""
    from cnnlint.graph.build import build_layer_graph
    from cnnlint.load import LoadedModel, meta_copy
    from cnnlint.trace import trace

    twin = meta_copy(model, type(model).__name__).eval()
    return build_layer_graph(trace(LoadedModel(type(model).__name__, twin, [shape], {}, "meta")))


def check_on(spec: str, target: str, precision: str | None = None, select=None) -> ModelResult:
    graph = traced_graph(spec)
    return check_graph(graph, load_profile(target), precision, select=select)


def findings_by_model(fixture: str, target: str, code: str) -> dict[str, list[tuple[str, int, str]]]:
    """Lint a fixture file for one rule: {model class: [(code, line, severity), ...]}."""
    results = lint_specs(str(FIXTURES / fixture), target=target, select=[code])
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    return {
        r.model.rsplit("::", 1)[1]: [(f.code, f.line, f.severity) for f in r.findings]
        for r in results
    }


def codes(result: ModelResult, severity: str | None = None) -> list[str]:
    return [f.code for f in result.findings if severity is None or f.severity == severity]


@pytest.fixture
def fixture_path():
    def _path(name: str) -> str:
        return str(FIXTURES / name)

    return _path


@dataclass
class Ran:
    """What a run of the command line left: its exit code and its two output streams."""

    returncode: int
    stdout: str
    stderr: str


def cli(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None, input: str | None = None) -> Ran:
    """The command line run in this process (click's CliRunner), from ``cwd``: what a user's
    ``cnnlint ARGS`` prints and exits with, without a new interpreter importing torch again."""
    from click.testing import CliRunner

    from cnnlint.cli import main

    here = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, list(args), env=env, input=input)
    finally:
        os.chdir(here)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback the user would have seen: the test shows it too
    return Ran(result.exit_code, result.stdout, result.stderr)


def cli_process(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None,
                timeout: float = 600) -> subprocess.CompletedProcess:
    """The command line as a real process, where the process is what is tested."""
    return subprocess.run([CNNLINT, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})  # fmt: skip
