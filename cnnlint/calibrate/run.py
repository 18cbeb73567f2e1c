"""A calibration run: check the device, time every microbenchmark on it (:mod:`cnnlint.timing`,
the timer ``--measure`` uses too), count its kernels, fit them, and time the ops of the model-like
chains inside them."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from math import prod
from pathlib import Path
from typing import Any

import torch

from cnnlint.calibrate.fitting import CalibrationError, Fit, Knee, Sample, find_knee, fit
from cnnlint.calibrate.grid import (Bench, FreshOutputPair, InPlacePair, benchmark_grid, counted_work,
                                   fresh_output_pairs, in_place_pairs, memory_sweep, model_chains)
from cnnlint.core import BYTES_PER_ELEMENT
from cnnlint.ops import FUSED_ROLES
from cnnlint.profile import Profile, load_profile
from cnnlint.timing import DTYPES, Timer
from cnnlint.timing import check_device as check_torch_device

DEFAULT_BASE = {"cpu": "arm-cpu", "cuda": "t4"}
# The CPU profile whose layout (channel granule), rule settings and unmeasured classes fit the
# vector ISA torch dispatches to on this machine (torch.backends.cpu.get_cpu_capability()):
# oneDNN blocks channels by 16 on AVX-512 and by 8 on AVX2 (the x86 profiles cite it); anything
# else (NEON, SVE, a build without x86 kernels) keeps the default.
CPU_BASE_BY_CAPABILITY = {"AVX512": "x86-avx512", "AVX2": "x86-avx2"}
# Torch eager runs every op as its own kernel: nothing is fused.
EAGER_FUSION = {role: False for role in FUSED_ROLES}
# Seconds of timing each grid aims at: default < 2 min and --quick < 20 s on 2 CPU cores,
# including tracing and fitting.
BUDGET_S = {"full": 60.0, "quick": 8.0, "tiny": 2.0}
# A memory-sweep add that takes more than this share of its tensors' pages in page faults a call
# is left out of the cache fit: past glibc's heap (32 MiB a block while calibrate holds freed
# memory, and less in a thread's arena) its tensors are mapped in fresh at each call. On one
# thread of an AMD EPYC (Zen 4) VM the 128 MiB add took 10,900 faults a call and ran at 5.8 GB/s
# against 26-33 GB/s without; fitted, it put the cache edge at 87 MiB and the memory at 1.8 GB/s.
FAULTING_SHARE = 0.01


def default_base(device: str) -> str:
    """The built-in profile a calibration on ``device`` extends when no --base is given."""
    if device == "cpu":
        capability = torch.backends.cpu.get_cpu_capability()
        return CPU_BASE_BY_CAPABILITY.get(capability, DEFAULT_BASE["cpu"])
    return DEFAULT_BASE[device]


@dataclass
class Calibration:
    device: str
    precision: str
    base: Profile
    fit: Fit
    samples: list[Sample]
    device_name: str
    threads: int
    seconds: float
    skipped: list[str]
    base_ref: str = ""  # the --base as given: a built-in name or a path
    clock: str = "wall"
    knee: Knee | None = None  # the cache edge the memory sweep found (CPU)
    reported_cache: float | None = None  # bytes, as the OS or driver reports the last-level cache
    grid: str = "full"  # the grid timed (benchmark_grid, model_chains)
    # per model-like chain (model_chains order), the seconds each of its ops took inside its forward
    # beyond alone, by fx node name (Timer.in_model_extras_s)
    chain_extra_seconds: list[dict[str, float]] = field(default_factory=list)
    # (freed, kept alive) seconds of each fresh_output_pairs(grid) pair that ran (CPU), by label
    fresh_output_seconds: dict[str, tuple[float, float]] = field(default_factory=dict)
    # (new tensor, in place) seconds of each in_place_pairs(grid) pair that ran (CPU), by label
    in_place_seconds: dict[str, tuple[float, float]] = field(default_factory=dict)
    memory_held: bool = False  # the allocator kept freed memory while timing (timing.hold_freed_memory)


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_bytes(device: str) -> float | None:
    """The last-level cache: the GPU's L2, or the CPU's largest cache (as Linux reports it)."""
    if device == "cuda":
        size = getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 0)
        return float(size) or None
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (index / "size").read_text().strip()
        except OSError:
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return float(max(sizes)) if sizes else None


def check_device(device: str, precision: str) -> None:
    check_torch_device(device)
    if precision not in BYTES_PER_ELEMENT:
        raise CalibrationError(
            f"--precision {precision}: not a profile precision yet (profiles know "
            f"{', '.join(BYTES_PER_ELEMENT)}), so there is no slot to write it to."
        )


def calibrate(
    device: str = "cpu",
    precision: str = "fp32",
    base: str | None = None,
    grid: str = "full",
    progress: Callable[[int, int, str], None] | None = None,
    threads: int | None = None,
    clock: str = "wall",
    passes: int = 1,
    hold_memory: bool = True,
) -> Calibration:
    """Time the grid (``passes`` times, each benchmark's time the median of its passes: a burst
    of load on a shared machine then disturbs one pass of a benchmark, not its time), fit it,
    and time the model-like chains' ops inside them. ``hold_memory``: on CPU, keep freed memory
    in the process while timing (``cnnlint.timing.hold_freed_memory``), as ``--measure`` times
    models."""
    check_device(device, precision)
    if threads:
        torch.set_num_threads(threads)
    if clock == "process" and (device != "cpu" or torch.get_num_threads() != 1):
        raise CalibrationError("--clock process measures one CPU thread's work: use it with "
                               "--device cpu --threads 1.")  # fmt: skip
    started = time.perf_counter()
    base = base or default_base(device)
    base_profile = load_profile(base)
    cost_profile = _costing_profile(base_profile, precision)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # as deployed eager models usually run
    sweep = memory_sweep(grid) if device == "cpu" else []
    benches = benchmark_grid(grid, device) + sweep
    first_swept = len(benches) - len(sweep)
    timer = Timer(device, DTYPES[precision], BUDGET_S[grid] / len(benches),
                  clock=time.process_time if clock == "process" else time.perf_counter,
                  hold_memory=hold_memory)  # fmt: skip
    skipped: list[str] = []
    timings: dict[int, list[float]] = {}
    chains = model_chains(grid)
    chain_extras: list[list[dict[str, float]]] = [[] for _ in chains]
    pairs = fresh_output_pairs(grid) if device == "cpu" else []
    pair_times: dict[str, list[tuple[float, float]]] = {pair.label: [] for pair in pairs}
    in_place = in_place_pairs(grid) if device == "cpu" else []
    in_place_times: dict[str, list[tuple[float, float]]] = {pair.label: [] for pair in in_place}
    for done in range(passes):
        for i, bench in enumerate(benches):
            if progress:
                progress(done * len(benches) + i, passes * len(benches), bench.label)
            if done and i not in timings:
                continue  # skipped in the first pass
            try:
                seconds = timer.median_s(bench.make, bench.inputs)
            except (RuntimeError, NotImplementedError) as exc:  # e.g. no fp16 kernel for this op on CPU
                skipped.append(f"{bench.label}: {str(exc).splitlines()[0][:100]}")
                continue
            pages = 3 * prod(bench.inputs[0]) * DTYPES[precision].itemsize / 4096 if i >= first_swept else 0
            if pages and timer.faults_per_call > FAULTING_SHARE * pages:
                # The allocator mapped the add's tensors in fresh at each call (one past glibc's
                # heap): its time is page faults, not the bandwidth the sweep measures.
                skipped.append(f"{bench.label}: {timer.faults_per_call:.0f} page faults a call, "
                               "left out of the cache fit")  # fmt: skip
                continue
            timings.setdefault(i, []).append(seconds)
        # The chains in every pass too: one burst of load while they ran moved the per-kernel
        # overhead 4x between two calibrations minutes apart (18 and 74 us on a 2-core Xeon VM).
        for extras, chain in zip(chain_extras, chains):
            extras.append(timer.in_model_extras_s(chain.wrapped, chain.inputs))
        _time_both_ways(timer, pairs, lambda pair: pair.kept, pair_times, skipped)
        _time_both_ways(timer, in_place, lambda pair: pair.in_place, in_place_times, skipped)
    samples = [Sample(benches[i], statistics.median(times), counted_work(benches[i], cost_profile, precision))
               for i, times in timings.items()]  # fmt: skip
    if progress:
        progress(passes * len(benches), passes * len(benches), "fitting")
    if len(samples) < 4:
        raise CalibrationError(
            f"calibration on {device} at {precision}: only {len(samples)} of {len(benches)} "
            f"microbenchmarks ran ({'; '.join(skipped[:3])}); too few to fit."
        )
    # A fixed cost per op class; a cache with its own bandwidth, only on a CPU (on an H200 the L2
    # split left the rates unidentified: peak fitted at 17 PFLOP/s), at the size where the memory
    # sweep's bandwidth fell: what the OS reports can be a host's cache, or none of this core's
    # (a 2-core VM reporting 480 MiB fitted no DRAM bandwidth at all).
    labels = {b.label for b in sweep}
    knee = find_knee([s for s in samples if s.bench.label in labels]) if sweep else None
    fitted = fit(samples, per_class_overhead=True, cache_bytes=knee.cache_bytes if knee else None)
    chain_extra_seconds = [_median_by_op(extras) for extras in chain_extras]
    pair_seconds = {label: _median_pair(times) for label, times in pair_times.items()}
    fitted.fresh_output = fresh_output_speed(pair_seconds, precision)
    in_place_seconds = {label: _median_pair(times) for label, times in in_place_times.items()}
    fitted.in_place_output_share = in_place_output_share(in_place_seconds, fitted)
    fitted.model_overhead_s, fitted.cold_weights = measure_model_overhead(
        cost_profile, precision, grid, chain_extra_seconds, fitted.cache[0] if fitted.cache else None)
    return Calibration(device, precision, base_profile, fitted, samples, device_name(device),
                       torch.get_num_threads(), time.perf_counter() - started, skipped,
                       base, clock, knee, cache_bytes(device), grid, chain_extra_seconds, pair_seconds,
                       in_place_seconds, timer.memory_held)  # fmt: skip


def _time_both_ways(timer: Timer, pairs: list[FreshOutputPair] | list[InPlacePair],
                    other: Callable[[Any], Bench], times: dict[str, list[tuple[float, float]]],
                    skipped: list[str]) -> None:  # fmt: skip
    """One pass over ``pairs``: each pair's ``plain`` benchmark and its ``other`` one, back to back
    (one machine state), appended to ``times`` by label. A pair whose op has no kernel at this
    precision is dropped from ``times`` for the passes after, and said in ``skipped``."""
    for pair in pairs:
        if pair.label not in times:
            continue  # failed in an earlier pass
        second = other(pair)
        try:
            times[pair.label].append((timer.median_s(pair.plain.make, pair.plain.inputs),
                                      timer.median_s(second.make, second.inputs)))  # fmt: skip
        except (RuntimeError, NotImplementedError) as exc:
            del times[pair.label]
            skipped.append(f"{pair.plain.label}: {str(exc).splitlines()[0][:100]}")


def _merged_pairs(calibrations: list[Calibration], field_name: str) -> dict[str, tuple[float, float]]:
    """The median of each pair's two times over ``calibrations`` (their ``field_name``: seconds by
    label), for the labels every one of them timed."""
    each = [getattr(c, field_name) for c in calibrations]
    return {label: _median_pair([seconds[label] for seconds in each]) for label in each[0]
            if all(label in seconds for seconds in each)}  # fmt: skip


def _median_pair(times: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def fresh_output_speed(seconds: dict[str, tuple[float, float]], precision: str = "fp32",
                       pairs: list[FreshOutputPair] | None = None) -> float | None:  # fmt: skip
    """Bytes/s of what a fresh output costs a kernel in a model beyond a benchmark's time: the
    median over the pairs timed (``seconds``: (freed, kept alive) by label; ``pairs``: what the
    labels name, the full grid's by default) of output bytes over the extra time; None when no
    pair ran, or keeping outputs alive cost nothing (a cache that holds them all)."""
    width = BYTES_PER_ELEMENT[precision]
    by_label = {pair.label: pair for pair in (pairs if pairs is not None else fresh_output_pairs("full"))}
    extra = [(kept - freed) / (by_label[label].elements * width) for label, (freed, kept) in seconds.items()]
    per_byte = statistics.median(extra) if extra else 0.0
    return 1.0 / per_byte if per_byte > 0 else None


def in_place_output_share(seconds: dict[str, tuple[float, float]], fit: Fit,
                          pairs: list[InPlacePair] | None = None) -> float | None:
    """The share of its output bytes an in-place kernel moves against one writing a new tensor
    (``memory.in_place_output_share``): for each pair timed (``seconds``: (new tensor, in place)
    by label; ``pairs``: what the labels name, the full grid's by default), both times less the
    element-wise class's fitted fixed cost are bytes over one speed, the new tensor's
    ``(inputs + output)``, the in-place one's ``(inputs + share x output)``; the median share,
    within [0, 1]. None when no pair ran or a time is within the fixed cost."""
    fixed = fit.overheads_s.get("elementwise", fit.overhead_s)
    by_label = {pair.label: pair for pair in (pairs if pairs is not None else in_place_pairs("full"))}
    shares = []
    for label, (plain, in_place) in seconds.items():
        pair = by_label[label]
        if plain <= fixed or in_place <= fixed:
            continue
        moved = (in_place - fixed) / (plain - fixed) * (pair.operands + 1)  # in output sizes
        shares.append(min(1.0, max(0.0, moved - pair.operands)))
    return statistics.median(shares) if shares else None


def merge(calibrations: list[Calibration]) -> Calibration:
    """One calibration from several of the same device and grid taken at different times (between
    rounds of model timings, so that both see the machine in the same states): each benchmark's
    and each chain's extra time the median of theirs, fitted again as ``calibrate`` fits one."""
    first = calibrations[0]
    if len(calibrations) == 1:
        return first

    def keyed(cal: Calibration) -> dict[tuple[str, int], Sample]:  # a label the grid times twice, twice
        seen: dict[str, int] = {}
        keys = {}
        for sample in cal.samples:
            seen[sample.bench.label] = seen.get(sample.bench.label, -1) + 1
            keys[(sample.bench.label, seen[sample.bench.label])] = sample
        return keys

    each = [keyed(cal) for cal in calibrations]
    samples = [replace(s, seconds=statistics.median(e[key].seconds for e in each))
               for key, s in each[0].items() if all(key in e for e in each)]  # fmt: skip
    chain_extra_seconds = [_median_by_op([c.chain_extra_seconds[i] for c in calibrations])
                           for i in range(len(first.chain_extra_seconds))]  # fmt: skip
    pair_seconds = _merged_pairs(calibrations, "fresh_output_seconds")
    labels = {b.label for b in memory_sweep(first.grid)} if first.device == "cpu" else set()
    knee = find_knee([s for s in samples if s.bench.label in labels]) if labels else None
    fitted = fit(samples, per_class_overhead=True, cache_bytes=knee.cache_bytes if knee else None)
    fitted.fresh_output = fresh_output_speed(pair_seconds, first.precision)
    in_place_seconds = _merged_pairs(calibrations, "in_place_seconds")
    fitted.in_place_output_share = in_place_output_share(in_place_seconds, fitted)
    profile = _costing_profile(first.base, first.precision)
    if chain_extra_seconds:
        fitted.model_overhead_s, fitted.cold_weights = measure_model_overhead(
            profile, first.precision, first.grid, chain_extra_seconds, fitted.cache[0] if fitted.cache else None)
    return replace(first, fit=fitted, samples=samples, knee=knee, chain_extra_seconds=chain_extra_seconds,
                   fresh_output_seconds=pair_seconds, in_place_seconds=in_place_seconds,
                   seconds=sum(c.seconds for c in calibrations),
                   skipped=sorted({line for c in calibrations for line in c.skipped}))  # fmt: skip


def _costing_profile(base: Profile, precision: str) -> Profile:
    """The base profile, allowed to cost ``precision`` (byte widths are all the fit needs; the
    peak and granule of a precision it lacks are its nearest one's, and are not used)."""
    if precision in base.precisions:
        return base
    nearest = nearest_precision(precision, base)
    return base.model_copy(update={
        "precisions": [*base.precisions, precision],
        "peak_tflops": {**base.peak_tflops, precision: base.peak_tflops[nearest]},
        "channel_granule": {**base.channel_granule, precision: base.channel_granule[nearest]},
    })  # fmt: skip


def nearest_precision(precision: str, base: Profile) -> str:
    """The precision of ``base`` whose tiles ``precision`` shares: fp16 for bf16, else its default."""
    return "fp16" if precision == "bf16" and "fp16" in base.precisions else base.default_precision


def _median_by_op(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each op's median over several measures of a chain (passes, or calibrations merged)."""
    return {name: statistics.median(run[name] for run in runs if name in run) for name in runs[0]}


def measure_model_overhead(profile: Profile, precision: str, grid: str, extras: list[dict[str, float]],
                           cache_bytes: float | None = None) -> tuple[float, float | None]:  # fmt: skip
    """What running inside a model adds to the single-op times: (seconds per kernel, bytes per
    second at which a kernel reads the weights a loop on it keeps in cache, or None where the
    weights explained nothing). Fitted over every kernel cnnlint counts for the model-like
    chains: its op's time inside the forward beyond at once again (``extras``, by op, in
    ``model_chains(grid)`` order: ``Timer.in_model_extras_s``) as a fixed cost plus its weights,
    up to ``cache_bytes``, at that speed (``Profile.cold_weights_s``); least squares with a
    soft-L1 loss (one op's burst of noise does not move it), both terms at least 0."""
    import numpy as np
    from scipy.optimize import least_squares

    eager = profile.model_copy(update={"fusion": EAGER_FUSION})
    measured, weights = [], []
    for by_op, chain in zip(extras, model_chains(grid)):
        for kernel in counted_work(chain, eager, precision):
            if kernel.name in by_op:
                measured.append(by_op[kernel.name] * 1e6)
                weights.append(min(kernel.weight_bytes, cache_bytes or kernel.weight_bytes) / 2**20)
    if not measured:
        return 0.0, None
    extra_us, weight_mib = np.array(measured), np.array(weights)
    start = [max(float(np.median(extra_us)), 1.0), 10.0]  # us a kernel, us a MiB of weights
    fitted = least_squares(lambda x: x[0] + x[1] * weight_mib - extra_us, start, bounds=([0, 0], [np.inf, np.inf]),
                           loss="soft_l1", f_scale=10.0)  # fmt: skip
    per_kernel_us, us_per_mib = (float(v) for v in fitted.x)
    # at a bound, least squares stops a hair inside it: under a nanosecond is none
    speed = 2**20 / (us_per_mib * 1e-6) if us_per_mib > 1e-3 else None
    return (per_kernel_us * 1e-6 if per_kernel_us > 1e-3 else 0.0), speed


def threads_note() -> str:
    return f"{torch.get_num_threads()} threads (os.cpu_count() {os.cpu_count()})"
