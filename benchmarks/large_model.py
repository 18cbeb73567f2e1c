"""A 644M-parameter model: peak RSS of `cnnlint torchvision.models:regnet_y_128gf --target t4`.

Target: <= 1 GB. The peer is the usual way to count it: build it with torchvision (weights
allocated and initialised) and run fvcore's FlopCountAnalysis; both run as fresh processes, and
peak RSS and wall time are printed side by side. Needs torchvision and fvcore.

    python benchmarks/large_model.py [--model regnet_y_128gf] [--skip-peer]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time

PEER = """
import sys, torch, torchvision
from fvcore.nn import FlopCountAnalysis
model = getattr(torchvision.models, sys.argv[1])().eval()
with torch.no_grad():
    print(FlopCountAnalysis(model, torch.randn(1, 3, 224, 224)).total())
"""


def measure(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"{command[0]} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest so far: run the small process first.
    return wall, max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="regnet_y_128gf")
    parser.add_argument("--skip-peer", action="store_true", help="only measure cnnlint")
    args = parser.parse_args()
    cnnlint = shutil.which("cnnlint") or sys.exit("cnnlint is not installed")
    ours_wall, ours_rss = measure([cnnlint, f"torchvision.models:{args.model}", "--target", "t4",
                                   "--format", "json"])  # fmt: skip
    print(f"cnnlint {args.model} --target t4:       {ours_wall:6.1f} s, peak RSS {ours_rss:6.0f} MiB"
          " (target <= 1024 MiB)")
    if not args.skip_peer:
        peer_wall, peer_rss = measure([sys.executable, "-c", PEER, args.model])
        print(f"torchvision build + fvcore count:     {peer_wall:6.1f} s, peak RSS {peer_rss:6.0f} MiB")
        print(f"ratio cnnlint / peer: time {ours_wall / peer_wall:.2f}, memory {ours_rss / peer_rss:.2f}")


if __name__ == "__main__":
    main()
