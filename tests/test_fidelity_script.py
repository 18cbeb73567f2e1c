"""benchmarks/fidelity.py runs end to end: real forwards timed, cnnlint's predictions, the summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SCRIPT = ROOT / "benchmarks" / "fidelity.py"


@pytest.mark.parametrize("models", ["squeezenet1_1,mobilenet_v3_small,shufflenet_v2_x0_5,mnasnet0_5,squeezenet1_0,timm/ghostnet_050"])
def test_fidelity_measures_predicts_and_summarises(tmp_path: Path, models: str) -> None:
    pytest.importorskip("timm")
    profile = ROOT / "benchmarks" / "results" / "cpu" / "cpu.toml"
    out = tmp_path / "fidelity.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--models", models, "--profile", str(profile), "--threads", "1",
         "--jobs", "1", "--budget", "0.2", "--explain", "0", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    rows = {r["model"]: r for r in report["rows"]}
    assert set(rows) == set(models.split(","))  # the timm model is built by timm and linted by its spec
    for row in rows.values():
        assert row["measured_ms"] > 0 and row["predicted_ms"] > 0 and row["gflops"] > 0
    summary = report["summary"]["1"]
    assert summary["models"] == 6 and summary["small_models"] == 3
    # The smaller half is the three models with the fewest FLOPs.
    assert summary["small_max_gflops"] == sorted(r["gflops"] for r in rows.values())[2]
    assert -1 <= summary["spearman_rho"] <= 1 and -1 <= summary["small_flops_spearman_rho"] <= 1
    assert "models with the fewest FLOPs" in proc.stdout and "FLOPs only" in proc.stdout
    # Timed as calibrate times, the allocator holding freed memory: no forward maps in a fresh
    # page once warmed up, and each row says how many it did.
    assert "freed memory held" in report["device"]
    assert all(row["faults_per_call"] == 0 for row in rows.values())
    assert summary["models_page_faulting"] == 0


def test_rounds_score_each_calibration_against_its_own_timings(tmp_path: Path) -> None:
    """--rounds 2 without a profile: a calibration at the start of each round, the merged profile's
    predictions, and each round's calibration scored on that round's timings."""
    models = "squeezenet1_1,mobilenet_v3_small,shufflenet_v2_x0_5"
    out = tmp_path / "fidelity.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--models", models, "--rounds", "2", "--threads", "1", "--clock", "process",
         "--jobs", "1", "--budget", "0.1", "--explain", "0", "--json", str(out)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    paired = report["paired_rounds"]
    assert [p["round"] for p in paired] == [1, 2]
    for p in paired:
        assert {r["model"] for r in p["rows"]} == set(models.split(","))
        assert all(r["measured_ms"] > 0 and r["predicted_ms"] > 0 for r in p["rows"])
        assert p["summary"]["1"]["models"] == 3
    # each model's merged time is the median of its two rounds' (the mean of two)
    merged = {r["model"]: r["measured_ms"] for r in report["rows"]}
    for model, ms in merged.items():
        times = [r["measured_ms"] for p in paired for r in p["rows"] if r["model"] == model]
        assert ms == pytest.approx(sum(times) / 2, rel=1e-9)
    assert "each round's calibration with that round's timings" in proc.stdout


def test_in_model_times_every_kind_of_layer_inside_the_forward_and_alone(tmp_path: Path) -> None:
    """benchmarks/in_model.py: one line per leaf module type the model has, each timed inside the
    forward and alone, and the whole forward."""
    import re

    torchvision = pytest.importorskip("torchvision")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "in_model.py"), "--models", "squeezenet1_1"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("squeezenet1_1: whole forward ")
    rows = {m[1]: (float(m[2]), float(m[3])) for line in lines[1:]
            if (m := re.match(r"\s+(\w+)\s+alone\s+([\d.]+) ms\s+inside\s+([\d.]+) ms", line))}  # fmt: skip
    model = torchvision.models.squeezenet1_1()
    assert set(rows) == {type(m).__name__ for m in model.modules() if not list(m.children())}
    assert all(alone >= 0 and inside >= 0 for alone, inside in rows.values())
    assert min(rows["Conv2d"]) > 0 and min(rows["MaxPool2d"]) > 0  # a Dropout at inference may time 0
