"""Lint every architecture in the installed timm and count ok and error results by cause.

    python benchmarks/timm_sweep.py                    # all of timm.list_models(), --jobs = CPUs
    python benchmarks/timm_sweep.py --every 10         # every 10th architecture (a sample)
    python benchmarks/timm_sweep.py --limit 50 --jobs 2 --json sweep.json

Each architecture is linted by its timm entry point (``timm.models.resnet:resnet50``), as a user
would, in one ``cnnlint --jobs N --format json`` run. Error messages are sorted into causes by
what they say (:data:`CAUSES`), so a count is "input shape: 3", not a wall of text, and every
remaining error is listed with its message so its cause can be checked. On two shared cores the
whole list (about 1,400 architectures) takes about 10 minutes; sample it with --every.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

# The first pattern an error message matches names its cause.
CAUSES: list[tuple[str, re.Pattern[str]]] = [
    ("worker crashed", re.compile(r"the process linting it (was killed|exited)")),
    ("time limit", re.compile(r"did not finish within")),
    ("cnnlint bug", re.compile(r"cnnlint failed while")),
    ("input shape", re.compile(r"forward\(\) failed for input shape|forward\(\) takes \d+ input")),
    ("needs tensor values (over the real-run budget)", re.compile(r"run once on CPU instead")),
    ("cannot trace", re.compile(r"cannot trace this model")),
    ("needs arguments", re.compile(r"needs arguments")),
    ("build failed", re.compile(r"building the model raised")),
    ("import failed", re.compile(r"cannot import|importing it raised")),
    ("no input shape", re.compile(r"cannot infer an input shape")),
]


def cause_of(message: str) -> str:
    return next((cause for cause, pattern in CAUSES if pattern.search(message)), "other")


def specs(every: int, limit: int | None, name_filter: str) -> list[str]:
    import timm

    names = timm.list_models(name_filter or "*")[::every]
    if limit is not None:
        names = names[:limit]
    return [f"{timm.models.model_entrypoint(name).__module__}:{name}" for name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="lint every Nth architecture")
    parser.add_argument("--limit", type=int, default=None, help="at most this many")
    parser.add_argument("--filter", default="", help="timm.list_models pattern, e.g. 'resnet*'")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per model")
    parser.add_argument("--target", default="generic")
    parser.add_argument("--json", type=Path, help="also write the counts and errors here")
    args = parser.parse_args()

    import timm

    chosen = specs(args.every, args.limit, args.filter)
    cnnlint = str(Path(sys.executable).with_name("cnnlint"))
    command = [cnnlint, *chosen, "-t", args.target, "--format", "json", "--jobs", str(args.jobs),
               "--timeout", str(args.timeout), "--fail-on", "never"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    try:
        results = json.loads(proc.stdout)["results"]
    except (json.JSONDecodeError, KeyError):
        raise SystemExit(f"cnnlint exited {proc.returncode} without a report:\n{proc.stderr[-3000:]}")

    errors = {r["model"]: r["error"] for r in results if r["status"] == "error"}
    ok = sum(1 for r in results if r["status"] == "ok")
    by_cause = collections.Counter(cause_of(message) for message in errors.values())
    sources = collections.Counter(r.get("input_shape_source", "") for r in results if r["status"] == "ok")
    total = len(results)
    print(f"timm {timm.__version__}: {len(chosen)} architectures (every {args.every}"
          f"{f', at most {args.limit}' if args.limit else ''}), --jobs {args.jobs}, "
          f"{wall:.0f} s wall")  # fmt: skip
    print(f"ok: {ok} of {total} ({100 * ok / max(total, 1):.1f}%); errors: {len(errors)}")
    print("input shapes of ok results: " + ", ".join(f"{k or '?'} {v}" for k, v in sources.most_common()))
    for cause, count in by_cause.most_common():
        print(f"  {cause}: {count}")
    for model, message in sorted(errors.items()):
        print(f"- [{cause_of(message)}] {model}: {message[:400]}")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "timm": timm.__version__, "architectures": len(chosen), "ok": ok, "total": total,
            "wall_s": round(wall, 1), "by_cause": dict(by_cause), "errors": errors,
        }, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
