"""A fresh output in a model: each kernel that does not write in place writes to a buffer no recent
kernel touched, which a benchmark looping on one op (its output freed and handed back, still in
cache) never pays. The graph marks in-place ops, the cost stage adds the profile's measured
``memory.fresh_output_gbps`` to every other kernel, and calibrate measures it: ``x + 1`` with its
results kept alive against freed."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import instance_graph
from torch import nn

from cnnlint.cost import compute_cost
from cnnlint.profile import load_profile

SHAPE = (1, 16, 32, 32)


class InPlaceSpellings(nn.Module):
    """Each way a model writes a result into its input, beside the same ops that do not."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(16, 16, 3, padding=1)
        self.relu_in_place = nn.ReLU(inplace=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu_in_place(self.conv(x))  # torchvision's ReLU(inplace=True)
        y = self.relu(y)
        y = F.relu(y, inplace=True)
        y = F.relu6(y, True)  # by position
        y = F.hardtanh(y, -1.0, 1.0)
        y = y.sigmoid_()
        y += x  # out += identity
        z = y + x
        return torch.relu_(z)


def test_the_graph_marks_every_spelling_of_an_in_place_op():
    graph = instance_graph(InPlaceSpellings(), SHAPE)
    in_place = {layer.op for layer in graph if layer.attrs.get("in_place")}
    fresh = {layer.op for layer in graph if layer.kind != "input" and not layer.attrs.get("in_place")}
    assert {"ReLU", "relu", "relu6", "sigmoid_", "relu_"} <= in_place
    assert {"Conv2d", "hardtanh"} <= fresh
    assert sum(1 for layer in graph if layer.op == "ReLU" and layer.attrs.get("in_place")) == 1
    # fx records `y += x` as operator.add (a Proxy has no __iadd__); the line says it is in place
    adds = [layer for layer in graph if layer.op == "add"]
    assert [bool(layer.attrs.get("in_place")) for layer in adds] == [True, False]


def test_a_fresh_output_costs_its_bytes_at_the_measured_speed_and_an_in_place_one_nothing():
    base = load_profile("x86-avx512")
    assert base.memory.fresh_output_gbps is None  # no built-in profile measured it
    measured = base.model_copy(update={"memory": base.memory.model_copy(update={"fresh_output_gbps": 5.0})})
    graph = instance_graph(InPlaceSpellings(), SHAPE)
    before, after = compute_cost(graph, base), compute_cost(graph, measured)
    for name, kernel in after.kernels.items():
        extra = kernel.time_s - before.kernels[name].time_s
        # in place when each of its layers is: conv + ReLU(inplace) fused writes the conv's new tensor
        in_place = all(graph[m].attrs.get("in_place", False) for m in kernel.members)
        assert kernel.in_place == in_place
        assert kernel.fresh_output_bytes == (0 if in_place else kernel.output_bytes)
        assert extra == pytest.approx(kernel.fresh_output_bytes / 5e9, rel=1e-9, abs=1e-15)
        batch = measured.throughput_batch
        assert kernel.time_at_batch_s - before.kernels[name].time_at_batch_s == pytest.approx(
            batch * kernel.fresh_output_bytes / 5e9, rel=1e-9, abs=1e-15)  # fmt: skip
    fresh = sum(k.fresh_output_bytes for k in after.kernels.values())
    assert 0 < fresh < sum(k.output_bytes for k in after.kernels.values())
    assert after.latency_s - before.latency_s == pytest.approx(fresh / 5e9)


def test_a_profile_rejects_a_fresh_output_speed_that_is_not_positive():
    from pydantic import ValidationError

    base = load_profile("x86-avx512")
    with pytest.raises(ValidationError, match="fresh_output_gbps"):
        type(base.memory)(bandwidth_gbps=10.0, fresh_output_gbps=0.0)


# ----------------------------------------------------------------------------- calibrate

pytest.importorskip("scipy", reason="cnnlint calibrate needs the [calibrate] extra (scipy)")


def test_kept_alive_results_never_reuse_the_buffer_just_freed():
    """Kept alive, each call's output is a buffer the last ``KEPT_BYTES`` of results do not hold:
    the allocator cannot hand back the one a loop over one op gets again, still in cache."""
    from cnnlint.calibrate.grid import KEPT_BYTES, _KeptAlive, fresh_output_pairs

    pair = fresh_output_pairs("tiny")[0]
    module, x = _KeptAlive(pair.make_op(), KEPT_BYTES), torch.randn(pair.shape)
    with torch.inference_mode():
        addresses = [module(x).data_ptr() for _ in range(5)]
        plain = pair.plain.make()
        freed = [plain(x).data_ptr() for _ in range(5)]
    assert len(module.kept) == KEPT_BYTES // (pair.elements * 4)
    assert len(set(addresses)) == 5
    assert len(set(freed)) < 5  # freed, the same buffer comes back


def test_the_fresh_output_speed_is_the_output_bytes_over_the_extra_time():
    from cnnlint.calibrate.grid import FreshOutputPair
    from cnnlint.calibrate.run import fresh_output_speed

    pairs = [FreshOutputPair(f"relu {c}", torch.nn.ReLU, (1, c, 32, 32)) for c in (32, 64, 128)]  # 128 to 512 KiB
    assert [p.elements * 4 for p in pairs] == [2**17, 2**18, 2**19]
    per_byte = [1e-10, 2e-10, 4e-10]
    seconds = {p.label: (1e-5, 1e-5 + p.elements * 4 * b) for p, b in zip(pairs, per_byte)}
    assert fresh_output_speed(seconds, pairs=pairs) == pytest.approx(1 / 2e-10)  # the median
    assert fresh_output_speed(seconds, "bf16", pairs) == pytest.approx(0.5 / 2e-10)  # half the bytes, same time
    assert fresh_output_speed({p.label: (2e-5, 1e-5) for p in pairs}, pairs=pairs) is None  # kept alive no slower
    assert fresh_output_speed({}) is None  # no pair ran
    # A pair that failed (no kernel at the precision) is left out; the others still give the speed.
    del seconds[pairs[0].label]
    assert fresh_output_speed(seconds, pairs=pairs) == pytest.approx(1 / 3e-10)
    # The labels the grids time are what the default looks them up in.
    from cnnlint.calibrate.grid import fresh_output_pairs

    full = fresh_output_pairs("full")
    assert {p.label for p in fresh_output_pairs("tiny")} <= {p.label for p in full}
    assert fresh_output_speed({full[1].label: (1e-5, 1e-5 + full[1].elements * 4 * 2e-10)}) == pytest.approx(1 / 2e-10)


def test_a_calibration_measures_fresh_outputs(tmp_path):
    """The pairs are timed in every pass; the profile states the speed and how it was measured."""
    from cnnlint.calibrate import calibrate, render_profile
    from cnnlint.calibrate.grid import fresh_output_pairs
    from cnnlint.calibrate.run import merge

    runs = [calibrate(grid="tiny", threads=1) for _ in range(3)]
    cal = runs[0]
    assert list(cal.fresh_output_seconds) == [p.label for p in fresh_output_pairs("tiny")]
    assert all(freed > 0 and kept > 0 for freed, kept in cal.fresh_output_seconds.values())
    text = render_profile(cal, "fresh")
    if cal.fit.fresh_output:
        out = tmp_path / "fresh.toml"
        out.write_text(text)
        assert load_profile(str(out)).memory.fresh_output_gbps == pytest.approx(cal.fit.fresh_output / 1e9, rel=1e-3)
        assert "fresh_output_gbps = " in text and "# measured: output bytes over the extra time" in text
        assert "x + 1, 64ch 32px" in text  # the kinds it timed
    else:
        assert "fresh_output_gbps" not in text
    merged = merge(runs)
    (label,) = cal.fresh_output_seconds
    assert merged.fresh_output_seconds == {
        label: tuple(sorted(r.fresh_output_seconds[label][i] for r in runs)[1] for i in (0, 1))}  # fmt: skip



def test_a_fit_to_whole_model_timings_keeps_the_base_fresh_output_cost():
    """``calibrate --from-measurements`` fits rates on top of the base's cost of fresh outputs,
    which the profile it writes keeps: the fit predicts what the cost stage will."""
    from cnnlint.calibrate.measurements import Measurement, kernel_work
    from cnnlint.calibrate.model_fit import Params, predict_rows

    base = load_profile("x86-avx512")
    measured = base.model_copy(update={"memory": base.memory.model_copy(update={"fresh_output_gbps": 5.0})})
    graph = instance_graph(InPlaceSpellings(), SHAPE)
    row = Measurement("m:InPlaceSpellings", (), 4, 1e-3, "m", 1)
    params = Params(efficiency={}, overhead_s=1e-5)
    work = kernel_work(graph, base, "fp32")
    (plain,) = predict_rows([row], {row.key: work}, base, "fp32", params)
    (fresh,) = predict_rows([row], {row.key: work}, measured, "fp32", params)
    assert fresh - plain == pytest.approx(4 * sum(work.fresh_output_bytes) / 5e9)
    assert params.apply(measured).memory.fresh_output_gbps == 5.0


def test_a_fix_a_rule_prices_writes_its_fresh_output_as_the_layers_it_replaces_do():
    """``estimate_conv`` and ``estimate_linear`` (the fixes rules propose) pay a fresh output as
    the cost stage's kernels do: a conv that exists is estimated at its kernel's time, with the
    fresh output or without it."""
    base = load_profile("x86-avx512")
    measured = base.model_copy(update={"memory": base.memory.model_copy(update={"fresh_output_gbps": 5.0})})
    model = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(32 * 32 * 32, 10))
    graph = instance_graph(model, SHAPE)
    for profile in (base, measured):
        cost = compute_cost(graph, profile)
        conv = next(k for k in cost.kernels.values() if k.op_class == "conv3x3")
        assert cost.estimate_conv(16, 32, (3, 3), 32 * 32, 32 * 32) == pytest.approx(conv.time_s, rel=1e-6)
        linear = next(k for k in cost.kernels.values() if k.op_class == "linear")
        assert cost.estimate_linear(32 * 32 * 32, 10) == pytest.approx(linear.time_s, rel=1e-4)  # its bias aside
    fresh = compute_cost(graph, measured)
    plain = compute_cost(graph, base)
    assert fresh.estimate_conv(16, 32, (3, 3), 1024, 1024) - plain.estimate_conv(16, 32, (3, 3), 1024, 1024) == pytest.approx(
        32 * 1024 * 4 / 5e9)  # fmt: skip
