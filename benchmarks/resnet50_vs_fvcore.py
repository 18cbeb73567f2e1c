"""Whole-process time: `cnnlint torchvision.models:resnet50 --target t4` vs fvcore's FlopCountAnalysis.

Both sides run as fresh processes (imports included), alternating, several times; medians and the
ratio are printed. Target: ratio <= 1.0. Needs torchvision and fvcore (`pip install fvcore`).

    python benchmarks/resnet50_vs_fvcore.py [--runs 7]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys

from _measure import wall_time

FVCORE = """
import torch, torchvision
from fvcore.nn import FlopCountAnalysis
model = torchvision.models.resnet50()
print(FlopCountAnalysis(model, torch.randn(1, 3, 224, 224)).total())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    cnnlint = shutil.which("cnnlint") or sys.exit("cnnlint is not installed")
    ours, theirs = [], []
    for _ in range(args.runs):
        ours.append(wall_time([cnnlint, "torchvision.models:resnet50", "--target", "t4"]))
        theirs.append(wall_time([sys.executable, "-c", FVCORE]))
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"runs: {args.runs} each, alternating")
    print(f"cnnlint resnet50 --target t4 (all rules): median {a:.2f} s  (min {min(ours):.2f})")
    print(f"fvcore FlopCountAnalysis resnet50:        median {b:.2f} s  (min {min(theirs):.2f})")
    print(f"ratio cnnlint / fvcore: {a / b:.2f}  (target <= 1.0)")


if __name__ == "__main__":
    main()
