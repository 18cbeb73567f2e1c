"""A sample of six model zoos, linted in one cnnlint run each and counted independently.

benchmarks/zoo_sweep.py lints every Nth model of a zoo and counts the MACs and parameters of each
model that linted ok again with torch's FlopCounterMode. On the sample here: no internal error
of cnnlint and no crashed worker, and every ok model within 2% of the independent MACs with
exactly its parameters, unless the count's own limits explain the difference (the count failed,
or the model's cost changes with its values). Other errors (a model cnnlint cannot trace, an input
shape the model rejects) are findings the sweep reports, not failures here.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "zoo_sweep.py"

# zoo -> every Nth model: all six together take about two minutes on two cores.
SAMPLES = {"torchvision": 25, "timm": 150, "pytorchcv": 80, "ultralytics": 10, "smp": 15, "monai": 8}

pytestmark = pytest.mark.slow


def _sweep_module():
    """benchmarks/ is no package: the script by its path, under its own name (its dataclasses and
    the worker processes it spawns look it up in sys.modules)."""
    if "zoo_sweep" in sys.modules:
        return sys.modules["zoo_sweep"]
    spec = importlib.util.spec_from_file_location("zoo_sweep", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["zoo_sweep"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["zoo_sweep"]
        raise
    return module


@pytest.mark.parametrize("zoo", list(SAMPLES))
def test_a_zoo_sample_lints_and_counts_like_flop_counter_mode(zoo):
    sweep = _sweep_module()
    pytest.importorskip(sweep.PACKAGES[zoo], reason=f"{zoo} ({sweep.PACKAGES[zoo]}) is not installed")
    jobs = min(2, os.cpu_count() or 1)
    report = sweep.run_sweep(zoo, every=SAMPLES[zoo], jobs=jobs, timeout=120.0, count=True)
    rows = report["rows"]
    assert report["total"] > 0, f"{zoo}: nothing was linted"

    internal = [f"{r['model']} [{r['cause']}]: {r['error']}" for r in rows
                if r["status"] == "error" and r["cause"] in ("cnnlint bug", "worker crashed", "no result")]  # fmt: skip
    assert not internal, f"{zoo}: cnnlint failed internally:\n" + "\n".join(internal)

    ok = [r for r in rows if r["status"] == "ok"]
    assert ok, f"{zoo}: no model of the sample linted ok: {report['errors_by_cause']}"
    assert all("oracle_device" in r for r in ok), "every ok model went to the independent count"
    off = [
        f"{r['model']} {r['input_shapes']} [{', '.join(r['mismatch'])}]: MACs {r['macs_ours']:,} vs "
        f"{r['macs_oracle']:,} (FlopCounterMode on {r['oracle_device']}); params {r['params_ours']:,} + unused "
        f"{r['params_unused_ours']:,} vs {r['params_oracle']:,}"
        for r in ok if sweep.unexplained(r)
    ]  # fmt: skip
    assert not off, f"{zoo}: counts that differ from FlopCounterMode's:\n" + "\n".join(off)


def test_models_with_integer_inputs_lint_and_count_and_eager_failures_are_told_apart():
    """pytorchcv's audio-to-face models take a speaker index beside their features (int64, as
    their own _test() gives it); visemenet20 runs its LSTMs in a real run on CPU. The speech
    models' preprocessor calls torch.stft without return_complex, which torch 2 rejects: they
    cannot run in eager PyTorch at all, and the sweep says so instead of blaming cnnlint."""
    sweep = _sweep_module()
    pytest.importorskip("pytorchcv")
    speech = importlib.util.find_spec("librosa") is not None  # the speech models need it to build
    names = "voca8flame|visemenet20" + ("|quartznet5x5_en_ls" if speech else "")
    report = sweep.run_sweep("pytorchcv", match=f"^({names})$", jobs=min(2, os.cpu_count() or 1))
    rows = {r["model"]: r for r in report["rows"]}
    for name in ("voca8flame", "visemenet20"):
        row = rows[name]
        assert row["status"] == "ok", row.get("error")
        assert row["macs_ours"] == row["macs_oracle"] and row["params_ours_total"] == row["params_oracle"], row
    assert rows["visemenet20"]["macs_oracle"] > 600_000_000  # its LSTMs, counted on meta
    if speech:
        row = rows["quartznet5x5_en_ls"]
        assert (row["status"], row["cause"]) == ("error", sweep.EAGER_FAILS)
        assert "stft" in row["eager_error"]
        assert report["eager_fails"] == 1 and report["ok_percent_of_runnable"] == 100.0
