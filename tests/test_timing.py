"""Timing holds freed memory (``cnnlint.timing.hold_freed_memory``): with glibc's own settings a
model's forward can hand its activations back to the kernel when they are freed and page-fault
them in again at the next call, so that what a forward costs depends on what the process ran
before. calibrate and ``--measure`` time under one setting, the steady state the cost model
prices. Each case runs in a fresh process, since the setting is process-wide and kept.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest
import torch

pytest.importorskip("torchvision")

PROBE = """
import json, sys, torch, torchvision
from cnnlint.timing import Timer, minor_faults
held = False
if sys.argv[1] == "timer":  # what calibrate and --measure build before they time anything
    held = Timer("cpu", torch.float32, 0.01).memory_held
torch.set_num_threads(1)
model = torchvision.models.mobilenet_v2().eval()
x = torch.randn(1, 3, 224, 224)
counts = []
with torch.inference_mode():
    for _ in range(10):
        before = minor_faults()
        model(x)
        counts.append(minor_faults() - before)
print(json.dumps({"held": held, "faults": counts}))
"""


def _faults(mode: str) -> dict:
    run = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_timer_holds_freed_memory_so_a_forward_stops_page_faulting():
    timed = _faults("timer")
    if not timed["held"]:
        pytest.skip("the C library is not glibc: nothing to hold")
    # Once its activations have been allocated (the first calls), a forward maps no new page; the
    # median, as a timer takes it, since the kernel may still unmap a page now and then.
    assert timed["faults"][0] > 0
    assert statistics.median(timed["faults"][2:]) == 0
    # Under glibc's own settings the same forward in a fresh process keeps faulting at every call:
    # the time a benchmark would see includes mapping its activations in again.
    default = _faults("default")
    assert not default["held"]
    assert statistics.median(default["faults"][2:]) > 500


class _ColdWeights(torch.nn.Module):
    """96 linear layers of 1 MiB of weights each, on one row: 96 MiB, more than a last-level
    cache holds, so that inside the forward each layer reads its weights from memory, and at once
    again from cache."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(*[torch.nn.Linear(512, 512, bias=False) for _ in range(96)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class _InCache(torch.nn.Module):
    """96 ReLUs on 16 KiB: nothing in it leaves the core's caches."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(96):
            x = torch.relu(x)
        return x


def test_the_timer_measures_what_an_op_takes_inside_a_forward_beyond_alone():
    """``Timer.in_model_extras_s``: each op timed where the forward runs it against at once again.
    Layers whose weights the rest of the forward evicts take longer inside it; ops that stay in
    cache take no longer."""
    import time

    from cnnlint.timing import Timer

    torch.set_num_threads(1)
    timer = Timer("cpu", torch.float32, 0.01, clock=time.process_time)
    cold_ops = timer.in_model_extras_s(_ColdWeights, [(1, 512)])
    warm_ops = timer.in_model_extras_s(_InCache, [(1, 4096)])
    assert len(cold_ops) == len(warm_ops) == 96  # every op, by its fx node's name
    cold, warm = sum(cold_ops.values()) / 96, sum(warm_ops.values()) / 96
    # 1 MiB from memory rather than cache: at 100 GB/s against 20, 40 us more; at the least 5
    assert cold > 5e-6, cold
    assert abs(warm) < cold / 4, (warm, cold)
