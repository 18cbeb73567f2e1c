"""Fitting a profile to whole-model timings (``cnnlint calibrate --from-measurements``), and how
well the fit predicts architecture families it did not see.

The model is the cost stage's own (``cost.compute_cost``), with the base profile's peak,
bandwidth, cache and fusion kept: each kernel takes ``max(batch x flops / rate, (batch x
activation bytes + weight bytes) / bandwidth) + overhead``, with ``rate = peak x
efficiency[op class] x small_gemm(k, n) x alignment`` (``Profile.alignment``, the base's),
summed over a model's kernels; a kernel computed from parameters alone runs once per call. What
is fitted:

- ``efficiency`` of each op class the timings can tell: at the base profile's numbers (or with
  the efficiencies a quarter of the base's, for a class the device runs slower than the base
  says), its compute-bound kernels take at least 1% of the predicted time of at least three
  models (``MIN_SHARE``, ``MIN_MODELS``, ``REACH``). Other classes keep the base's: memory-bound ones (element-wise,
  norms, pools), whose time is bytes over bandwidth whatever their efficiency, and ones too
  small to show (a classifier's one linear layer), whose fitted value would only soak up what
  the model misses elsewhere;
- ``[small_gemm]`` ``half_k`` and ``half_n``: how the rate of a conv or linear layer falls with
  few input channels per group x taps (k) or few outputs per group (n): a grouped conv's
  efficiency as a function of its group width, where there are such layers to fit it;
- one fixed cost per kernel (``kernel_overhead_us``): what a whole model's time says of launch
  and dispatch cost cannot be split by op class, nor into a kernel's own and the model's share.

``scipy.optimize.least_squares`` on log time, soft-L1 loss (as the microbenchmark fit), each row
weighted so that every family weighs the same however many variants it has (a family of 70
ResNets would otherwise decide the fit for everything else).

Fit quality is reported on families the fit did not see: the fitted families are split into
folds (sorted by name, family i in fold i mod k), each fold predicted by a fit to the others;
families named by ``hold_out`` are never fitted and are predicted by the final fit.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from cnnlint.calibrate.fitting import CalibrationError
from cnnlint.calibrate.measurements import Measurement, ModelWork
from cnnlint.profile import Profile, SmallGemm

# Bounds of the fitted values: efficiency (fraction of peak), overhead (seconds), half-rate points.
EFFICIENCY_BOUNDS = (1e-4, 1.0)
OVERHEAD_BOUNDS = (1e-8, 1e-2)
HALF_BOUNDS = (1e-2, 1e4)
# A class's efficiency is fitted when, at the base profile's numbers or with every efficiency at
# REACH times the base's, its compute-bound kernels take at least MIN_SHARE of the predicted time
# of at least MIN_MODELS models.
MIN_SHARE, MIN_MODELS, REACH = 0.01, 3, 0.25


@dataclass
class Params:
    """What the fit sets on the base profile."""

    efficiency: dict[str, float]
    overhead_s: float
    small_gemm: tuple[float, float] | None = None  # (half_k, half_n)

    def apply(self, base: Profile) -> Profile:
        """The base profile with these numbers: one fixed cost per kernel, whatever the class."""
        update = {
            "efficiency": {**base.efficiency, **self.efficiency},
            "kernel_overhead_us": self.overhead_s * 1e6,
            "model_overhead_us": 0.0,
            "overhead_us": {c: self.overhead_s * 1e6 for c in base.overhead_us},
        }
        if self.small_gemm is not None:
            update["small_gemm"] = SmallGemm(half_k=self.small_gemm[0], half_n=self.small_gemm[1])
        return base.model_copy(update=update)


class Stack:
    """The kernels of many rows as flat arrays, each kernel costed at its row's batch."""

    def __init__(self, rows: Sequence[Measurement], works: dict[tuple, ModelWork], profile: Profile,
                 precision: str) -> None:  # fmt: skip
        import numpy as np

        self.rows = list(rows)
        self.profile, self.precision = profile, precision
        owner, batch, parts = [], [], []
        for i, row in enumerate(self.rows):
            work = works[row.key]
            owner += [i] * len(work)
            batch += [1 if once else row.batch for once in work.once]
            parts.append(work)
        self.owner = np.array(owner, dtype=np.int64)
        self.batch = np.array(batch, dtype=float)
        self.flops = np.array([f for w in parts for f in w.flops]) * self.batch
        self.bytes = (np.array([a for w in parts for a in w.activation_bytes]) * self.batch
                      + np.array([b for w in parts for b in w.weight_bytes]))  # fmt: skip
        self.gemm_k = np.array([k for w in parts for k in w.gemm_k])
        self.gemm_n = np.array([n for w in parts for n in w.gemm_n])
        self.alignment = np.array([a for w in parts for a in w.alignment])
        classes = [c for w in parts for c in w.op_class]
        self.classes = sorted(set(classes))
        self.class_index = np.array([self.classes.index(c) for c in classes], dtype=np.int64)
        self.memory_s = self.bytes / np.array([profile.bandwidth_for(b) for b in self.bytes])
        # what the base adds to a kernel's roofline, kept as the cost stage adds it: fresh outputs
        # (Profile.fresh_output_s), strided gathers (strided_input_s), windowed ops' outputs (window_output_s)
        added = [profile.fresh_output_s(fresh) + profile.strided_input_s(op_class, gathered)
                 + profile.window_output_s(op_class, outputs)
                 for w in parts
                 for fresh, gathered, outputs, op_class in zip(w.fresh_output_bytes, w.strided_input_bytes,
                                                               w.window_outputs, w.op_class)]  # fmt: skip
        # ... and the weights a forward evicted since the last call (cold_weights_s), once per call
        cold = [profile.cold_weights_s(b) for w in parts for b in w.weight_bytes]
        self.added_s = np.array(added) * self.batch + np.array(cold)
        self.measured = np.array([r.seconds for r in self.rows])
        self.peak = profile.peak_flops(precision)

    def kernel_times(self, params: Params) -> tuple:
        """(compute seconds, memory seconds, overhead seconds) per kernel."""
        import numpy as np

        efficiency = np.array([params.efficiency.get(c, self.profile.efficiency[c]) for c in self.classes])
        rate = self.peak * efficiency[self.class_index] * self.alignment
        if params.small_gemm is not None:
            half_k, half_n = params.small_gemm
            k, n = self.gemm_k, self.gemm_n
            rate = rate * np.where(k > 0, k / (k + half_k), 1.0) * np.where(n > 0, n / (n + half_n), 1.0)
        return self.flops / rate, self.memory_s, params.overhead_s + self.added_s

    def predict(self, params: Params):
        """Seconds per row."""
        import numpy as np

        compute, memory, fixed = self.kernel_times(params)
        per_kernel = np.maximum(compute, memory) + fixed
        return np.bincount(self.owner, weights=per_kernel, minlength=len(self.rows))

    def compute_shares(self, params: Params) -> dict[str, object]:
        """Per class, each row's share of its predicted time that the class's kernels spend on the
        compute slope under ``params``."""
        import numpy as np

        compute, memory, fixed = self.kernel_times(params)
        total = np.bincount(self.owner, weights=np.maximum(compute, memory) + fixed, minlength=len(self.rows))
        on_compute = np.where(compute > memory, compute, 0.0)
        return {c: np.bincount(self.owner, weights=np.where(self.class_index == i, on_compute, 0.0),
                               minlength=len(self.rows)) / total
                for i, c in enumerate(self.classes)}  # fmt: skip


@dataclass
class Quality:
    """Spearman rho of predicted against measured time per input, and the median error."""

    models: int
    rho: float
    median_error: float  # median |predicted / measured - 1|
    median_signed: float  # median (predicted / measured - 1): < 0 predicted fast

    def line(self) -> str:
        return (f"{self.models} models, Spearman rho {self.rho:.3f}, median error {self.median_error:.0%} "
                f"(signed {self.median_signed:+.0%})")  # fmt: skip


def quality(predicted: Sequence[float], measured: Sequence[float]) -> Quality:
    ratios = [p / m - 1 for p, m in zip(predicted, measured)]
    return Quality(len(ratios), spearman(predicted, measured),
                   statistics.median(abs(r) for r in ratios) if ratios else math.nan,
                   statistics.median(ratios) if ratios else math.nan)  # fmt: skip


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) < 3:
        return math.nan
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


@dataclass
class ModelFit:
    params: Params
    fitted_classes: list[str]  # efficiencies the fit set; the rest are the base's
    rows: list[Measurement]  # the rows fitted
    predicted: list[float]  # per fitted row, seconds
    fit_quality: Quality
    compute_share: dict[str, float] = field(default_factory=dict)  # per class: share of predicted time


def per_input(rows: Sequence[Measurement], seconds: Sequence[float]) -> tuple[list[float], list[float]]:
    """(predicted, measured) time per input: rows timed at different batches compare so."""
    return [s / r.batch for s, r in zip(seconds, rows)], [r.per_input_s for r in rows]


def fit_rows(rows: Sequence[Measurement], works: dict[tuple, ModelWork], base: Profile,
             precision: str) -> ModelFit:  # fmt: skip
    """Least squares on log time for the efficiencies, the small-GEMM curve and the fixed cost."""
    import numpy as np
    from scipy.optimize import least_squares

    rows = [r for r in rows if r.key in works]
    if len(rows) < 3:
        raise CalibrationError(f"{len(rows)} measured models could be linted; a fit needs at least 3.")
    stack = Stack(rows, works, base, precision)
    start = Params({c: base.efficiency[c] for c in stack.classes}, base.kernel_overhead_s("conv3x3"))
    slower = Params({c: REACH * e for c, e in start.efficiency.items()}, start.overhead_s)
    shares = [stack.compute_shares(start), stack.compute_shares(slower)]
    classes = [c for c in stack.classes if any(int((s[c] >= MIN_SHARE).sum()) >= MIN_MODELS for s in shares)]
    if not classes:
        raise CalibrationError(
            f"no op class is compute-bound for {MIN_SHARE:.0%} of the time of {MIN_MODELS} models on the "
            "base profile: there is no rate to fit (are its peak and bandwidth this device's?)."
        )
    # The small-GEMM curve needs convs of several group widths to be told from the class rates.
    use_gemm = len({(k, n) for k, n in zip(stack.gemm_k, stack.gemm_n) if k}) >= 3
    sizes = {}
    for row in rows:
        sizes[row.family] = sizes.get(row.family, 0) + 1
    weights = np.array([1 / math.sqrt(sizes[r.family]) for r in rows])
    log_measured = np.log(stack.measured)

    def unpack(theta) -> Params:
        values = np.exp(theta)
        gemm = (float(values[-2]), float(values[-1])) if use_gemm else None
        return Params(dict(zip(classes, (float(v) for v in values[: len(classes)]))),
                      float(values[len(classes)]), gemm)  # fmt: skip

    def residuals(theta):
        return weights * (np.log(stack.predict(unpack(theta))) - log_measured)

    lower = np.log([EFFICIENCY_BOUNDS[0]] * len(classes) + [OVERHEAD_BOUNDS[0]] + [HALF_BOUNDS[0]] * 2 * use_gemm)
    upper = np.log([EFFICIENCY_BOUNDS[1]] * len(classes) + [OVERHEAD_BOUNDS[1]] + [HALF_BOUNDS[1]] * 2 * use_gemm)
    best = None
    # Three starts, the best fit kept: the base profile's numbers, every class at a third of peak,
    # and the base's at REACH, where the classes chosen above are compute-bound. The loss is flat
    # in a class's efficiency while its kernels sit on the memory slope, so a start that puts them
    # there never moves it (a depthwise conv at a third of the base's rate stayed at the base's).
    for efficiencies in ([base.efficiency[c] for c in classes], [1 / 3] * len(classes),
                         [REACH * base.efficiency[c] for c in classes]):  # fmt: skip
        theta0 = np.clip(np.log([*efficiencies, start.overhead_s or 1e-6, *[8.0] * 2 * use_gemm]),
                         lower + 1e-9, upper - 1e-9)  # fmt: skip
        tried = least_squares(residuals, theta0, bounds=(lower, upper), loss="soft_l1", f_scale=0.1,
                              diff_step=1e-4)  # fmt: skip
        if best is None or tried.cost < best.cost:
            best = tried
    params = unpack(best.x)
    # A class none of whose kernels ended on the compute slope was not measured: it keeps the base's.
    compute, memory, _ = stack.kernel_times(params)
    measured = {stack.classes.index(c) for c in classes}
    on_slope = {int(i) for i in set(stack.class_index[compute > memory].tolist()) if i in measured}
    classes = [c for c in classes if stack.classes.index(c) in on_slope]
    params.efficiency = {c: params.efficiency[c] for c in classes}
    predicted = stack.predict(params)
    compute, memory, _ = stack.kernel_times(params)
    on_compute = np.where(compute > memory, compute, 0.0)
    total = float(predicted.sum())
    fitted_shares = {c: float(on_compute[stack.class_index == stack.classes.index(c)].sum()) / total for c in classes}
    return ModelFit(params, classes, rows, [float(p) for p in predicted],
                    quality(*per_input(rows, predicted)), fitted_shares)  # fmt: skip


def predict_rows(rows: Sequence[Measurement], works: dict[tuple, ModelWork], base: Profile, precision: str,
                 params: Params) -> list[float]:  # fmt: skip
    """Seconds per row under ``params`` on ``base``."""
    return [float(s) for s in Stack(rows, works, base, precision).predict(params)]


@dataclass
class HeldOut:
    """Predictions for rows whose family no fit that predicted them had seen."""

    rows: list[Measurement]
    predicted: list[float]
    folds: list[list[str]]  # the families of each fold

    @property
    def quality(self) -> Quality:
        return quality(*per_input(self.rows, self.predicted))

    def by_family(self) -> dict[str, Quality]:
        found: dict[str, tuple[list[float], list[float]]] = {}
        for row, seconds in zip(self.rows, self.predicted):
            pair = found.setdefault(row.family, ([], []))
            pair[0].append(seconds / row.batch)
            pair[1].append(row.per_input_s)
        return {f: quality(*pair) for f, pair in sorted(found.items())}


def family_folds(families: Sequence[str], folds: int) -> list[list[str]]:
    """Families sorted by name, family i in fold i mod ``folds``."""
    ordered = sorted(set(families))
    count = min(folds, len(ordered))
    return [ordered[i::count] for i in range(count)] if count >= 2 else []


def cross_validate(rows: Sequence[Measurement], works: dict[tuple, ModelWork], base: Profile, precision: str,
                   folds: int) -> HeldOut | None:  # fmt: skip
    """Each fold of families predicted by a fit to the other folds; None with fewer than two
    families."""
    rows = [r for r in rows if r.key in works]
    groups = family_folds([r.family for r in rows], folds)
    if not groups:
        return None
    out_rows: list[Measurement] = []
    out_predicted: list[float] = []
    for group in groups:
        held = [r for r in rows if r.family in group]
        fitted = fit_rows([r for r in rows if r.family not in group], works, base, precision)
        out_rows += held
        out_predicted += predict_rows(held, works, base, precision, fitted.params)
    return HeldOut(out_rows, out_predicted, groups)


# ----------------------------------------------------------------------------- the whole run
@dataclass
class MeasuredCalibration:
    """A fit to a measurements file: what ``render_measured_profile`` writes and the command
    prints."""

    path: str  # the measurements file, as given
    base: Profile  # with the peaks, bandwidth and fusion the fit used
    base_ref: str
    precision: str
    eager: bool
    rows: list[Measurement]  # every row read
    fit: ModelFit
    cross: HeldOut | None  # folds of the fitted families
    held_out: HeldOut | None  # the families named by hold_out, predicted by the final fit
    unlinted: dict[str, str]  # spec -> why it could not be linted
    given: dict[str, str]  # "peak_tflops.fp16" / "bandwidth_gbps" -> the value given on the command line
    seconds: float


def costing_profile(base: Profile, eager: bool, peaks: dict[str, float], bandwidth_gbps: float | None) -> Profile:
    """The base profile with the peaks and bandwidth given for the measured device, and with
    nothing fused when the timings ran in eager PyTorch."""
    from cnnlint.ops import FUSED_ROLES

    update: dict = {}
    if peaks:
        unknown = [p for p in peaks if p not in base.precisions]
        if unknown:
            raise CalibrationError(f"--peak-tflops {unknown[0]}: {base.name} does not run it "
                                   f"(its precisions: {', '.join(base.precisions)}).")  # fmt: skip
        update["peak_tflops"] = {**base.peak_tflops, **peaks}
    if bandwidth_gbps is not None:
        update["memory"] = base.memory.model_copy(update={"bandwidth_gbps": bandwidth_gbps})
    if eager:
        update["fusion"] = {role: False for role in FUSED_ROLES}
    return base.model_copy(update=update) if update else base


def from_measurements(
    path: str,
    base_ref: str,
    precision: str | None = None,
    eager: bool = False,
    hold_out: Sequence[str] = (),
    folds: int = 5,
    jobs: int = 1,
    peaks: dict[str, float] | None = None,
    bandwidth_gbps: float | None = None,
    progress=None,
) -> MeasuredCalibration:
    """Read the measurements, lint each model once, fit the fitted families, and predict the
    held-out ones (``hold_out``, and each fold of the rest)."""
    import time
    from pathlib import Path

    from cnnlint.calibrate.measurements import model_work, read_measurements
    from cnnlint.profile import load_profile

    started = time.perf_counter()
    rows = read_measurements(Path(path))
    families = {r.family for r in rows}
    unknown = [f for f in hold_out if f not in families]
    if unknown:
        raise CalibrationError(f"--hold-out {unknown[0]}: no row has that family; the families are "
                               f"{', '.join(sorted(families))}.")  # fmt: skip
    base = costing_profile(load_profile(base_ref), eager, peaks or {}, bandwidth_gbps)
    precision = precision or base.default_precision
    if precision not in base.precisions:
        raise CalibrationError(f"--precision {precision}: {base.name} does not run it.")
    works, errors = model_work(rows, base, precision, jobs, progress)
    return fit_measurements(path, rows, works, {key[0]: why for key, why in errors.items()}, base, base_ref,
                            precision, eager, hold_out, folds, peaks, bandwidth_gbps, started)  # fmt: skip


def fit_measurements(path: str, rows: list[Measurement], works: dict[tuple, ModelWork], unlinted: dict[str, str],
                     base: Profile, base_ref: str, precision: str, eager: bool, hold_out: Sequence[str],
                     folds: int, peaks: dict[str, float] | None = None, bandwidth_gbps: float | None = None,
                     started: float | None = None) -> MeasuredCalibration:  # fmt: skip
    """The fit and its held-out predictions, from rows already linted (``works``, with ``base``:
    the costing profile that planned their kernels)."""
    import time

    fitted_rows = [r for r in rows if r.family not in hold_out]
    fit = fit_rows(fitted_rows, works, base, precision)
    cross = cross_validate(fitted_rows, works, base, precision, folds)
    held_out = None
    kept = [r for r in rows if r.family in hold_out and r.key in works]
    if kept:
        held_out = HeldOut(kept, predict_rows(kept, works, base, precision, fit.params), [sorted(hold_out)])
    given = {f"peak_tflops.{p}": f"{v:g}" for p, v in (peaks or {}).items()}
    if bandwidth_gbps is not None:
        given["bandwidth_gbps"] = f"{bandwidth_gbps:g}"
    seconds = time.perf_counter() - started if started is not None else 0.0
    return MeasuredCalibration(path, base, base_ref, precision, eager, rows, fit, cross, held_out, unlinted,
                               given, seconds)  # fmt: skip
