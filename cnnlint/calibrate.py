"""``cnnlint calibrate``: measure this device and write a profile that ``extends`` a built-in one.

A tool beside the pipeline: it runs real kernels, so it imports torch and (optionally) scipy.

1. Microbenchmarks: a grid of single-op modules (dense 3x3 / 1x1 / 5x5 / 7x7 convs, depthwise and
   group convs, element-wise ops, exp-based activations (SiLU, sigmoid, GELU), batch and layer
   norms, concat, windowed and global pooling, linear and matmul) over
   channels, resolutions and strides, plus small ones (late-stage maps, squeeze-excite 1x1s)
   whose time is each op class's fixed cost per call. Each is timed after warm-up as the median
   of repeated samples; a sample is a back-to-back loop of calls, timed with ``perf_counter`` on
   CPU and CUDA events (after a synchronize) on a GPU, so eager dispatch and launch cost are in
   it, as they are in a model
   (:mod:`cnnlint.timing`, the timer ``--measure`` uses too).
2. The same modules are traced through cnnlint's own trace, graph and cost stages, so each
   benchmark's FLOPs, bytes and op class are exactly what the cost model will count.
3. ``scipy.optimize.least_squares`` fits the cost model's kernel time
   ``max(flops / rate[op class], bytes / bandwidth) + overhead`` on log-time (soft-L1 loss, so a
   sample disturbed by another process does not drag the fit). ``peak`` is the best rate any
   dense class attained; an op class's efficiency is its rate over that peak.
4. The profile states only what was measured, each number with how it was measured, and the fit
   quality (R^2 of log time, median error) per op class as comments.
"""

from __future__ import annotations

import datetime
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from cnnlint.core import BYTES_PER_ELEMENT, Shape
from cnnlint.errors import CnnlintError
from cnnlint.ops import FUSED_ROLES, OP_CLASS_FALLBACK
from cnnlint.profile import OP_CLASSES, Profile, load_profile, small_gemm_factor
from cnnlint.timing import DTYPES, Timer
from cnnlint.timing import check_device as check_torch_device

EAGER_BATCH = {"cpu": 1, "cuda": 64}
DEFAULT_BASE = {"cpu": "arm-cpu", "cuda": "t4"}
# Torch eager runs every op as its own kernel: nothing is fused.
EAGER_FUSION = {role: False for role in FUSED_ROLES}
# Classes whose attained rate may define the device's peak (real matrix work).
DENSE_CLASSES = ("conv3x3", "conv1x1", "conv_kxk", "linear", "matmul")
# Seconds of timing each grid aims at: default < 2 min and --quick < 20 s on 2 CPU cores,
# including tracing and fitting.
BUDGET_S = {"full": 60.0, "quick": 8.0, "tiny": 2.0}


class CalibrationError(CnnlintError):
    """The device or the options do not allow a calibration."""


# ----------------------------------------------------------------------------- benchmark modules
class Add(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


class Mul(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * y


class Cat(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, y], 1)


class MatMul(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x @ y


class Unary(nn.Module):
    """A benchmark op as a submodule call, as in a model: the layer then owns the weights."""

    def __init__(self, op: nn.Module) -> None:
        super().__init__()
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Binary(Unary):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.op(x, y)


@dataclass(frozen=True)
class Bench:
    """One microbenchmark: a single-op module and its input shapes."""

    label: str
    op_class: str
    make: Callable[[], nn.Module]
    inputs: tuple[Shape, ...]


def _conv(label: str, op_class: str, c_in: int, c_out: int, k: int, size: int, stride: int = 1,
          groups: int = 1, batch: int = 1, bias: bool = False) -> Bench:  # fmt: skip
    def make() -> nn.Module:
        return nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=bias)

    return Bench(f"{label} {c_in}->{c_out} {size}px s{stride} n{batch}", op_class, make,
                 ((batch, c_in, size, size),))  # fmt: skip


def benchmark_grid(grid: str, device: str) -> list[Bench]:
    """The microbenchmark grid. ``grid``: full, quick, or tiny (tests)."""
    # (channels, resolution) pairs follow the stages of an ImageNet CNN at 224 px.
    stages = {
        "full": [(32, 112), (64, 56), (128, 28), (256, 14), (512, 7)],
        "quick": [(64, 56), (256, 14)],
        "tiny": [(32, 28)],
    }[grid]
    batches = [1, 32] if device == "cuda" and grid != "tiny" else [1]
    benches: list[Bench] = []
    for n in batches:
        for c, s in stages:
            benches += [
                _conv("conv3x3", "conv3x3", c, c, 3, s, batch=n),
                _conv("conv1x1", "conv1x1", c, 2 * c, 1, s, batch=n),
                _conv("depthwise3x3", "depthwise_conv", c, c, 3, s, groups=c, batch=n),
                _elementwise("add", Add, c, s, n),
            ]
            if grid == "tiny":
                continue
            benches += [
                _conv("conv3x3", "conv3x3", c, 2 * c, 3, s, stride=2, batch=n),
                _conv("conv1x1", "conv1x1", 2 * c, c, 1, s, batch=n),
                _conv("conv5x5", "conv_kxk", c, c, 5, s, batch=n),
                _conv("conv7x7", "conv_kxk", max(c // 2, 3), c, 7, s, stride=2, batch=n),
                _conv("depthwise5x5", "depthwise_conv", c, c, 5, s, groups=c, batch=n),
                _conv("depthwise3x3", "depthwise_conv", c, c, 3, s, stride=2, groups=c, batch=n),
                _conv("group3x3 g8", "group_conv", c, c, 3, s, groups=8, batch=n),
                _conv("group1x1 g4", "group_conv", c, c, 1, s, groups=4, batch=n),
                _elementwise("mul", Mul, c, s, n),
                _elementwise("batchnorm", lambda c=c: nn.BatchNorm2d(c), c, s, n, op_class="norm"),
                _layernorm(c, s, n),
                _elementwise("relu", nn.ReLU, c, s, n),
                _elementwise("hardswish", nn.Hardswish, c, s, n),
                _elementwise("silu", nn.SiLU, c, s, n, op_class="transcendental"),
                _elementwise("sigmoid", nn.Sigmoid, c, s, n, op_class="transcendental"),
                _elementwise("concat", Cat, c, s, n, op_class="other"),
                _pool("maxpool3x3 s2", lambda: nn.MaxPool2d(3, 2, 1), c, s, n),
                _pool("maxpool2x2 s2", lambda: nn.MaxPool2d(2, 2), c, s, n),
                _pool("global avgpool", lambda: nn.AdaptiveAvgPool2d(1), c, s, n, op_class="reduce"),
            ]
            if grid == "full":
                benches += [
                    _conv("conv3x3", "conv3x3", c // 2, c // 2, 3, s * 2, batch=n),
                    # ResNeXt's 32 groups; at 32 channels that would be a depthwise conv
                    _conv(f"group3x3 g{min(32, c // 2)}", "group_conv", c, c, 3, s, groups=min(32, c // 2), batch=n),
                    _elementwise("add", Add, c, s * 2, n),
                    _elementwise("gelu", nn.GELU, c, s, n, op_class="transcendental"),
                    _elementwise("silu", nn.SiLU, 3 * c, s, n, op_class="transcendental"),
                    _elementwise("batchnorm", lambda c=c: nn.BatchNorm2d(3 * c), 3 * c, s, n, op_class="norm"),
                    _conv("conv1x1 expand", "conv1x1", c // 2, 3 * c, 1, s, batch=n),
                    _conv("conv1x1 project", "conv1x1", 3 * c, c // 2, 1, s, batch=n),
                    _conv("group3x3 g4", "group_conv", 4 * c, 4 * c, 3, s // 2, groups=4, batch=n),
                    # an inverted-residual block's expanded map (MobileNetV2: 96 ch at 112 px)
                    _conv("depthwise3x3 expanded", "depthwise_conv", 3 * c, 3 * c, 3, s, groups=3 * c, batch=n),
                    _conv("depthwise3x3 expanded", "depthwise_conv", 3 * c, 3 * c, 3, s, stride=2, groups=3 * c,
                          batch=n),  # fmt: skip
                    _pool("avgpool3x3 s1", lambda: nn.AvgPool2d(3, 1, 1), c, s, n),
                    _pool("avgpool2x2 s2", lambda: nn.AvgPool2d(2, 2), c, s, n),
                ]
        if grid != "tiny":
            benches += _small(n)
        for features in ([512, 1000], [1024, 1000], [2048, 1000]) if grid != "tiny" else ([256, 100],):
            benches.append(_linear(*features, n))  # a classifier head: weight-bound at batch 1
        if grid != "tiny":  # a transformer's token projections and MLP: real matrix work
            benches += [_linear(768, 768, n, tokens=50), _linear(768, 3072, n, tokens=197)]
            if grid == "full":
                benches.append(_linear(3072, 768, n, tokens=197))
        benches += _matmuls(grid, n)
    if device == "cuda" and grid != "tiny":  # tensor-core sized work, where the peak shows
        benches += [_conv("conv3x3", "conv3x3", 256, 256, 3, 56, batch=64),
                    _conv("conv1x1", "conv1x1", 512, 2048, 1, 28, batch=64),
                    _matmul(4096, 4096, 4096)]  # fmt: skip
    return benches


def _elementwise(label: str, module: Callable[[], nn.Module], c: int, size: int, n: int,
                 op_class: str = "elementwise") -> Bench:  # fmt: skip
    arity = 2 if module in (Add, Mul, Cat) else 1  # the others: one input (relu, batch norm)
    shape = (n, c, size, size)
    return Bench(f"{label} {c}ch {size}px n{n}", op_class, module, (shape,) * arity)


def _layernorm(c: int, size: int, n: int) -> Bench:
    """LayerNorm over the channels of a channels-last map (ConvNeXt's blocks; a ViT's tokens)."""
    return Bench(f"layernorm {c}ch {size}px n{n}", "norm", lambda: nn.LayerNorm(c), ((n, size, size, c),))


def _pool(label: str, make: Callable[[], nn.Module], c: int, size: int, n: int, op_class: str = "pool") -> Bench:
    return Bench(f"{label} {c}ch {size}px n{n}", op_class, make, ((n, c, size, size),))


def _small(n: int) -> list[Bench]:
    """Ops too small for their work to show (late-stage maps, squeeze-excite 1x1 convs on pooled
    vectors): their time is the fixed cost per call of each op class, which the large grid
    above cannot tell from the rate."""
    return [
        _conv("conv3x3", "conv3x3", 16, 16, 3, 7, batch=n),
        _conv("conv1x1", "conv1x1", 16, 16, 1, 7, batch=n),
        _conv("conv1x1 squeeze", "conv1x1", 96, 24, 1, 1, batch=n, bias=True),  # SE convs have a bias
        _conv("conv1x1 excite", "conv1x1", 24, 96, 1, 1, batch=n, bias=True),
        _conv("conv5x5", "conv_kxk", 16, 16, 5, 7, batch=n),
        _conv("depthwise3x3", "depthwise_conv", 16, 16, 3, 7, groups=16, batch=n),
        _conv("group3x3 g4", "group_conv", 16, 16, 3, 7, groups=4, batch=n),
        _elementwise("add", Add, 16, 7, n),
        _elementwise("relu", nn.ReLU, 16, 7, n),
        _elementwise("batchnorm", lambda: nn.BatchNorm2d(16), 16, 7, n, op_class="norm"),
        _layernorm(16, 7, n),
        _elementwise("silu", nn.SiLU, 16, 7, n, op_class="transcendental"),
        _elementwise("concat", Cat, 16, 7, n, op_class="other"),
        _pool("maxpool3x3 s2", lambda: nn.MaxPool2d(3, 2, 1), 16, 8, n),
        _pool("global avgpool", lambda: nn.AdaptiveAvgPool2d(1), 16, 7, n, op_class="reduce"),
        _linear(64, 64, n),
        _matmul(16, 16, 16),
    ]


def _linear(in_features: int, out_features: int, n: int, tokens: int = 0) -> Bench:
    shape = (n, tokens, in_features) if tokens else (n, in_features)
    return Bench(f"linear {in_features}->{out_features} n{n}" + (f"x{tokens}" if tokens else ""), "linear",
                 lambda: nn.Linear(in_features, out_features), (shape,))  # fmt: skip


def _matmul(m: int, k: int, n: int) -> Bench:
    return Bench(f"matmul {m}x{k}x{n}", "matmul", MatMul, ((m, k), (k, n)))


def _matmuls(grid: str, n: int) -> list[Bench]:
    if grid == "tiny":
        return [_matmul(64, 64, 64)]
    sizes = [(196, 64, 196), (197, 768, 768), (512, 512, 512)] if n == 1 else [(2048, 1024, 1024)]
    return [_matmul(*s) for s in sizes[: 2 if grid == "quick" else None]]


class _InvertedResidual(nn.Module):
    """A MobileNetV2 block nested as torchvision nests it: a Sequential of conv-norm-activation
    Sequentials, and the residual add in ``forward``."""

    def __init__(self, c: int) -> None:
        super().__init__()
        wide = 2 * c
        self.block = nn.Sequential(
            nn.Sequential(nn.Conv2d(c, wide, 1, bias=False), nn.BatchNorm2d(wide), nn.ReLU()),
            nn.Sequential(nn.Conv2d(wide, wide, 3, padding=1, groups=wide, bias=False), nn.BatchNorm2d(wide),
                          nn.ReLU()),  # fmt: skip
            nn.Sequential(nn.Conv2d(wide, c, 1, bias=False), nn.BatchNorm2d(c)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def model_chain() -> Bench:
    """A small model: 8 inverted-residual blocks on an 8 x 8 map, 72 kernels whose work is too
    small to matter, so its time beyond the fitted per-op times is what running ops inside a
    model adds per kernel (the Python module calls between them, a cold start for each)."""
    c, size = 16, 8
    return Bench(f"model-like chain: 8 inverted-residual blocks, {c}ch {size}px", "model", lambda: nn.Sequential(
        *[_InvertedResidual(c) for _ in range(8)]), ((1, c, size, size),))  # fmt: skip


def measure_model_overhead(timer: Timer, fit: Fit, profile: Profile, precision: str) -> float | None:
    """Seconds per kernel that a model adds over the fitted single-op times (0 when none; None
    when the grid timed too few op classes to predict the chain)."""
    chain = model_chain()
    eager = profile.model_copy(update={"fusion": EAGER_FUSION})
    kernels = counted_work(chain, eager, precision)
    predicted = fit.predict(kernels)
    if predicted is None:
        return None
    seconds = timer.median_s(chain.make, chain.inputs)
    return max(0.0, (seconds - predicted) / len(kernels))


# ----------------------------------------------------------------------------- what the cost model counts
@dataclass(frozen=True)
class KernelWork:
    flops: float
    bytes: float
    op_class: str
    gemm_k: float = 0.0  # per-group matrix product of a conv or linear (cost.gemm_dims)
    gemm_n: float = 0.0


def counted_work(bench: Bench, profile: Profile, precision: str) -> list[KernelWork]:
    """The kernels cnnlint's trace, graph and cost stages count for ``bench``."""
    from cnnlint.cost import compute_cost
    from cnnlint.graph.build import build_layer_graph
    from cnnlint.load import LoadedModel
    from cnnlint.trace import trace

    with torch.device("meta"):
        inner = bench.make()
        module = Unary(inner) if len(bench.inputs) == 1 else Binary(inner)
    loaded = LoadedModel(name=bench.label, module=module, input_shapes=list(bench.inputs),
                         sites={}, built_on="meta")  # fmt: skip
    graph = build_layer_graph(trace(loaded))
    cost = compute_cost(graph, profile, precision)
    return [KernelWork(k.flops, k.bytes, k.op_class, k.gemm_k, k.gemm_n) for k in cost.kernels.values()]


# ----------------------------------------------------------------------------- fitting
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
    small_gemm: tuple[float, float] | None = None  # (half_k, half_n), when fitted
    all_rates: dict[str, float] = field(default_factory=dict)  # every class's fitted rate, unidentified ones too
    model_overhead_s: float | None = None  # per kernel, in a model beyond a tight loop (measure_model_overhead)

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
        return predict(known, self.all_rates, self.bandwidth, overheads, self.cache, self.small_gemm)

    @property
    def peak(self) -> float:
        dense = [self.rates[c] for c in DENSE_CLASSES if c in self.rates]
        return max(dense or self.rates.values())

    def efficiency(self, op_class: str) -> float:
        return min(1.0, self.rates[op_class] / self.peak)


def predict(kernels: list[KernelWork], rates: dict[str, float], bandwidth: float,
            overhead: float | dict[str, float], cache: tuple[float, float] | None = None,
            small_gemm: tuple[float, float] | None = None) -> float:  # fmt: skip
    """The cost model's time: roofline per kernel plus a fixed cost (one, or one per op class).

    ``cache``: (bytes, bandwidth): a kernel whose bytes fit in that cache moves them at its bandwidth.
    ``small_gemm``: (half_k, half_n) of ``Profile.small_gemm``.
    """
    total = 0.0
    for k in kernels:
        fixed = overhead[k.op_class] if isinstance(overhead, dict) else overhead
        speed = cache[1] if cache is not None and k.bytes <= cache[0] else bandwidth
        total += max(k.flops / _rate(k, rates, small_gemm) if k.flops else 0.0, k.bytes / speed) + fixed
    return total


def _rate(kernel: KernelWork, rates: dict[str, float], small_gemm: tuple[float, float] | None) -> float:
    factor = small_gemm_factor(kernel.gemm_k, kernel.gemm_n, *small_gemm) if small_gemm else 1.0
    return rates[kernel.op_class] * factor


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
    gemm_params = 2 if use_gemm else 0
    fixed_at = n + 1 + extra

    def unpack(theta: np.ndarray):
        values = np.exp(theta)
        fixed = dict(zip(fixed_classes, (float(v) for v in values[fixed_at : fixed_at + len(fixed_classes)])))
        cache = (cache_bytes, float(values[n + 1])) if use_cache else None
        gemm = (float(values[-2]), float(values[-1])) if use_gemm else None
        return (dict(zip(classes, values[:n])), float(values[n]),
                fixed if per_class_overhead else fixed["*"], cache, gemm)  # fmt: skip

    def residuals(theta: np.ndarray) -> np.ndarray:
        rates, bandwidth, overhead, cache, gemm = unpack(theta)
        predicted = np.array([predict(s.kernels, rates, bandwidth, overhead, cache, gemm) for s in samples])
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
    lower = np.log([1e6] * n + [1e7] * (1 + extra) + [1e-8] * len(fixed_classes) + [1e-2] * gemm_params)
    upper = np.log([1e17] * n + [1e14] * (1 + extra) + [1e-2] * len(fixed_classes) + [1e4] * gemm_params)
    # Two starts, the better fit kept (the loss has local minima, e.g. every element-wise op on
    # a too-low bandwidth): one fixed cost for all, half the fastest call; and each class's own,
    # half its fastest call.
    fastest = {c: min((s.seconds for s in samples if {k.op_class for k in s.kernels} == {c}),
                      default=float(measured.min())) for c in fixed_classes}  # fmt: skip
    starts = [[float(measured.min()) / 2] * len(fixed_classes),
              [fastest[c] / 2 if per_class_overhead else float(measured.min()) / 2 for c in fixed_classes]]  # fmt: skip
    result = None
    for start_overhead in starts:
        theta0 = np.clip(np.log([*start_rates, start_bw, *[start_bw] * extra, *start_overhead, *[8.0] * gemm_params]),
                         lower + 1e-6, upper - 1e-6)  # fmt: skip
        tried = least_squares(residuals, theta0, bounds=(lower, upper), loss="soft_l1", f_scale=0.1,
                              x_scale=1.0, diff_step=1e-3)  # fmt: skip
        if result is None or tried.cost < result.cost:
            result = tried
    rates, bandwidth, overhead, cache, gemm = unpack(result.x)
    all_rates = dict(rates)
    predicted = [predict(s.kernels, rates, bandwidth, overhead, cache, gemm) for s in samples]
    # A class whose every sample sat on the memory slope says nothing about its compute rate
    # (any rate above a bound fits): it is not measured, and never defines the peak.
    identified = {k.op_class for s in samples for k in s.kernels
                  if k.flops and k.flops / _rate(k, rates, gemm) >= k.bytes / max(bandwidth, cache[1] if cache else 0)}  # fmt: skip
    rates = {c: r for c, r in rates.items() if c in identified}
    if not rates:
        raise CalibrationError("no microbenchmark was compute-bound, so no compute rate can be fitted; "
                               "the device looks memory- or launch-bound at every size measured.")  # fmt: skip
    quality = {}
    for op_class in sorted({s.bench.op_class for s in samples}):
        members = [i for i, s in enumerate(samples) if s.bench.op_class == op_class]
        quality[op_class] = _quality([predicted[i] for i in members], [samples[i].seconds for i in members])
    shared = overhead if isinstance(overhead, float) else overhead.get("elementwise", min(overhead.values()))
    return Fit(rates, bandwidth, shared, quality, _quality(predicted, list(measured)), predicted,
               overhead if isinstance(overhead, dict) else {}, cache, gemm, all_rates)  # fmt: skip


def _quality(predicted: list[float], measured: list[float]) -> ClassFit:
    import numpy as np

    p, m = np.log(predicted), np.log(measured)
    total = float(((m - m.mean()) ** 2).sum())
    r2 = 1 - float(((m - p) ** 2).sum()) / total if total > 0 else float("nan")
    errors = np.abs(np.array(predicted) / np.array(measured) - 1)
    return ClassFit(len(measured), r2, float(np.median(errors)))


# ----------------------------------------------------------------------------- the run
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
) -> Calibration:
    check_device(device, precision)
    if threads:
        torch.set_num_threads(threads)
    if clock == "process" and (device != "cpu" or torch.get_num_threads() != 1):
        raise CalibrationError("--clock process measures one CPU thread's work: use it with "
                               "--device cpu --threads 1.")  # fmt: skip
    started = time.perf_counter()
    base_profile = load_profile(base or DEFAULT_BASE[device])
    cost_profile = _costing_profile(base_profile, precision)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # as deployed eager models usually run
    benches = benchmark_grid(grid, device)
    timer = Timer(device, DTYPES[precision], BUDGET_S[grid] / len(benches),
                  clock=time.process_time if clock == "process" else time.perf_counter)  # fmt: skip
    samples: list[Sample] = []
    skipped: list[str] = []
    for i, bench in enumerate(benches):
        if progress:
            progress(i, len(benches), bench.label)
        try:
            seconds = timer.median_s(bench.make, bench.inputs)
        except (RuntimeError, NotImplementedError) as exc:  # e.g. no fp16 kernel for this op on CPU
            skipped.append(f"{bench.label}: {str(exc).splitlines()[0][:100]}")
            continue
        samples.append(Sample(bench, seconds, counted_work(bench, cost_profile, precision)))
    if progress:
        progress(len(benches), len(benches), "fitting")
    if len(samples) < 4:
        raise CalibrationError(
            f"calibration on {device} at {precision}: only {len(samples)} of {len(benches)} "
            f"microbenchmarks ran ({'; '.join(skipped[:3])}); too few to fit."
        )
    # A fixed cost per op class; a cache with its own bandwidth, only on a CPU (on an H200 the L2
    # split left the rates unidentified: peak fitted at 17 PFLOP/s).
    cache = cache_bytes(device) if device == "cpu" else None
    fitted = fit(samples, per_class_overhead=True, cache_bytes=cache)
    fitted.model_overhead_s = measure_model_overhead(timer, fitted, cost_profile, precision)
    return Calibration(device, precision, base_profile, fitted, samples, device_name(device),
                       torch.get_num_threads(), time.perf_counter() - started, skipped,
                       base or DEFAULT_BASE[device], clock)  # fmt: skip


def _granule_lines(precision: str, base: Profile) -> list[str]:
    """A channel granule for a precision the base profile does not run (bf16 on a profile of
    fp32 and fp16): the microbenchmarks do not measure one, so it is the nearest precision's."""
    if precision in base.channel_granule:
        return []
    nearest = _nearest_precision(precision, base)
    granule = base.channel_granule[nearest]
    return ["[channel_granule]",
            f"{precision} = {{ input = {granule.input}, output = {granule.output} }}  # estimate: "
            f"{base.name}'s {nearest} granule, not measured", ""]  # fmt: skip


def _costing_profile(base: Profile, precision: str) -> Profile:
    """The base profile, allowed to cost ``precision`` (byte widths are all the fit needs; the
    peak and granule of a precision it lacks are its nearest one's, and are not used)."""
    if precision in base.precisions:
        return base
    nearest = _nearest_precision(precision, base)
    return base.model_copy(update={
        "precisions": [*base.precisions, precision],
        "peak_tflops": {**base.peak_tflops, precision: base.peak_tflops[nearest]},
        "channel_granule": {**base.channel_granule, precision: base.channel_granule[nearest]},
    })  # fmt: skip


def _nearest_precision(precision: str, base: Profile) -> str:
    """The precision of ``base`` whose tiles ``precision`` shares: fp16 for bf16, else its default."""
    return "fp16" if precision == "bf16" and "fp16" in base.precisions else base.default_precision


# ----------------------------------------------------------------------------- the profile file
def render_profile(cal: Calibration, name: str, output: Path | None = None) -> str:
    """The profile TOML; ``output`` is where it will be written (a path base is made relative)."""
    fit, base = cal.fit, cal.base
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    where = f"{cal.device_name} ({cal.device}"
    where += f", {cal.threads} threads)" if cal.device == "cpu" else ")"
    base_name = cal.base_ref or base.name
    if base_name.endswith(".toml") and output is not None:
        base_name = os.path.relpath(Path(base_name).resolve(), output.resolve().parent)
    lines = [
        f"# Calibrated by `cnnlint calibrate` on {where}, {cal.precision},",
        f"# torch {torch.__version__}, {today}, in {cal.seconds:.0f} s.",
        f"# Method: {len(cal.samples)} single-op microbenchmarks (dense 3x3/1x1/5x5/7x7, depthwise and",
        "# group convs, element-wise, SiLU/sigmoid/GELU, batch and layer norms, concat, pooling, linear,",
        "# matmul over channels, resolutions and strides, and small ops for each class's fixed cost),",
        "# each the median of repeated",
        "# back-to-back loops after warm-up"
        + (" (CUDA events, synchronized)." if cal.device == "cuda" else
           " (process CPU time, one thread)." if cal.clock == "process" else " (perf_counter)."),
        "# Fitted with scipy.optimize.least_squares on log time (soft-L1 loss) to cnnlint's kernel time",
        "# max(flops / (peak x efficiency x small_gemm), bytes / bandwidth) + overhead_us[class], with",
        "# FLOPs and bytes as cnnlint's cost stage counts them; model_overhead_us is added per kernel.",
        f"# Fit over all microbenchmarks: R^2 of log time {fit.overall.r2:.3f}, "
        f"median error {fit.overall.median_error:.0%}.",
    ]
    if noisy(fit):
        lines.append(f"# WARNING: {NOISY}")
    if cal.skipped:
        lines.append(f"# Skipped ({len(cal.skipped)}): " + "; ".join(cal.skipped[:4]))
    lines += [
        "# Everything else comes from the base profile.",
        f'extends = "{base_name}"',
        f'name = "{name}"',
        f'description = "{_toml_escape(cal.device_name)} ({cal.device}, {cal.precision}), calibrated"',
    ]
    if base.kind != ("gpu" if cal.device == "cuda" else "cpu"):
        lines.append(f'kind = "{"gpu" if cal.device == "cuda" else "cpu"}"  # measured device')
    if cal.precision != base.default_precision:  # a profile states only what differs
        lines.append(f'default_precision = "{cal.precision}"')
    if cal.precision not in base.precisions:
        precisions = ", ".join(f'"{p}"' for p in [*base.precisions, cal.precision])
        lines.append(f"precisions = [{precisions}]")
    if base.throughput_batch != EAGER_BATCH[cal.device]:
        lines.append(f"throughput_batch = {EAGER_BATCH[cal.device]}  # the batch the fidelity benchmark times here")
    lines += [
        f"kernel_overhead_us = {fit.overhead_s * 1e6:.3g}  # measured: fitted fixed cost per kernel"
        + (" (eager dispatch + launch)" if cal.device == "cuda" else " (eager dispatch)"),
        *_model_overhead_lines(fit),
        "",
        *_overhead_table(fit),
        "[peak_tflops]",
        f"{cal.precision} = {fit.peak / 1e12:.4g}  # measured: best rate attained "
        f"({_best_class(fit)}{', by a thick matrix product' if fit.small_gemm else ''}), not a spec-sheet peak",
        "",
        *_small_gemm_lines(fit),
        *_granule_lines(cal.precision, base),
        "[memory]",
        *_memory_lines(fit),
        "",
        "# Measured: torch eager runs every op as its own kernel; nothing is fused.",
        "[fusion]",
        *(f"{role} = false" for role in EAGER_FUSION),
        "",
        "# measured: fitted rate / peak; per class: benchmarks, R^2 of log time, median error",
        "[efficiency]",
    ]
    for op_class in OP_CLASSES:
        if op_class in fit.rates:
            q = fit.quality.get(op_class)
            note = f"  # measured: {q.samples} benchmarks, R^2 {q.r2:.2f}, median error {q.median_error:.0%}" if q else ""
            lines.append(f"{op_class} = {max(fit.efficiency(op_class), 1e-4):.4g}{note}")
        elif op_class in fit.quality:
            q = fit.quality[op_class]
            lines.append(f"# {op_class}: every benchmark memory-bound (rate not identified; efficiency "
                         f"kept from {base_name}): {q.samples} benchmarks, R^2 {q.r2:.2f}, "
                         f"median error {q.median_error:.0%}")  # fmt: skip
    return "\n".join(lines) + "\n"


def _memory_lines(fit: Fit) -> list[str]:
    if fit.cache is None:
        return [f"bandwidth_gbps = {fit.bandwidth / 1e9:.4g}  # measured: fitted from the memory-bound "
                "benchmarks (cache effects at these sizes included)"]  # fmt: skip
    size, speed = fit.cache
    return [
        f"bandwidth_gbps = {fit.bandwidth / 1e9:.4g}  # measured: fitted, kernels larger than the cache",
        f"cache_mb = {size / 2**20:.4g}  # the device's last-level cache, as the OS / driver reports it",
        f"cache_bandwidth_gbps = {speed / 1e9:.4g}  # measured: fitted, kernels that fit in the cache",
    ]


def _model_overhead_lines(fit: Fit) -> list[str]:
    if fit.model_overhead_s is None:
        return []
    return [f"model_overhead_us = {fit.model_overhead_s * 1e6:.3g}  # measured: per kernel, a {model_chain().label}"
            " over its kernels' fitted times"]  # fmt: skip


def _small_gemm_lines(fit: Fit) -> list[str]:
    if fit.small_gemm is None:
        return []
    half_k, half_n = fit.small_gemm
    return ["# measured: fitted; a conv or linear with k input channels per group x taps and n outputs",
            "# per group runs at its class efficiency x k / (k + half_k) x n / (n + half_n)",
            "[small_gemm]",
            f"half_k = {half_k:.3g}  # measured",
            f"half_n = {half_n:.3g}  # measured", ""]  # fmt: skip


def _overhead_table(fit: Fit) -> list[str]:
    if not fit.overheads_s:
        return []
    lines = ["# measured: fitted fixed cost per kernel of each op class (eager dispatch, and for convs",
             "# the library's per-call setup); kernel_overhead_us above is the element-wise one",
             "[overhead_us]"]  # fmt: skip
    lines += [f"{c} = {fit.overheads_s[c] * 1e6:.3g}  # measured" for c in OP_CLASSES if c in fit.overheads_s]
    return [*lines, ""]


def _best_class(fit: Fit) -> str:
    return max((c for c in DENSE_CLASSES if c in fit.rates), key=lambda c: fit.rates[c], default="?")


def _toml_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def write_samples(cal: Calibration, path: Path) -> None:
    """Every microbenchmark with what cnnlint counts for it and its measured median: for refits."""
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "op_class", "kernels", "flops", "bytes", "kernel_classes",
                         "measured_s", "predicted_s"])  # fmt: skip
        for sample, predicted in zip(cal.samples, cal.fit.predicted):
            writer.writerow([sample.bench.label, sample.bench.op_class, len(sample.kernels),
                             sum(k.flops for k in sample.kernels), sum(k.bytes for k in sample.kernels),
                             "+".join(k.op_class for k in sample.kernels), f"{sample.seconds:.9g}",
                             f"{predicted:.9g}"])  # fmt: skip


NOISY = ("the cost model explains these timings poorly; other processes may have shared the "
         "device. On a shared CPU, rerun with --threads 1 --clock process.")


def noisy(fit: Fit) -> bool:
    return not fit.overall.r2 >= 0.5 or fit.overall.median_error > 0.5


def summary_lines(cal: Calibration) -> Iterator[str]:
    fit = cal.fit
    yield (f"{cal.device_name} ({cal.device}, {cal.precision}): {len(cal.samples)} benchmarks in "
           f"{cal.seconds:.0f} s; peak {fit.peak / 1e12:.3g} TFLOP/s, bandwidth "
           f"{fit.bandwidth / 1e9:.3g} GB/s, overhead {fit.overhead_s * 1e6:.3g} us/kernel")  # fmt: skip
    yield f"fit: R^2 {fit.overall.r2:.3f} (log time), median error {fit.overall.median_error:.0%}"
    if fit.model_overhead_s is not None:
        yield f"in a model: {fit.model_overhead_s * 1e6:.3g} us per kernel beyond the single-op times"
    if fit.small_gemm:
        yield (f"thin matrix products: half the rate at {fit.small_gemm[0]:.3g} input channels per group "
               f"x taps, and at {fit.small_gemm[1]:.3g} outputs per group")  # fmt: skip
    if noisy(fit):
        yield f"warning: {NOISY}"
    for op_class, q in fit.quality.items():
        eff = f"efficiency {fit.efficiency(op_class):.3f}" if op_class in fit.rates else "memory-bound only"
        yield f"  {op_class:<15} {eff:<18} n={q.samples:<3} R^2 {q.r2:6.2f}  median error {q.median_error:.0%}"


def threads_note() -> str:
    return f"{torch.get_num_threads()} threads (os.cpu_count() {os.cpu_count()})"
