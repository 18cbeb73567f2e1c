"""Predicted against measured: each finding's fix, as its rule estimates it and as ``--measure``
times it on this machine.

For each model, ``cnnlint MODEL --target T --measure`` runs once per target; every finding with a
concrete fix prints the rule's own estimate of the speedup (before / after, from the finding's
metrics its rule's ``MEASURED`` names) beside the measured one (medians of repeated
timings under ``torch.inference_mode``, fp32 on CPU). The peer is the cost model: where the two
agree on the direction, the rule's advice held on this machine.

Targets: ``t4`` (the advice as written for that GPU, timed here on CPU: a check of the direction
on another device, not of the numbers) and, with ``--calibrate``, a profile calibrated on this
machine first (``cnnlint calibrate --quick``), whose estimates describe the device the timings
come from.

    python benchmarks/measure.py [--models mobilenet_v2,regnet_x_400mf,tests/fixtures/measure_fixes.py] [--targets t4]
        [--calibrate] [--budget 60] [--threads 1] [--device cpu] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cnnlint.measure import predicted_speedup

# The installed console script; where there is none (a bare GPU machine with cnnlint on
# PYTHONPATH), the module.
_SCRIPT = Path(sys.executable).with_name("cnnlint")
CNNLINT = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "cnnlint"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def calibrated_profile(folder: Path, threads: int) -> str:
    out = folder / "this-machine.toml"
    log(f"calibrating this machine (--quick, {threads} thread(s)) ...")
    done = subprocess.run([*CNNLINT, "calibrate", "--quick", "--threads", str(threads), "-o", str(out)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"cnnlint calibrate failed:\n{done.stderr[-2000:]}")
    return str(out)


def run(model: str, target: str, args: argparse.Namespace) -> tuple[list[dict], str, float]:
    spec = model if ":" in model or model.endswith(".py") else f"torchvision.models:{model}"
    command = [*CNNLINT, spec, "--target", target, "--measure", "--device", args.device,
               "--measure-budget", str(args.budget), "--measure-threads", str(args.threads),
               "--format", "json", "--fail-on", "never"]  # fmt: skip
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    (result,) = json.loads(done.stdout)["results"]
    summary = next((line for line in done.stderr.splitlines() if line.startswith("cnnlint: measured")), "")
    return result["findings"], summary.removeprefix("cnnlint: "), wall


def _x(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="mobilenet_v2,regnet_x_400mf",
                        help="torchvision classifier names, or any spec (path/model.py, package.module:attr)")
    parser.add_argument("--targets", default="t4", help="comma-separated profiles")
    parser.add_argument("--calibrate", action="store_true", help="also a profile calibrated here first")
    parser.add_argument("--budget", type=float, default=60.0, help="--measure-budget per model and target")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--json", type=Path, help="also write every row here")
    args = parser.parse_args()

    targets = [t for t in args.targets.split(",") if t]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        if args.calibrate:
            targets.append(calibrated_profile(Path(folder), args.threads))
        for model in [m for m in args.models.split(",") if m]:
            for target in targets:
                log(f"{model} on {Path(target).stem}: linting and measuring (budget {args.budget:g} s)")
                findings, summary, wall = run(model, target, args)
                print(f"\n## {model}, target {Path(target).stem}: {summary} ({wall:.0f} s in all)")
                print(f"{'code':<6} {'layer':<36} {'fix':<46} {'predicted':>9} {'measured':>9} "
                      f"{'before ms':>9} {'after ms':>9}")  # fmt: skip
                for f in findings:
                    m = f["metrics"]
                    predicted = predicted_speedup(f["code"], m)
                    measured = m.get("measured_speedup")
                    if measured is None and predicted is None:
                        continue
                    row = {"model": model, "target": Path(target).stem, "code": f["code"], "layer": f["module"],
                           "fix": m.get("measured_fix", m.get("measured_skipped", "")), "predicted": predicted,
                           "measured": measured, "before_ms": m.get("measured_before_ms"),
                           "after_ms": m.get("measured_after_ms")}  # fmt: skip
                    rows.append(row)
                    times = (f"{row['before_ms']:>9.3f} {row['after_ms']:>9.3f}" if measured is not None
                             else f"{'-':>9} {'-':>9}")  # fmt: skip
                    print(f"{row['code']:<6} {row['layer'][:36]:<36} {row['fix'][:46]:<46} "
                          f"{_x(predicted):>9} {_x(measured):>9} {times}")  # fmt: skip
    print("\n## per code: median predicted and measured speedup, and how often they agree on the direction")
    keys = sorted({(r["target"], r["code"]) for r in rows})
    for target, code in keys:
        both = [r for r in rows if (r["target"], r["code"]) == (target, code)
                and r["predicted"] is not None and r["measured"] is not None]  # fmt: skip
        if not both:
            continue
        agree = sum(1 for r in both if (r["predicted"] >= 1) == (r["measured"] >= 1))
        log_error = statistics.median(abs(math.log(r["measured"] / r["predicted"])) for r in both)
        predicted, measured = (statistics.median(r[k] for r in both) for k in ("predicted", "measured"))
        print(f"{target:<14} {code}: {len(both):>3} findings, predicted {_x(predicted)}, measured "
              f"{_x(measured)}, direction agrees "
              f"{agree}/{len(both)}, median |measured/predicted| {math.exp(log_error):.2f}x")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
