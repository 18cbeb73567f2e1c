"""Cold weights in a model: between two calls of a model the rest of its forward evicts a layer's
weights, which a benchmark looping on the layer keeps in cache. The cost stage adds each kernel's
weights (up to the cache) at the profile's measured ``memory.cold_weights_gbps``, once per call
whatever the batch; the fixes rules propose pay it as the layers they replace do; calibrate fits
it, with the fixed cost per kernel, to what each op of its model-like networks took inside the
forward beyond at once again."""

from __future__ import annotations

import pytest
import torch
from conftest import instance_graph
from pydantic import ValidationError
from torch import nn

from cnnlint.cost import compute_cost
from cnnlint.profile import load_profile

SHAPE = (1, 16, 32, 32)


def _with(profile, **memory):
    return profile.model_copy(update={"memory": profile.memory.model_copy(update=memory)})


def _model() -> nn.Module:
    # a 3x3 conv of 18 KiB of weights and a classifier of 1.25 MiB
    return nn.Sequential(nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.Flatten(),
                         nn.Linear(32 * 32 * 32, 10, bias=False))  # fmt: skip


def test_a_kernel_pays_its_weights_once_per_call_at_the_measured_speed():
    base = load_profile("x86-avx512")
    assert base.memory.cold_weights_gbps is None  # no built-in profile measured it
    measured = _with(base, cold_weights_gbps=4.0)
    graph = instance_graph(_model(), SHAPE)
    before, after = compute_cost(graph, base), compute_cost(graph, measured)
    weighted = 0
    for name, kernel in after.kernels.items():
        extra = kernel.weight_bytes / 4e9
        weighted += kernel.weight_bytes > 0
        assert kernel.time_s - before.kernels[name].time_s == pytest.approx(extra, rel=1e-9, abs=1e-15)
        # read once for the whole batch, as the weights are
        at_batch = kernel.time_at_batch_s - before.kernels[name].time_at_batch_s
        assert at_batch == pytest.approx(extra, rel=1e-9, abs=1e-15)
    assert weighted == 2
    weights = sum(k.weight_bytes for k in after.kernels.values())
    assert after.latency_s - before.latency_s == pytest.approx(weights / 4e9)


def test_weights_beyond_the_cache_are_not_cold_twice():
    """Looped alone, a layer whose weights pass the cache reads them from memory too: only its
    first cache_mb of them is what a model adds."""
    base = _with(load_profile("x86-avx512"), cold_weights_gbps=4.0, cache_mb=1.0, cache_bandwidth_gbps=100.0)
    graph = instance_graph(_model(), SHAPE)
    linear = next(k for k in compute_cost(graph, base).kernels.values() if k.op_class == "linear")
    assert linear.weight_bytes > 2**20
    assert base.cold_weights_s(linear.weight_bytes) == pytest.approx(2**20 / 4e9)
    assert base.cold_weights_s(1000) == pytest.approx(1000 / 4e9)


def test_a_profile_rejects_a_cold_weight_speed_that_is_not_positive():
    base = load_profile("x86-avx512")
    with pytest.raises(ValidationError):
        base.memory.model_validate({**base.memory.model_dump(), "cold_weights_gbps": 0})


def test_a_fix_a_rule_prices_reads_its_weights_as_the_layers_it_replaces_do():
    """``estimate_conv`` and ``estimate_linear`` pay cold weights as the cost stage's kernels do:
    a layer that exists is estimated at its kernel's time."""
    measured = _with(load_profile("x86-avx512"), cold_weights_gbps=4.0)
    graph = instance_graph(_model(), SHAPE)
    cost = compute_cost(graph, measured)
    conv = next(k for k in cost.kernels.values() if k.op_class == "conv3x3")
    assert cost.estimate_conv(16, 32, (3, 3), 32 * 32, 32 * 32) == pytest.approx(conv.time_s, rel=1e-6)
    linear = next(k for k in cost.kernels.values() if k.op_class == "linear")
    assert cost.estimate_linear(32 * 32 * 32, 10) == pytest.approx(linear.time_s, rel=1e-6)


def test_a_fit_to_whole_model_timings_keeps_the_base_cold_weight_cost():
    """``calibrate --from-measurements`` fits rates on top of the base's cold weights, once per
    call at any batch: the fit predicts what the cost stage will."""
    from cnnlint.calibrate.measurements import Measurement, kernel_work
    from cnnlint.calibrate.model_fit import Params, predict_rows

    base = load_profile("x86-avx512")
    measured = _with(base, cold_weights_gbps=4.0)
    graph = instance_graph(_model(), SHAPE)
    row = Measurement("m:Sequential", (), 4, 1e-3, "m", 1)
    params = Params(efficiency={}, overhead_s=1e-5)
    work = kernel_work(graph, base, "fp32")
    (plain,) = predict_rows([row], {row.key: work}, base, "fp32", params)
    (cold,) = predict_rows([row], {row.key: work}, measured, "fp32", params)
    assert cold - plain == pytest.approx(sum(work.weight_bytes) / 4e9)


def test_calibrate_fits_the_fixed_cost_and_the_cold_weights_to_the_ops_extra_times():
    """Extra times made of 20 us a kernel and its weights at 25 GB/s (the cache's first 4 MiB of
    them) are fitted back to those two numbers, over the kernels cnnlint counts for the full
    grid's model-like networks; extras that owe nothing to the weights give no speed."""
    from cnnlint.calibrate import counted_work, measure_model_overhead
    from cnnlint.calibrate.grid import model_chains
    from cnnlint.calibrate.run import EAGER_FUSION

    base = load_profile("x86-avx512")
    eager = base.model_copy(update={"fusion": EAGER_FUSION})
    cache = 4 * 2**20
    made, flat = [], []
    for chain in model_chains("full"):
        kernels = counted_work(chain, eager, "fp32")
        assert all(k.name for k in kernels) and len({k.name for k in kernels}) == len(kernels)
        made.append({k.name: 20e-6 + min(k.weight_bytes, cache) / 25e9 for k in kernels})
        flat.append({k.name: 20e-6 for k in kernels})
    per_kernel, speed = measure_model_overhead(base, "fp32", "full", made, cache)
    assert per_kernel == pytest.approx(20e-6, rel=1e-3)
    assert speed == pytest.approx(25e9, rel=1e-3)
    per_kernel, speed = measure_model_overhead(base, "fp32", "full", flat, cache)
    assert per_kernel == pytest.approx(20e-6, rel=1e-3) and speed is None


def test_the_ops_timed_inside_a_chain_are_the_kernels_cnnlint_counts():
    """The timer runs the chain as cnnlint traces it (``Bench.wrapped``): every kernel cnnlint
    counts is an op the timer measured, by name."""
    import time

    from cnnlint.calibrate import counted_work
    from cnnlint.calibrate.grid import model_chains
    from cnnlint.calibrate.run import EAGER_FUSION
    from cnnlint.timing import Timer

    eager = load_profile("x86-avx512").model_copy(update={"fusion": EAGER_FUSION})
    timer = Timer("cpu", torch.float32, 0.01, clock=time.perf_counter)
    chain = model_chains("quick")[0]
    timed = timer.in_model_extras_s(chain.wrapped, chain.inputs, forwards=1)
    kernels = counted_work(chain, eager, "fp32")
    assert {k.name for k in kernels} <= set(timed)
    assert len(kernels) >= 100
