"""All torchvision classifiers in one invocation: wall time and peak RSS.

Targets (2 cores): under 10 s wall for the one run (18.8 s before the zoo work), peak RSS
<= 1.5 GB. The result cache is off, so every model is linted afresh. Prints the per-status counts too. With
--peer, the same models are counted by fvcore's FlopCountAnalysis in one process (weights
allocated, a real forward each; takes minutes) and the two are printed side by side.

With --floor, two fixed costs are printed beside it: a bare ``import torch, torchvision``
(every run pays it once) and torch.fx's own ``symbolic_trace`` of the same 80 models, built on
meta as cnnlint builds them, with nothing recorded, no shapes and no rules (CPU time, shared by
the jobs). Their sum is what any fx-based linter pays here before it builds a graph.

With --against CNNLINT, another installed cnnlint (an earlier revision, in its own virtual
environment) lints the same models in the same way, alternating with this one for --rounds
rounds; the medians and their ratio are printed. On a shared VM whose speed changes by half
within an hour, that ratio is the comparison that holds: the 10 s target was set against
18.8 s, a ratio of 0.53.

    python benchmarks/zoo.py [--jobs 2] [--target t4] [--peer] [--floor] [--rounds N] [--against CNNLINT]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
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


def lint_all(cnnlint: str, specs: list[str], target: str, jobs: int) -> Measured:
    command = [cnnlint, *specs, "--target", target, "--format", "json", "--jobs", str(jobs), "--no-cache"]
    run = measure(command)
    if run.returncode not in (0, 1):
        sys.exit(f"{cnnlint} failed ({run.returncode}):\n{run.stderr[-2000:]}")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--target", default="t4")
    parser.add_argument("--peer", action="store_true", help="also time fvcore on the same models")
    parser.add_argument("--floor", action="store_true",
                        help="also time a bare import and torch.fx's own trace of the same models")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each command, alternating; medians")
    parser.add_argument("--against", metavar="CNNLINT",
                        help="another cnnlint executable (an earlier revision) to time beside this one")
    args = parser.parse_args()
    cnnlint = shutil.which("cnnlint") or sys.exit("cnnlint is not installed")
    specs = classifier_specs()
    ours: list[Measured] = []
    theirs: list[Measured] = []
    for _ in range(max(1, args.rounds)):
        ours.append(lint_all(cnnlint, specs, args.target, args.jobs))
        if args.against:
            theirs.append(lint_all(args.against, specs, args.target, args.jobs))
    results = json.loads(ours[-1].stdout)["results"]
    statuses = Counter(r["status"] for r in results)
    print(f"models: {len(specs)}  results: {len(results)}  status: {dict(statuses)}  exit: {ours[-1].returncode}")
    for r in results:
        if r["status"] != "ok":
            print(f"  error: {r['error'][:160]}")
    wall = statistics.median(run.wall_s for run in ours)
    print(f"cnnlint: wall {wall:.1f} s (target < 10 s), CPU {statistics.median(run.cpu_s for run in ours):.1f} s, "
          f"jobs {args.jobs}, median of {len(ours)}, peak RSS of the largest process "
          f"{max(run.peak_rss_mib for run in ours):.0f} MiB (target <= 1536 MiB)")
    if theirs:
        their_wall = statistics.median(run.wall_s for run in theirs)
        print(f"against {args.against}: wall {their_wall:.1f} s, CPU "
              f"{statistics.median(run.cpu_s for run in theirs):.1f} s; ratio of the medians: wall "
              f"{wall / their_wall:.2f} (the target's 10 / 18.8 = 0.53), per round "
              + ", ".join(f"{a.wall_s / b.wall_s:.2f}" for a, b in zip(ours, theirs)))
    if args.floor:
        bare, traced = run_floor(specs)
        floor = bare + traced / args.jobs
        print(f"floor: bare import {bare:.1f} s wall + torch.fx symbolic_trace of the same models "
              f"{traced:.1f} s CPU / {args.jobs} jobs = {floor:.1f} s; cnnlint above it: "
              f"{wall - floor:.1f} s")
    if args.peer:
        peer = run_peer(specs)
        print(f"fvcore FlopCountAnalysis, same models, one process: wall {peer.wall_s:.1f} s, "
              f"peak RSS {peer.peak_rss_mib:.0f} MiB")
        print(f"ratio cnnlint / fvcore: time {wall / peer.wall_s:.2f}, "
              f"memory {ours[-1].peak_rss_mib / peer.peak_rss_mib:.2f}")


if __name__ == "__main__":
    main()
