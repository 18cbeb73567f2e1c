"""How well does cnnlint's predicted latency match real latency? Every torchvision classifier.

Real: torch eager, ``torch.inference_mode``, fixed threads, random weights, median of repeated
forwards after warm-up (CUDA events after a synchronize on a GPU). Predicted: cnnlint's latency
for the same model, input shape and precision, from a profile calibrated on this machine
(``--profile``, or a calibration run first). Printed: Spearman rho of predicted against measured,
the median absolute % error, the same rho for a FLOPs-only ranking (the baseline), and the
worst-predicted models with where the prediction's time went.

Targets: rho >= 0.95, median error <= 20%, clearly above the FLOPs baseline.

``--rounds N`` times every model N times, in a different order each round, and keeps each
model's median; without ``--profile`` it also calibrates at the start of every round and merges
the calibrations by median (``cnnlint.calibrate.merge``), so that the profile and the timings
see the machine over the same span of time. On a shared VM whose speed drifts by 20% in ten
minutes, a calibration taken before a 5-minute run of timings is off by that drift whatever the
cost model does, and models timed in alphabetical order take the drift by family. With more
than one round it also scores each round as an experiment of its own: that round's calibration
predicting that round's timings (``paired_rounds`` in the JSON, and the median over rounds),
since a VM whose speed changes between rounds gives the merged calibration benchmarks timed at
different speeds.

    python benchmarks/fidelity.py [--device cpu|cuda] [--batch 1[,64]] [--profile P.toml]
        [--precision fp32] [--models resnet18,mobilenet_v2,timm/ghostnet_100] [--quick] [--threads N]
        [--jobs N] [--rounds N] [--samples S.csv] [--json out.json] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

# A small, varied subset for --quick: tiny to large, depthwise-heavy to dense, CNNs and a ViT.
QUICK_MODELS = ["mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x1_0", "squeezenet1_1",
                "resnet18", "resnet50", "efficientnet_b0", "regnet_x_400mf", "densenet121",
                "mnasnet1_0", "vgg11", "vit_b_32"]  # fmt: skip
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def classifier_names() -> list[str]:
    import torchvision.models as tvm

    return sorted(tvm.list_models(module=tvm))


def image_size(name: str) -> int:
    return 299 if name == "inception_v3" else 224


# A name "timm/ghostnet_100" is a timm model (pip install timm): the ghostnet-vs-mobilenet_v2
# ranking FLOPs get wrong is a timm one (--models timm/ghostnet_100,mobilenet_v2).
TIMM = "timm/"


def build(name: str):
    """The model, with random weights."""
    if name.startswith(TIMM):
        import timm

        return timm.create_model(name[len(TIMM):], pretrained=False)
    import torchvision.models as tvm

    return tvm.get_model(name)


def spec_of(name: str) -> str:
    """The cnnlint spec of a model name."""
    return f"timm.models:{name[len(TIMM):]}" if name.startswith(TIMM) else f"torchvision.models:{name}"


# ----------------------------------------------------------------------------- predicted
@dataclass
class Predicted:
    latency_s: float
    flops: int
    kernels: int
    overhead_s: float  # the per-kernel overhead's share of latency_s
    memory_bound_s: float  # time of kernels the roofline puts on the memory slope
    by_class_s: dict[str, float] = field(default_factory=dict)


def predict(name: str, batch: int, profile_path: str, precision: str) -> Predicted | str:
    """cnnlint's prediction for one model (runs in a worker process); a string says why not."""
    try:
        from cnnlint.cost import compute_cost
        from cnnlint.graph.build import build_layer_graph
        from cnnlint.load import ModelSettings, load
        from cnnlint.spec import ModelSpec
        from cnnlint.profile import load_profile
        from cnnlint.trace import trace

        size = image_size(name)
        (model,) = load(ModelSpec.parse(spec_of(name)), lambda _: ModelSettings(),
                        [(batch, 3, size, size)])  # fmt: skip
        if isinstance(model, Exception):
            return f"load: {model}"
        graph = build_layer_graph(trace(model))
        profile = load_profile(profile_path)
        cost = compute_cost(graph, profile, precision)
        by_class: dict[str, float] = {}
        memory_bound = overhead = 0.0
        for kernel in cost.kernels.values():
            by_class[kernel.op_class] = by_class.get(kernel.op_class, 0.0) + kernel.time_s
            fixed = profile.kernel_overhead_s(kernel.op_class)
            overhead += fixed
            if cost.is_memory_bound(kernel):
                memory_bound += kernel.time_s - fixed
        return Predicted(cost.latency_s, cost.flops, len(cost.kernels), overhead, memory_bound, by_class)
    except Exception as exc:  # noqa: BLE001 - one model's failure is reported, the rest go on
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"


# ----------------------------------------------------------------------------- measured
def measure(name: str, batch: int, device: str, precision: str, budget_s: float,
            clock=time.perf_counter) -> tuple[float, float]:  # fmt: skip
    """Median seconds of one forward pass, and the median of the minor page faults each took
    (CPU: fresh pages the allocator had to map in; 0 on a GPU)."""
    import torch

    from cnnlint.timing import minor_faults

    dtype = getattr(torch, DTYPES[precision])
    with torch.device(device):  # initialise the weights where they will run
        model = build(name).eval().to(dtype)
    size = image_size(name)
    x = torch.randn(batch, 3, size, size, device=device, dtype=dtype)

    faults: list[int] = []

    def once() -> float:
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            model(x)
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) * 1e-3
        before, begin = minor_faults(), clock()
        model(x)
        seconds = clock() - begin
        faults.append(minor_faults() - before)
        return seconds

    try:
        with torch.inference_mode():
            first = once()  # warm-up (and cudnn autotuning on a GPU)
            for _ in range(2 if device == "cuda" else 0):
                first = once()
            repeats = max(3, min(20 if device == "cuda" else 30, int(budget_s / max(first, 1e-6))))
            faults.clear()
            seconds = statistics.median(once() for _ in range(repeats))
            return seconds, statistics.median(faults) if faults else 0.0
    finally:
        del model, x
        if device == "cuda":
            torch.cuda.empty_cache()


def _conv_class(shapes: list) -> str:
    """The op class of an aten::conv2d call, from its input and weight shapes."""
    if len(shapes) < 2 or len(shapes[0]) != 4 or len(shapes[1]) != 4:
        return "other"
    channels, (per_group, kernel) = shapes[0][1], (shapes[1][1], tuple(shapes[1][2:]))
    if per_group == 1 and channels > 1:
        return "depthwise_conv"
    if per_group != channels:
        return "group_conv"
    return "conv1x1" if kernel == (1, 1) else "conv3x3" if kernel == (3, 3) else "conv_kxk"


ATEN_CLASSES = {"linear": "linear", "addmm": "linear", "matmul": "matmul", "bmm": "matmul",
                "scaled_dot_product_attention": "matmul", "max_pool2d": "pool", "avg_pool2d": "avg_pool",
                "adaptive_avg_pool2d": "reduce", "mean": "reduce", "cat": "other",
                "batch_norm": "norm", "layer_norm": "norm", "group_norm": "norm",
                "silu": "transcendental", "silu_": "transcendental", "sigmoid": "transcendental",
                "sigmoid_": "transcendental", "gelu": "transcendental", "tanh": "transcendental",
                "_native_multi_head_attention": "matmul", "contiguous": "other", "clone": "other",
                "copy_": "other", "roll": "other", "pad": "other", "constant_pad_nd": "other",
                "permute": "other", "transpose": "other", "reshape": "other", "view": "other",
                "flatten": "other", "chunk": "other", "split": "other"}  # fmt: skip


def measured_by_class(name: str, batch: int, device: str, precision: str) -> dict[str, float]:
    """Seconds per op class in two profiled forwards (CPU): where the real time went."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    dtype = getattr(torch, DTYPES[precision])
    model = build(name).eval().to(dtype)
    size = image_size(name)
    x = torch.randn(batch, 3, size, size, dtype=dtype)
    with torch.inference_mode():
        model(x)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(2):
                model(x)
    by_class: dict[str, float] = {}
    for event in prof.events():
        if event.cpu_parent is not None or not event.name.startswith("aten::"):
            continue  # top-level aten calls only: their time includes what they call
        op = event.name[len("aten::") :]
        if op in ("conv2d", "convolution", "_convolution"):
            op_class = _conv_class(event.input_shapes)
        else:
            op_class = ATEN_CLASSES.get(op, "elementwise" if event.cpu_time_total > 0 else "other")
        by_class[op_class] = by_class.get(op_class, 0.0) + event.cpu_time_total * 1e-6
    return by_class


def missed(name: str, batch: int, device: str, precision: str, predicted: dict[str, float]) -> str:
    """The op classes whose measured time differs most from the predicted."""
    try:
        real = measured_by_class(name, batch, device, precision)
    except Exception as exc:  # noqa: BLE001
        return f"(profiler failed: {type(exc).__name__})"
    # Shares, not times: the profiler's own cost and other processes inflate the absolute numbers.
    real_total, predicted_total = sum(real.values()) or 1.0, sum(predicted.values()) or 1.0
    share = {c: real.get(c, 0) / real_total for c in set(real) | set(predicted)}
    guess = {c: predicted.get(c, 0) / predicted_total for c in share}
    gaps = sorted(share, key=lambda c: -abs(share[c] - guess[c]))
    return "; ".join(f"{c} {share[c]:.0%} of real time vs {guess[c]:.0%} predicted" for c in gaps[:3])


# ----------------------------------------------------------------------------- statistics
def ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            result[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return result


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))
    return cov / var if var else float("nan")


@dataclass
class Row:
    model: str
    batch: int
    measured_ms: float
    predicted_ms: float
    gflops: float
    kernels: int
    overhead_share: float
    memory_share: float
    top_class: str
    predicted_by_class_ms: dict[str, float] = field(default_factory=dict)
    faults_per_call: float = 0.0  # minor page faults in one forward (median), CPU

    @property
    def error(self) -> float:
        return self.predicted_ms / self.measured_ms - 1


def summarise(rows: list[Row]) -> dict:
    measured = [r.measured_ms for r in rows]
    predicted = [r.predicted_ms for r in rows]
    flops = [r.gflops for r in rows]
    # FLOPs-only predictor: one rate for every model, the best single one (median ratio).
    rate = statistics.median(f / m for f, m in zip(flops, measured))
    flops_errors = [abs((f / rate) / m - 1) for f, m in zip(flops, measured)]
    # Where FLOPs are known to rank poorly: the half of the models with the fewest FLOPs.
    small = sorted(rows, key=lambda r: r.gflops)[: len(rows) // 2]
    small_measured = [r.measured_ms for r in small]

    def small_rho(values: list[float]) -> float:  # too few models rank nothing
        return spearman(values, small_measured) if len(small) > 2 else float("nan")

    return {
        "models": len(rows),
        "spearman_rho": spearman(predicted, measured),
        "median_abs_error": statistics.median(abs(r.error) for r in rows),
        "median_signed_error": statistics.median(r.error for r in rows),
        "flops_spearman_rho": spearman(flops, measured),
        "flops_median_abs_error": statistics.median(flops_errors),
        "small_models": len(small),
        "small_max_gflops": max((r.gflops for r in small), default=0.0),
        "small_spearman_rho": small_rho([r.predicted_ms for r in small]),
        "small_flops_spearman_rho": small_rho([r.gflops for r in small]),
        "models_page_faulting": sum(r.faults_per_call > 0 for r in rows),
    }


def explain(row: Row) -> str:
    """A short account of where a badly predicted model's time went, in the prediction."""
    direction = "under" if row.error < 0 else "over"
    parts = [f"{direction}-predicted {abs(row.error):.0%}", f"{row.kernels} kernels",
             f"overhead {row.overhead_share:.0%}", f"memory-bound {row.memory_share:.0%}",
             f"most time: {row.top_class}"]  # fmt: skip
    return ", ".join(parts)


# ----------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch", default="1", help="batch size, or several: 1,64")
    parser.add_argument("--profile", help="profile .toml calibrated on this machine "
                        "(default: run `cnnlint calibrate` first)")  # fmt: skip
    parser.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default="fp32")
    parser.add_argument("--models", help="comma-separated torchvision model names (default: all)")
    parser.add_argument("--quick", action="store_true", help=f"{len(QUICK_MODELS)} varied models")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--clock", choices=["wall", "process"], default="wall",
                        help="process: CPU time of this process (needs --threads 1); on a shared "
                        "machine it leaves out the time other processes had")  # fmt: skip
    parser.add_argument("--allocator", choices=["hold", "default"], default="hold",
                        help="CPU: hold: the allocator keeps freed memory (cnnlint.timing.hold_freed_memory, "
                        "as calibrate and --measure time); default: glibc's own settings, under which a "
                        "forward may page-fault its activations in again at every call")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=2, help="processes computing predictions")
    parser.add_argument("--budget", type=float, default=1.0, help="timing seconds per model and batch")
    parser.add_argument("--worst", type=int, default=10, help="rows in the worst-predicted table")
    parser.add_argument("--explain", type=int, default=3, help="profile this many of the worst models "
                        "(CPU) and show the op classes the prediction missed most")  # fmt: skip
    parser.add_argument("--deadline", type=float, help="stop timing new models after this many "
                        "seconds and report what was measured")  # fmt: skip
    parser.add_argument("--measured-from", type=Path, help="reuse the measured latencies of an earlier "
                        "--json run (same device): compare cost models on the same measurements")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=1, help="time every model this often, in a new order "
                        "each round (medians kept); without --profile, calibrate at the start of each round")
    parser.add_argument("--samples", type=Path, help="with a calibration run here: write its microbenchmark "
                        "samples to this CSV")
    parser.add_argument("--profile-out", type=Path, help="with a calibration run here: write the profile here")
    parser.add_argument("--json", type=Path, help="write the rows and the summary here")
    parser.add_argument("--csv", type=Path, help="write the rows here")
    args = parser.parse_args()

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("fidelity: --device cuda, but torch sees no CUDA GPU on this machine.")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "process" and (args.device != "cpu" or torch.get_num_threads() != 1):
        sys.exit("fidelity: --clock process needs --device cpu --threads 1.")
    clock = time.process_time if args.clock == "process" else time.perf_counter
    held = False
    if args.device == "cpu" and args.allocator == "hold":
        from cnnlint.timing import hold_freed_memory

        held = hold_freed_memory()
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    batches = [int(b) for b in args.batch.split(",")]
    names = (args.models.split(",") if args.models else QUICK_MODELS if args.quick else classifier_names())
    if args.deadline:  # a fixed shuffle, so that a cut at the deadline leaves a spread of families
        names.sort(key=lambda n: hashlib.sha1(n.encode()).hexdigest())
    device_label = (torch.cuda.get_device_name(0) if args.device == "cuda" else
                    f"cpu, {torch.get_num_threads()} threads, {args.clock} clock, load {os.getloadavg()[0]:.1f}, "
                    f"freed memory {'held' if held else 'returned as glibc decides'}")  # fmt: skip
    log(f"fidelity: {len(names)} models, batch {args.batch}, {args.precision}, {device_label}, torch {torch.__version__}")

    earlier = None
    faults_of: dict[tuple[str, int], float] = {}  # minor page faults a forward took (median)
    if args.measured_from:
        document = json.loads(args.measured_from.read_text())
        earlier = {(r["model"], r["batch"]): r["measured_ms"] / 1e3 for r in document["rows"]}
        faults_of = {(r["model"], r["batch"]): r.get("faults_per_call", 0.0) for r in document["rows"]}
        device_label = f"{document['device']} (measured earlier)"
        log(f"measured latencies from {args.measured_from} ({document['device']})")
    profile_path = args.profile
    rounds = 1 if earlier is not None else max(1, args.rounds)
    calibrations = []
    timings: dict[tuple[str, int], list[float]] = {}
    fault_counts: dict[tuple[str, int], list[float]] = {}
    by_round: dict[tuple[str, int], dict[int, float]] = {}  # each model's time in each round
    skipped: list[str] = []
    started = time.perf_counter()
    for round_ in range(rounds):
        if profile_path is None:
            from cnnlint.calibrate import calibrate, summary_lines

            log(f"calibrating this device{f' (round {round_ + 1} of {rounds})' if rounds > 1 else ''}")
            calibrations.append(calibrate(args.device, args.precision, threads=args.threads, clock=args.clock,
                                          hold_memory=args.allocator == "hold"))  # fmt: skip
            for line in summary_lines(calibrations[-1]):
                log(line)
        if earlier is not None:
            break
        # Each round its own order: drift over a run then falls on every family alike.
        order = names if rounds == 1 else sorted(names, key=lambda n: hashlib.sha1(f"{round_}:{n}".encode()).hexdigest())
        for name in order:
            if args.deadline and time.perf_counter() - started > args.deadline:
                skipped.append(f"{name} and later: --deadline {args.deadline:g} s reached")
                log(f"skip {skipped[-1]}")
                break
            for batch in batches:
                try:
                    seconds, faults = measure(name, batch, args.device, args.precision, args.budget, clock)
                except Exception as exc:  # noqa: BLE001 - skip the model, say why
                    skipped.append(f"{name} b{batch}: measure: {type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0][:120] if str(exc) else ''}")  # fmt: skip
                    log(f"skip {skipped[-1]}")
                    continue
                timings.setdefault((name, batch), []).append(seconds)
                fault_counts.setdefault((name, batch), []).append(faults)
                by_round.setdefault((name, batch), {})[round_] = seconds
                if rounds > 1:
                    log(f"round {round_ + 1}: {name:<24} b{batch:<3} {seconds * 1e3:9.2f} ms"
                        + (f"  ({faults:g} page faults a call)" if faults else ""))
    if calibrations:
        from cnnlint.calibrate import merge, render_profile, summary_lines

        calibration = merge(calibrations)
        if len(calibrations) > 1:
            log(f"the {len(calibrations)} calibrations merged by median:")
            for line in summary_lines(calibration):
                log(line)
        out = args.profile_out or Path(tempfile.mkdtemp()) / "calibrated.toml"
        out.write_text(render_profile(calibration, out.stem))
        profile_path = str(out)
        if args.samples:
            from cnnlint.calibrate import write_samples

            write_samples(calibration, args.samples)

    # Predictions in worker processes (spawned: never fork a process that may hold CUDA), after
    # the timings, so that the two never share the CPU.
    import multiprocessing

    pool = ProcessPoolExecutor(max(1, args.jobs), mp_context=multiprocessing.get_context("spawn"))
    futures = {(n, b): pool.submit(predict, n, b, profile_path, args.precision) for n in names for b in batches}
    rows: list[Row] = []
    for name in names:
        for batch in batches:
            if earlier is not None:
                if (name, batch) not in earlier:
                    continue
                measured = earlier[(name, batch)]
            elif (name, batch) in timings:
                measured = statistics.median(timings[(name, batch)])
                faults_of[(name, batch)] = statistics.median(fault_counts[(name, batch)])
            else:
                continue
            predicted = futures[(name, batch)].result()
            if isinstance(predicted, str):
                skipped.append(f"{name} b{batch}: predict: {predicted}")
                log(f"skip {skipped[-1]}")
                continue
            top = max(predicted.by_class_s, key=predicted.by_class_s.get, default="-")
            latency = predicted.latency_s
            rows.append(Row(name, batch, measured * 1e3, latency * 1e3, predicted.flops / 1e9,
                            predicted.kernels, predicted.overhead_s / latency if latency else 0.0,
                            predicted.memory_bound_s / latency if latency else 0.0, top,
                            {c: t * 1e3 for c, t in predicted.by_class_s.items()},
                            faults_of.get((name, batch), 0.0)))  # fmt: skip
            log(f"{name:<24} b{batch:<3} measured {measured * 1e3:9.2f} ms  predicted {latency * 1e3:9.2f} ms  ({rows[-1].error:+.0%})")
    paired = paired_rounds(calibrations, by_round, names, batches, args, pool) if len(calibrations) > 1 else []
    write_files(args, device_label, profile_path, rows, skipped, paired)
    pool.shutdown(cancel_futures=True)

    summaries = summaries_by_batch(rows)
    for batch, s in summaries.items():
        batch_rows = [r for r in rows if r.batch == batch]
        print(f"\n== batch {batch}, {args.precision}, {device_label}: {s['models']} models ==")
        print(f"cnnlint:    Spearman rho {s['spearman_rho']:.3f} (target >= 0.95)   median |error| "
              f"{s['median_abs_error']:.0%} (target <= 20%)   median signed error {s['median_signed_error']:+.0%}")
        print(f"FLOPs only: Spearman rho {s['flops_spearman_rho']:.3f}                 median |error| "
              f"{s['flops_median_abs_error']:.0%} (one best-fit rate for all models)")
        print(f"the {s['small_models']} models with the fewest FLOPs (<= {s['small_max_gflops']:.2f} GFLOPs): "
              f"Spearman rho {s['small_spearman_rho']:.3f} cnnlint, {s['small_flops_spearman_rho']:.3f} FLOPs only")
        for line in paired_lines(paired, batch):
            print(line)
        print(f"worst predicted (of {len(batch_rows)}):")
        worst = sorted(batch_rows, key=lambda r: -abs(math.log(r.predicted_ms / r.measured_ms)))
        for rank, row in enumerate(worst[: args.worst]):
            print(f"  {row.model:<22} measured {row.measured_ms:9.2f} ms  predicted {row.predicted_ms:9.2f} ms  {explain(row)}")
            if rank < args.explain and args.device == "cpu" and earlier is None:
                by_class = {c: t / 1e3 for c, t in row.predicted_by_class_ms.items()}
                print(f"  {'':<22} missed most: {missed(row.model, row.batch, args.device, args.precision, by_class)}")
    if skipped:
        print(f"\nskipped {len(skipped)}:")
        for line in skipped:
            print(f"  {line}")
    write_files(args, device_label, profile_path, rows, skipped, paired)


def paired_rounds(calibrations: list, by_round: dict[tuple[str, int], dict[int, float]], names: list[str],
                  batches: list[int], args, pool: ProcessPoolExecutor) -> list[dict]:  # fmt: skip
    """Each round as an experiment of its own: its calibration's profile predicting the models
    as that round timed them. One summary per round (``summarise``), with its rows."""
    from cnnlint.calibrate import render_profile

    folder = Path(tempfile.mkdtemp())
    results = []
    for round_, calibration in enumerate(calibrations):
        path = folder / f"round_{round_ + 1}.toml"
        path.write_text(render_profile(calibration, path.stem))
        futures = {(n, b): pool.submit(predict, n, b, str(path), args.precision)
                   for n in names for b in batches if round_ in by_round.get((n, b), {})}  # fmt: skip
        rows = []
        for (name, batch), future in futures.items():
            predicted = future.result()
            if isinstance(predicted, str):
                continue
            rows.append(Row(name, batch, by_round[(name, batch)][round_] * 1e3, predicted.latency_s * 1e3,
                            predicted.flops / 1e9, predicted.kernels, 0.0, 0.0, ""))  # fmt: skip
        results.append({"round": round_ + 1, "summary": {str(b): s for b, s in summaries_by_batch(rows).items()},
                        "rows": [{"model": r.model, "batch": r.batch, "measured_ms": r.measured_ms,
                                  "predicted_ms": r.predicted_ms} for r in rows]})  # fmt: skip
        log(f"round {round_ + 1}'s calibration predicted round {round_ + 1}'s timings")
    return results


def paired_lines(paired: list[dict], batch: int) -> list[str]:
    """The summary lines of ``paired_rounds`` for one batch: each round's, and their median."""
    summaries = [p["summary"][str(batch)] for p in paired if str(batch) in p["summary"]]
    if not summaries:
        return []
    each = ", ".join(f"{s['spearman_rho']:.3f} / {s['median_abs_error']:.0%} ({s['median_signed_error']:+.0%})"
                     for s in summaries)  # fmt: skip
    median = {k: statistics.median(s[k] for s in summaries)
              for k in ("spearman_rho", "median_abs_error", "median_signed_error", "small_spearman_rho")}
    return [f"each round's calibration with that round's timings: rho / median error (signed) {each}",
            f"  median over the {len(summaries)} rounds: Spearman rho {median['spearman_rho']:.3f}, median |error| "
            f"{median['median_abs_error']:.0%}, signed {median['median_signed_error']:+.0%}; the cheaper half: rho "
            f"{median['small_spearman_rho']:.3f}"]


def summaries_by_batch(rows: list[Row]) -> dict[int, dict]:
    batches = sorted({r.batch for r in rows})
    return {b: summarise([r for r in rows if r.batch == b]) for b in batches
            if sum(r.batch == b for r in rows) >= 3}  # fmt: skip


def write_files(args, device_label: str, profile_path: str, rows: list[Row], skipped: list[str],
                paired: list[dict] | None = None) -> None:  # fmt: skip
    summaries = summaries_by_batch(rows)
    if args.json:
        document = {"device": device_label, "precision": args.precision, "profile": profile_path,
                    "summary": {str(b): s for b, s in summaries.items()},
                    "rows": [asdict(r) | {"error": r.error} for r in rows], "skipped": skipped}  # fmt: skip
        if paired:
            document["paired_rounds"] = paired
        args.json.write_text(json.dumps(document, indent=1))
    if args.csv:
        with args.csv.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([*Row.__dataclass_fields__, "error"])
            for r in rows:
                writer.writerow([*asdict(r).values(), f"{r.error:.4f}"])


if __name__ == "__main__":
    main()
