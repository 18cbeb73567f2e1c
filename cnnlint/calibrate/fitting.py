"""The fit: ``scipy.optimize.least_squares`` on log time for the cost model's kernel time
``max(flops / rate[op class], bytes / bandwidth) + overhead`` (soft-L1 loss, so a sample disturbed
by another process does not drag the fit). ``peak`` is the best rate any dense class attained; an
op class's efficiency is its rate over that peak."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from cnnlint.calibrate.grid import Bench, KernelWork
from cnnlint.cost import roofline
from cnnlint.errors import CnnlintError
from cnnlint.ops import OP_CLASS_FALLBACK
from cnnlint.profile import OP_CLASSES, cached_bandwidth, small_gemm_factor

# Classes whose attained rate may define the device's peak (real matrix work).
DENSE_CLASSES = ("conv3x3", "conv1x1", "conv_kxk", "linear", "matmul")


class CalibrationError(CnnlintError):
    """The device or the options do not allow a calibration."""


@dataclass
class Sample:
    bench: Bench
    seconds: float
    kernels: list[KernelWork]

    @property
    def bytes_total(self) -> float:
        return sum(k.bytes for k in self.kernels)


@dataclass
class ClassFit:
    samples: int
    r2: float  # of log time, within the class
    median_error: float  # median |predicted / measured - 1|


@dataclass
class Fit:
    rates: dict[str, float]  # FLOP/s attained per op class
    bandwidth: float  # bytes/s
    overhead_s: float
    quality: dict[str, ClassFit]
    overall: ClassFit
    predicted: list[float] = field(default_factory=list)
    overheads_s: dict[str, float] = field(default_factory=dict)  # per op class, when fitted so
    cache: tuple[float, float] | None = None  # (bytes, bandwidth) of the cache, when fitted
    small_gemm: tuple[float, float, float] | None = None  # (half_k, half_n, half_m), when fitted (half_m 0: not)
    # bytes/s at which a conv of each class with stride > 1 gathers its input, where measured
    strided: dict[str, float] = field(default_factory=dict)
    # the share of its rate a class keeps with its channels off the granule, where measured
    unaligned: dict[str, float] = field(default_factory=dict)
    all_rates: dict[str, float] = field(default_factory=dict)  # every class's fitted rate, unidentified ones too
    model_overhead_s: float | None = None  # per kernel, in a model beyond a tight loop (measure_model_overhead)
    # bytes/s at which a kernel in a model reads the weights a tight loop keeps in cache (measure_model_overhead)
    cold_weights: float | None = None
    # bytes/s of the extra cost of a fresh output in a model (calibrate.run.fresh_output_speed), where measured
    fresh_output: float | None = None
    # the share of its output bytes an in-place kernel moves (calibrate.run.in_place_output_share), where measured
    in_place_output_share: float | None = None
    # seconds each output of a windowed pool or depthwise conv of the class costs beyond its taps, where measured
    output_costs: dict[str, float] = field(default_factory=dict)

    def predict(self, kernels: list[KernelWork]) -> float | None:
        """The fitted cost model's time for these kernels, a class the grid did not time costed
        as its fallback class (``OP_CLASS_FALLBACK``, as a profile would); None when a class
        has neither."""
        overheads = self.overheads_s or {c: self.overhead_s for c in OP_CLASSES}
        known = []
        for k in kernels:
            op_class = k.op_class if k.op_class in overheads else OP_CLASS_FALLBACK.get(k.op_class, "")
            if op_class not in overheads or (k.flops and op_class not in self.all_rates):
                return None
            known.append(replace(k, op_class=op_class))
        return predict(known, self.all_rates, self.bandwidth, overheads, self.cache, self.small_gemm, self.strided,
                       self.unaligned, self.fresh_output, self.output_costs)  # fmt: skip

    @property
    def peak(self) -> float:
        dense = [self.rates[c] for c in DENSE_CLASSES if c in self.rates]
        return max(dense or self.rates.values())

    def efficiency(self, op_class: str) -> float:
        return min(1.0, self.rates[op_class] / self.peak)


def predict(kernels: list[KernelWork], rates: dict[str, float], bandwidth: float,
            overhead: float | dict[str, float], cache: tuple[float, float] | None = None,
            small_gemm: tuple[float, ...] | None = None, strided: dict[str, float] | None = None,
            unaligned: dict[str, float] | None = None, fresh_output: float | None = None,
            output_costs: dict[str, float] | None = None) -> float:  # fmt: skip
    """The cost model's time: ``cnnlint.cost.roofline`` per kernel, with a fixed cost (one, or one
    per op class).

    ``cache``: (bytes, bandwidth): a kernel's first bytes, up to that size, move at its bandwidth
    (``cnnlint.profile.cached_bandwidth``).
    ``small_gemm``: (half_k, half_n[, half_m]) of ``Profile.small_gemm``.
    ``strided``: bytes/s per class at which a strided conv gathers its input
    (``Profile.strided_input_gbps``), on top of its roofline.
    ``unaligned``: per class, the share of its rate a kernel with channels off the granule keeps
    (``Profile.unaligned_efficiency``); a class left out keeps ``KernelWork.alignment``, its padding's.
    ``fresh_output``: bytes/s of the extra cost of a kernel's fresh output in a model
    (``Profile.fresh_output_s``), on top of its roofline.
    ``output_costs``: per class, seconds each output of a windowed pool or depthwise conv costs beyond its taps
    (``Profile.window_output_ns``), on top of its roofline.
    """
    total = 0.0
    for k in kernels:
        fixed = overhead[k.op_class] if isinstance(overhead, dict) else overhead
        speed = cached_bandwidth(k.bytes, bandwidth, *cache) if cache is not None else bandwidth
        flop_rate = _rate(k, rates, small_gemm, unaligned) if k.flops else float("inf")  # a class with no FLOPs may have no rate
        total += roofline(k.flops, flop_rate, k.bytes, speed, fixed)
        if k.strided_bytes and strided and k.op_class in strided:
            total += k.strided_bytes / strided[k.op_class]
        if fresh_output:
            total += k.fresh_output_bytes / fresh_output
        if k.window_outputs and output_costs and k.op_class in output_costs:
            total += k.window_outputs * output_costs[k.op_class]
    return total


def _rate(kernel: KernelWork, rates: dict[str, float], small_gemm: tuple[float, ...] | None,
          unaligned: dict[str, float] | None = None) -> float:  # fmt: skip
    alignment = kernel.alignment
    if alignment < 1 and unaligned and kernel.op_class in unaligned:
        alignment = unaligned[kernel.op_class]
    if not small_gemm:
        return rates[kernel.op_class] * alignment
    half_k, half_n, *half_m = small_gemm
    factor = small_gemm_factor(kernel.gemm_k, kernel.gemm_n, half_k, half_n, kernel.gemm_m, half_m[0] if half_m else 0.0)
    return rates[kernel.op_class] * factor * alignment


def fit(samples: list[Sample], per_class_overhead: bool = False, cache_bytes: float | None = None) -> Fit:
    """Least squares on log time for per-class rates, bandwidth and the per-kernel overhead.

    ``per_class_overhead``: one fixed cost per op class (an eager conv's dispatch and weight
    reorder cost far more than an add's) instead of one for every kernel. ``cache_bytes``: the
    last-level cache; kernels whose bytes fit in it get a bandwidth of their own (fitted).
    """
    import numpy as np
    from scipy.optimize import least_squares

    classes = sorted({k.op_class for s in samples for k in s.kernels if k.flops > 0})
    fixed_classes = sorted({k.op_class for s in samples for k in s.kernels}) if per_class_overhead else ["*"]
    measured = np.array([s.seconds for s in samples])
    n = len(classes)

    # A cache needs samples on both sides of its size to be measured.
    use_cache = cache_bytes is not None and len({s.bytes_total <= cache_bytes for s in samples}) == 2
    extra = 1 if use_cache else 0

    # How thin matrix products slow down needs conv/linear benchmarks of several shapes.
    use_gemm = len({(k.gemm_k, k.gemm_n) for s in samples for k in s.kernels if k.gemm_k}) >= 3
    # ... and how few rows (a 7 x 7 map, 50 tokens) slow it, rows of several sizes.
    use_rows = use_gemm and len({k.gemm_m for s in samples for k in s.kernels if k.gemm_k and k.gemm_m}) >= 3
    gemm_params = (3 if use_rows else 2) if use_gemm else 0
    fixed_at = n + 1 + extra
    # A strided conv's input gather, for each class timed both with stride 1 and above.
    gathered = _timed_both_ways(samples, lambda k: bool(k.strided_bytes))
    gather_at = fixed_at + len(fixed_classes)
    # The rate of a class with its channels off the granule, for each class timed both ways.
    misaligned = _timed_both_ways(samples, lambda k: k.alignment < 1)
    unaligned_at = gather_at + len(gathered)
    # A windowed op's cost per output beyond its taps, for each class timed at two window sizes.
    windowed = _two_window_sizes(samples)
    windowed_at = unaligned_at + len(misaligned)

    def unpack(theta: np.ndarray):
        values = np.exp(theta)
        fixed = dict(zip(fixed_classes, (float(v) for v in values[fixed_at : fixed_at + len(fixed_classes)])))
        cache = (cache_bytes, float(values[n + 1])) if use_cache else None
        gemm = None
        if use_gemm:
            halves = [float(v) for v in values[len(values) - gemm_params:]]
            gemm = (halves[0], halves[1], halves[2] if use_rows else 0.0)
        gather = dict(zip(gathered, (float(v) for v in values[gather_at : gather_at + len(gathered)])))
        off = dict(zip(misaligned, (float(v) for v in values[unaligned_at : unaligned_at + len(misaligned)])))
        per_output = dict(zip(windowed, (float(v) for v in values[windowed_at : windowed_at + len(windowed)])))
        return (dict(zip(classes, values[:n])), float(values[n]),
                fixed if per_class_overhead else fixed["*"], cache, gemm, gather, off, per_output)  # fmt: skip

    def residuals(theta: np.ndarray) -> np.ndarray:
        rates, bandwidth, overhead, cache, gemm, gather, off, per_output = unpack(theta)
        predicted = np.array([predict(s.kernels, rates, bandwidth, overhead, cache, gemm, gather, off,
                                      output_costs=per_output)
                              for s in samples])  # fmt: skip
        return np.log(predicted) - np.log(measured)

    # Start from what each sample alone would say: its FLOP/s, its bytes/s, the fastest call.
    def median_rate(per_sample: Callable[[Sample], float], keep: Callable[[Sample], bool]) -> float:
        values = [per_sample(s) for s in samples if keep(s)]
        return float(np.median(values)) if values else 1e9

    start_rates = [
        median_rate(lambda s: sum(k.flops for k in s.kernels) / s.seconds,
                    lambda s, c=c: s.bench.op_class == c)  # fmt: skip
        for c in classes
    ]
    start_bw = median_rate(lambda s: sum(k.bytes for k in s.kernels) / s.seconds,
                           lambda s: s.bench.op_class in ("elementwise", "other"))  # fmt: skip
    # Half-rate points from a fraction of a channel (no effect) to 10,000.
    # Gather bandwidths from 10 MB/s to 10 TB/s (no effect). Unaligned shares from 2% to 1. A windowed
    # op's cost per output from a thousandth of a nanosecond (no effect) to 10 us.
    lower = np.log([1e6] * n + [1e7] * (1 + extra) + [1e-8] * len(fixed_classes) + [1e7] * len(gathered)
                   + [0.02] * len(misaligned) + [1e-12] * len(windowed) + [1e-2] * gemm_params)  # fmt: skip
    upper = np.log([1e17] * n + [1e14] * (1 + extra) + [1e-2] * len(fixed_classes) + [1e13] * len(gathered)
                   + [1.0] * len(misaligned) + [1e-5] * len(windowed) + [1e4] * gemm_params)  # fmt: skip
    # Two starts, the better fit kept (the loss has local minima, e.g. every element-wise op on
    # a too-low bandwidth): one fixed cost for all, half the fastest call; and each class's own,
    # half its fastest call.
    fastest = {c: min((s.seconds for s in samples if {k.op_class for k in s.kernels} == {c}),
                      default=float(measured.min())) for c in fixed_classes}  # fmt: skip
    starts = [[float(measured.min()) / 2] * len(fixed_classes),
              [fastest[c] / 2 if per_class_overhead else float(measured.min()) / 2 for c in fixed_classes]]  # fmt: skip
    result = None
    for start_overhead in starts:
        theta0 = np.clip(np.log([*start_rates, start_bw, *[start_bw] * extra, *start_overhead,
                                 *[start_bw] * len(gathered), *[0.9] * len(misaligned), *[1e-9] * len(windowed),
                                 *[8.0] * gemm_params]),
                         lower + 1e-6, upper - 1e-6)  # fmt: skip
        tried = least_squares(residuals, theta0, bounds=(lower, upper), loss="soft_l1", f_scale=0.1,
                              x_scale=1.0, diff_step=1e-3)  # fmt: skip
        if result is None or tried.cost < result.cost:
            result = tried
    rates, bandwidth, overhead, cache, gemm, gather, off, per_output = unpack(result.x)
    all_rates = dict(rates)
    predicted = [predict(s.kernels, rates, bandwidth, overhead, cache, gemm, gather, off, output_costs=per_output)
                 for s in samples]  # fmt: skip
    # A gather worth under 2% of the strided convs' time is not measured (any faster one fits), nor
    # is a windowed op's cost per output worth under 2% of its class's time.
    gather = {c: speed for c, speed in gather.items()
              if _term_share(samples, c, lambda k, v=speed: k.strided_bytes / v, predicted) >= 0.02}  # fmt: skip
    per_output = {c: seconds for c, seconds in per_output.items()
                  if _term_share(samples, c, lambda k, v=seconds: k.window_outputs * v, predicted) >= 0.02}  # fmt: skip
    # A class whose every sample sat on the memory slope says nothing about its compute rate
    # (any rate above a bound fits): it is not measured, and never defines the peak.
    fastest_bandwidth = max(bandwidth, cache[1] if cache else 0)

    def compute_bound(k: KernelWork, flop_rate: float) -> bool:
        return k.flops / flop_rate >= k.bytes / fastest_bandwidth

    identified = {k.op_class for s in samples for k in s.kernels
                  if k.flops and compute_bound(k, _rate(k, rates, gemm, off))}  # fmt: skip
    rates = {c: r for c, r in rates.items() if c in identified}
    # ... nor do a class's unaligned samples about its unaligned rate, unless one is compute-bound
    # at the aligned rate (a classifier's 1000 outputs at batch 1 are bound by its weights; a low
    # enough share would make any sample compute-bound).
    off = {c: share for c, share in off.items()
           if c in rates and any(k.op_class == c and k.alignment < 1 and k.flops
                                 and compute_bound(k, _rate(replace(k, alignment=1.0), all_rates, gemm))
                                 for s in samples if _only(s, c) for k in s.kernels)}  # fmt: skip
    if not rates:
        raise CalibrationError("no microbenchmark was compute-bound, so no compute rate can be fitted; "
                               "the device looks memory- or launch-bound at every size measured.")  # fmt: skip
    quality = {}
    for op_class in sorted({s.bench.op_class for s in samples}):
        members = [i for i, s in enumerate(samples) if s.bench.op_class == op_class]
        quality[op_class] = _quality([predicted[i] for i in members], [samples[i].seconds for i in members])
    shared = overhead if isinstance(overhead, float) else overhead.get("elementwise", min(overhead.values()))
    return Fit(rates, bandwidth, shared, quality, _quality(predicted, list(measured)), predicted,
               overhead if isinstance(overhead, dict) else {}, cache, gemm, gather, off, all_rates,
               output_costs=per_output)  # fmt: skip


def _timed_both_ways(samples: list[Sample], marked: Callable[[KernelWork], bool]) -> list[str]:
    """The classes with at least two microbenchmarks of the class alone whose kernel is ``marked``
    (a stride above 1, channels off the granule) and two whose kernel is not: those a term for
    the mark can be fitted for."""
    classes = {k.op_class for s in samples for k in s.kernels if marked(k)}
    return sorted(c for c in classes
                  if min(sum(1 for s in samples if _only(s, c) and mark == any(marked(k) for k in s.kernels))
                         for mark in (True, False)) >= 2)  # fmt: skip


def _only(sample: Sample, op_class: str) -> bool:
    """Whether every kernel of the sample is of this class (a microbenchmark of one op)."""
    return all(k.op_class == op_class for k in sample.kernels)


def _two_window_sizes(samples: list[Sample]) -> list[str]:
    """The classes with microbenchmarks of the class alone at two window sizes or more (taps an
    output), at least two of each: those whose cost per output can be told from their cost per tap."""
    sizes: dict[str, dict[float, int]] = {}
    for s in samples:
        for k in s.kernels:
            if k.window_outputs and _only(s, k.op_class):
                taps = sizes.setdefault(k.op_class, {})
                size = round(k.flops / k.window_outputs)
                taps[size] = taps.get(size, 0) + 1
    return sorted(c for c, taps in sizes.items() if sum(1 for count in taps.values() if count >= 2) >= 2)


def _term_share(samples: list[Sample], op_class: str, seconds: Callable[[KernelWork], float],
                predicted: list[float]) -> float:  # fmt: skip
    """The median share of their predicted time that a term (``seconds`` of each kernel) takes in
    the samples of a class alone where it is not 0."""
    import numpy as np

    shares = [total / p for s, p in zip(samples, predicted) if _only(s, op_class)
              for total in [sum(seconds(k) for k in s.kernels)] if total]  # fmt: skip
    return float(np.median(shares)) if shares else 0.0


@dataclass
class Knee:
    """The cache as the memory sweep found it: the working set an element-wise op keeps in it,
    and the bandwidths of the bytes within it and beyond it (``cnnlint.profile.cached_bandwidth``)."""

    cache_bytes: float
    cache_bandwidth: float  # bytes/s, the first cache_bytes of a kernel
    bandwidth: float  # bytes/s, the bytes beyond them
    overhead_s: float
    points: list[tuple[float, float]]  # (bytes, seconds) of each sweep sample


# A fall in bandwidth smaller than this is no cache edge (noise on a shared machine is ~10%).
MIN_KNEE_RATIO = 1.3


def find_knee(samples: list[Sample]) -> Knee | None:
    """Fit ``seconds = overhead + min(bytes, cache) / fast + max(bytes - cache, 0) / slow`` to the
    memory sweep: the cache's size and both bandwidths, the size free to lie between the sweep's
    points. None when the sweep shows no fall of at least ``MIN_KNEE_RATIO`` (no cache edge in
    the range swept, or all of it in one level), or has fewer than two points on either side of
    the edge (beyond it: by a quarter of their bytes)."""
    import numpy as np
    from scipy.optimize import least_squares

    points = sorted((s.bytes_total, s.seconds) for s in samples)
    if len(points) < 3:
        return None
    size = np.array([p[0] for p in points])
    seconds = np.array([p[1] for p in points])

    def residuals(theta: np.ndarray) -> np.ndarray:
        overhead, fast, slow, cache = np.exp(theta)
        moving = np.minimum(size, cache) / fast + np.maximum(size - cache, 0.0) / slow
        return np.log(overhead + moving) - np.log(seconds)

    rate = size / seconds
    best = None
    # Starts at each gap between the sweep's sizes (the loss is flat in the cache's size between
    # two points when the fall is sharp), the best fit kept.
    for split in range(1, len(points)):
        theta0 = np.log([seconds.min() / 10, rate[:split].max(), rate[split:].min(), np.sqrt(size[split - 1] * size[split])])
        bounds = (np.log([1e-9, 1e6, 1e6, size[0] / 4]), np.log([1.0, 1e14, 1e14, size[-1] * 4]))
        result = least_squares(residuals, np.clip(theta0, bounds[0] + 1e-6, bounds[1] - 1e-6), bounds=bounds)
        if best is None or result.cost < best.cost:
            best = result
    overhead, fast, slow, cache = (float(v) for v in np.exp(best.x))
    # Each bandwidth from two points at least, each beyond the edge by a quarter of its bytes: with
    # one, any bandwidth fits there (the edge lands just below the largest point, or a hair below
    # the next one).
    beyond = int(((size - cache) >= size / 4).sum())
    if fast < MIN_KNEE_RATIO * slow or int((size <= cache).sum()) < 2 or beyond < 2:
        return None
    return Knee(cache, fast, slow, overhead, points)


def _quality(predicted: list[float], measured: list[float]) -> ClassFit:
    import numpy as np

    p, m = np.log(predicted), np.log(measured)
    total = float(((m - m.mean()) ** 2).sum())
    r2 = 1 - float(((m - p) ** 2).sum()) / total if total > 0 else float("nan")
    errors = np.abs(np.array(predicted) / np.array(measured) - 1)
    return ClassFit(len(measured), r2, float(np.median(errors)))
