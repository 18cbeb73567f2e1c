"""What a calibration writes: the profile, which states only what was measured, each number with
how it was measured and the fit quality (R^2 of log time, median error) per op class as comments;
the samples as CSV, for refits; and the summary the command prints. A fit to whole-model timings
(``--from-measurements``) writes its own profile, samples and summary, the same way."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from cnnlint.calibrate.fitting import DENSE_CLASSES, Fit
from cnnlint.calibrate.grid import KEPT_BYTES, fresh_output_pairs, in_place_pairs, model_chains
from cnnlint.calibrate.model_fit import MeasuredCalibration
from cnnlint.calibrate.run import EAGER_FUSION, Calibration, nearest_precision
from cnnlint.profile import OP_CLASSES, Profile

EAGER_BATCH = {"cpu": 1, "cuda": 64}


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
        *(["# The allocator held freed memory while timing (cnnlint.timing.hold_freed_memory): no page",
           "# faults from memory glibc would hand back between calls."] if cal.memory_held else []),
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
        *_model_overhead_lines(cal),
        "",
        *_overhead_table(fit),
        "[peak_tflops]",
        f"{cal.precision} = {fit.peak / 1e12:.4g}  # measured: best rate attained "
        f"({_best_class(fit)}{', by a thick matrix product' if fit.small_gemm else ''}), not a spec-sheet peak",
        "",
        *_small_gemm_lines(fit),
        *_strided_lines(fit),
        *_window_output_lines(fit),
        *_unaligned_lines(fit),
        *_granule_lines(cal.precision, base),
        "[memory]",
        *_memory_lines(cal),
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


def _memory_lines(cal: Calibration) -> list[str]:
    fit, reported = cal.fit, _mib(cal.reported_cache)
    if fit.cache is None:
        why = (f"the memory sweep found no cache edge from 256 KiB to 128 MiB (reported: {reported})" if cal.device == "cpu"
               else "cache effects at these sizes included")  # fmt: skip
        lines = [f"bandwidth_gbps = {fit.bandwidth / 1e9:.4g}  # measured: fitted from the memory-bound benchmarks; {why}"]
    else:
        size, speed = fit.cache
        lines = [
            f"bandwidth_gbps = {fit.bandwidth / 1e9:.4g}  # measured: fitted, kernels larger than the cache",
            f"cache_mb = {size / 2**20:.4g}  # measured: the working set an add keeps in cache, beyond which its bytes "
            f"move at bandwidth_gbps, fitted to a sweep of working sets from 256 KiB to 128 MiB (the OS reports {reported})",
            f"cache_bandwidth_gbps = {speed / 1e9:.4g}  # measured: fitted, kernels that fit in the cache",
        ]  # fmt: skip
    if fit.fresh_output:
        kinds = "; ".join(p.label for p in fresh_output_pairs(cal.grid))
        lines.append(f"fresh_output_gbps = {fit.fresh_output / 1e9:.4g}  # measured: output bytes over the extra time "
                     f"of an op with {KEPT_BYTES // 2**20} MiB of its results kept alive against freed; the middle "
                     f"value of: {kinds}")  # fmt: skip
    if fit.cold_weights:
        lines.append(f"cold_weights_gbps = {fit.cold_weights / 1e9:.4g}  # measured: fitted with model_overhead_us, "
                     "over the ops of the model-like networks, to what each took where the forward ran it beyond at "
                     "once again on the same input, against its weights (up to cache_mb)")  # fmt: skip
    if fit.in_place_output_share is not None:
        kinds = "; ".join(p.label for p in in_place_pairs(cal.grid))
        lines.append(f"in_place_output_share = {fit.in_place_output_share:.3g}  # measured: the output bytes an op "
                     f"writing into its input moves, as a share of one writing a new tensor, from the two timed "
                     f"back to back less the element-wise fixed cost; the middle value of: {kinds}")  # fmt: skip
    return lines


def _mib(size: float | None) -> str:
    return f"{size / 2**20:.4g} MiB" if size else "no size"


def _model_overhead_lines(cal: Calibration) -> list[str]:
    fit = cal.fit
    if fit.model_overhead_s is None:
        return []
    chains = model_chains(cal.grid)  # the chains this calibration timed
    kinds = ", ".join(dict.fromkeys(_short(c.label) for c in chains))
    what = chains[0].label if len(chains) == 1 else f"{len(chains)} model-like networks at 224 px ({kinds})"
    return [f"model_overhead_us = {fit.model_overhead_s * 1e6:.3g}  # measured: per kernel, fitted with "
            f"memory.cold_weights_gbps to what each op of {what} took where the forward ran it beyond at once "
            "again on the same input"]


def _short(label: str) -> str:
    return label.split(": ", 1)[-1].split(",")[0]


def _small_gemm_lines(fit: Fit) -> list[str]:
    if fit.small_gemm is None:
        return []
    half_k, half_n, half_m = fit.small_gemm
    rows = [f"half_m = {half_m:.3g}  # measured"] if half_m else []
    return ["# measured: fitted; a conv or linear with k input channels per group x taps, n outputs per",
            "# group and m rows (output pixels or tokens) runs at its class efficiency x k / (k + half_k)",
            "# x n / (n + half_n)" + (" x m / (m + half_m)" if half_m else ""),
            "[small_gemm]",
            f"half_k = {half_k:.3g}  # measured",
            f"half_n = {half_n:.3g}  # measured", *rows, ""]  # fmt: skip


def _class_table(name: str, comments: list[str], values: dict[str, float]) -> list[str]:
    """A measured table keyed by op class, with the comments that say what it means; none when
    nothing was measured."""
    if not values:
        return []
    rows = [f"{op_class} = {value:.3g}  # measured" for op_class, value in sorted(values.items())]
    return [*comments, f"[{name}]", *rows, ""]


def _strided_lines(fit: Fit) -> list[str]:
    return _class_table("strided_input_gbps", [
        "# measured: fitted; a conv of the class with stride > 1 first gathers its input at this",
        "# bandwidth, on top of its roofline time (the strided benchmarks against the unit-stride ones)",
    ], {op_class: speed / 1e9 for op_class, speed in fit.strided.items()})


def _window_output_lines(fit: Fit) -> list[str]:
    return _class_table("window_output_ns", [
        "# measured: fitted; nanoseconds each output of a windowed pool or depthwise conv of the class",
        "# costs beyond its taps, on top of its roofline time (two window sizes against each other)",
    ], {op_class: seconds * 1e9 for op_class, seconds in fit.output_costs.items()})


def _unaligned_lines(fit: Fit) -> list[str]:
    return _class_table("unaligned_efficiency", [
        "# measured: fitted; the share of its rate a kernel of the class keeps when its channels per",
        "# group are off the channel granule (the benchmarks at such widths against the aligned ones)",
    ], fit.unaligned)


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
    if cal.device == "cpu":
        yield _cache_summary(cal)
    if fit.fresh_output:
        yield f"in a model, a fresh output costs {fit.fresh_output / 1e9:.3g} GB/s on top"
    if fit.in_place_output_share is not None:
        yield f"an op writing into its input moves {fit.in_place_output_share:.2g} of its output bytes"
    if fit.model_overhead_s is not None:
        cold = f", and its weights at {fit.cold_weights / 1e9:.3g} GB/s" if fit.cold_weights else ""
        yield f"in a model: {fit.model_overhead_s * 1e6:.3g} us per kernel beyond the single-op times{cold}"
    if fit.small_gemm:
        yield (f"thin matrix products: half the rate at {fit.small_gemm[0]:.3g} input channels per group "
               f"x taps, and at {fit.small_gemm[1]:.3g} outputs per group"
               + (f"; and at {fit.small_gemm[2]:.3g} rows (output pixels or tokens)" if fit.small_gemm[2] else ""))  # fmt: skip
    if fit.strided:
        yield "strided convs gather their input at " + ", ".join(
            f"{speed / 1e9:.3g} GB/s ({op_class})" for op_class, speed in sorted(fit.strided.items()))
    if fit.output_costs:
        yield "windowed ops cost per output, beyond their taps, " + ", ".join(
            f"{seconds * 1e9:.3g} ns ({op_class})" for op_class, seconds in sorted(fit.output_costs.items()))
    if fit.unaligned:
        yield "channels off the granule keep " + ", ".join(
            f"{share:.2f} of the rate ({op_class})" for op_class, share in sorted(fit.unaligned.items()))
    if noisy(fit):
        yield f"warning: {NOISY}"
    for op_class, q in fit.quality.items():
        eff = f"efficiency {fit.efficiency(op_class):.3f}" if op_class in fit.rates else "memory-bound only"
        yield f"  {op_class:<15} {eff:<18} n={q.samples:<3} R^2 {q.r2:6.2f}  median error {q.median_error:.0%}"


def _cache_summary(cal: Calibration) -> str:
    reported = _mib(cal.reported_cache)
    if cal.fit.cache is None:
        return f"cache: no edge in the memory sweep from 256 KiB to 128 MiB (the OS reports {reported}); one bandwidth"
    size, speed = cal.fit.cache
    return (f"cache: a kernel keeps {size / 2**20:.3g} MiB of its bytes in cache (the OS reports {reported}): "
            f"{speed / 1e9:.3g} GB/s for those, {cal.fit.bandwidth / 1e9:.3g} GB/s for the rest")


def _granule_lines(precision: str, base: Profile) -> list[str]:
    """A channel granule for a precision the base profile does not run (bf16 on a profile of
    fp32 and fp16): the microbenchmarks do not measure one, so it is the nearest precision's."""
    if precision in base.channel_granule:
        return []
    nearest = nearest_precision(precision, base)
    granule = base.channel_granule[nearest]
    return ["[channel_granule]",
            f"{precision} = {{ input = {granule.input}, output = {granule.output} }}  # estimate: "
            f"{base.name}'s {nearest} granule, not measured", ""]  # fmt: skip


# ----------------------------------------------------------------------------- from measurements
def render_measured_profile(cal: MeasuredCalibration, name: str, output: Path | None = None,
                            notes: list[str] | None = None, description: str | None = None,
                            given_source: str | None = None) -> str:  # fmt: skip
    """The profile a fit to whole-model timings writes: it extends the base, states what was
    fitted (each number with the fit behind it) and what was given, and says in its header what
    it was fitted from and how well it predicts families it did not see. ``notes``: lines about
    the data (where the timings come from); ``given_source``: the source of the peaks and
    bandwidth given on the command line."""
    fit, base = cal.fit, cal.base
    families = sorted({r.family for r in fit.rows})
    held = sorted({r.family for r in cal.held_out.rows}) if cal.held_out else []
    base_name = cal.base_ref
    if base_name.endswith(".toml") and output is not None:
        base_name = os.path.relpath(Path(base_name).resolve(), output.resolve().parent)
    models = {r.spec for r in cal.rows}
    source = Path(cal.path).name
    lines = [
        *_wrapped(f"Fitted by `cnnlint calibrate --from-measurements {source}` to whole-model timings: "
                  f"{len(cal.rows)} rows, {len(models)} models in {len({r.family for r in cal.rows})} families, "
                  f"at {cal.precision}" + (", eager (nothing fused)." if cal.eager
                                           else f", with {base.name}'s fusion.")),
        *(f"# {note}" for note in notes or []),
        *_wrapped(f"Fitted to {len(fit.rows)} rows of {len(families)} families: {', '.join(families)}."),
    ]
    if held:
        lines += _wrapped(f"Held out, never fitted: {len(held)} families: {', '.join(held)}.")
    lines += [
        "# Method: each model linted once at batch 1 (load, trace, graph and cost stages, as cnnlint",
        "# check), its kernels costed at the row's batch by the cost stage's roofline,",
        "# max(batch x flops / (peak x efficiency x small_gemm), bytes / bandwidth) + overhead;",
        "# scipy.optimize.least_squares on log time (soft-L1), every family weighted the same.",
        f"# Peak and bandwidth are {'given below' if cal.given else 'the base profile' + chr(39) + 's'}, not fitted.",
        f"# Fitted rows: {fit.fit_quality.line()}.",
    ]
    if cal.cross is not None:
        lines += _wrapped(f"Held out by family ({len(cal.cross.folds)} folds of the fitted families, each "
                          f"predicted by a fit to the others): {cal.cross.quality.line()}.")  # fmt: skip
    if cal.held_out is not None:
        lines += _wrapped(f"Held-out families, predicted by this fit: {cal.held_out.quality.line()}.")
    if cal.unlinted:
        lines += _wrapped(f"Not linted, so not fitted ({len(cal.unlinted)}): {', '.join(sorted(cal.unlinted))}.")
    lines += [
        f'extends = "{base_name}"',
        f'name = "{name}"',
        f'description = "{_toml_escape(description or f"{base.name}, fitted to {source}")}"',
    ]
    overhead_us = fit.params.overhead_s * 1e6
    batches = sorted({r.batch for r in fit.rows})
    at = f"batch {batches[0]}" if len(batches) == 1 else f"batches {batches[0]} to {batches[-1]}"
    lines.append(f"kernel_overhead_us = {overhead_us:.3g}  # fitted: fixed cost per kernel in whole models at {at}")
    if base.model_overhead_us:
        lines.append("model_overhead_us = 0.0  # fitted into kernel_overhead_us: whole-model timings cannot split them")
    lines.append("")
    if base.overhead_us:
        lines += ["# fitted: whole-model timings give one fixed cost per kernel, whatever its class",
                  "[overhead_us]", *(f"{c} = {overhead_us:.3g}" for c in base.overhead_us), ""]  # fmt: skip
    if cal.given:
        lines += _wrapped(f"Given, not fitted: {given_source or 'on the command line, without a source'}.")
    peaks = {key.split(".", 1)[1]: value for key, value in cal.given.items() if key.startswith("peak_tflops.")}
    if peaks:
        lines += ["[peak_tflops]", *(f"{p} = {v}  # given (source above)" for p, v in peaks.items()), ""]
    if "bandwidth_gbps" in cal.given:
        lines += ["[memory]", f"bandwidth_gbps = {cal.given['bandwidth_gbps']}  # given (source above)", ""]
    if fit.params.small_gemm is not None:
        half_k, half_n = fit.params.small_gemm
        lines += ["# fitted: a conv or linear with k input channels per group x taps and n outputs per group",
                  "# runs at its class efficiency x k / (k + half_k) x n / (n + half_n)",
                  "[small_gemm]", f"half_k = {half_k:.3g}  # fitted", f"half_n = {half_n:.3g}  # fitted",
                  *(["half_m = 0  # not fitted from whole models: the base's rows term is left out"]
                    if cal.base.small_gemm.half_m else []),
                  ""]  # fmt: skip
    if cal.eager:
        lines += ["# the timings ran in eager PyTorch, which runs every op as its own kernel", "[fusion]",
                  *(f"{role} = false" for role in EAGER_FUSION), ""]  # fmt: skip
    lines += ["# fitted: fraction of peak; per class, its share of the fitted rows' predicted time on the",
              "# compute slope. Classes not listed keep the base's: in these models they are memory-bound,",
              "# or too small a share of the time for the timings to tell their rate.",
              "[efficiency]"]  # fmt: skip
    for op_class in OP_CLASSES:
        if op_class in fit.params.efficiency:
            share = fit.compute_share.get(op_class, 0.0)
            lines.append(f"{op_class} = {fit.params.efficiency[op_class]:.4g}  # fitted: {share:.0%} of the time")
    return "\n".join(lines) + "\n"


def _wrapped(text: str, width: int = 98) -> list[str]:
    import textwrap

    return [f"# {line}" for line in textwrap.wrap(text, width - 2, break_on_hyphens=False)]


def measured_summary_lines(cal: MeasuredCalibration) -> Iterator[str]:
    fit = cal.fit
    yield (f"{cal.path}: {len(cal.rows)} rows, {len({r.spec for r in cal.rows})} models, "
           f"{len({r.family for r in cal.rows})} families; linted and fitted in {cal.seconds:.0f} s")  # fmt: skip
    if cal.unlinted:
        first = sorted(cal.unlinted.items())[:5]
        yield f"not linted ({len(cal.unlinted)}): " + "; ".join(f"{spec}: {why}" for spec, why in first)
    yield f"fitted rows:        {fit.fit_quality.line()}"
    if cal.cross is not None:
        yield f"held out by family: {cal.cross.quality.line()} ({len(cal.cross.folds)} folds)"
    if cal.held_out is not None:
        yield f"held-out families:  {cal.held_out.quality.line()}"
    yield (f"fixed cost {fit.params.overhead_s * 1e6:.3g} us per kernel"
           + (f"; thin matrix products: half the rate at k = {fit.params.small_gemm[0]:.3g}, "
              f"n = {fit.params.small_gemm[1]:.3g}" if fit.params.small_gemm else ""))  # fmt: skip
    for op_class in OP_CLASSES:
        if op_class in fit.params.efficiency:
            yield (f"  {op_class:<15} efficiency {fit.params.efficiency[op_class]:.3f}  "
                   f"{fit.compute_share.get(op_class, 0.0):.0%} of the time")  # fmt: skip
    errors = {}
    for held in (cal.cross, cal.held_out):
        if held is not None:
            errors.update(held.by_family())
    if errors:
        yield "median signed error by family, held out (< 0: predicted fast):"
        for family, q in errors.items():
            yield f"  {family:<20} {q.median_signed:+6.0%}  ({q.models} models)"


def write_measured_samples(cal: MeasuredCalibration, path: Path) -> None:
    """Every row with what the fit predicts for it, and, where its family was held out, what a
    fit that did not see the family predicts."""
    import csv

    fitted = {id(r): p for r, p in zip(cal.fit.rows, cal.fit.predicted)}
    held: dict[int, float] = {}
    for result in (cal.cross, cal.held_out):
        if result is not None:
            held.update({id(r): p for r, p in zip(result.rows, result.predicted)})
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["spec", "family", "batch", "measured_ms", "fitted_ms", "held_out_ms", "role"])
        for row in cal.rows:
            role = "fitted" if id(row) in fitted else "held out" if id(row) in held else "not linted"
            cells = [fitted.get(id(row)), held.get(id(row))]
            writer.writerow([row.spec, row.family, row.batch, f"{row.seconds * 1e3:.6g}",
                             *("" if c is None else f"{c * 1e3:.6g}" for c in cells), role])  # fmt: skip
