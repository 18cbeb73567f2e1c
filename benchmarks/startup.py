"""Whole-process time of `cnnlint torchvision.models:resnet50 --target t4` against a bare
`python -c "import torch, torchvision"`: what cnnlint adds on top of the imports every user pays.

Both run as fresh processes, alternating, with the result cache off; medians of the CPU time
(user + system, steadier than wall time on a shared machine) and of the wall time, and their
ratios, are printed. Target: ratio <= 1.10.

    python benchmarks/startup.py [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys

from _measure import measure

BARE = [sys.executable, "-c", "import torch, torchvision"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    cnnlint = shutil.which("cnnlint") or sys.exit("cnnlint is not installed")
    ours_cmd = [cnnlint, "torchvision.models:resnet50", "--target", "t4"]
    os.environ["CNNLINT_NO_CACHE"] = "1"
    runs: dict[str, list] = {"bare": [], "cnnlint": []}
    for _ in range(args.runs):
        for name, command in (("bare", BARE), ("cnnlint", ours_cmd)):
            run = measure(command)
            if run.returncode not in (0, 1):
                sys.exit(f"{command[0]} failed ({run.returncode}):\n{run.stderr[-2000:]}")
            runs[name].append(run)
    print(f"runs: {args.runs} each, alternating, result cache off")
    medians = {}
    for name, label in (("bare", "python -c 'import torch, torchvision'"),
                        ("cnnlint", "cnnlint torchvision.models:resnet50 -t t4")):  # fmt: skip
        cpu = statistics.median(r.cpu_s for r in runs[name])
        wall = statistics.median(r.wall_s for r in runs[name])
        medians[name] = (cpu, wall)
        print(f"{label:45s} CPU {cpu:.2f} s  wall {wall:.2f} s")
    (cpu_a, wall_a), (cpu_b, wall_b) = medians["cnnlint"], medians["bare"]
    print(f"ratio cnnlint / bare import: CPU {cpu_a / cpu_b:.2f}, wall {wall_a / wall_b:.2f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
