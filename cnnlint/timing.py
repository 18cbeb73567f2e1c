"""Timing real kernels on this machine: one timer for ``cnnlint calibrate`` and ``--measure``.

A module is moved to the device and dtype, run once or twice to warm up (and to estimate one
call), then timed as the median of repeated samples; a sample is a back-to-back loop of calls,
timed with ``perf_counter`` on CPU and CUDA events (after a synchronize) on a GPU, so eager
dispatch and launch cost are in it, as they are in a model. Everything runs under
``torch.inference_mode``. ``Timer.in_model_extras_s`` times each op of a whole model where its
forward runs it against at once again: what running inside a model adds to an op's time alone.

On CPU, timing holds freed memory in the process (``hold_freed_memory``): with glibc's default
settings a forward pass can hand its activations back to the kernel when they are freed and
page-fault them in again at the next call, or not, depending on what ran before in the process
(the same model, timed after different ones: 0 or 2,300 faults a call, 15.6 or 20.3 ms). The cost
model prices a model's steady state, where the allocator reuses its memory, as jemalloc and
tcmalloc do (PyTorch's CPU performance tuning guide recommends either for inference).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from cnnlint.core import Shape
from cnnlint.errors import CnnlintError

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


# glibc's mallopt parameters (malloc.h) and the largest mmap threshold it accepts on a 64-bit
# system (half of HEAP_MAX_SIZE: 32 MiB, mallopt(3)).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 * 2**20
_TRIM_THRESHOLD_MAX = 2**31 - 1  # mallopt takes a C int


@functools.cache
def hold_freed_memory() -> bool:
    """Keep memory freed by this process for its next allocations, on glibc: blocks up to 32 MiB
    come from the heap, and the heap is not trimmed. Without it, glibc raises its mmap threshold
    only as large blocks are freed and trims the heap's top whenever it passes twice that, so a
    model's activations may be returned to the kernel after one call and page-faulted back at the
    next (about 2 us a 4 KiB page on an AMD EPYC VM). Returns whether the setting took (False where the
    C library is not glibc). Process-wide and kept: memory a timed model freed stays mapped."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl's mallopt does nothing
    except (OSError, AttributeError):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
                and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_MAX))  # fmt: skip


def minor_faults() -> int:
    """Page faults this process has taken that needed no disk (a fresh page mapped in)."""
    import resource  # POSIX only

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class DeviceError(CnnlintError):
    """The device asked for is not on this machine."""


def check_device(device: str) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: torch sees no CUDA GPU on this machine "
                          "(torch.cuda.is_available() is False); use --device cpu.")  # fmt: skip


def device_threads(device: str) -> str:
    """How the device runs: the GPU's name, or the CPU threads torch uses."""
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    threads = torch.get_num_threads()
    return f"{threads} thread{'s' if threads != 1 else ''}"


@dataclass
class Timer:
    device: str
    dtype: torch.dtype
    budget_per_bench_s: float
    warmup: int = 2
    min_repeats: int = 3
    max_repeats: int = 15
    clock: Callable[[], float] = time.perf_counter  # CPU only; time.process_time with 1 thread
    hold_memory: bool = True  # CPU: hold_freed_memory() before timing anything
    memory_held: bool = field(init=False, default=False)  # whether the setting took
    # CPU: minor page faults a call took in the last median_s's timed samples (fresh pages mapped in)
    faults_per_call: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.memory_held = self.device == "cpu" and self.hold_memory and hold_freed_memory()

    def median_s(self, make: Callable[[], nn.Module], inputs: Sequence[Shape]) -> float:
        """Median seconds per call of the module ``make`` builds, on random inputs of these
        shapes (each sample is a loop of back-to-back calls)."""
        module = make().to(self.device, self.dtype).eval()
        tensors = [torch.randn(s, device=self.device, dtype=self.dtype) for s in inputs]
        with torch.inference_mode():
            first = self._sample(module, tensors, 1)  # warm-up, and a first estimate
            for _ in range(self.warmup - 1):
                first = min(first, self._sample(module, tensors, 1))
            # Loop long enough that timer resolution and one stray interrupt do not matter.
            calls = max(1, min(1000, int(1e-3 / max(first, 1e-7))))
            per_sample = first * calls
            repeats = int(self.budget_per_bench_s / max(per_sample, 1e-9))
            repeats = max(self.min_repeats, min(self.max_repeats, repeats))
            before = minor_faults() if self.device == "cpu" else 0
            seconds = statistics.median(self._sample(module, tensors, calls) for _ in range(repeats))
            self.faults_per_call = (minor_faults() - before) / (calls * repeats) if self.device == "cpu" else 0.0
            return seconds

    def in_model_extras_s(self, make: Callable[[], nn.Module], inputs: Sequence[Shape],
                          forwards: int = 9) -> dict[str, float]:  # fmt: skip
        """Seconds each op of the module ``make`` builds takes inside its forward beyond its time
        alone, by fx node name: each op (a node that calls something) is timed where the forward
        runs it, then at once again on the same inputs, when its weights, its input and the
        library's code for its shape are in cache as a microbenchmark looping on one op finds
        them; per op the median of ``forwards`` forwards, after one to warm up, of the first
        less the median of the second. Both runs write a new tensor, so what an output written
        to fresh memory costs is not in it."""
        from torch import fx

        module = make().to(self.device, self.dtype).eval()
        tensors = [torch.randn(s, device=self.device, dtype=self.dtype) for s in inputs]
        graph = fx.symbolic_trace(module)
        times: dict[str, list[tuple[float, float]]] = {}
        sync = torch.cuda.synchronize if self.device == "cuda" else (lambda: None)
        clock = time.perf_counter if self.device == "cuda" else self.clock

        class Twice(fx.Interpreter):
            def run_node(self, node: fx.Node) -> object:
                if node.op not in ("call_module", "call_function", "call_method"):
                    return super().run_node(node)
                sync()
                begin = clock()
                result = super().run_node(node)
                sync()
                between = clock()
                super().run_node(node)  # its output discarded: the forward goes on with the first
                sync()
                times.setdefault(node.name, []).append((between - begin, clock() - between))
                return result

        runner = Twice(graph)
        with torch.inference_mode():
            runner.run(*tensors)
            times.clear()
            for _ in range(max(1, forwards)):
                runner.run(*tensors)
        return {name: statistics.median(first for first, _ in pairs) - statistics.median(again for _, again in pairs)
                for name, pairs in times.items()}  # fmt: skip

    def _sample(self, module: nn.Module, inputs: list[torch.Tensor], calls: int) -> float:
        if self.device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            for _ in range(calls):
                module(*inputs)
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) * 1e-3 / calls
        begin = self.clock()
        for _ in range(calls):
            module(*inputs)
        return (self.clock() - begin) / calls
