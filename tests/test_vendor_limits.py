"""Parameter limits as data (CL304): each profile's [limits] tables, each limit with its source.

A layer outside a documented range (a kernel, stride, padding, dilation, depth multiplier, resize
factor, rank, batch) is reported with the vendor's limit and the document it comes from. These
tests check it three ways: every limit of every built-in profile at its boundary on hand-built
graphs (the value itself passes, one step past it is reported); the fixtures
``tests/fixtures/vendor_limits_*.py`` with their ``# expect:`` lines on every target; and six
torchvision architectures on each new target, against one table of the limits they break.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES, check_on, traced_graph
from test_rule_fixtures import TARGETS, check_fixture, parse_fixture

from cnnlint.core import BYTES_PER_ELEMENT, Layer, LayerGraph, OpKind
from cnnlint.errors import ProfileError
from cnnlint.pipeline import check_graph
from cnnlint.profile import SLOW, TENSOR, Limit, load_profile

NEW_TARGETS = ("qualcomm-htp", "apple-ane", "rk3588", "jetson-orin", "edgetpu", "ethos-u55",
               "ethos-u65", "x86-avx512", "x86-avx2")  # fmt: skip
FIXTURE_FILES = sorted(FIXTURES.glob("vendor_limits*.py"))
MODELS = ("mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "resnet50", "shufflenet_v2_x1_0",
          "convnext_tiny")  # fmt: skip


# --------------------------------------------------------------- every limit at its boundary
# One layer that a [limits.KEY] table applies to, built so that the limit ``name`` reads
# ``value`` off it (a kernel of that size, a stride, a resize by that factor, a tensor of that
# rank). The op names are ones every operator list that has the kind lists.
_OPS = {OpKind.CONV: "Conv2d", OpKind.DEPTHWISE_CONV: "Conv2d", OpKind.GROUP_CONV: "Conv2d",
        OpKind.CONV_TRANSPOSE: "ConvTranspose2d", OpKind.POOL: "MaxPool2d",
        OpKind.UPSAMPLE: "Upsample"}  # fmt: skip


def _conv(kind: str, **attrs) -> Layer:
    attrs = {"in_channels": 8, "out_channels": 8, "kernel_size": (1, 1), "stride": (1, 1),
             "padding": (0, 0), "dilation": (1, 1), "groups": 8 if kind == OpKind.DEPTHWISE_CONV else 1,
             **attrs}  # fmt: skip
    shape = (1, attrs["in_channels"], 32, 32)
    out = (1, attrs["out_channels"], 32, 32)
    return Layer("layer", kind, _OPS[kind], input_shapes=[shape], output_shapes=[out], attrs=attrs)


def _layer(key: str, name: str, value, precision: str) -> Layer:
    """A layer on which limit ``name`` reads exactly ``value``."""
    kind, _, op = key.partition(".")
    if kind in OpKind.CONVOLUTIONS:
        if name in ("max_kernel", "max_stride", "max_padding", "max_dilation"):
            attr = {"max_kernel": "kernel_size", "max_stride": "stride", "max_padding": "padding",
                    "max_dilation": "dilation"}[name]  # fmt: skip
            return _conv(kind, **{attr: (value, value)})
        if name == "strides":
            return _conv(kind, stride=(value, value))
        if name == "stride_factors":
            return _conv(kind, stride=(value, value))
        if name == "max_dilated_kernel_height":
            return _conv(kind, kernel_size=(value, 1))
        if name == "max_dilated_kernel_area":
            return _conv(kind, kernel_size=(1, value))
        if name == "max_depth_multiplier":
            return _conv(kind, in_channels=8, out_channels=8 * value, groups=8)
        if name == "max_groups":
            return _conv(kind, in_channels=value, out_channels=value, groups=value)
        if name == "max_channels":
            return _conv(kind, out_channels=value)
    if kind == OpKind.POOL:
        window = {"max_kernel": (value, value), "max_kernel_height": (value, 1),
                  "max_kernel_area": (1, value)}[name]  # fmt: skip
        op = {"avgpool": "AvgPool2d"}.get(op, "MaxPool2d")
        shape = (1, 8, 32, 32)
        return Layer("layer", kind, op, input_shapes=[shape], output_shapes=[shape],
                     attrs={"kernel_size": window, "adaptive": False})  # fmt: skip
    if kind == OpKind.UPSAMPLE:
        factors = {"equal_scales": value}.get(name, (value, value))
        inp = (1, 8, 4, 4)
        out = (1, 8, *(round(4 * f) for f in factors))
        return Layer("layer", kind, "Upsample", input_shapes=[inp], output_shapes=[out],
                     attrs={"mode": op or "nearest"})  # fmt: skip
    assert key == TENSOR, key
    shape = {"max_rank": (1,) + (2,) * (value - 1), "max_batch": (value, 2, 2, 2),
             "max_dim": (1, value), "max_dims_over_one": (1,) + (2,) * value,
             "io_min_last_axis_bytes": (1, 2, 2, value // BYTES_PER_ELEMENT[precision])}[name]  # fmt: skip
    return Layer("layer", OpKind.ACTIVATION, "ReLU", input_shapes=[shape], output_shapes=[shape])


def _at_and_past(name: str, limit: Limit):
    """(the value at the limit, a value one step past it) as ``_layer`` takes them."""
    value = limit.value
    if name in ("strides", "scale_factors"):
        return max(value), next(v for v in range(1, 100) if v not in value)
    if name == "stride_factors":
        from math import prod

        return prod(value), next(p for p in (2, 3, 5, 7, 11, 13) if p not in value)
    if name == "integer_scales":
        return 2, 1.5
    if name == "equal_scales":
        return (2, 2), (2, 4)
    if name == "io_min_last_axis_bytes":
        return value, value // 2  # half as many bytes as the axis should hold
    return value, value + 1


def _graph(layer: Layer) -> LayerGraph:
    shape = layer.input_shapes[0]
    graph = LayerGraph("limits", [shape])
    chain = [Layer("x", OpKind.INPUT, "input", output_shapes=[shape]), layer,
             Layer("output", OpKind.OUTPUT, "output", input_shapes=list(layer.output_shapes))]  # fmt: skip
    for item in chain:
        graph.add_layer(item)
    for producer, consumer in zip(chain, chain[1:]):
        graph.add_edge(producer.name, consumer.name)
    return graph


BOUNDARIES = [(target, key, name) for target in TARGETS
              for key, table in load_profile(target).limits.items() for name in table]  # fmt: skip


def test_the_new_profiles_state_limits() -> None:
    limited = {target for target, _, _ in BOUNDARIES}
    assert {"rk3588", "jetson-orin", "ethos-u55", "ethos-u65", "edgetpu", "apple-ane"} <= limited


@pytest.mark.parametrize(("target", "key", "name"), BOUNDARIES, ids=[f"{t}-{k}-{n}" for t, k, n in BOUNDARIES])
def test_every_limit_holds_at_its_value_and_is_reported_past_it(target: str, key: str, name: str) -> None:
    profile = load_profile(target)
    limit = profile.limits[key][name]
    at, past = _at_and_past(name, limit)

    def reported(value) -> list:
        graph = _graph(_layer(key, name, value, profile.default_precision))
        result = check_graph(graph, profile, select=["CL304"])
        assert result.status == "ok", result.error
        return [f for f in result.findings if f.metrics.get("limit") == name]

    assert reported(at) == [], f"{target} {key}.{name} = {limit.value}: reported at the limit itself"
    (finding,) = reported(past)
    assert finding.metrics["limit_key"] == key and finding.metrics["limit_value"] == limit.value
    assert limit.source in finding.message and finding.metrics["limit_source"] == limit.source
    assert finding.severity == ("info" if limit.effect == SLOW else "warning")
    assert finding.fix
    if limit.effect != SLOW:
        assert f"runs it on the {profile.fallback_device}" in finding.message
        assert finding.metrics["fallback_ms"] > 0


# ------------------------------------------------------------------------------- fixtures
CASES = [(path, target) for path in FIXTURE_FILES for target in TARGETS]


@pytest.mark.parametrize(("path", "target"), CASES, ids=[f"{p.stem}-{t}" for p, t in CASES])
def test_fixture_findings_match_expectations(path: Path, target: str) -> None:
    """Each fixture model's findings (code, line, severity) on each target are its `# expect:`
    lines: a model outside a limit is reported on that line, one within every limit nowhere."""
    from collections import Counter

    fixture = parse_fixture(path)
    found: Counter = Counter()
    for result in check_fixture(fixture, target):
        model = result.model.rsplit("::", 1)[-1]
        for finding in result.findings:
            assert model not in fixture.clean_models, f"{model} on {target}: {finding.message}"
            found[(finding.line, finding.code, finding.severity)] += 1
    expected = fixture.expected(target)
    assert found == expected, (
        f"{path.name} on {target}: missing {sorted((expected - found).items())}, "
        f"unexpected {sorted((found - expected).items())}"
    )


def test_each_new_limited_profile_breaks_in_the_bad_fixture() -> None:
    """The bad fixture reaches every profile that states limits (its expectations name them)."""
    bad = parse_fixture(FIXTURES / "vendor_limits_bad.py")
    named = set().union(*(e.targets for e in bad.expectations))
    limited = {target for target, _, _ in BOUNDARIES}
    assert limited <= named


def test_a_batch_over_the_limit_is_reported() -> None:
    """Vela places an operator on the Ethos-U only for a batch of 1."""
    graph = traced_graph(f"{FIXTURES / 'vendor_limits_good.py'}::WithinEveryLimit", (2, 3, 64, 64))
    for target in ("ethos-u55", "ethos-u65"):
        findings = check_graph(graph, load_profile(target), select=["CL304"]).findings
        assert {f.metrics.get("limit") for f in findings} == {"max_batch"}, target
    assert check_graph(graph, load_profile("rk3588"), select=["CL304"]).findings == []


# ------------------------------------------------------------------ real architectures
# What each new target reports on six torchvision models: the limits they break (table key and
# limit name), and the ops outside the target's operator list.
BROKEN = {
    ("rk3588", "mobilenet_v3_large"): {"pool.max_kernel"},  # squeeze-excitation pools over 56x56 and more
    ("rk3588", "efficientnet_b0"): {"pool.max_kernel"},
    ("ethos-u55", "shufflenet_v2_x1_0"): {"tensor.max_rank"},  # the channel shuffle's 5-D view
    ("ethos-u65", "shufflenet_v2_x1_0"): {"tensor.max_rank"},
    ("edgetpu", "shufflenet_v2_x1_0"): {"tensor.max_dims_over_one"},
    ("ethos-u55", "convnext_tiny"): {"conv.max_stride"},  # the 4x4 stride-4 stem
    ("ethos-u65", "convnext_tiny"): {"conv.max_stride"},
}
UNLISTED = {
    ("rk3588", "shufflenet_v2_x1_0"): {"mean"},
    ("jetson-orin", "mobilenet_v2"): {"adaptiveavgpool", "flatten"},
    ("jetson-orin", "mobilenet_v3_large"): {"adaptiveavgpool", "flatten", "hardsigmoid", "hardswish"},
    ("jetson-orin", "efficientnet_b0"): {"adaptiveavgpool", "flatten"},
    ("jetson-orin", "resnet50"): {"adaptiveavgpool", "flatten"},
    ("jetson-orin", "shufflenet_v2_x1_0"): {"mean"},
    ("jetson-orin", "convnext_tiny"): {"adaptiveavgpool", "flatten", "gelu", "layernorm"},
    ("edgetpu", "mobilenet_v3_large"): {"hardsigmoid", "hardswish"},
    ("edgetpu", "shufflenet_v2_x1_0"): {"channelshuffle"},
    ("edgetpu", "convnext_tiny"): {"gelu", "layernorm", "permute"},
    ("ethos-u55", "mobilenet_v3_large"): {"hardsigmoid"},
    ("ethos-u55", "shufflenet_v2_x1_0"): {"channelshuffle"},
    ("ethos-u55", "convnext_tiny"): {"gelu", "layernorm"},
    ("ethos-u65", "mobilenet_v3_large"): {"hardsigmoid"},
    ("ethos-u65", "shufflenet_v2_x1_0"): {"channelshuffle"},
    ("ethos-u65", "convnext_tiny"): {"gelu", "layernorm"},
}
REAL = [(target, model) for target in NEW_TARGETS for model in MODELS]


@pytest.mark.parametrize(("target", "model"), REAL, ids=[f"{t}-{m}" for t, m in REAL])
def test_torchvision_models_on_the_new_targets(target: str, model: str) -> None:
    result = check_on(f"torchvision.models:{model}", target)
    assert result.status == "ok", result.error
    cl304 = [f for f in result.findings if f.code == "CL304"]
    limits = {f"{f.metrics['limit_key']}.{f.metrics['limit']}" for f in cl304 if "limit" in f.metrics}
    unlisted = {f.metrics["op_list_name"] for f in cl304 if "op_list_name" in f.metrics}
    assert limits == BROKEN.get((target, model), set())
    assert unlisted == UNLISTED.get((target, model), set())
    assert not [f for f in cl304 if f.severity == "error"]  # no new profile lists unsupported kinds


def test_a_dla_fallback_says_gpu() -> None:
    """On jetson-orin a layer the DLA does not take falls back to the GPU, and the finding says so."""
    (finding,) = [f for f in check_on("torchvision.models:mobilenet_v3_large", "jetson-orin",
                                      select=["CL304"]).findings
                  if f.metrics.get("op_list_name") == "hardswish"]  # fmt: skip
    assert "fall back to the GPU" in finding.message and "est. GPU round trip" in finding.message
    assert "CPU" not in finding.message


# ------------------------------------------------------------------------ profile schema
def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_bare_limit_takes_its_tables_source_and_extends_merges(tmp_path: Path) -> None:
    child = load_profile(_write(tmp_path / "mine.toml", 'extends = "rk3588"\nname = "mine"\n'
                                '[limits.conv]\nmax_kernel = 15\n'))  # fmt: skip
    rk = load_profile("rk3588")
    assert child.limits["conv"]["max_kernel"].value == 15
    assert child.limits["conv"]["max_kernel"].source == rk.limits["conv"]["max_kernel"].source
    assert child.limits["conv"]["max_stride"] == rk.limits["conv"]["max_stride"]
    assert child.limits_for(OpKind.DEPTHWISE_CONV) == rk.limits["depthwise_conv"]
    jetson = load_profile("jetson-orin")
    assert jetson.limits_for(OpKind.UPSAMPLE, "bilinear")["max_scale"].value < \
        jetson.limits_for(OpKind.UPSAMPLE, "nearest")["max_scale"].value  # fmt: skip


@pytest.mark.parametrize(("table", "message"), [
    ('[limits.conv]\nmax_kernel = 3\n', "needs a source"),
    ('[limits.conv]\nsource = "doc"\nmax_kernal = 3\n', "max_kernal"),
    ('[limits.conv]\nsource = "doc"\nscale_factors = [2]\n', "applies to upsample"),
    ('[limits.convs]\nsource = "doc"\nmax_kernel = 3\n', "not an op kind"),
    ('[limits."upsample.bicubix"]\nsource = "doc"\nmax_scale = 2\n', "bicubix"),
    ('[limits.conv]\nsource = "doc"\nmax_kernel = "big"\n', "must be a int"),
    ('[limits.conv]\nsource = "doc"\nstrides = [0, 2]\n', "positive whole numbers"),
    ('[limits.conv]\nmax_kernel = { value = 3, source = "doc", effect = "fast" }\n', "effect"),
])  # fmt: skip
def test_a_bad_limit_is_a_profile_error_naming_file_and_key(tmp_path: Path, table: str, message: str) -> None:
    path = _write(tmp_path / "bad.toml", f'extends = "t4"\n{table}')
    with pytest.raises(ProfileError, match=message) as info:
        load_profile(path)
    assert path in str(info.value) and "limits" in str(info.value)


def test_every_limit_cnnlint_knows_is_one_cl304_words() -> None:
    """Each limit a profile may state (cnnlint.profile.LIMITS) has CL304's words for its messages;
    the boundary test above checks each one a built-in profile states."""
    from cnnlint.profile import LIMITS
    from cnnlint.rules import cl304_unsupported_op as cl304

    assert set(LIMITS) == set(cl304._LIMIT_WORDS)


def test_a_weight_operand_is_not_a_tensor_the_limits_judge() -> None:
    """``F.conv2d(x, w)`` reads its weight as a second tensor: a 64x3x7x7 weight is no batch of
    64 (Vela) nor a 4-D activation (Edge TPU); only the data it reads and writes are judged."""
    shape, weight, out = (1, 3, 32, 32), (64, 3, 7, 7), (1, 64, 32, 32)
    conv = Layer("layer", OpKind.CONV, "conv2d", input_shapes=[shape, weight], output_shapes=[out],
                 attrs={"in_channels": 3, "out_channels": 64, "kernel_size": (7, 7), "groups": 1})
    for target in ("ethos-u55", "edgetpu"):
        result = check_graph(_graph(conv), load_profile(target), select=["CL304"])
        assert result.status == "ok" and result.findings == [], target
