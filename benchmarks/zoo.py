"""All torchvision classifiers in one invocation: wall time and peak RSS.

Targets (2 cores): under 10 s wall for the one run (18.8 s before the zoo work), peak RSS
<= 1.5 GB. The result cache is off, so every model is linted afresh. Prints the per-status counts too. With
--peer, the same models are counted by fvcore's FlopCountAnalysis in one process (weights
allocated, a real forward each; takes minutes) and the two are printed side by side.

With --floor, two fixed costs are printed beside it: a bare ``import torch, torchvision``
(every run pays it once) and torch.fx's own ``symbolic_trace`` of the same 80 models, built on
meta as cnnlint builds them, with nothing recorded, no shapes and no rules (CPU time, shared by
the jobs). Their sum is what any fx-based linter pays here before it builds a graph.

    python benchmarks/zoo.py [--jobs 2] [--target t4] [--peer] [--floor]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections import Counter

from _measure import Measured, measure


def classifier_specs() -> list[str]:
    import torchvision.models as tvm

    return [f"torchvision.models:{name}" for name in tvm.list_models(module=tvm)]


PEER = """
import sys, torch, torchvision.models as tvm
from fvcore.nn import FlopCountAnalysis
for name in sys.argv[1:]:
    model = tvm.get_model(name).eval()
    size = 299 if name == "inception_v3" else 224
    with torch.no_grad():
        analysis = FlopCountAnalysis(model, torch.randn(1, 3, size, size))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.total()
"""


FLOOR = """
import sys, time, warnings
import torch, torch.fx as fx, torchvision.models as tvm
warnings.simplefilter("ignore")
total = 0.0
for name in sys.argv[1:]:
    try:
        with torch.device("meta"):
            model = tvm.get_model(name).eval()
    except Exception:  # a constructor that computes on values (RegNet): build on CPU, then move
        model = tvm.get_model(name).eval().to("meta")
    start = time.process_time()
    fx.symbolic_trace(model)
    total += time.process_time() - start
print(total)
"""


def run_floor(specs: list[str]) -> tuple[float, float]:
    """Seconds of a bare import (wall) and of torch.fx's symbolic_trace of every model (CPU)."""
    bare = measure([sys.executable, "-c", "import torch, torchvision"])
    traced = measure([sys.executable, "-c", FLOOR, *(spec.split(":")[1] for spec in specs)])
    if traced.returncode != 0:
        sys.exit(f"the fx floor failed ({traced.returncode}):\n{traced.stderr[-2000:]}")
    return bare.wall_s, float(traced.stdout.split()[-1])


def run_peer(specs: list[str]) -> Measured:
    peer = measure([sys.executable, "-c", PEER, *(spec.split(":")[1] for spec in specs)])
    if peer.returncode != 0:
        sys.exit(f"fvcore failed ({peer.returncode}):\n{peer.stderr[-2000:]}")
    return peer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--target", default="t4")
    parser.add_argument("--peer", action="store_true", help="also time fvcore on the same models")
    parser.add_argument("--floor", action="store_true",
                        help="also time a bare import and torch.fx's own trace of the same models")
    args = parser.parse_args()
    cnnlint = shutil.which("cnnlint") or sys.exit("cnnlint is not installed")
    specs = classifier_specs()
    command = [cnnlint, *specs, "--target", args.target, "--format", "json", "--jobs", str(args.jobs)]
    os.environ["CNNLINT_NO_CACHE"] = "1"
    ours = measure(command)
    results = json.loads(ours.stdout)["results"]
    statuses = Counter(r["status"] for r in results)
    print(f"models: {len(specs)}  results: {len(results)}  status: {dict(statuses)}  exit: {ours.returncode}")
    for r in results:
        if r["status"] != "ok":
            print(f"  error: {r['error'][:160]}")
    print(f"cnnlint: wall {ours.wall_s:.1f} s (target < 10 s), CPU {ours.cpu_s:.1f} s, jobs {args.jobs}, peak RSS of the "
          f"largest process {ours.peak_rss_mib:.0f} MiB (target <= 1536 MiB)")
    if args.floor:
        bare, traced = run_floor(specs)
        floor = bare + traced / args.jobs
        print(f"floor: bare import {bare:.1f} s wall + torch.fx symbolic_trace of the same models "
              f"{traced:.1f} s CPU / {args.jobs} jobs = {floor:.1f} s; cnnlint above it: "
              f"{ours.wall_s - floor:.1f} s")
    if args.peer:
        peer = run_peer(specs)
        print(f"fvcore FlopCountAnalysis, same models, one process: wall {peer.wall_s:.1f} s, "
              f"peak RSS {peer.peak_rss_mib:.0f} MiB")
        print(f"ratio cnnlint / fvcore: time {ours.wall_s / peer.wall_s:.2f}, "
              f"memory {ours.peak_rss_mib / peer.peak_rss_mib:.2f}")


if __name__ == "__main__":
    main()
