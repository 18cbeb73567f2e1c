"""Cost model: MAC/param parity with torchvision's published numbers, the formula table, fusion."""

from __future__ import annotations

import pytest
import torch
from conftest import traced_graph
from torch import nn

from cnnlint.cost import FORMULAS, compute_cost, gemm_dims, register_formula
from cnnlint.graph import OpKind
from cnnlint.profile import load_profile

# torchvision weights meta: _ops (GMACs of conv/linear at the weights' crop size) and num_params.
TORCHVISION_PUBLISHED = [
    ("resnet50", 224, 4.089, 25_557_032),
    ("mobilenet_v2", 224, 0.301, 3_504_872),
    ("efficientnet_b0", 224, 0.386, 5_288_548),
    ("shufflenet_v2_x1_0", 224, 0.145, 2_278_604),
    ("densenet121", 224, 2.834, 7_978_856),
    ("googlenet", 224, 1.498, 6_624_904),
    ("regnet_x_400mf", 224, 0.414, 5_495_976),
    ("vgg16", 224, 15.470, 138_357_544),
    ("vit_b_32", 224, 4.409, 88_224_232),  # nn.MultiheadAttention: projections + attention
    ("swin_t", 224, 4.491, 28_288_354),  # shifted_window_attention, a torch.fx.wrap'd function
]


@pytest.mark.parametrize("name, crop, gmacs, params", TORCHVISION_PUBLISHED)
def test_macs_and_params_match_torchvision(name, crop, gmacs, params):
    from torchvision.models import get_model_weights

    meta = get_model_weights(name).DEFAULT.meta
    assert (meta["_ops"], meta["num_params"]) == (gmacs, params)  # the table above is current
    graph = traced_graph(f"torchvision.models:{name}", (1, 3, crop, crop))
    cost = compute_cost(graph, load_profile("t4"))
    assert cost.macs / 1e9 == pytest.approx(gmacs, rel=0.01)
    assert cost.params == pytest.approx(params, rel=0.01)


def test_registering_a_formula_twice_is_rejected():
    with pytest.raises(ValueError, match="already registered"):
        register_formula(OpKind.CONV)(lambda layer: None)
    assert set(FORMULAS) == set(OpKind.ALL)


def test_conv_bn_relu_is_one_kernel_and_residual_add_fuses():
    graph = traced_graph("torchvision.models:resnet18")
    cost = compute_cost(graph, load_profile("t4"))
    stem = graph["conv1"]
    assert cost.of("bn1").kernel == stem.name and cost.of("relu").kernel == stem.name
    assert cost.of("bn1").time_s == 0 and cost.time_of("bn1") == cost.time_of(stem)
    # layer1.0: conv2 -> bn2 -> += identity -> relu all run in conv2's kernel.
    add = next(l for l in graph.layers(OpKind.ELEMENTWISE) if l.module_path == "layer1.0")
    assert cost.of(add).kernel == "layer1_0_conv2"
    # Fused intermediates are never written: fewer bytes than the unfused sum.
    unfused = sum(c.bytes for c in cost.layers.values())
    assert cost.memory_access_bytes < 0.7 * unfused


def test_roofline_depthwise_is_memory_bound_and_latency_throughput_differ():
    graph = traced_graph("torchvision.models:mobilenet_v2")
    t4 = load_profile("t4")
    cost = compute_cost(graph, t4)
    depthwise = next(graph.layers(OpKind.DEPTHWISE_CONV))
    kernel = cost.kernel_of(depthwise)
    assert kernel.arithmetic_intensity < t4.ridge_point("fp16") / 10
    assert cost.latency_s > 0 and cost.throughput_per_s > 1 / cost.latency_s  # batching helps
    assert 0 < cost.utilization < 1
    int8 = compute_cost(graph, t4, "int8")
    assert int8.memory_access_bytes == pytest.approx(cost.memory_access_bytes / 2, rel=0.01)


def test_pooling_windows_count_every_tap_and_global_pools_are_reductions():
    t4 = load_profile("t4")
    graph = traced_graph("torchvision.models:resnet18")
    cost = compute_cost(graph, t4)
    maxpool = graph["maxpool"]  # nn.MaxPool2d(kernel_size=3, stride=2, padding=1): a 3 x 3 window
    assert cost.of(maxpool).flops == 9 * maxpool.output_numel and cost.of(maxpool).op_class == "pool"
    head = graph["avgpool"]  # nn.AdaptiveAvgPool2d(1): one pass over the map
    assert cost.of(head).flops == head.input_numel and cost.of(head).op_class == "reduce"
    # Functional pools record their window as the modules do: F.avg_pool2d(x, kernel_size=3, ...).
    inception = traced_graph("torchvision.models:inception_v3", (1, 3, 299, 299))
    branch = next(l for l in inception.layers(OpKind.POOL) if l.op == "avg_pool2d")
    assert branch.attrs["kernel_size"] == 3
    assert compute_cost(inception, t4).of(branch).flops == 9 * branch.output_numel


def test_written_out_silu_is_costed_as_the_module(tmp_path):
    """``x * torch.sigmoid(x)`` collapses into one SiLU layer (the graph stage), costed in the
    transcendental class like ``nn.SiLU``."""
    from torch import nn

    from cnnlint.load import LoadedModel
    from cnnlint.trace import trace
    from cnnlint.graph.build import build_layer_graph

    class Written(nn.Module):
        def forward(self, x):
            return x * x.sigmoid()

    loaded = LoadedModel(name="w", module=Written(), input_shapes=[(1, 8, 4, 4)], sites={}, built_on="cpu")
    graph = build_layer_graph(trace(loaded))
    classes = [c.op_class for c in compute_cost(graph, load_profile("arm-cpu")).layers.values() if c.flops]
    assert classes == ["transcendental"]


def test_small_gemm_slows_thin_convs_only_where_a_profile_says(tmp_path):
    """[small_gemm]: a conv's rate x k/(k+half_k) x n/(n+half_n), k and n per group; depthwise
    convs and the built-in profiles (no [small_gemm]) are unchanged."""

    graph = traced_graph("torchvision.models:regnet_x_400mf")
    (tmp_path / "thin.toml").write_text(
        'extends = "arm-cpu"\nname = "thin"\n[small_gemm]\nhalf_k = 64.0\nhalf_n = 8.0\n'
    )
    base, thin = load_profile("arm-cpu"), load_profile(str(tmp_path / "thin.toml"))
    assert base.small_gemm.factor(24, 24) == 1.0
    plain, slowed = compute_cost(graph, base), compute_cost(graph, thin)
    group = next(graph.layers(OpKind.GROUP_CONV))
    k, n, m = gemm_dims(group)
    groups = group.attrs["groups"]
    assert (k, n) == (group.attrs["in_channels"] / groups * 9, group.attrs["out_channels"] / groups)
    assert m == group.output_numel / group.attrs["out_channels"]  # its output pixels
    kernel = plain.kernel_of(group)
    assert slowed.rate_of(slowed.kernel_of(group)) == pytest.approx(
        plain.rate_of(kernel) * k / (k + 64) * n / (n + 8))
    assert slowed.time_of(group) > plain.time_of(group)
    # A proposal is priced the same way as an existing layer of that shape (its fused norm aside).
    shape = (group.attrs["in_channels"], group.attrs["out_channels"], (3, 3),
             group.input_numel // group.attrs["in_channels"], group.output_numel // group.attrs["out_channels"], groups)
    assert slowed.estimate_conv(*shape) == pytest.approx(slowed.time_of(group), rel=0.02)  # + the fused norm
    mobile = traced_graph("torchvision.models:mobilenet_v2")
    depthwise = next(mobile.layers(OpKind.DEPTHWISE_CONV))
    assert gemm_dims(depthwise) == (0, 0, 0)
    assert compute_cost(mobile, thin).time_of(depthwise) == compute_cost(mobile, base).time_of(depthwise)


class _ConstantAffines:
    """A conv with torchvision's FrozenBatchNorm2d (``x * scale + bias``, from buffers), a layer
    scale (``x * gamma``, one value per channel) and a whole-map constant (``x + pos``)."""

    @staticmethod
    def build():
        import torch
        from torch import nn
        from torchvision.ops.misc import FrozenBatchNorm2d

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 16, 3)
                self.bn = FrozenBatchNorm2d(16)
                self.scaled = nn.Conv2d(16, 16, 3)
                self.gamma = nn.Parameter(torch.ones(16, 1, 1))
                self.last = nn.Conv2d(16, 16, 3)
                self.pos = nn.Parameter(torch.zeros(1, 16, 26, 26))

            def forward(self, x):
                y = torch.relu(self.bn(self.conv(x)))
                return torch.relu(self.last(self.scaled(y) * self.gamma) + self.pos)

        with torch.device("meta"):
            return Net().eval()


@pytest.mark.parametrize("target", ["t4", "hi3519", "arm-cpu"])
def test_a_constant_per_channel_affine_folds_into_the_conv_before_it(target: str) -> None:
    from cnnlint.load import LoadedModel
    from cnnlint.pipeline import graph_of

    graph = graph_of(LoadedModel("affines", _ConstantAffines.build(), [(1, 3, 32, 32)], {}, "meta"))
    cost = compute_cost(graph, load_profile(target))
    kernel = {layer.name: cost.of(layer).kernel for layer in graph}
    # FrozenBatchNorm2d's multiply and add, and the ReLU after them, run in the conv's kernel.
    assert kernel["mul"] == kernel["add"] == kernel["relu"] == "conv"
    assert kernel["mul_1"] == "scaled"  # the layer scale folds like a norm
    # A whole-map constant is no per-channel affine: it fuses only as the target fuses a
    # residual add (t4 does, hi3519 and arm-cpu do not).
    assert (kernel["add_1"] == "last") == (target == "t4")


def test_a_norm_fused_into_a_conv_is_folded_into_its_weights():
    """On an engine a BatchNorm after a conv is folded into the conv's weights and bias (as both
    torch exporters do): the kernel does the conv's arithmetic and none of the norm's, and reads
    no norm parameters; the ReLU after it still runs in the epilogue. Eager runs the norm alone."""
    graph = traced_graph("torchvision.models:mobilenet_v2")
    engine = compute_cost(graph, load_profile("t4"))
    eager = compute_cost(graph, load_profile("h200"))
    conv = graph["features_1_conv_0_0"]  # the first depthwise conv, then BatchNorm and ReLU6
    kernel = engine.kernels[conv.name]
    norm = next(m for m in kernel.members if graph[m].kind == OpKind.NORM)
    activation = next(m for m in kernel.members if graph[m].kind == OpKind.ACTIVATION)
    assert kernel.flops == engine.layers[conv.name].flops + engine.layers[activation].flops
    assert kernel.weight_bytes == engine.layers[conv.name].weight_bytes
    assert norm in eager.kernels and eager.kernels[norm].flops == eager.layers[norm].flops > 0


def test_few_rows_slow_a_matrix_product_where_the_profile_says_so(tmp_path):
    """``[small_gemm] half_m``: a conv's rows are its output pixels (resnet50's last stage: 7 x 7),
    a linear's its tokens; the rate falls by m / (m + half_m), at batch 1 and at the throughput
    batch by the batch's rows, and a proposal of the same shape is priced the same way."""
    graph = traced_graph("torchvision.models:resnet50")
    (tmp_path / "rows.toml").write_text('extends = "arm-cpu"\nname = "rows"\n[small_gemm]\nhalf_m = 16.0\n')
    base, rows = load_profile("arm-cpu"), load_profile(str(tmp_path / "rows.toml"))
    plain, slowed = compute_cost(graph, base), compute_cost(graph, rows)
    late = [layer for layer in graph.layers(OpKind.CONV) if layer.output_shape[2:] == (7, 7)]
    early = [layer for layer in graph.layers(OpKind.CONV) if layer.output_shape[2:] == (56, 56)]
    assert late and early
    for layer in late + early:
        m = gemm_dims(layer)[2]
        assert m == layer.output_shape[2] * layer.output_shape[3]
        assert slowed.rate_of(slowed.kernel_of(layer)) == pytest.approx(plain.rate_of(plain.kernel_of(layer)) * m / (m + 16))
    assert slowed.time_of(late[0]) > plain.time_of(late[0])
    conv = late[0]
    shape = (conv.attrs["in_channels"], conv.attrs["out_channels"], conv.attrs["kernel_size"],
             conv.input_numel // conv.attrs["in_channels"], 49)
    assert slowed.estimate_conv(*shape) == pytest.approx(slowed.time_of(conv), rel=0.02)


class _Layouts(nn.Module):
    """Swin's window partition (view -> permute -> reshape), attention's transpose(1, 2).reshape,
    a flatten of a contiguous map, a contiguous() of a contiguous tensor, and ShuffleNet's
    channel shuffle (view -> transpose -> contiguous -> view)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)

    def forward(self, x):
        x = self.conv(x)  # 1 x 16 x 28 x 28
        windows = x.view(1, 16, 4, 7, 4, 7).permute(0, 2, 4, 3, 5, 1).reshape(16, 49, 16)  # copies
        heads = windows.view(16, 49, 2, 8).transpose(1, 2).reshape(16, 2, 392)  # copies
        flat = x.flatten(2)  # a view: x is contiguous
        same = flat.contiguous()  # a view: already contiguous
        shuffled = x.view(1, 2, 8, 28, 28).transpose(1, 2).contiguous().view(1, 16, 28, 28)  # the shuffle
        return windows.sum() + heads.sum() + same.sum() + shuffled.sum()


def _eager_copies(module: nn.Module, x: torch.Tensor) -> dict[str, bool]:
    """For each reshape-family call of ``_Layouts``, whether eager torch copied (its result does
    not share its input's storage): the truth the traced strides must agree with."""
    y = module.conv(x)
    shares = lambda a, b: a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()  # noqa: E731
    permuted = y.view(1, 16, 4, 7, 4, 7).permute(0, 2, 4, 3, 5, 1)
    windows = permuted.reshape(16, 49, 16)
    moved = windows.view(16, 49, 2, 8).transpose(1, 2)
    flat = y.flatten(2)
    return {"windows": not shares(windows, permuted), "heads": not shares(moved.reshape(16, 2, 392), moved),
            "flat": not shares(flat, y), "same": not shares(flat.contiguous(), flat)}  # fmt: skip


def test_a_layout_call_that_copies_is_a_kernel_and_a_view_is_free():
    """Eager torch copies at a reshape of a permuted tensor: that is a kernel reading and writing
    the tensor (Swin's window partition, attention's head merge); views stay free, and a
    channel shuffle is priced once, at its transpose."""
    from cnnlint.load import LoadedModel
    from cnnlint.pipeline import graph_of

    torch.manual_seed(0)
    module = _Layouts().eval()
    with torch.no_grad():
        truth = _eager_copies(module, torch.randn(1, 3, 28, 28))
    assert truth == {"windows": True, "heads": True, "flat": False, "same": False}
    graph = graph_of(LoadedModel("layouts", _Layouts(), [(1, 3, 28, 28)], {}, "cpu"))
    copies = [layer for layer in graph if layer.attrs.get("copies")]
    assert [layer.output_shape for layer in copies] == [(16, 49, 16), (16, 2, 392)]
    assert len(list(graph.layers(OpKind.CHANNEL_SHUFFLE))) == 1  # its contiguous() is not a second copy
    profile = load_profile("t4")
    cost = compute_cost(graph, profile, "fp32")
    for layer in copies:
        kernel = cost.kernels[layer.name]
        assert kernel.flops == 0 and kernel.bytes == 2 * 16 * 28 * 28 * 4  # read and write, fp32
        assert kernel.time_s > 0
    free = [layer for layer in graph if layer.kind == OpKind.RESHAPE and not layer.attrs.get("copies")]
    assert free and all(cost.time_of(layer) == 0 for layer in free)


def window_attention(x, qkv_weight, proj_weight, heads: int):
    """A model library's attention kept as one call by torch.fx.wrap, as torchvision's Swin:
    two weight products, two activation products, a softmax, and the copies its reshapes make."""
    b, n, c = x.shape
    qkv = torch.nn.functional.linear(x, qkv_weight).reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    attn = (q * (c // heads) ** -0.5).matmul(k.transpose(-2, -1)).softmax(-1)
    out = attn.matmul(v).transpose(1, 2).reshape(b, n, c)
    return torch.nn.functional.linear(out, proj_weight)


torch.fx.wrap("window_attention")


class _WrappedAttention(nn.Module):
    def __init__(self, channels: int = 64, heads: int = 4):
        super().__init__()
        self.qkv = nn.Parameter(torch.randn(3 * channels, channels))
        self.proj = nn.Parameter(torch.randn(channels, channels))
        self.heads = heads

    def forward(self, x):
        return window_attention(x, self.qkv, self.proj, self.heads)


def test_a_call_kept_whole_is_priced_as_the_kernels_eager_torch_runs_for_it():
    """On an eager target (rtx4090: nothing fused) the wrapped attention is its aten kernels,
    each in its own class; an engine that fuses (t4) prices the call as one kernel. MACs are
    torch's FLOP counter's either way."""
    from torch.utils.flop_counter import FlopCounterMode

    from cnnlint.cost import kernel_time
    from cnnlint.load import LoadedModel
    from cnnlint.pipeline import graph_of

    shape = (16, 49, 64)
    graph = graph_of(LoadedModel("attention", _WrappedAttention(), [shape], {}, "meta"))
    (layer,) = [layer for layer in graph if layer.op == "window_attention"]
    inner = layer.attrs["inner_kernels"]
    classes = [k[0] for k in inner]
    assert classes.count("linear") == 2 and classes.count("matmul") == 2 and "transcendental" in classes  # softmax
    assert "other" in classes  # the copies of reshape after permute and transpose
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        _WrappedAttention()(torch.empty(shape))
    # qkv: rows 16 x 49, k 64, n 192; its weight read as parameters
    gemms = [tuple(k[5:]) for k in inner]
    assert (64, 192, 16 * 49) in gemms
    assert (16, 49, 49) in gemms  # q @ k^T: per window and head, 49 rows of 16 against 49 keys
    assert sum(k[3] for k in inner) == 3 * 64 * 64 + 64 * 64
    eager, fused = load_profile("rtx4090"), load_profile("t4")
    for profile in (eager, fused):
        cost = compute_cost(graph, profile, "fp16")
        assert cost.macs == counter.get_total_flops() // 2
    cost = compute_cost(graph, eager, "fp16")
    kernel = cost.kernels[layer.name]
    expected = sum(kernel_time(eager, "fp16", f, 2 * (r + w + o), c, (k, n, m)) for c, f, r, w, o, k, n, m in inner)
    assert kernel.time_s == pytest.approx(expected)
    assert kernel.bytes > 2 * (layer.input_numel + layer.output_numel)  # what the parts move in between
    fused_cost = compute_cost(graph, fused, "fp16")
    one = fused_cost.kernels[layer.name]
    assert one.time_s == pytest.approx(kernel_time(fused, "fp16", one.flops, one.bytes, one.op_class))


def scale_in_place(x, gain: float):
    """A library function that changes its input and returns it: work, though it hands back its argument."""
    return x.mul_(gain)


def drop_when_training(x, training: bool):
    """As torchvision's stochastic_depth and timm's drop_path: at inference, ``return x``."""
    if not training:
        return x
    return x * (torch.rand(x.shape[0], 1, 1, 1) > 0.1)


torch.fx.wrap("scale_in_place")
torch.fx.wrap("drop_when_training")


class _DropBlock(nn.Module):
    """conv -> bn -> (library call) -> += shortcut, the call being torchvision's
    stochastic_depth, a wrapped function of the model's own, or one that works in place."""

    def __init__(self, call: str):
        super().__init__()
        from torchvision.ops import StochasticDepth

        self.conv, self.bn, self.call = nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), call
        self.stochastic_depth = StochasticDepth(0.2, "row")  # as torchvision's EfficientNet and ConvNeXt

    def forward(self, x):
        out = self.bn(self.conv(x))
        if self.call == "stochastic_depth":
            out = self.stochastic_depth(out)
        elif self.call == "own":
            out = drop_when_training(out, self.training)
        else:
            out = scale_in_place(out, 0.5)
        return out + x


@pytest.mark.parametrize("call", ["stochastic_depth", "own"])
def test_a_library_call_that_hands_back_its_input_launches_no_kernel(call):
    """Run on meta, a call counted whole that runs no aten op and returns its argument is a
    pass-through: no kernel on an eager target, and the residual add still fuses into the conv
    on an engine that fuses (before, each was an "other" kernel of its own that read and wrote
    the whole map, and broke the conv + add fusion of every EfficientNet and ConvNeXt block)."""
    from cnnlint.load import LoadedModel
    from cnnlint.pipeline import graph_of

    graph = graph_of(LoadedModel("block", _DropBlock(call).eval(), [(1, 32, 28, 28)], {}, "meta"))
    (layer,) = [layer for layer in graph if layer.op in ("stochastic_depth", "drop_when_training")]
    assert layer.kind == OpKind.IDENTITY
    (add,) = graph.layers(OpKind.ELEMENTWISE)
    fused, eager = compute_cost(graph, load_profile("t4")), compute_cost(graph, load_profile("rtx4090"))
    assert fused.of(add).kernel == "conv" and len(fused.kernels) == 1
    assert eager.of(layer).time_s == 0 and layer.name not in eager.kernels
    assert len(eager.kernels) == 3  # conv, batch norm, add


def test_a_library_call_that_works_in_place_is_still_a_kernel():
    from cnnlint.load import LoadedModel
    from cnnlint.pipeline import graph_of

    graph = graph_of(LoadedModel("block", _DropBlock("in place").eval(), [(1, 32, 28, 28)], {}, "meta"))
    (layer,) = [layer for layer in graph if layer.op == "scale_in_place"]
    assert layer.kind != OpKind.IDENTITY
    eager = compute_cost(graph, load_profile("rtx4090"))
    assert eager.of(layer).time_s > 0 and layer.name in eager.kernels
