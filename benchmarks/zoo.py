"""All torchvision classifiers in one invocation: wall time and peak RSS.

Targets (2 cores): <= 40 s wall, peak RSS <= 1.5 GB. Prints the per-status counts too.

    python benchmarks/zoo.py [--jobs 2] [--target t4]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter


def classifier_specs() -> list[str]:
    import torchvision.models as tvm

    return [f"torchvision.models:{name}" for name in tvm.list_models(module=tvm)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--target", default="t4")
    args = parser.parse_args()
    cnnlint = shutil.which("cnnlint") or sys.exit("cnnlint is not installed")
    specs = classifier_specs()
    command = [cnnlint, *specs, "--target", args.target, "--format", "json", "--jobs", str(args.jobs)]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    results = json.loads(proc.stdout)["results"]
    statuses = Counter(r["status"] for r in results)
    print(f"models: {len(specs)}  results: {len(results)}  status: {dict(statuses)}  exit: {proc.returncode}")
    for r in results:
        if r["status"] != "ok":
            print(f"  error: {r['error'][:160]}")
    print(f"wall: {wall:.1f} s (target <= 40 s)   jobs: {args.jobs}")
    print(f"peak RSS of the largest process: {peak_kib / 1024:.0f} MiB (target <= 1536 MiB)")


if __name__ == "__main__":
    main()
