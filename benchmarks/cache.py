"""What the result cache saves: whole `cnnlint` processes over the bundled example, uncached
(`--no-cache`) and answered from the cache, alternately; then a pre-commit-style run over files
that define no model, with the check that it never imported torch.

    python benchmarks/cache.py [--runs 7] [--files 20]

Target: a cached re-run over an unchanged model file in at most 0.3 s, whole process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from _measure import measure, wall_time

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mobilenet_v2_like.py"
TARGET_S = 0.3
NOT_A_MODEL = '''"""Helper {index}: data loading, no model."""

import json


class Record:
    def __init__(self, text):
        self.data = json.loads(text)
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--files", type=int, default=20)
    args = parser.parse_args()
    cnnlint = shutil.which("cnnlint") or sys.exit("cnnlint is not installed")
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "pyproject.toml").write_text('[tool.cnnlint]\ntarget = "t4"\n')
        shutil.copy(EXAMPLE, Path(folder, "model.py"))
        command = [cnnlint, "model.py", "--no-color"]
        wall_time(command, folder)  # fills the cache
        uncached, cached, floor = [], [], []
        # What any run pays before cnnlint does anything: Python and the libraries the command
        # line and its config need (on a loaded machine this, not cnnlint, dominates).
        baseline = [sys.executable, "-c", "import click, rich.console; from pydantic import BaseModel"]
        for _ in range(args.runs):
            uncached.append(wall_time([*command, "--no-cache"], folder))
            cached.append(wall_time(command, folder))
            floor.append(wall_time(baseline, folder))

        helpers = []
        for index in range(args.files):
            Path(folder, f"helper_{index:02d}.py").write_text(NOT_A_MODEL.format(index=index))
            helpers.append(f"helper_{index:02d}.py")
        hook = [sys.executable, "-X", "importtime", cnnlint, "--skip-files-without-models", *helpers]
        precommit = measure(hook, folder)
        env_imports = [line.rsplit("|", 1)[-1].strip() for line in precommit.stderr.splitlines()
                       if line.startswith("import time:")]  # fmt: skip

    a, b = statistics.median(uncached), statistics.median(cached)
    print(f"{EXAMPLE.name} on t4, {args.runs} runs each, alternating, whole process")
    print(f"uncached (--no-cache):  median {a:.3f} s")
    print(f"cached (unchanged):     median {b:.3f} s   target <= {TARGET_S} s: "
          f"{'met' if b <= TARGET_S else 'NOT met'}; {a / b:.0f}x faster")  # fmt: skip
    torch_loaded = any(m == "torch" or m.startswith("torch.") for m in env_imports)
    print(f"floor (python -c 'import click, rich.console; from pydantic import BaseModel'): median "
          f"{statistics.median(floor):.3f} s")
    print(f"pre-commit run over {args.files} files defining no model: {precommit.wall_s:.3f} s, "
          f"exit {precommit.returncode}, imported torch: {'yes' if torch_loaded else 'no'}")
    if torch_loaded or precommit.returncode != 0:
        sys.exit(1)
    if os.environ.get("CNNLINT_BENCH_STRICT") and b > TARGET_S:
        sys.exit(1)


if __name__ == "__main__":
    main()
