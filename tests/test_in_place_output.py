"""An in-place kernel's output: it writes the lines it just read. Timed alone on one CPU thread an
in-place ReLU or ``add_`` takes about half the time of the same op writing a new tensor, so a
profile that measured it (``memory.in_place_output_share``) moves only that share of such a
kernel's output bytes, and calibrate measures it from the two timed back to back."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import instance_graph
from pydantic import ValidationError
from torch import nn

from cnnlint.cost import compute_cost, kernel_time
from cnnlint.profile import load_profile

SHAPE = (1, 16, 32, 32)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn(self.conv(x)))
        y += x  # out += identity
        return F.relu(y + x)  # two that write new tensors


def _with_share(profile, share):
    return profile.model_copy(update={"memory": profile.memory.model_copy(update={"in_place_output_share": share})})


def test_an_in_place_kernel_moves_the_measured_share_of_its_output():
    cpu = load_profile("x86-avx512")
    assert cpu.memory.in_place_output_share is None  # no built-in profile measured it
    # eager on a CPU, as a calibrated profile is: every layer its own kernel
    base = cpu.model_copy(update={"fusion": type(cpu.fusion)(norm=False, activation=False, residual_add=False)})
    graph = instance_graph(Block(), SHAPE)
    before, after = compute_cost(graph, base), compute_cost(graph, _with_share(base, 0.25))
    in_place = {name for name, k in after.kernels.items() if k.in_place}
    assert {graph[name].op for name in in_place} == {"ReLU", "add"}
    assert len(in_place) == 2 and len(after.kernels) == 6  # conv, bn, ReLU, +=, +, relu
    for name, kernel in after.kernels.items():
        if name not in in_place:
            assert kernel.time_s == before.kernels[name].time_s
            continue
        moved = kernel.input_bytes + kernel.weight_bytes + 0.25 * kernel.output_bytes
        assert kernel.time_s == pytest.approx(kernel_time(base, "fp32", kernel.flops, moved, kernel.op_class))
        assert kernel.time_s < before.kernels[name].time_s
        assert kernel.bytes == before.kernels[name].bytes  # the traffic it reports is unchanged
        assert kernel.fresh_output_bytes == 0


def test_a_fused_kernel_whose_first_layer_writes_a_new_tensor_is_not_in_place():
    """On an engine that fuses, conv + bn + ReLU(inplace) is one kernel writing the conv's new
    output: neither the in-place share nor the fresh-output exemption applies to it."""
    graph = instance_graph(Block(), SHAPE)
    t4 = load_profile("t4")
    cost = compute_cost(graph, _with_share(t4, 0.0))
    assert compute_cost(graph, t4).latency_s == cost.latency_s
    conv = cost.kernels["conv"]
    assert "relu" in conv.members and not conv.in_place and conv.fresh_output_bytes == conv.output_bytes


def test_a_profile_rejects_a_share_outside_zero_to_one():
    base = load_profile("x86-avx512")
    for share in (-0.1, 1.5):
        with pytest.raises(ValidationError, match="in_place_output_share"):
            type(base.memory)(bandwidth_gbps=10.0, in_place_output_share=share)


# ----------------------------------------------------------------------------- calibrate

pytest.importorskip("scipy", reason="cnnlint calibrate needs the [calibrate] extra (scipy)")


def test_the_share_is_what_the_in_place_time_says_beyond_the_inputs():
    from cnnlint.calibrate.fitting import ClassFit, Fit
    from cnnlint.calibrate.grid import in_place_pairs
    from cnnlint.calibrate.run import in_place_output_share

    pairs = in_place_pairs("full")
    fixed, per_output = 5e-6, 1e-4  # seconds: the fixed cost, and one output's worth of bytes
    fit = Fit(rates={}, bandwidth=1.0, overhead_s=1.0, quality={}, overall=ClassFit(0, 1.0, 0.0),
              overheads_s={"elementwise": fixed})  # fmt: skip

    def timed(share):
        return {p.label: (fixed + (p.operands + 1) * per_output, fixed + (p.operands + share) * per_output)
                for p in pairs}  # fmt: skip

    assert in_place_output_share(timed(0.3), fit, pairs) == pytest.approx(0.3)
    assert in_place_output_share(timed(1.0), fit, pairs) == pytest.approx(1.0)
    assert in_place_output_share(timed(-0.4), fit, pairs) == 0.0  # cheaper than its reads: at most all of it saved
    assert in_place_output_share({p.label: (2.0, 3.0) for p in pairs}, fit, pairs) == 1.0  # slower: none saved
    seconds = timed(0.2)
    seconds[pairs[0].label] = (fixed / 2, fixed / 2)  # within the fixed cost: says nothing
    assert in_place_output_share(seconds, fit, pairs) == pytest.approx(0.2)
    assert in_place_output_share({}, fit, pairs) is None


def test_a_calibration_times_the_pairs_in_every_pass_and_writes_the_share(tmp_path):
    from cnnlint.calibrate import calibrate, render_profile
    from cnnlint.calibrate.grid import in_place_pairs
    from cnnlint.calibrate.run import merge

    runs = [calibrate(grid="tiny", threads=1) for _ in range(3)]
    cal = runs[0]
    assert list(cal.in_place_seconds) == [p.label for p in in_place_pairs("tiny")]
    assert all(plain > 0 and in_place > 0 for plain, in_place in cal.in_place_seconds.values())
    text = render_profile(cal, "in-place")
    assert cal.fit.in_place_output_share is not None
    out = tmp_path / "in_place.toml"
    out.write_text(text)
    assert load_profile(str(out)).memory.in_place_output_share == pytest.approx(cal.fit.in_place_output_share, abs=1e-3)
    assert "# measured: the output bytes an op writing into its input moves" in text
    assert "ReLU, 128ch 28px" in text  # the kinds it timed
    merged = merge(runs)
    (label,) = cal.in_place_seconds
    assert merged.in_place_seconds == {
        label: tuple(sorted(r.in_place_seconds[label][i] for r in runs)[1] for i in (0, 1))}  # fmt: skip
