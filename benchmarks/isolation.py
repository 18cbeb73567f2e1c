"""What --isolate costs per model: the same files linted in-process and in worker processes.

Each side is a fresh `cnnlint` process over the same N small model files (a copy of the bundled
example each), run alternately several times; medians and the per-model difference are printed.

    python benchmarks/isolation.py [--models 20] [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from _measure import wall_time

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mobilenet_v2_like.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cnnlint = shutil.which("cnnlint") or sys.exit("cnnlint is not installed")
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for index in range(args.models):
            path = Path(folder) / f"model_{index:03d}.py"
            path.write_text(EXAMPLE.read_text())
            files.append(path.name)
        in_process, isolated = [], []
        for _ in range(args.runs):
            in_process.append(wall_time([cnnlint, *files, "-t", "t4", "--no-isolate"], folder))
            isolated.append(wall_time([cnnlint, *files, "-t", "t4", "--isolate"], folder))
    a, b = statistics.median(in_process), statistics.median(isolated)
    print(f"{args.models} models, {args.runs} runs each, alternating")
    print(f"in-process (--no-isolate): median {a:.2f} s")
    print(f"isolated   (--isolate):    median {b:.2f} s")
    print(f"isolation costs {(b - a) / args.models * 1e3:+.0f} ms per model (ratio {b / a:.2f})")


if __name__ == "__main__":
    main()
