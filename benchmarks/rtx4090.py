"""Calibration from published timings: the built-in rtx4090 profile, fitted to half of the CNN
families in timm's RTX 4090 inference table, and checked on the other half.

Source: huggingface/pytorch-image-models, results/benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv
at commit 5c33776aa59f0f05bfb8008ff546ed4c09083f1a (torch 2.4, CUDA 12.4, AMP fp16 autocast, NCHW,
eager, no torch.compile; samples per second at the batch in the table, mostly 1024).

    python benchmarks/rtx4090.py select TABLE.csv      # the CNN rows at 224 px -> measurements CSV
    python benchmarks/rtx4090.py fit [--jobs 2]        # lint each model once, fit half, score the other

``select`` keeps the CNN families below at 224 px and writes the measurements CSV
(``cnnlint calibrate --from-measurements``'s columns, with the table's model name and GMACs kept
beside them). ``fit`` lints every model once (graphs cached between runs), fits the rtx4090
profile with the same code as ``cnnlint calibrate --from-measurements --hold-out HELD_OUT`` to the
fitted half, writes it to rules/profiles/rtx4090.toml, and scores the held-out half with the cost
stage itself (``compute_cost`` on the written profile), beside the FLOPs-only ranking and the a4000
profile. The families are split before any fit: sorted by name, every other one held out
(``split``); the reverse split is scored too, so the result does not rest on one draw.
"""

from __future__ import annotations

import argparse
import csv
import json
import pickle
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "rtx4090"
MEASUREMENTS = OUT / "timm-rtx4090-cnn-224.csv"
PROFILE = ROOT / "rules" / "profiles" / "rtx4090.toml"
SOURCE_REPO = "huggingface/pytorch-image-models"
SOURCE_PATH = "results/benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv"
SOURCE_COMMIT = "5c33776aa59f0f05bfb8008ff546ed4c09083f1a"
SOURCE = f"{SOURCE_REPO} {SOURCE_PATH} at {SOURCE_COMMIT}"

# The CNN families of the table, by timm model name (first match wins): close variants (SE, ECA,
# anti-aliased, deep-stem ResNets; SE and ECA ResNeXts) share their family, so that no held-out
# family has a near twin among the fitted ones. Attention hybrids are left out (EXCLUDE).
FAMILIES = [
    ("nfnet", r"^(nf_|nfnet|dm_nfnet|eca_nfnet)"),
    ("vovnet", r"^(vovnet|ese_vovnet|eca_vovnet)"),
    ("res2net", r"^res2ne"),
    ("resnext", r"^(resnext|seresnext|ecaresnext|skresnext|senet|legacy_senet|legacy_seresnext)"),
    ("resnet", r"^(resnet|wide_resnet|seresnet|legacy_seresnet|ecaresnet|skresnet)"),
    ("regnet", r"^regnet[xyvz]_"),
    ("efficientnet", r"^(tf_)?efficientnet|^gc_efficientnetv2"),
    ("mobilenetv1", r"^mobilenetv1_"),
    ("mobilenetv2", r"^mobilenetv2_"),
    ("mobilenetv3", r"^(tf_)?mobilenetv3_"),
    ("mobilenetv4", r"^mobilenetv4_conv"),
    ("mobilenet_edgetpu", r"^mobilenet_edgetpu"),
    ("mnasnet", r"^(mnasnet|semnasnet)_"),
    ("spnasnet", r"^spnasnet"),
    ("fbnet", r"^fbnet"),
    ("hardcorenas", r"^hardcorenas"),
    ("mixnet", r"^(tf_)?mixnet"),
    ("lcnet", r"^lcnet"),
    ("ghostnet", r"^ghostnet"),
    ("repghostnet", r"^repghostnet"),
    ("rexnet", r"^rexnet"),
    ("repvgg", r"^repvgg"),
    ("mobileone", r"^mobileone"),
    ("repvit", r"^repvit"),
    ("resnest", r"^resnest"),
    ("hrnet", r"^hrnet"),
    ("convnext", r"^convnext"),
    ("inception_next", r"^inception_next"),
    ("rdnet", r"^rdnet"),
    ("densenet", r"^densenet"),
    ("dla", r"^dla"),
    ("dpn", r"^dpn"),
    ("vgg", r"^vgg"),
    ("selecsls", r"^selecsls"),
    ("gernet", r"^gernet"),
    ("hgnet", r"^hgnet"),
    ("tresnet", r"^tresnet"),
    ("convmixer", r"^convmixer"),
]
EXCLUDE = r"hybrid|_clip$"  # attention: MobileNetV4 hybrids' MQA, CLIP ResNets' attention pool
IMAGE_SIZE = "224"


def family(model: str) -> str | None:
    if re.search(EXCLUDE, model):
        return None
    return next((name for name, pattern in FAMILIES if re.search(pattern, model)), None)


def split(families: list[str]) -> tuple[list[str], list[str]]:
    """Sorted by name, every other family held out: (fitted, held out)."""
    ordered = sorted(set(families))
    return ordered[0::2], ordered[1::2]


# ----------------------------------------------------------------------------- select
def select(table: Path) -> None:
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    kept = []
    for row in rows:
        name = family(row["model"])
        if name is None or row["infer_img_size"] != IMAGE_SIZE:
            continue
        kept.append({
            "spec": f"timm.models:{row['model']}",
            "input_shape": f"{row['infer_batch_size']},3,{IMAGE_SIZE},{IMAGE_SIZE}",
            "batch": row["infer_batch_size"],
            "throughput": row["infer_samples_per_sec"],
            "family": name,
            "timm_gmacs": row["infer_gmacs"],
        })  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    with MEASUREMENTS.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(kept[0]))
        writer.writeheader()
        writer.writerows(kept)
    counts = {}
    for row in kept:
        counts[row["family"]] = counts.get(row["family"], 0) + 1
    print(f"{len(kept)} of {len(rows)} rows, {len(counts)} families -> {MEASUREMENTS.relative_to(ROOT)}")
    for name, count in sorted(counts.items()):
        print(f"  {name:<18} {count}")


# ----------------------------------------------------------------------------- graphs
def _graph(spec: str):
    from cnnlint.calibrate.measurements import graph_for

    try:
        return graph_for(spec, ((1, 3, 224, 224),))
    except Exception as exc:  # noqa: BLE001 - reported, the rest go on
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def graphs(specs: list[str], cache: Path, jobs: int) -> dict[str, object]:
    """Every spec's LayerGraph at batch 1 (or why it failed), cached as pickles."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    cache.mkdir(parents=True, exist_ok=True)
    path = {s: cache / (re.sub(r"[^A-Za-z0-9_.-]", "_", s) + ".pkl") for s in specs}
    todo = [s for s in specs if not path[s].exists()]
    started = time.time()
    with ProcessPoolExecutor(jobs) as pool:
        futures = {pool.submit(_graph, s): s for s in todo}
        for i, future in enumerate(as_completed(futures), 1):
            spec = futures[future]
            path[spec].write_bytes(pickle.dumps(future.result()))
            print(f"[{time.time() - started:6.0f} s] {i}/{len(todo)} {spec}", flush=True)
    return {s: pickle.loads(path[s].read_bytes()) for s in specs}


# ----------------------------------------------------------------------------- fit and score
BASE = "t4"
PRECISION = "fp16"
PEAKS = {"fp32": 82.6, "fp16": 165.2, "int8": 660.6}
BANDWIDTH_GBPS = 1008.0
SPEC_SOURCE = ("NVIDIA Ada GPU Architecture whitepaper (v2.01), Appendix A, GeForce RTX 4090: peak FP32 "
               "82.6 TFLOPS (non-tensor), peak FP16 tensor 165.2 TFLOPS with FP32 accumulate (what "
               "PyTorch autocast's convs and GEMMs use; 330.3 with FP16 accumulate), peak INT8 tensor "
               "660.6 TOPS, all dense; memory bandwidth 1008 GB/s (GDDR6X, 21 Gbps, 384-bit). "
               "Unverified: these are the whitepaper's numbers as spec tables quote them; the "
               "whitepaper itself was not read here")
DESCRIPTION = "NVIDIA GeForce RTX 4090 with PyTorch eager AMP (fitted to timm's published throughput)"


# As h200.toml: an eager target fuses nothing, so CL104's rewiring advice does not apply.
CL104_TABLE = """
[rules.CL104]
enabled = false
why = \"\"\"PyTorch eager fuses nothing: every norm, activation and add is its own kernel whatever the \\
wiring, so CL104's rewiring advice does not apply (compile or export the model to fuse them).\"\"\"
"""
NOTES = [f"Timings: {SOURCE_REPO}, {SOURCE_PATH}", f"at commit {SOURCE_COMMIT}: torch 2.4, CUDA 12.4,",
         "AMP (fp16 autocast), NCHW, eager; samples per second at the table's batch (mostly 1024), 224 px.",
         "Families: benchmarks/rtx4090.py (FAMILIES); sorted by name, every other family held out.",
         "Made by `python benchmarks/rtx4090.py fit` (the fit of `cnnlint calibrate --from-measurements`);",
         "results beside FLOPs-only and the a4000 profile: benchmarks/results/rtx4090/README.md."]  # fmt: skip
# Predictors compared, as the summary names them.
LABELS = {
    "flops": "FLOPs only (scale fitted on the fitted half)",
    "t4": "t4 profile (estimated, TensorRT model)",
    "a4000": "a4000 profile (estimated, TensorRT model)",
    "a4000_scaled": "a4000, overall scale removed (fitted on the fitted half)",
    "rtx4090": "rtx4090, fitted to the fitted half",
}


def cli_command(held_families: list[str]) -> list[str]:
    """The command line that fits the same profile from the measurements CSV."""
    command = ["cnnlint", "calibrate", "--from-measurements", str(MEASUREMENTS.relative_to(ROOT)), "--base", BASE,
               "--precision", PRECISION, "--eager", "--hold-out", ",".join(held_families)]  # fmt: skip
    for precision, value in PEAKS.items():
        command += ["--peak-tflops", f"{precision}={value:g}"]
    command += ["--bandwidth-gbps", f"{BANDWIDTH_GBPS:g}", "--spec-source", SPEC_SOURCE, "--description", DESCRIPTION]
    for note in NOTES:
        command += ["--note", note]
    return [*command, "--name", "rtx4090", "-o", str(PROFILE.relative_to(ROOT))]


def per_input(graph, profile, batch: int) -> float:
    """Seconds per input the cost stage estimates at ``batch``: its throughput at that batch."""
    from cnnlint.cost import compute_cost

    cost = compute_cost(graph, profile.model_copy(update={"throughput_batch": batch}), PRECISION)
    return 1 / cost.throughput_per_s


def score(rows, predicted: dict[str, float]) -> dict:
    from cnnlint.calibrate.model_fit import quality

    chosen = [r for r in rows if r.spec in predicted]
    q = quality([predicted[r.spec] for r in chosen], [r.per_input_s for r in chosen])
    return {"models": q.models, "rho": q.rho, "median_error": q.median_error, "median_signed": q.median_signed}


def scaled(predicted: dict[str, float], rows) -> dict[str, float]:
    """``predicted`` times the median measured / predicted ratio over ``rows``: the overall scale
    removed, as fitted on those rows only."""
    factor = statistics.median(r.per_input_s / predicted[r.spec] for r in rows)
    return {spec: value * factor for spec, value in predicted.items()}


def fit_and_score(args) -> None:
    from cnnlint.calibrate.measurements import kernel_work, read_measurements
    from cnnlint.calibrate.model_fit import costing_profile, fit_measurements
    from cnnlint.calibrate.writing import render_measured_profile
    from cnnlint.profile import load_profile

    rows = read_measurements(MEASUREMENTS)
    found = graphs(list(dict.fromkeys(r.spec for r in rows)), args.cache, args.jobs)
    unlinted = {s: g for s, g in found.items() if isinstance(g, str)}
    print(f"{len(found) - len(unlinted)} linted, {len(unlinted)} failed", file=sys.stderr)
    for spec, why in unlinted.items():
        print(f"  {spec}: {why}", file=sys.stderr)
    if args.graphs_only:
        return
    costing = costing_profile(load_profile(BASE), True, PEAKS, BANDWIDTH_GBPS)
    works = {r.key: kernel_work(found[r.spec], costing, PRECISION) for r in rows if r.spec not in unlinted}
    fitted_families, held_families = split([r.family for r in rows])
    source = str(MEASUREMENTS.relative_to(ROOT))
    cal = fit_measurements(source, rows, works, unlinted, costing, BASE, PRECISION, True, held_families,
                           args.folds, PEAKS, BANDWIDTH_GBPS)  # fmt: skip
    text = render_measured_profile(cal, "rtx4090", PROFILE, NOTES, DESCRIPTION, SPEC_SOURCE)
    PROFILE.write_text(text + CL104_TABLE, encoding="utf-8")
    print(f"wrote {PROFILE.relative_to(ROOT)}", file=sys.stderr)
    # The reverse split: a fit to the held-out half predicts the fitted half.
    reverse = fit_measurements(source, rows, works, unlinted, costing, BASE, PRECISION, True, fitted_families,
                               args.folds, PEAKS, BANDWIDTH_GBPS)  # fmt: skip

    # Every prediction comes from the cost stage itself, on the profiles as written.
    linted = [r for r in rows if r.spec not in unlinted]
    fitted_profile = load_profile(str(PROFILE))
    predicted = {
        "flops": {r.spec: float(works[r.key].total_flops) for r in linted},
        "t4": {r.spec: per_input(found[r.spec], load_profile("t4"), r.batch) for r in linted},
        "a4000": {r.spec: per_input(found[r.spec], load_profile("a4000"), r.batch) for r in linted},
        "rtx4090": {r.spec: per_input(found[r.spec], fitted_profile, r.batch) for r in linted},
    }
    # The fit's own arithmetic is the cost stage's (to the profile's printed digits).
    for row, seconds in zip(cal.fit.rows, cal.fit.predicted):
        assert abs(seconds / row.batch / predicted["rtx4090"][row.spec] - 1) < 5e-3, row.spec
    fitted_rows = [r for r in linted if r.family in fitted_families]
    predicted["flops"] = scaled(predicted["flops"], fitted_rows)
    predicted["a4000_scaled"] = scaled(predicted["a4000"], fitted_rows)
    # Each family's held-out prediction: the main fit for the held-out half, the reverse fit for
    # the fitted half.
    held = {r.spec: s / r.batch for r, s in zip(cal.held_out.rows, cal.held_out.predicted)}
    held.update({r.spec: s / r.batch for r, s in zip(reverse.held_out.rows, reverse.held_out.predicted)})

    def small(row) -> bool:
        return float(row.extra["timm_gmacs"]) < 1.0

    subsets = {
        "held_out": [r for r in linted if r.family in held_families],
        "held_out_under_1_gmac": [r for r in linted if r.family in held_families and small(r)],
        "all": linted,
        "all_under_1_gmac": [r for r in linted if small(r)],
        "fitted": fitted_rows,
    }
    results = {
        "source": SOURCE, "base": BASE, "precision": PRECISION, "command": cli_command(held_families),
        "fitted_families": fitted_families, "held_out_families": held_families, "unlinted": unlinted,
        "params": {"efficiency": cal.fit.params.efficiency, "overhead_us": cal.fit.params.overhead_s * 1e6,
                   "small_gemm": cal.fit.params.small_gemm},
        "fit": vars(cal.fit.fit_quality),
        "cross_validation": {"folds": cal.cross.folds, **vars(cal.cross.quality)},
        "reverse": {"params": {"efficiency": reverse.fit.params.efficiency,
                               "overhead_us": reverse.fit.params.overhead_s * 1e6,
                               "small_gemm": reverse.fit.params.small_gemm},
                    "held_out": score(subsets["fitted"], held),
                    "held_out_under_1_gmac": score([r for r in fitted_rows if small(r)], held)},
        "scores": {name: {subset: score(chosen, values) for subset, chosen in subsets.items()}
                   for name, values in predicted.items()},
        "families": {},
    }  # fmt: skip
    for family in sorted({r.family for r in linted}):
        mine = [r for r in linted if r.family == family]
        entry = {"role": "fitted" if family in fitted_families else "held out", "models": len(mine)}
        for name, values in (*predicted.items(), ("rtx4090_held_out", held)):
            entry[name] = statistics.median(values[r.spec] / r.per_input_s - 1 for r in mine)
        results["families"][family] = entry
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    with (OUT / "predictions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["spec", "family", "role", "batch", "timm_gmacs", "measured_us", "flops_only_us",
                         "t4_us", "a4000_us", "rtx4090_us", "rtx4090_held_out_us"])  # fmt: skip
        for r in linted:
            role = "held out" if r.family in held_families else "fitted"
            cells = [predicted[n][r.spec] for n in ("flops", "t4", "a4000", "rtx4090")] + [held[r.spec]]
            writer.writerow([r.spec, r.family, role, r.batch, r.extra["timm_gmacs"], f"{r.per_input_s * 1e6:.4g}",
                             *(f"{c * 1e6:.4g}" for c in cells)])  # fmt: skip
    summary = summary_markdown(results)
    (OUT / "summary.md").write_text(summary, encoding="utf-8")
    print(summary)


def summary_markdown(results: dict) -> str:
    """The tables the README quotes: time per image, so rows at different batches compare."""
    s = results["scores"]

    def cell(q: dict) -> str:
        return f"{q['rho']:.3f} / {q['median_error']:.0%}"

    lines = ["# RTX 4090: fitted profile against FLOPs and the estimated profiles", "",
             "Generated by `python benchmarks/rtx4090.py fit`. Spearman rho / median |error| of the time",
             f"per image; {s['rtx4090']['held_out']['models']} held-out models "
             f"({s['rtx4090']['held_out_under_1_gmac']['models']} under 1 GMAC), "
             f"{s['rtx4090']['all']['models']} in all.", "",
             "| predictor | held-out half | held out, < 1 GMAC | all | all, < 1 GMAC |",
             "|---|---|---|---|---|"]  # fmt: skip
    for name, label in LABELS.items():
        q = s[name]
        lines.append(f"| {label} | {cell(q['held_out'])} | {cell(q['held_out_under_1_gmac'])} | "
                     f"{cell(q['all'])} | {cell(q['all_under_1_gmac'])} |")  # fmt: skip
    rev = results["reverse"]
    lines += ["", f"Reverse split (fit to the held-out half, scored on the fitted half): rho "
                  f"{rev['held_out']['rho']:.3f}, median error {rev['held_out']['median_error']:.0%} "
                  f"({rev['held_out']['models']} models); under 1 GMAC rho {rev['held_out_under_1_gmac']['rho']:.3f}, "
                  f"median error {rev['held_out_under_1_gmac']['median_error']:.0%} "
                  f"({rev['held_out_under_1_gmac']['models']} models).",
              f"Cross-validation inside the fitted half ({len(results['cross_validation']['folds'])} folds of "
              f"families): rho {results['cross_validation']['rho']:.3f}, median error "
              f"{results['cross_validation']['median_error']:.0%}.", "",
              "Median signed error per family (< 0: predicted fast). FLOPs only and a4000 with the overall "
              "scale removed; rtx4090 held out: the held-out half by the fit to the fitted half, the fitted "
              "half by the reverse fit; rtx4090 fitted: the profile as committed.", "",
              "| family | role | models | FLOPs only | a4000 | rtx4090, held out | rtx4090 |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for family, e in results["families"].items():
        lines.append(f"| {family} | {e['role']} | {e['models']} | {e['flops']:+.0%} | {e['a4000_scaled']:+.0%} | "
                     f"{e['rtx4090_held_out']:+.0%} | {e['rtx4090']:+.0%} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sel = sub.add_parser("select")
    sel.add_argument("table", type=Path)
    fit = sub.add_parser("fit")
    fit.add_argument("--jobs", type=int, default=2)
    fit.add_argument("--folds", type=int, default=5)
    fit.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "cnnlint-rtx4090-graphs")
    fit.add_argument("--graphs-only", action="store_true")
    args = parser.parse_args()
    if args.command == "select":
        select(args.table)
    else:
        fit_and_score(args)


if __name__ == "__main__":
    main()
