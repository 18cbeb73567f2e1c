"""Work on parameters: layers computed from parameters alone (a weight standardised in forward).

The graph stage marks them (``Layer.param_only``). A target whose profile fuses layers (an
inference engine) folds them into constants: no kernel, no time. An eager target runs them once
per call, whatever the batch. Their FLOPs and MACs stay in the totals, and no rule reports them as
work on activations. Checked on the fixture's BiT-style StdConv2d and on timm's nf_resnet26
against twins whose convs are plain ``nn.Conv2d``.
"""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch
from conftest import FIXTURES, instance_graph
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnlint.cost import compute_cost, folds_parameter_work
from cnnlint.graph import LayerGraph, OpKind
from cnnlint.load import meta_copy
from cnnlint.pipeline import check_graph
from cnnlint.profile import builtin_profile_names, load_profile

FIXTURE = FIXTURES / "cl104_param_only.py"
ENGINES = ("t4", "a4000", "arm-cpu", "hi3519")  # profiles that fuse: inference engines
EAGER = "h200"  # PyTorch eager: fuses nothing


def _fixture_module():
    spec = importlib.util.spec_from_file_location("cl104_param_only", FIXTURE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module




def _plain_twin(model: nn.Module, standardised: type) -> nn.Module:
    """The same network with each weight-standardised conv a plain ``nn.Conv2d``."""
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if isinstance(module, standardised):
            module.__class__ = nn.Conv2d
    return twin


@pytest.fixture(scope="module")
def std_conv_net():
    fixture = _fixture_module()
    return fixture.StdConvNet(), fixture.StdConv2d


@pytest.fixture(scope="module")
def nf_resnet26():
    timm = pytest.importorskip("timm")
    from timm.layers import ScaledStdConv2d

    with torch.device("meta"):
        return timm.create_model("nf_resnet26"), ScaledStdConv2d


def test_the_graph_marks_the_weight_standardisation_and_only_it(std_conv_net):
    model, _ = std_conv_net
    graph = instance_graph(model, (1, 3, 224, 224))
    marked = [layer for layer in graph if layer.param_only]
    assert {layer.op for layer in marked} == {"reshape", "batch_norm", "reshape_as"}
    assert len(marked) == 3 * 3  # three ops per conv
    for conv in graph.layers(OpKind.CONV):
        assert not conv.param_only
        assert [p.param_only for p in graph.producers(conv)].count(True) == 1  # its weight
    assert not any(layer.param_only for layer in graph.layers((OpKind.ACTIVATION, OpKind.INPUT, OpKind.OUTPUT)))
    assert any("compute from parameters alone" in note for note in graph.notes)

    written_out = instance_graph(_fixture_module().ScaledStdConvNet(), (1, 3, 224, 224))
    ops = {layer.op for layer in written_out if layer.param_only}
    assert {"mean", "var", "sub", "rsqrt", "mul"} <= ops


def test_counts_keep_the_parameter_work_on_every_target(std_conv_net):
    """MACs as torch's FLOP counter counts them on the same forward; FLOPs the same on engines
    and eager targets (the folded layers' work is counted, only its time changes)."""
    model, _ = std_conv_net
    graph = instance_graph(model, (1, 3, 224, 224))
    with FlopCounterMode(display=False) as counter:
        meta_copy(model).eval()(torch.empty(1, 3, 224, 224, device="meta"))
    costs = [compute_cost(graph, load_profile(name)) for name in (*ENGINES, EAGER)]
    assert {cost.macs for cost in costs} == {counter.get_total_flops() // 2}
    assert len({cost.flops for cost in costs}) == 1
    norms = [layer for layer in graph.layers(OpKind.NORM) if layer.param_only]
    assert norms and all(costs[0].of(layer).flops > 0 for layer in norms)


@pytest.mark.parametrize("target", ENGINES)
def test_an_engine_folds_the_parameter_work_away(std_conv_net, target):
    model, standardised = std_conv_net
    profile = load_profile(target)
    assert folds_parameter_work(profile)
    graph = instance_graph(model, (1, 3, 224, 224))
    cost = compute_cost(graph, profile)
    marked = [layer.name for layer in graph if layer.param_only]
    assert cost.folded == set(marked)
    assert all(cost.time_of(name) == 0 and cost.kernel_of(name) is None for name in marked)
    assert not set(marked) & {m for kernel in cost.kernels.values() for m in kernel.members}
    plain = compute_cost(instance_graph(_plain_twin(model, standardised), (1, 3, 224, 224)), profile)
    assert cost.latency_s == pytest.approx(plain.latency_s, rel=1e-9)
    assert cost.throughput_per_s == pytest.approx(plain.throughput_per_s, rel=1e-9)


def test_eager_runs_the_parameter_work_once_per_call(std_conv_net):
    """On an eager target the weight standardisation costs the same at batch 1 and batch 8, and
    once per throughput batch: only the work on images grows with the batch."""
    model, standardised = std_conv_net
    profile = load_profile(EAGER)
    assert not folds_parameter_work(profile)
    plain = _plain_twin(model, standardised)

    def parameter_time(graph: LayerGraph) -> float:
        cost = compute_cost(graph, profile)
        assert not cost.folded
        return sum(cost.kernels[layer.name].time_s for layer in graph if layer.name in cost.kernels and layer.param_only)

    extra = {}
    for batch in (1, 8):
        shape = (batch, 3, 224, 224)
        graph = instance_graph(model, shape)
        extra[batch] = compute_cost(graph, profile).latency_s - compute_cost(instance_graph(plain, shape), profile).latency_s
        assert parameter_time(graph) == pytest.approx(extra[batch], rel=1e-6)
    assert extra[1] > 0
    assert extra[8] == pytest.approx(extra[1], rel=1e-9)
    # The throughput batch repeats the work on images, not the work on weights.
    graph = instance_graph(model, (1, 3, 224, 224))
    cost = compute_cost(graph, profile)
    for layer in graph:
        if layer.param_only and layer.name in cost.kernels:
            assert cost.kernels[layer.name].time_at_batch_s == cost.kernels[layer.name].time_s
    batch = profile.throughput_batch
    plain_cost = compute_cost(instance_graph(plain, (1, 3, 224, 224)), profile)
    assert batch / cost.throughput_per_s - batch / plain_cost.throughput_per_s == pytest.approx(extra[1], rel=1e-6)


@pytest.mark.parametrize("target", builtin_profile_names())
def test_no_rule_reports_the_parameter_work(std_conv_net, target):
    model, _ = std_conv_net
    for network in (model, _fixture_module().ScaledStdConvNet()):
        graph = instance_graph(network, (1, 3, 224, 224))
        result = check_graph(graph, load_profile(target), select=["ALL"])
        assert result.status == "ok", result.error
        assert not [f.message for f in result.findings if f.layer is not None and f.layer.param_only]


# timm's nf_resnet26: every conv a ScaledStdConv2d (weight standardisation with a learned gain).


@pytest.mark.parametrize("target", ("t4", "a4000"))
def test_nf_resnet26_weight_standardisation_costs_nothing_on_an_engine(nf_resnet26, target):
    model, standardised = nf_resnet26
    profile = load_profile(target)
    graph = instance_graph(model, (1, 3, 224, 224))
    plain_graph = instance_graph(_plain_twin(model, standardised), (1, 3, 224, 224))
    cost, plain = compute_cost(graph, profile), compute_cost(plain_graph, profile)
    convs = sum(isinstance(m, standardised) for m in model.modules())
    assert sum(graph[name].kind == OpKind.NORM for name in cost.folded) == convs  # one batch_norm each
    assert cost.macs == plain.macs
    # Each standardised conv reads its weight as a plain conv does; a plain conv also reads
    # its bias, which the standardised one reads as an attribute: within 1%.
    assert cost.latency_s == pytest.approx(plain.latency_s, rel=0.01)
    result = check_graph(graph, profile)
    assert not [f.message for f in result.findings if f.layer is not None and f.layer.param_only]
    assert not [f.message for f in result.findings if "batch_norm" in f.message]


@pytest.mark.parametrize("target", ("t4", "a4000"))
def test_nf_resnet26_costs_what_its_architecture_adds_over_resnet26(nf_resnet26, target):
    """Against timm's resnet26 on an engine, what nf_resnet26 adds is its own work: each block's
    pre-activation ``relu(x) * beta`` (x is also the shortcut, so no conv takes the ReLU; the
    scale fuses into the ReLU's kernel, as an engine fuses adjacent point-wise ops) and the
    average pools of its downsampling shortcuts. Nothing else: 1.16x (3.5x before the
    standardisation folded, 1.27x before point-wise chains fused)."""
    import timm

    model, _ = nf_resnet26
    profile = load_profile(target)
    graph = instance_graph(model, (1, 3, 224, 224))
    cost = compute_cost(graph, profile)
    resnet_graph = instance_graph(timm.create_model("resnet26"), (1, 3, 224, 224))
    resnet = compute_cost(resnet_graph, profile)
    assert cost.latency_s / resnet.latency_s < 1.17
    preact = [name for name in cost.kernels if graph[name].op == "ReLU" and name.endswith("act1")]
    assert preact and all(cost.kernels[name].members[-1].startswith("mul") for name in preact)
    pools = [name for name in cost.kernels if graph[name].op == "AvgPool2d"]
    assert len(cost.kernels) == len(resnet.kernels) + len(preact) + len(pools)


def test_nf_resnet26_on_eager_charges_the_standardisation_once_per_call(nf_resnet26):
    model, standardised = nf_resnet26
    profile = load_profile(EAGER)
    plain = _plain_twin(model, standardised)
    extra = []
    for batch in (1, 8):
        shape = (batch, 3, 224, 224)
        extra.append(compute_cost(instance_graph(model, shape), profile).latency_s
                     - compute_cost(instance_graph(plain, shape), profile).latency_s)  # fmt: skip
    assert extra[0] > 0
    assert extra[1] == pytest.approx(extra[0], rel=0.01)


def test_an_eager_hotspot_is_never_the_parameter_work():
    """On the calibrated CPU profile (eager) the weight standardisation of wide convs on a small
    map moves more bytes than the convs' activations; CL501, asked for every memory-bound kernel,
    reports the activations' kernels and not it."""
    fixture = _fixture_module()
    model = nn.Sequential(nn.Conv2d(3, 512, 32, stride=32), nn.ReLU(),
                          *[m for _ in range(2) for m in (fixture.ScaledStdConv2d(512, 512, 3, padding=1), nn.ReLU())])  # fmt: skip
    base = load_profile(str(FIXTURES.parent.parent / "benchmarks" / "results" / "cpu" / "cpu.toml"))
    assert not folds_parameter_work(base)
    profile = base.model_copy(update={"rules": {**base.rules, "CL501": {"min_latency_share": 0.0}}})
    graph = instance_graph(model, (1, 3, 224, 224))
    cost = compute_cost(graph, profile)
    parameter_bytes = sum(cost.kernels[l.name].bytes for l in graph if l.param_only and l.name in cost.kernels)
    assert parameter_bytes > sum(cost.of(l).input_bytes for l in graph.layers(OpKind.CONV))
    findings = check_graph(graph, profile, select=["CL501"]).findings
    assert findings and not [f.message for f in findings if f.layer.param_only]
