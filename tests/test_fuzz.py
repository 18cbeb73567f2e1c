"""Fuzzing the command line with random CNN definitions: it never crashes and never lies.

Each hypothesis example is a batch of generated model files (tests/fuzz_models.py) linted by one
real ``cnnlint`` process, on one to three targets: torch is imported once per batch, not once per
model. For every model: status ok (or, for a model generated invalid on purpose, a one-paragraph
error naming the file, model and line, and exit code 2), MACs and parameters equal the test's own
count, every finding points at the line that builds its layer, and CL201 / CL301 fire exactly
where the profile's channel granule and depthwise setting say. ``benchmarks/fuzz.py`` runs the
same properties over thousands of models.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings

import fuzz_models as fm

CNNLINT = str(Path(sys.executable).with_name("cnnlint"))

# Reproducible in CI: the same examples on every run. Shrinking would re-run the CLI hundreds of
# times; a failure prints the failing model's source instead.
CI = settings(
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example],
)  # fmt: skip


def _assert_clean(run: fm.Run) -> None:
    problems = run.problems()
    assert not problems, fm.describe(run, problems)


# About 120 models: the thousands are benchmarks/fuzz.py's (CI's time goes to real models).
@settings(CI, max_examples=4)
@given(batch=fm.batches(min_models=25, max_models=35))
def test_random_models_never_crash_and_never_lie(batch: fm.Batch) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _assert_clean(fm.lint_batch(CNNLINT, batch, Path(folder)))


def _lint_twice(batch: fm.Batch, first: tuple[str, ...], second: tuple[str, ...]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        one = fm.lint_batch(CNNLINT, batch, Path(folder), *first)
        _assert_clean(one)
        two = fm.lint_batch(CNNLINT, batch, Path(folder), *second)
        assert (two.stdout, two.returncode) == (one.stdout, one.returncode), (
            f"{' '.join(one.args)} and {' '.join(two.args)} differ"
        )


@settings(CI, max_examples=1)
@given(batch=fm.batches(min_models=16, max_models=16))
def test_output_is_byte_identical_across_runs(batch: fm.Batch) -> None:
    _lint_twice(batch, (), ())


@settings(CI, max_examples=1)
@given(batch=fm.batches(min_models=16, max_models=16))
def test_output_is_byte_identical_across_jobs(batch: fm.Batch) -> None:
    _lint_twice(batch, ("--jobs", "1"), ("--jobs", "2"))
