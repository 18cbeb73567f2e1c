"""Wall time and peak RSS of one child process, measured for that process alone (os.wait4)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass


@dataclass
class Measured:
    wall_s: float
    cpu_s: float  # user + system time of the child
    peak_rss_mib: float
    returncode: int
    stdout: str
    stderr: str


def measure(command: list[str], cwd: str | None = None) -> Measured:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        # ru_maxrss is in KiB on Linux.
        return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode,
                        out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def wall_time(command: list[str], cwd: str | None = None) -> float:
    """Seconds one run of ``command`` takes; a crash (exit code above 1) stops the benchmark."""
    run = measure(command, cwd)
    if run.returncode not in (0, 1):
        raise SystemExit(f"{command[0]} failed ({run.returncode}):\n{run.stderr[-2000:]}")
    return run.wall_s
