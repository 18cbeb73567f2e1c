"""Whole-process time of `cnnlint torchvision.models:resnet50 --target t4` against a bare
`python -c "import torch, torchvision"`: what cnnlint adds on top of the imports every user pays.

Both run as fresh processes, alternating, with the result cache off; medians of the CPU time
(user + system, steadier than wall time on a shared machine) and of the wall time, and their
ratios, are printed. Target: ratio <= 1.10.

The third number, cnnlint's own CPU after the imports in one process, is what it adds before it
exits: the whole-process ratio also counts the interpreter's exit, which cnnlint shortens
(cnnlint.cli freezes the cyclic collector's objects at exit) and the bare import does not.

cnnlint is measured as installed: its bytecode compiled first, as ``pip install`` does (torch's
was compiled when it was installed). An editable install under PYTHONDONTWRITEBYTECODE=1 would
otherwise compile every cnnlint module on every run (0.3 s of CPU on a 2-core AMD EPYC VM),
which no installed copy pays.

    python benchmarks/startup.py [--runs 9]
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import shutil
import statistics
import sys

from _measure import measure

BARE = [sys.executable, "-c", "import torch, torchvision"]
# cnnlint's own CPU in one process, after the same imports: what it adds before its exit.
INSIDE = [sys.executable, "-c", """
import contextlib, io, sys, time
import torch, torchvision
start = time.process_time()
sys.argv = ["cnnlint", "torchvision.models:resnet50", "--target", "t4"]
from cnnlint.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main()
print(time.process_time() - start)
"""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    cnnlint = shutil.which("cnnlint") or sys.exit("cnnlint is not installed")
    ours_cmd = [cnnlint, "torchvision.models:resnet50", "--target", "t4"]
    os.environ["CNNLINT_NO_CACHE"] = "1"
    for package in ("cnnlint", "cnnlint.rules"):  # as pip install does
        folder = os.path.dirname(importlib.util.find_spec(package).origin)
        compileall.compile_dir(folder, quiet=1)
    runs: dict[str, list] = {"bare": [], "cnnlint": [], "inside": []}
    for _ in range(args.runs):
        for name, command in (("bare", BARE), ("cnnlint", ours_cmd), ("inside", INSIDE)):
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
    # Each cnnlint run against the bare run just before it: the two share the machine's state of
    # the moment, which moves a bare import by 20% between runs on a shared VM.
    paired = sorted(c.cpu_s / b.cpu_s for b, c in zip(runs["bare"], runs["cnnlint"]))
    inside = statistics.median(float(r.stdout.split()[-1]) for r in runs["inside"])
    print(f"cnnlint's own CPU after the imports, in one process: {inside:.2f} s "
          f"({inside / cpu_b:.0%} of the bare import's process)")
    print(f"paired CPU ratios (each run against the bare run before it): median {statistics.median(paired):.2f}, "
          f"range {paired[0]:.2f}-{paired[-1]:.2f}")


if __name__ == "__main__":
    main()
