"""`cnnlint calibrate`: real microbenchmarks on this CPU, a real fit, a profile load_profile accepts."""

from __future__ import annotations

import json
from dataclasses import replace
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("scipy", reason="cnnlint calibrate needs the [calibrate] extra (scipy)")

from cnnlint.calibrate import Bench, KernelWork, Sample, benchmark_grid, counted_work, fit, predict  # noqa: E402
from cnnlint.profile import load_profile  # noqa: E402

CNNLINT = str(Path(sys.executable).with_name("cnnlint"))
EXAMPLE = Path(__file__).parents[1] / "examples" / "mobilenet_v2_like.py"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CNNLINT, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_a_cpu_calibration_writes_a_profile_that_extends_the_base(tmp_path):
    out = tmp_path / "my-cpu.toml"
    proc = run("calibrate", "--grid", "tiny", "--threads", "1", "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    text = out.read_text()
    from cnnlint.calibrate.run import default_base

    base_name = default_base("cpu")  # the profile of this machine's vector ISA
    assert f'extends = "{base_name}"' in text
    profile = load_profile(str(out))
    base = load_profile(base_name)
    assert profile.name == "my-cpu"
    # What was measured replaces the base's estimates ...
    assert profile.peak_tflops["fp32"] != base.peak_tflops["fp32"]
    assert profile.memory.bandwidth_gbps != base.memory.bandwidth_gbps
    assert profile.efficiency["conv3x3"] != base.efficiency["conv3x3"]
    assert profile.fusion == {"norm": False, "activation": False, "residual_add": False}  # eager
    # ... and only that: what the grid did not measure, and the rules, come from the base.
    assert profile.efficiency["conv_kxk"] == base.efficiency["conv_kxk"]
    assert profile.channel_granule == base.channel_granule
    assert profile.rules == base.rules
    assert "[rules" not in text and "[channel_granule]" not in text
    # Every measured number says how it was measured; each class carries its fit quality.
    for line in text.splitlines():
        if line.startswith(("conv3x3 =", "bandwidth_gbps =", "fp32 =", "kernel_overhead_us =", "model_overhead_us =")):
            assert "# measured" in line, line
    assert "R^2" in text and "median error" in text
    assert "1 threads" in text
    # A model-like chain measured what running inside a model adds per kernel.
    assert "model_overhead_us = " in text and profile.model_overhead_us >= 0
    # ... and says which: the tiny grid times the one chain on an 8 x 8 map
    assert "8 inverted-residual blocks, 16ch 8px" in text and "median over" not in text


def test_cuda_without_a_gpu_is_one_line_and_exit_2(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    out = tmp_path / "gpu.toml"
    proc = run("calibrate", "--device", "cuda", "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "--device cuda" in proc.stderr and "no CUDA GPU" in proc.stderr
    assert not out.exists()


def test_bf16_writes_a_profile_that_lints_in_bf16(tmp_path):
    out = tmp_path / "bf16.toml"
    proc = run("calibrate", "--grid", "tiny", "--threads", "1", "--precision", "bf16", "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert 'default_precision = "bf16"' in text
    assert re.search(r"^bf16 = [0-9.e+-]+  # measured", text, re.M)  # its own measured peak
    # No microbenchmark measures a channel granule: the nearest precision's (fp16, or the base's
    # default where it has none, as x86-avx512), marked as such.
    assert re.search(r"^bf16 = \{ input = \d+, output = \d+ \}  # estimate: .* (fp16|fp32) granule, not measured", text, re.M)
    profile = load_profile(str(out))
    assert profile.default_precision == "bf16" and "bf16" in profile.precisions
    linted = run(str(EXAMPLE), "--target", str(out), "--format", "json", "--no-cache", cwd=tmp_path)
    (result,) = json.loads(linted.stdout)["results"]
    assert result["status"] == "ok" and result["precision"] == "bf16"
    # bf16 moves fp16's bytes, half of fp32's; the time differs by the measured peak. (An
    # x86-avx512 base has no fp16: compare with fp32 there.)
    other = "fp16" if "fp16" in profile.precisions else "fp32"
    linted = run(str(EXAMPLE), "--target", str(out), "--precision", other, "--format", "json", "--no-cache",
                 cwd=tmp_path)  # fmt: skip
    (wide,) = json.loads(linted.stdout)["results"]
    ratio = 1 if other == "fp16" else 2
    assert wide["summary"]["memory_access_bytes"] == ratio * result["summary"]["memory_access_bytes"]


def _timed(label: str, kernels: list[KernelWork], seconds: float) -> Sample:
    """A synthetic microbenchmark of the first kernel's class that took ``seconds``."""
    return Sample(Bench(label, kernels[0].op_class, lambda: None, ()), seconds, kernels)


def _sample(op_class: str, flops: float, bytes_: float, rates, bandwidth, overhead, noise=1.0) -> Sample:
    kernels = [KernelWork(flops, bytes_, op_class)]
    return _timed(f"{op_class} {flops:g}", kernels, predict(kernels, rates, bandwidth, overhead) * noise)


def test_the_fit_recovers_known_rates_bandwidth_and_overhead():
    """Times generated by the roofline with known numbers, a little noise: the fit finds them."""
    rates = {"conv3x3": 50e9, "conv1x1": 30e9, "depthwise_conv": 2e9, "elementwise": 40e9}
    bandwidth, overhead = 20e9, 8e-6
    samples = []
    noise = iter([1.03, 0.97, 1.0, 1.02, 0.98] * 20)
    for scale in (1e5, 1e6, 1e7, 1e8, 1e9):
        for op_class, intensity in (("conv3x3", 100), ("conv1x1", 30), ("depthwise_conv", 2)):
            samples.append(_sample(op_class, scale, scale / intensity, rates, bandwidth, overhead, next(noise)))
        samples.append(_sample("elementwise", scale / 100, scale / 10, rates, bandwidth, overhead, next(noise)))
        samples.append(_sample("other", 0, scale / 10, rates, bandwidth, overhead, next(noise)))
    result = fit(samples)
    assert result.bandwidth == pytest.approx(bandwidth, rel=0.1)
    assert result.overhead_s == pytest.approx(overhead, rel=0.2)
    for op_class in ("conv3x3", "conv1x1", "depthwise_conv"):
        assert result.rates[op_class] == pytest.approx(rates[op_class], rel=0.1), op_class
    assert result.peak == result.rates["conv3x3"]
    assert result.efficiency("conv1x1") == pytest.approx(0.6, rel=0.1)
    assert result.overall.r2 > 0.99 and result.overall.median_error < 0.05


def test_the_fit_recovers_how_thin_matrix_products_slow_down():
    """Convs with few channels per group, generated at rate x k/(k+24) x n/(n+6): the fit finds
    both half-rate points and the thick-matrix rate."""
    rates, bandwidth, overhead, half = {"conv1x1": 30e9, "group_conv": 20e9, "elementwise": 5e9}, 20e9, 8e-6, (24.0, 6.0)
    samples = []
    noise = iter([1.02, 0.98, 1.0, 1.01, 0.99] * 40)
    for op_class, k, n in [("conv1x1", 16, 96), ("conv1x1", 64, 128), ("conv1x1", 512, 256), ("conv1x1", 256, 1024),
                           ("group_conv", 36, 4), ("group_conv", 18, 2), ("group_conv", 216, 24), ("group_conv", 576, 64)]:  # fmt: skip
        for scale in (1e7, 1e8):
            kernels = [KernelWork(scale, scale / 50, op_class, k, n)]
            seconds = predict(kernels, rates, bandwidth, overhead, None, half) * next(noise)
            samples.append(_timed(f"{op_class} {k} {n} {scale:g}", kernels, seconds))
    for scale in (1e5, 1e6, 1e7):
        samples.append(_sample("elementwise", scale / 100, scale / 10, rates, bandwidth, overhead, next(noise)))
    result = fit(samples)
    assert result.small_gemm[:2] == pytest.approx(half, rel=0.25)
    assert result.small_gemm[2] == 0.0  # no rows given: the rows term is not fitted
    assert result.rates["conv1x1"] == pytest.approx(30e9, rel=0.1)
    assert result.rates["group_conv"] == pytest.approx(20e9, rel=0.15)


def test_a_per_class_overhead_and_a_cache_change_what_the_cost_model_predicts(tmp_path):
    """What calibrate measures on an eager CPU, the cost stage uses: a conv's setup and the cache."""
    from cnnlint.cost import compute_cost
    from conftest import traced_graph

    graph = traced_graph("torchvision.models:mobilenet_v2")
    base = load_profile("arm-cpu")
    (tmp_path / "plain.toml").write_text('extends = "arm-cpu"\nname = "plain"\n')
    (tmp_path / "measured.toml").write_text(
        'extends = "arm-cpu"\nname = "measured"\n'
        "[overhead_us]\ndepthwise_conv = 200.0\n"
        "[memory]\ncache_mb = 1.0\ncache_bandwidth_gbps = 341.0\n"
    )
    plain = compute_cost(graph, load_profile(str(tmp_path / "plain.toml")))
    measured = compute_cost(graph, load_profile(str(tmp_path / "measured.toml")))
    depthwise = [k for k in plain.kernels.values() if k.op_class == "depthwise_conv"]
    small = [k for k in plain.kernels.values() if k.bytes <= 2**20]
    assert depthwise and small
    checked = 0
    for kernel in depthwise:
        extra = measured.kernels[kernel.head].time_s - kernel.time_s
        if kernel.bytes > 2**20:
            if plain.is_memory_bound(kernel):  # its first MiB now moves at the cache's bandwidth
                assert extra < 200e-6 - base.kernel_overhead_us * 1e-6
            else:  # compute-bound: only the overhead differs
                assert extra == pytest.approx(200e-6 - base.kernel_overhead_us * 1e-6)
            checked += 1
    assert checked
    for kernel in small:  # ten times the bandwidth: never slower, and memory-bound ones faster
        assert measured.kernels[kernel.head].time_s <= kernel.time_s + 200e-6
    memory_bound_small = [k for k in small if k.op_class == "elementwise"]
    assert any(measured.kernels[k.head].time_s < k.time_s for k in memory_bound_small)


def test_the_fit_recovers_how_fast_strided_convs_gather_their_input():
    """Convs timed at stride 1 and 2, generated with a gather at 3 GB/s (1x1) and 8 GB/s
    (depthwise) on top of their roofline: the fit finds both; a class timed only at stride 1
    gets none."""
    rates, bandwidth, overhead = {"conv1x1": 60e9, "depthwise_conv": 4e9, "conv3x3": 80e9}, 20e9, 10e-6
    gather = {"conv1x1": 3e9, "depthwise_conv": 8e9}
    noise = iter([1.02, 0.98, 1.0, 1.01, 0.99, 1.0] * 20)
    samples = []
    for op_class, intensity in (("conv1x1", 40), ("depthwise_conv", 3), ("conv3x3", 100)):
        for scale in (1e7, 3e7, 1e8, 3e8):
            for stride in ((1, 2) if op_class != "conv3x3" else (1,)):
                # a stride-2 conv does a quarter of the work on an input four times its output
                flops = scale / stride**2
                kernels = [KernelWork(flops, flops / intensity, op_class, strided_bytes=scale / 50 if stride > 1 else 0)]
                seconds = predict(kernels, rates, bandwidth, overhead, None, None, gather) * next(noise)
                samples.append(_timed(f"{op_class} {scale:g} s{stride}", kernels, seconds))
    result = fit(samples)
    assert set(result.strided) == {"conv1x1", "depthwise_conv"}
    for op_class, speed in gather.items():
        assert result.strided[op_class] == pytest.approx(speed, rel=0.15), op_class
    assert result.rates["conv1x1"] == pytest.approx(60e9, rel=0.1)
    assert result.overall.median_error < 0.03


def test_a_strided_conv_pays_for_gathering_its_input(tmp_path):
    """A profile's measured gather bandwidth adds the strided convs' input bytes at that speed,
    at batch 1 and at the throughput batch, to those convs only; a fix a rule proposes is priced
    the same way."""
    from conftest import traced_graph

    from cnnlint.cost import compute_cost

    graph = traced_graph("torchvision.models:resnet18")
    (tmp_path / "plain.toml").write_text('extends = "x86-avx512"\nname = "plain"\n')
    (tmp_path / "gather.toml").write_text('extends = "x86-avx512"\nname = "gather"\n'
                                          "[strided_input_gbps]\nconv1x1 = 3.0\nconv3x3 = 6.0\n")  # fmt: skip
    profile = load_profile(str(tmp_path / "gather.toml"))
    plain, gather = compute_cost(graph, load_profile(str(tmp_path / "plain.toml"))), compute_cost(graph, profile)
    strided = {name: k for name, k in plain.kernels.items()
               if graph[name].attrs.get("stride", (1, 1))[0] > 1 and graph[name].kind == "conv"}  # fmt: skip
    assert {k.op_class for k in strided.values()} == {"conv1x1", "conv3x3", "conv_kxk"}  # downsample, stage, stem
    batch = profile.throughput_batch
    for name, kernel in plain.kernels.items():
        added = gather.kernels[name].time_s - kernel.time_s
        added_at_batch = gather.kernels[name].time_at_batch_s - kernel.time_at_batch_s
        speed = profile.strided_input_gbps.get(kernel.op_class) if name in strided else None
        if speed is None:  # unit stride, or a class without a measured gather (the 7x7 stem)
            assert added == 0 and added_at_batch == 0, name
        else:
            assert gather.kernels[name].strided_input_bytes == kernel.input_bytes > 0
            assert added == pytest.approx(kernel.input_bytes / (speed * 1e9), rel=1e-9), name
            assert added_at_batch == pytest.approx(batch * added, rel=1e-9), name
    # A proposed strided 1x1 conv (64 -> 128, 56 -> 28 px) costs its gather too; a unit-stride one does not.
    width = 4  # fp32
    assert gather.estimate_conv(64, 128, 1, 56 * 56, 28 * 28) - plain.estimate_conv(64, 128, 1, 56 * 56, 28 * 28) == (
        pytest.approx(64 * 56 * 56 * width / 3e9))
    assert gather.estimate_conv(64, 128, 1, 28 * 28, 28 * 28) == plain.estimate_conv(64, 128, 1, 28 * 28, 28 * 28)


def test_a_strided_gather_names_a_known_class(tmp_path):
    from cnnlint.errors import ProfileError

    (tmp_path / "bad.toml").write_text('extends = "x86-avx512"\nname = "bad"\n[strided_input_gbps]\nconv = 3.0\n')
    with pytest.raises(ProfileError, match="unknown op class 'conv'"):
        load_profile(str(tmp_path / "bad.toml"))


def test_the_fit_recovers_a_pools_cost_per_output():
    """Max and average pools timed at two window sizes (3x3 and 2x2), generated with a cost per
    output beyond their taps (28 and 21 ns, what one thread of a Xeon measured); the fit finds
    both and the rate per tap under them. A class timed at one window size gets none: its cost
    per output cannot be told from its cost per tap."""
    rates, bandwidth, overhead = {"pool": 0.23e9, "avg_pool": 1.3e9, "conv3x3": 80e9}, 20e9, 10e-6
    per_output = {"pool": 28e-9, "avg_pool": 21e-9}
    noise = iter([1.02, 0.98, 1.0, 1.01, 0.99, 1.0] * 20)
    samples = []
    for op_class, windows in (("pool", (9, 4)), ("avg_pool", (9, 4)), ("conv3x3", (0,))):
        for outputs in (2e4, 1e5, 4e5):
            for taps in windows:
                flops = outputs * (taps or 500)
                kernels = [KernelWork(flops, outputs * 8, op_class, window_outputs=outputs if taps else 0)]
                seconds = predict(kernels, rates, bandwidth, overhead, output_costs=per_output) * next(noise)
                samples.append(_timed(f"{op_class} {outputs:g} {taps}", kernels, seconds))
    result = fit(samples)
    assert set(result.output_costs) == {"pool", "avg_pool"}
    for op_class, seconds in per_output.items():
        assert result.output_costs[op_class] == pytest.approx(seconds, rel=0.15), op_class
        assert result.all_rates[op_class] == pytest.approx(rates[op_class], rel=0.25), op_class
    assert result.overall.median_error < 0.03
    # one window size: no term
    one_size = [s for s in samples if s.bench.op_class != "pool" or s.kernels[0].flops == 9 * s.kernels[0].window_outputs]
    assert "pool" not in fit(one_size).output_costs


def test_a_windowed_pool_pays_for_each_output(tmp_path):
    """A profile's measured cost per output adds each windowed pool's outputs at that cost, at
    batch 1 and at the throughput batch, to those pools only: GoogLeNet's 3x3 max pools pay,
    its global average pool (a reduction) and its convs do not."""
    from conftest import traced_graph

    from cnnlint.cost import compute_cost

    graph = traced_graph("torchvision.models:googlenet")
    (tmp_path / "plain.toml").write_text('extends = "x86-avx512"\nname = "plain"\n')
    (tmp_path / "pools.toml").write_text('extends = "x86-avx512"\nname = "pools"\n'
                                         "[window_output_ns]\npool = 28.0\navg_pool = 21.0\n")  # fmt: skip
    profile = load_profile(str(tmp_path / "pools.toml"))
    plain, pools = compute_cost(graph, load_profile(str(tmp_path / "plain.toml"))), compute_cost(graph, profile)
    batch = profile.throughput_batch
    paid = 0
    for name, kernel in plain.kernels.items():
        added = pools.kernels[name].time_s - kernel.time_s
        added_at_batch = pools.kernels[name].time_at_batch_s - kernel.time_at_batch_s
        if kernel.op_class == "pool":
            assert pools.kernels[name].window_outputs == graph[name].output_numel > 0
            assert added == pytest.approx(graph[name].output_numel * 28e-9, rel=1e-9), name
            assert added_at_batch == pytest.approx(batch * added, rel=1e-9), name
            paid += 1
        else:
            assert added == 0 and added_at_batch == 0, name
    assert paid == 13  # four between stages, and each of the nine inception blocks' branch pool
    assert "reduce" in {k.op_class for k in plain.kernels.values()}


def test_a_depthwise_conv_pays_for_each_output_as_a_pool_does(tmp_path):
    """A depthwise conv slides a window over one channel as a pool does: on a profile that measured
    its cost per output, each of MobileNetV2's depthwise convs pays its outputs at that cost (the
    kernel's head: the BatchNorm and ReLU6 fused into it add none), and no other conv does."""
    from conftest import traced_graph

    from cnnlint.cost import compute_cost

    graph = traced_graph("torchvision.models:mobilenet_v2")
    base = load_profile("x86-avx512")
    plain = compute_cost(graph, base)
    windowed = compute_cost(graph, base.model_copy(update={"window_output_ns": {"depthwise_conv": 1.5}}))
    depthwise = [name for name, k in plain.kernels.items() if k.op_class == "depthwise_conv"]
    assert len(depthwise) == 17
    for name, kernel in plain.kernels.items():
        added = windowed.kernels[name].time_s - kernel.time_s
        expected = graph[name].output_numel * 1.5e-9 if name in depthwise else 0.0
        assert added == pytest.approx(expected, rel=1e-9, abs=1e-15), name
    # a depthwise conv a rule proposes pays the same (112 px -> 56 px, 96 channels), a dense one nothing
    outputs = 56 * 56 * 96
    assert (windowed.estimate_conv(96, 96, 3, 112 * 112, 56 * 56, groups=96)
            - plain.estimate_conv(96, 96, 3, 112 * 112, 56 * 56, groups=96)) == pytest.approx(outputs * 1.5e-9)
    assert windowed.estimate_conv(96, 96, 3, 56 * 56, 56 * 56) == plain.estimate_conv(96, 96, 3, 56 * 56, 56 * 56)


def test_a_fit_to_whole_model_timings_keeps_the_base_pool_and_gather_costs():
    """``calibrate --from-measurements`` fits rates on top of what its base adds to each kernel's
    roofline (a pool's cost per output, a strided conv's gather), as the cost stage adds them: at
    the row's batch, for the pools and strided convs of the model only."""
    from conftest import traced_graph

    from cnnlint.calibrate.measurements import Measurement, kernel_work
    from cnnlint.calibrate.model_fit import Params, predict_rows

    base = load_profile("x86-avx512")
    measured = base.model_copy(update={"window_output_ns": {"pool": 28.0}, "strided_input_gbps": {"conv1x1": 3.0}})
    graph = traced_graph("torchvision.models:googlenet")
    row = Measurement("torchvision.models:googlenet", (), 4, 1e-1, "googlenet", 1)
    params = Params(efficiency={}, overhead_s=1e-5)
    work = kernel_work(graph, base, "fp32")
    (plain,) = predict_rows([row], {row.key: work}, base, "fp32", params)
    (added,) = predict_rows([row], {row.key: work}, measured, "fp32", params)
    pools = sum(o for o, c in zip(work.window_outputs, work.op_class) if c == "pool")
    gathered = sum(b for b, c in zip(work.strided_input_bytes, work.op_class) if c == "conv1x1")
    assert pools > 0
    assert added - plain == pytest.approx(4 * (pools * 28e-9 + gathered / 3e9))


def test_a_layer_alone_pays_beyond_its_roofline_what_its_kernel_pays():
    """``alone_beyond_roofline_s`` (what placement adds to a layer it moves to the fallback
    device) is what the cost stage adds to the layer's own kernel: a strided conv's gather, its
    fresh output, a windowed pool's outputs, on an eager profile that measured all three."""
    from conftest import traced_graph

    from cnnlint.cost import alone_beyond_roofline_s, compute_cost, kernel_time

    base = load_profile("x86-avx512")
    profile = base.model_copy(update={
        "window_output_ns": {"pool": 28.0}, "strided_input_gbps": {"conv1x1": 3.0, "conv_kxk": 5.0},
        "memory": base.memory.model_copy(update={"fresh_output_gbps": 5.0}),
        "fusion": dict.fromkeys(base.fusion, False)})  # fmt: skip
    graph = traced_graph("torchvision.models:googlenet")
    cost = compute_cost(graph, profile)
    alone = [k for k in cost.kernels.values() if len(k.members) == 1 and not graph[k.head].attrs.get("inner_kernels")]
    assert {"pool", "conv_kxk", "reduce"} <= {k.op_class for k in alone}
    for kernel in alone:
        own = cost.of(kernel.head)
        roofline = kernel_time(profile, "fp32", kernel.flops, kernel.bytes, kernel.op_class,
                               (kernel.gemm_k, kernel.gemm_n, kernel.gemm_m), kernel.alignment)  # fmt: skip
        extra = alone_beyond_roofline_s(profile, graph[kernel.head], own)
        assert kernel.time_s == pytest.approx(roofline + extra, rel=1e-9), kernel.head
        if kernel.op_class in ("pool", "conv_kxk"):
            assert extra > profile.fresh_output_s(own.fresh_output_bytes), kernel.head


def test_a_pools_cost_per_output_is_not_negative(tmp_path):
    from cnnlint.errors import ProfileError

    (tmp_path / "bad.toml").write_text('extends = "x86-avx512"\nname = "bad"\n[window_output_ns]\npool = -1.0\n')
    with pytest.raises(ProfileError, match="window_output_ns.pool must be >= 0"):
        load_profile(str(tmp_path / "bad.toml"))


def test_a_cache_needs_its_bandwidth(tmp_path):
    from cnnlint.errors import ProfileError

    (tmp_path / "half.toml").write_text('extends = "arm-cpu"\nname = "half"\n[memory]\ncache_mb = 8.0\n')
    with pytest.raises(ProfileError, match="cache_mb and cache_bandwidth_gbps"):
        load_profile(str(tmp_path / "half.toml"))


@pytest.mark.parametrize("grid", ["quick", "full"])
def test_each_microbenchmark_is_costed_in_the_class_it_measures(grid):
    """The grid's label and the cost stage agree: a max pool is a windowed pool, a global
    average pool a reduction, a squeeze-excite 1x1 a conv1x1, a 32-group conv on 32 channels
    is not there to pass for a group conv."""
    profile = load_profile("arm-cpu")
    benches = benchmark_grid(grid, "cpu")
    assert {b.op_class for b in benches} >= {"pool", "reduce", "conv1x1", "depthwise_conv", "elementwise",
                                             "norm", "transcendental", "group_conv"}  # fmt: skip
    for bench in benches:
        assert [k.op_class for k in counted_work(bench, profile, "fp32")] == [bench.op_class], bench.label


def _sweep(cache_mib: float, fast: float, slow: float, overhead: float) -> list[Sample]:
    """Times of element-wise adds over 256 KiB to 128 MiB (the full grid's sweep) with a known cache (the bytes up to its size
    at ``fast``, the rest at ``slow``), a little noise."""
    noise = iter([1.04, 0.96, 1.0, 1.03, 0.97, 1.01, 0.99] * 6)
    samples = []
    cache = cache_mib * 2**20
    for size in [2**18 * 2 ** (i / 2) for i in range(19)]:
        seconds = (overhead + min(size, cache) / fast + max(size - cache, 0) / slow) * next(noise)
        samples.append(_timed(f"add {size:g}", [KernelWork(size / 12, size, "elementwise")], seconds))
    return samples


@pytest.mark.parametrize("cache_mib", [1.7, 12])
def test_the_memory_sweep_finds_the_cache_whatever_the_os_reports(cache_mib):
    """A 1.7 MiB (a core's L2) or 12 MiB cache at 35 GB/s before 10 GB/s: the fit finds its size,
    between the sweep's points, and both bandwidths; a sweep with no fall (one bandwidth
    throughout) finds no cache."""
    from cnnlint.calibrate import find_knee

    knee = find_knee(_sweep(cache_mib, 35e9, 10e9, 5e-6))
    assert knee is not None
    assert knee.cache_bytes == pytest.approx(cache_mib * 2**20, rel=0.2)
    assert knee.cache_bandwidth == pytest.approx(35e9, rel=0.15)
    assert knee.bandwidth == pytest.approx(10e9, rel=0.1)
    assert find_knee(_sweep(1e6, 20e9, 20e9, 5e-6)) is None


def test_an_edge_with_one_point_beyond_it_is_no_cache():
    """One slow point at the top of the sweep fits any bandwidth beyond an edge put just below it
    (a 128 MiB add page-faulting at 5.8 GB/s put the edge at 87 MiB and the memory at 1.8 GB/s):
    an edge needs two of the sweep's points on each side."""
    from cnnlint.calibrate import find_knee

    samples = _sweep(1e6, 30e9, 30e9, 5e-6)  # one bandwidth throughout ...
    top = samples[-1]
    samples[-1] = replace(top, seconds=top.seconds * 5)  # ... but the largest add 5x slower
    assert find_knee(samples) is None
    assert find_knee(_sweep(cache_mib=90, fast=30e9, slow=3e9, overhead=5e-6)) is None  # one point beyond 90 MiB


def test_the_timer_counts_the_page_faults_of_its_timed_calls():
    """Past glibc's heap an add's tensors are mapped in fresh at each call: calibrate leaves such
    a sweep point out of the cache fit, by the timer's count of its page faults a call."""
    import time

    from cnnlint.calibrate.grid import Add
    from cnnlint.timing import Timer

    timer = Timer("cpu", torch.float32, 0.05, clock=time.perf_counter)
    small = (1, 64, 1, 2**12)  # 1 MiB a tensor: reused from the heap
    timer.median_s(Add, [small, small])
    assert timer.faults_per_call < 0.1 * 3 * 2**20 / 4096  # at most a few pages of its three tensors
    large = (1, 64, 1, 2**18)  # 64 MiB a tensor: past glibc's largest heap block (32 MiB)
    timer.median_s(Add, [large, large])
    assert timer.faults_per_call > 0.5 * 64 * 2**20 / 4096  # most of its output's pages, each call


def test_a_kernel_spills_from_the_cache_a_part_at_a_time(tmp_path):
    """A profile's cache moves a kernel's first cache_mb of bytes at its bandwidth and the rest at
    the memory's: the time is continuous at the cache's size and tends to the memory's beyond."""
    (tmp_path / "cached.toml").write_text('extends = "x86-avx512"\nname = "cached"\n'
                                          "[memory]\nbandwidth_gbps = 10.0\ncache_mb = 2.0\ncache_bandwidth_gbps = 40.0\n")  # fmt: skip
    profile = load_profile(str(tmp_path / "cached.toml"))
    mib = 2**20

    def seconds(size: float) -> float:
        return size / profile.bandwidth_for(size)

    assert seconds(mib) == pytest.approx(mib / 40e9)
    assert seconds(2 * mib) == pytest.approx(seconds(2 * mib + 1), rel=1e-5)  # no step at the edge
    assert seconds(6 * mib) == pytest.approx(2 * mib / 40e9 + 4 * mib / 10e9)
    assert seconds(1024 * mib) / (1024 * mib / 10e9) == pytest.approx(1, abs=0.01)


def test_passes_time_every_benchmark_that_often_and_keep_the_median():
    """--passes 3: each benchmark's time, and each model-like chain's, is the median of three
    passes over the grid, so one pass disturbed by a burst of load does not move it; the fit runs
    once."""
    from cnnlint.calibrate import calibrate

    calibrate(grid="tiny", threads=1)  # warm: the first run pays for imports and first calls
    one = calibrate(grid="tiny", threads=1)
    three = calibrate(grid="tiny", threads=1, passes=3)
    assert [s.bench.label for s in three.samples] == [s.bench.label for s in one.samples]
    assert three.seconds > one.seconds


def test_the_model_overhead_comes_from_the_chains_ops_measured_in_the_passes():
    """What a model adds per kernel comes from the chains' ops' extra times the passes measured:
    given them, nothing is timed again; ops that took 50 us more inside the chain than at once
    again give 50 us a kernel; ones that took less give 0, never a negative cost."""
    from cnnlint.calibrate import calibrate, measure_model_overhead
    from cnnlint.calibrate.grid import model_chains
    from cnnlint.calibrate.run import EAGER_FUSION

    cal = calibrate(grid="tiny", threads=1)
    (by_op,) = cal.chain_extra_seconds
    eager = cal.base.model_copy(update={"fusion": EAGER_FUSION})
    (chain,) = model_chains("tiny")
    names = [k.name for k in counted_work(chain, eager, "fp32")]
    assert set(names) <= set(by_op)
    assert cal.fit.model_overhead_s is not None and cal.fit.model_overhead_s >= 0
    overhead, _ = measure_model_overhead(cal.base, "fp32", "tiny", [{n: 50e-6 for n in names}])
    assert overhead == pytest.approx(50e-6, rel=1e-3)
    assert measure_model_overhead(cal.base, "fp32", "tiny", [{n: -1e-3 for n in names}]) == (0.0, None)


def test_the_full_grid_chains_are_whole_classifiers_of_distinct_widths():
    """The chains the full and quick grids time are classifiers as models are (a 224 px image in,
    1,000 classes out, maps from 112 down to 7 px), not one block repeated; what cnnlint counts
    for each is what the timer runs."""
    from cnnlint.calibrate.grid import model_chains
    from cnnlint.calibrate.run import EAGER_FUSION

    eager = load_profile("x86-avx512").model_copy(update={"fusion": EAGER_FUSION})
    full, quick = model_chains("full"), model_chains("quick")
    assert [c.label for c in quick] == [c.label for c in full[: len(quick)]] and len(full) == 4
    for chain in full:
        assert chain.inputs == ((1, 3, 224, 224),)
        model = chain.make().eval()
        with torch.inference_mode():
            assert model(torch.randn(*chain.inputs[0])).shape == (1, 1000)
        convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len({(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs}) >= 8  # distinct shapes
        assert len(counted_work(chain, eager, "fp32")) >= 60


def test_a_cpu_calibration_extends_the_profile_of_the_vector_isa_torch_uses():
    """The base gives the advice's channel granule: oneDNN blocks channels by 16 on AVX-512 and
    by 8 on AVX2, so a calibration there must not keep arm-cpu's 4."""
    from cnnlint.calibrate.run import default_base

    capability = torch.backends.cpu.get_cpu_capability()
    expected = {"AVX512": "x86-avx512", "AVX2": "x86-avx2"}.get(capability, "arm-cpu")
    assert default_base("cpu") == expected
    assert default_base("cuda") == "t4"
    granule = {"x86-avx512": 16, "x86-avx2": 8, "arm-cpu": 4}[expected]
    assert load_profile(expected).channel_granule["fp32"].output == granule


def test_calibrate_fits_the_cache_at_the_edge_it_measured(tmp_path):
    """The fit takes the cache the sweep measured, not the reported one, and the profile
    says which it used; with the sweep in the fit both bandwidths have samples on each side."""
    from cnnlint.calibrate import calibrate, render_profile, summary_lines

    cal = calibrate(grid="tiny", threads=1)
    assert [s for s in cal.samples if s.bench.label.startswith("memory sweep")]
    text = render_profile(cal, "swept")
    summary = "\n".join(summary_lines(cal))
    assert "cache:" in summary and "the OS reports" in summary
    if cal.knee is None:
        assert cal.fit.cache is None and "no cache edge" in text
    else:
        assert cal.fit.cache is not None and cal.fit.cache[0] == cal.knee.cache_bytes
        assert "cache_mb = " in text and "the working set an add keeps in cache" in text


def test_calibrations_taken_apart_merge_by_median():
    """Calibrations between rounds of model timings (benchmarks/fidelity.py --rounds): each
    benchmark's and each chain's time is the median of theirs, every benchmark kept (the grid times
    some labels twice), and the merge is fitted again."""
    from cnnlint.calibrate import calibrate, merge

    runs = [calibrate(grid="tiny", threads=1) for _ in range(3)]
    merged = merge(runs)
    assert len(merged.samples) == len(runs[0].samples)
    for i, sample in enumerate(merged.samples):
        assert sample.bench.label == runs[0].samples[i].bench.label
        assert sample.seconds == sorted(r.samples[i].seconds for r in runs)[1]
    for i, by_op in enumerate(merged.chain_extra_seconds):
        assert by_op == {op: sorted(r.chain_extra_seconds[i][op] for r in runs)[1]
                         for op in runs[0].chain_extra_seconds[i]}  # fmt: skip
    assert merged.fit is not runs[0].fit and merged.fit.model_overhead_s is not None
    assert merged.seconds == pytest.approx(sum(r.seconds for r in runs))
    assert merge(runs[:1]) is runs[0]


def test_the_fit_recovers_how_fast_unaligned_channels_run():
    """Convs timed at channel widths on and off the granule, generated with the off ones at 0.5
    (depthwise) and 0.8 (group convs) of the rate: the fit finds both shares; a class timed off
    the granule only where its weights bound it (a classifier) gets none."""
    rates, bandwidth, overhead = {"depthwise_conv": 8e9, "group_conv": 50e9, "linear": 60e9}, 20e9, 10e-6
    shares = {"depthwise_conv": 0.5, "group_conv": 0.8}
    noise = iter([1.02, 0.98, 1.0, 1.01, 0.99, 1.0] * 20)
    samples = []
    # (class, FLOP per byte on the granule, and off it): the linear layers off it are classifiers
    for op_class, on, off in (("depthwise_conv", 10, 10), ("group_conv", 100, 100), ("linear", 100, 0.05)):
        for scale in (1e7, 3e7, 1e8, 3e8):
            for padding in (1.0, 0.875):  # a width of 112 and of 120 on a 16-channel granule
                intensity = on if padding == 1 else off
                kernels = [KernelWork(scale, scale / intensity, op_class, alignment=padding)]
                seconds = predict(kernels, rates, bandwidth, overhead, unaligned=shares) * next(noise)
                samples.append(_timed(f"{op_class} {scale:g} {padding}", kernels, seconds))
    result = fit(samples)
    assert set(result.unaligned) == {"depthwise_conv", "group_conv"}
    for op_class, share in shares.items():
        assert result.unaligned[op_class] == pytest.approx(share, rel=0.1), op_class
    assert result.overall.median_error < 0.03
    # the fit writes the table a profile reads
    from cnnlint.calibrate.writing import _unaligned_lines

    assert "[unaligned_efficiency]" in _unaligned_lines(result)


def test_channels_off_the_granule_run_at_the_measured_share_or_padded(tmp_path):
    """The cost stage prices a conv whose channels per group are off the profile's granule at
    the class's measured ``[unaligned_efficiency]``, else at the share of its padded channels that
    are real; widths under one granule, and aligned ones, are not judged. A fix a rule prices
    (``estimate_conv``) is priced the same way."""
    from torch import nn

    from cnnlint.cost import compute_cost
    from cnnlint.load import LoadedModel
    from cnnlint.pipeline import graph_of

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 120, 3, padding=1)  # 3 in: under the granule, not judged
            self.dw = nn.Conv2d(120, 120, 3, padding=1, groups=120)  # 120 lanes on 128
            self.group = nn.Conv2d(120, 240, 3, padding=1, groups=5)  # 24 -> 48 per group
            self.pw = nn.Conv2d(240, 128, 1)  # aligned

        def forward(self, x):
            return self.pw(self.group(self.dw(self.stem(x))))

    graph = graph_of(LoadedModel("block", Block(), [(1, 3, 28, 28)], {}, "cpu"))
    (tmp_path / "measured.toml").write_text('extends = "x86-avx512"\nname = "measured"\n'
                                            "[unaligned_efficiency]\ndepthwise_conv = 0.5\n")  # fmt: skip
    padded = compute_cost(graph, load_profile("x86-avx512"))
    measured = compute_cost(graph, load_profile(str(tmp_path / "measured.toml")))
    alignment = {name: (padded.kernels[name].alignment, measured.kernels[name].alignment)
                 for name in ("stem", "dw", "group", "pw")}  # fmt: skip
    assert alignment == {"stem": pytest.approx((120 / 128, 120 / 128)), "dw": pytest.approx((120 / 128, 0.5)),
                         "group": pytest.approx((24 / 32 * 48 / 48, 24 / 32)), "pw": (1.0, 1.0)}  # fmt: skip
    for cost in (padded, measured):
        for name, kernel in cost.kernels.items():
            if name in alignment:
                assert cost.rate_of(kernel) == pytest.approx(
                    cost.rate_of(kernel.__class__(**{**kernel.__dict__, "alignment": 1.0})) * kernel.alignment)
    # estimate_conv agrees with the cost stage on the same layer, and aligned=True drops the share
    overhead = padded.profile.kernel_overhead_s("group_conv")
    off = padded.estimate_conv(120, 240, (3, 3), 28 * 28, 28 * 28, groups=5) - overhead
    on = padded.estimate_conv(120, 240, (3, 3), 28 * 28, 28 * 28, groups=5, aligned=True) - overhead
    assert off == pytest.approx(on / 0.75, rel=1e-6)
    assert padded.kernels["group"].time_s - overhead == pytest.approx(off, rel=1e-6)
    (tmp_path / "bad.toml").write_text('extends = "x86-avx512"\nname = "bad"\n[unaligned_efficiency]\nconv1x1 = 1.5\n')
    from cnnlint.errors import ProfileError

    with pytest.raises(ProfileError, match="unaligned_efficiency.conv1x1 must be in"):
        load_profile(str(tmp_path / "bad.toml"))


def test_the_quick_grid_measures_channels_off_the_granule():
    """CL201's advice on a calibrated profile rests on ``[unaligned_efficiency]``: without its
    benchmarks the profile prices 20 channels as padded to 32, and on one thread of an AMD EPYC
    the quick calibration advised padding 1x1 convs from 20 to 32 channels at a predicted 1.16x
    where the padded conv measured 0.76x (``benchmarks/measure.py --calibrate``)."""
    for grid in ("quick", "full"):
        benches = benchmark_grid(grid, "cpu")
        unaligned = {b.op_class for b in benches if "unaligned" in b.label}
        assert {"conv1x1", "conv3x3", "depthwise_conv"} <= unaligned, grid
        assert any(b.label.startswith("group3x3 w24") for b in benches), grid  # group widths off it
