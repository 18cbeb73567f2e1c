"""``cnnlint calibrate``: measure this device and write a profile that ``extends`` a built-in one.

A tool beside the pipeline: it runs real kernels, so it imports torch and (optionally) scipy.

1. Microbenchmarks (``grid.py``): a grid of single-op modules over channels, resolutions and
   strides, plus small ones whose time is each op class's fixed cost per call. Each is timed
   after warm-up as the median of repeated samples; a sample is a back-to-back loop of calls,
   timed with ``perf_counter`` on CPU and CUDA events (after a synchronize) on a GPU, so eager
   dispatch and launch cost are in it, as they are in a model (:mod:`cnnlint.timing`, the timer
   ``--measure`` uses too; the run is ``run.py``).
2. The same modules are traced through cnnlint's own trace, graph and cost stages
   (``grid.counted_work``), so each benchmark's FLOPs, bytes and op class are exactly what the
   cost model will count.
3. ``scipy.optimize.least_squares`` fits the cost model's kernel time (``fitting.py``).
4. The profile states only what was measured, each number with how it was measured, and the fit
   quality per op class as comments (``writing.py``, with the samples CSV and the summary).

``--from-measurements`` fits whole-model timings instead: ``measurements.py`` reads the CSV, names
each row's family and lints each model once; ``model_fit.py`` fits the profile's efficiencies,
small-GEMM curve and fixed cost, and predicts families the fit did not see.

The names the command line and the tests use are imported here.
"""

from cnnlint.calibrate.fitting import CalibrationError, ClassFit, Fit, Knee, Sample, find_knee, fit, predict
from cnnlint.calibrate.grid import Bench, KernelWork, benchmark_grid, counted_work, memory_sweep, model_chains
from cnnlint.calibrate.measurements import Measurement, family_of, read_measurements
from cnnlint.calibrate.model_fit import MeasuredCalibration, Params, from_measurements
from cnnlint.calibrate.run import Calibration, calibrate, check_device, measure_model_overhead, merge
from cnnlint.calibrate.writing import (
    measured_summary_lines,
    noisy,
    render_measured_profile,
    render_profile,
    summary_lines,
    write_measured_samples,
    write_samples,
)

__all__ = [
    "Bench",
    "Calibration",
    "CalibrationError",
    "ClassFit",
    "Fit",
    "KernelWork",
    "Knee",
    "MeasuredCalibration",
    "Measurement",
    "Params",
    "Sample",
    "benchmark_grid",
    "calibrate",
    "check_device",
    "counted_work",
    "family_of",
    "find_knee",
    "from_measurements",
    "fit",
    "measure_model_overhead",
    "measured_summary_lines",
    "memory_sweep",
    "merge",
    "model_chains",
    "noisy",
    "predict",
    "read_measurements",
    "render_measured_profile",
    "render_profile",
    "summary_lines",
    "write_measured_samples",
    "write_samples",
]
