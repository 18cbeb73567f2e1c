"""Fuzz the command line with thousands of random CNN definitions; report any property failure.

The same generator and properties as tests/test_fuzz.py (tests/fuzz_models.py): every generated
file is linted by the real ``cnnlint`` console script, many files per process, and each model's
result is checked against the test's own MAC / parameter count, construction lines and the
CL201 / CL301 invariants; invalid models must fail with a clear error.

    python benchmarks/fuzz.py --examples 2000 [--batch 100] [--workers 2] [--seed 0]

Prints how many models ran, how many were ok and how many invalid (reported as errors), and each
property failure with the generated source. Exit status 1 when any property failed.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fuzz_models as fm  # noqa: E402


def generate(count: int, seed: int) -> list[fm.GeneratedModel]:
    """``count`` models from the hypothesis strategy, reproducibly for a seed."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hypothesis_seed

    found: list[fm.GeneratedModel] = []

    @hypothesis_seed(seed)
    @settings(max_examples=count, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(fm.models())
    def collect(model: fm.GeneratedModel) -> None:
        found.append(model)

    collect()
    return found


def make_batches(found: list[fm.GeneratedModel], size: int, seed: int) -> list[fm.Batch]:
    rng = random.Random(seed)
    batches = []
    for start in range(0, len(found), size):
        targets = rng.sample(fm.TARGETS, rng.randint(1, 3))
        common = set.intersection(*(fm.PRECISIONS[t] for t in targets))
        precision = rng.choice([None, None, *sorted(common)])
        models = []
        for index, model in enumerate(found[start:start + size]):
            model.name = f"Net{start + index}"
            model.source = model.source.replace("class Net(nn.Module)", f"class {model.name}(nn.Module)")
            models.append(model)
        batches.append(fm.Batch(models, targets, precision))
    return batches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="models to generate and lint")
    parser.add_argument("--batch", type=int, default=100, help="models per cnnlint process")
    parser.add_argument("--workers", type=int, default=2, help="cnnlint processes at a time")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cnnlint = shutil.which("cnnlint") or str(Path(sys.executable).with_name("cnnlint"))

    start = time.perf_counter()
    found = generate(args.examples, args.seed)
    batches = make_batches(found, args.batch, args.seed)
    generated = time.perf_counter() - start
    print(f"generated {len(found)} models in {generated:.1f} s; linting in {len(batches)} processes "
          f"({args.workers} at a time)", flush=True)  # fmt: skip

    with tempfile.TemporaryDirectory() as root:
        def lint(indexed: tuple[int, fm.Batch]) -> fm.Run:
            index, batch = indexed
            folder = Path(root) / f"batch{index:03d}"
            folder.mkdir()
            return fm.lint_batch(cnnlint, batch, folder)

        with ThreadPoolExecutor(args.workers) as pool:
            runs = list(pool.map(lint, enumerate(batches)))

    statuses: Counter[str] = Counter()
    failures = 0
    failed_models = 0
    for run in runs:
        problems = run.problems()
        for model, display in zip(run.batch.models, run.displays):
            results = [r for r in (run.document or {}).get("results", [])
                       if r["model"].partition("::")[0] == display]  # fmt: skip
            ok = bool(results) and all(r["status"] == "ok" for r in results)
            statuses["ok" if ok else "error"] += 1
            statuses["invalid"] += not model.valid
        if problems:
            failures += sum(len(texts) for texts in problems.values())
            failed_models += sum(1 for index in problems if index >= 0)
            print("\n" + "=" * 100 + "\n" + fm.describe(run, problems), flush=True)
    reasons = Counter(m.invalid.reason for m in found if m.invalid is not None)
    wall = time.perf_counter() - start
    print(f"\nmodels: {len(found)} ran in {wall:.0f} s; ok: {statuses['ok']}, error: {statuses['error']}; "
          f"generated invalid: {statuses['invalid']} "
          f"({', '.join(f'{n} {r}' for r, n in reasons.most_common())})")
    print(f"property failures: {failures} in {failed_models} models")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
