"""`cnnlint calibrate --from-measurements`: a fit to whole-model timings recovers the profile that
made them, reports families it did not fit, and the built-in rtx4090 profile it made lints."""

from __future__ import annotations

import csv

import pytest
from conftest import FIXTURES, cli

pytest.importorskip("scipy", reason="cnnlint calibrate needs the [calibrate] extra (scipy)")

from cnnlint.calibrate import family_of, read_measurements  # noqa: E402
from cnnlint.calibrate.measurements import MeasurementError, graph_for  # noqa: E402
from cnnlint.cost import compute_cost  # noqa: E402
from cnnlint.profile import SmallGemm, load_profile  # noqa: E402

MODELS = FIXTURES / "calibrate_models.py"
FAMILY = {"Dense48": "dense", "Dense192": "dense", "Pointwise160": "pointwise", "Pointwise512": "pointwise",
          "Large5x5": "large", "Grouped4": "grouped", "Grouped16": "grouped", "Grouped64": "grouped",
          "Depthwise": "depthwise"}  # fmt: skip
BATCHES = (1, 8, 64, 256)
# The device the timings come from: t4's peak and bandwidth, eager, and numbers of its own.
EFFICIENCY = {"conv3x3": 0.5, "conv1x1": 0.3, "conv_kxk": 0.2, "group_conv": 0.25, "depthwise_conv": 0.01}
OVERHEAD_US, HALF_K, HALF_N = 6.0, 24.0, 12.0


def known_profile():
    t4 = load_profile("t4")
    return t4.model_copy(update={
        "efficiency": {**t4.efficiency, **EFFICIENCY}, "kernel_overhead_us": OVERHEAD_US,
        "small_gemm": SmallGemm(half_k=HALF_K, half_n=HALF_N),
        "fusion": {"norm": False, "activation": False, "residual_add": False},
    })  # fmt: skip


def write_timings(path, profile) -> None:
    """Each model at each batch, timed by the cost stage itself on ``profile``."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["spec", "input_shape", "batch", "ms", "family"])
        for name, family in FAMILY.items():
            spec = f"{MODELS}::{name}"
            graph = graph_for(spec, ((1, 3, 64, 64),))
            for batch in BATCHES:
                cost = compute_cost(graph, profile.model_copy(update={"throughput_batch": batch}), "fp16")
                writer.writerow([spec, f"{batch},3,64,64", batch, f"{1e3 * batch / cost.throughput_per_s:.9g}", family])


def test_the_fit_recovers_the_profile_that_made_the_timings(tmp_path):
    timings = tmp_path / "timings.csv"
    write_timings(timings, known_profile())
    out = tmp_path / "fitted.toml"
    ran = cli("calibrate", "--from-measurements", str(timings), "--base", "t4", "--eager", "--folds", "2",
              "--hold-out", "large", "--samples", str(tmp_path / "samples.csv"), "-o", str(out))  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    fitted = load_profile(str(out))
    # Every class but the held-out family's 5x5 convs, whose efficiency stays the base's.
    for op_class, value in EFFICIENCY.items():
        expected = load_profile("t4").efficiency[op_class] if op_class == "conv_kxk" else value
        assert fitted.efficiency[op_class] == pytest.approx(expected, rel=0.03), op_class
    assert fitted.kernel_overhead_us == pytest.approx(OVERHEAD_US, rel=0.05)
    assert fitted.small_gemm.half_k == pytest.approx(HALF_K, rel=0.1)
    assert fitted.small_gemm.half_n == pytest.approx(HALF_N, rel=0.1)
    # The base's peak, bandwidth and rules stay; eager timings turn fusion off.
    t4 = load_profile("t4")
    assert fitted.peak_tflops == t4.peak_tflops and fitted.memory == t4.memory and fitted.rules == t4.rules
    assert not any(fitted.fusion.values())
    text = out.read_text()
    assert 'extends = "t4"' in text and "Fitted by `cnnlint calibrate --from-measurements timings.csv`" in text
    assert "Held out, never fitted: 1 families: large." in text
    for line in text.splitlines():
        if line.startswith(("conv3x3 =", "kernel_overhead_us =", "half_k =")):
            assert "# fitted" in line, line
    # The summary reports the fit on families it did not see, by folds and by --hold-out.
    assert "held out by family:" in ran.stdout and "held-out families:" in ran.stdout
    with (tmp_path / "samples.csv").open() as handle:
        roles = {row["family"]: row["role"] for row in csv.DictReader(handle)}
    assert roles["large"] == "held out" and roles["dense"] == "fitted"


def test_a_fit_given_a_wrong_peak_cannot_reach_the_timings(tmp_path):
    """The recovery above is no tautology: with a peak a quarter of the device's, efficiencies
    capped at 1 cannot reach the 3x3 convs' rate, and the fitted times say so."""
    timings = tmp_path / "timings.csv"
    write_timings(timings, known_profile())
    assert max(_worst_errors(tmp_path, timings, "base-peak").values()) < 0.01
    low = _worst_errors(tmp_path, timings, "low-peak", "--peak-tflops", "fp16=16", "--spec-source", "a datasheet")
    assert low["dense"] > 0.3  # 3x3 convs at 32.5 TFLOPS on a device said to peak at 16
    out = tmp_path / "low-peak.toml"
    assert load_profile(str(out)).peak_tflops["fp16"] == 16
    assert "fp16 = 16  # given (source above)" in out.read_text() and "a datasheet" in out.read_text()


def _worst_errors(tmp_path, timings, name: str, *options: str) -> dict[str, float]:
    """Each family's worst |fitted / measured - 1| from a fit's samples."""
    samples = tmp_path / f"{name}.csv"
    ran = cli("calibrate", "--from-measurements", str(timings), "--base", "t4", "--eager", *options,
              "--samples", str(samples), "-o", str(tmp_path / f"{name}.toml"))  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    worst: dict[str, float] = {}
    with samples.open() as handle:
        for row in csv.DictReader(handle):
            error = abs(float(row["fitted_ms"]) / float(row["measured_ms"]) - 1)
            worst[row["family"]] = max(worst.get(row["family"], 0.0), error)
    return worst


def test_family_from_the_spec_name():
    assert family_of("timm.models:resnet50d") == "resnet"
    assert family_of("timm.models:tf_efficientnet_b0") == "efficientnet"
    assert family_of("timm.models:mobilenetv3_large_100") == "mobilenetv3"
    assert family_of("torchvision.models:mobilenet_v3_large") == "mobilenetv3"
    assert family_of("timm.models:regnetx_002") == "regnetx"
    assert family_of("models/net.py::TinyNet") == "tinynet"


@pytest.mark.parametrize("body, message", [
    ("spec,ms\nm.py::A,", "give ms or throughput, not neither"),
    ("spec,ms,throughput\nm.py::A,1,2", "not both"),
    ("spec,ms\nm.py::A,-1", "ms must be positive"),
    ("spec,ms,batch\nm.py::A,1,two", "batch 'two' is not a whole number"),
    ("model,ms\nA,1", "the header must name a spec column"),
])  # fmt: skip
def test_bad_rows_name_their_line(tmp_path, body, message):
    path = tmp_path / "bad.csv"
    path.write_text(body + "\n")
    with pytest.raises(MeasurementError, match=message):
        read_measurements(path)


def test_throughput_rows_and_the_batch_from_the_input_shape(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("spec,input_shape,throughput,family\nm.py::A,32,3,224,224,3200,\n".replace(
        "32,3,224,224", '"32,3,224,224"'))  # fmt: skip
    (row,) = read_measurements(path)
    assert row.batch == 32 and row.seconds == pytest.approx(0.01) and row.input_shapes == ((1, 3, 224, 224),)
    assert row.family == "a"  # the model's name, after ::


def test_from_measurements_needs_a_base(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("spec,ms\nm.py::A,1\n")
    ran = cli("calibrate", "--from-measurements", str(path), "-o", str(tmp_path / "x.toml"))
    assert ran.returncode == 2 and "needs --base" in ran.stderr


def test_the_builtin_rtx4090_profile_lints_resnet50():
    profile = load_profile("rtx4090")
    assert profile.peak_tflops["fp16"] == 165.2 and profile.memory.bandwidth_gbps == 1008
    assert not any(profile.fusion.values())  # fitted to eager PyTorch
    ran = cli("torchvision.models:resnet50", "--target", "rtx4090", "--format", "json")
    assert ran.returncode in (0, 1), ran.stderr
    assert '"target": "rtx4090"' in ran.stdout and '"status": "ok"' in ran.stdout
