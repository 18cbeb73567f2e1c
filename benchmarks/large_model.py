"""A 644M-parameter model: peak RSS of `cnnlint torchvision.models:regnet_y_128gf --target t4`.

Target: <= 1 GB. The peer is the usual way to count it: build it with torchvision (weights
allocated and initialised) and run fvcore's FlopCountAnalysis; both run as fresh processes, and
peak RSS and wall time are printed side by side. Needs torchvision and fvcore.

    python benchmarks/large_model.py [--model regnet_y_128gf] [--skip-peer]
"""

from __future__ import annotations

import argparse
import shutil
import sys

from _measure import measure

PEER = """
import sys, torch, torchvision
from fvcore.nn import FlopCountAnalysis
model = getattr(torchvision.models, sys.argv[1])().eval()
with torch.no_grad():
    print(FlopCountAnalysis(model, torch.randn(1, 3, 224, 224)).total())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="regnet_y_128gf")
    parser.add_argument("--skip-peer", action="store_true", help="only measure cnnlint")
    args = parser.parse_args()
    cnnlint = shutil.which("cnnlint") or sys.exit("cnnlint is not installed")
    ours = measure([cnnlint, f"torchvision.models:{args.model}", "--target", "t4", "--format", "json"])
    if ours.returncode not in (0, 1):
        sys.exit(f"cnnlint failed ({ours.returncode}):\n{ours.stdout[-2000:]}{ours.stderr[-2000:]}")
    print(f"cnnlint {args.model} --target t4:  {ours.wall_s:6.1f} s, peak RSS "
          f"{ours.peak_rss_mib:6.0f} MiB (target <= 1024 MiB)")
    if not args.skip_peer:
        peer = measure([sys.executable, "-c", PEER, args.model])
        if peer.returncode != 0:
            sys.exit(f"peer failed ({peer.returncode}):\n{peer.stderr[-2000:]}")
        print(f"torchvision build + fvcore count: {peer.wall_s:6.1f} s, peak RSS "
              f"{peer.peak_rss_mib:6.0f} MiB")
        print(f"ratio cnnlint / peer: time {ours.wall_s / peer.wall_s:.2f}, "
              f"memory {ours.peak_rss_mib / peer.peak_rss_mib:.2f}")


if __name__ == "__main__":
    main()
