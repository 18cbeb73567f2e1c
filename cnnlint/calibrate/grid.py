"""The microbenchmarks, and what cnnlint counts for each.

A grid of single-op modules (dense 3x3 / 1x1 / 5x5 / 7x7 convs, depthwise and group convs,
element-wise ops, exp-based activations (SiLU, sigmoid, GELU), batch and layer norms, concat,
windowed and global pooling, linear and matmul) over channels, resolutions and strides, plus small
ones (late-stage maps, squeeze-excite 1x1s) whose time is each op class's fixed cost per call, and
small models whose ops, timed inside the forward against at once again, say what running ops
inside a model adds.

Each is traced through cnnlint's own trace, graph and cost stages (:func:`counted_work`), so its
FLOPs, bytes and op class are exactly what the cost model will count.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from math import prod

import torch
from torch import nn

from cnnlint.core import Shape
from cnnlint.profile import Profile


class Add(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


class Mul(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * y


class Cat(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, y], 1)


class MatMul(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x @ y


class Unary(nn.Module):
    """A benchmark op as a submodule call, as in a model: the layer then owns the weights."""

    def __init__(self, op: nn.Module) -> None:
        super().__init__()
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Binary(Unary):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.op(x, y)


@dataclass(frozen=True)
class Bench:
    """One microbenchmark: a single-op module and its input shapes."""

    label: str
    op_class: str
    make: Callable[[], nn.Module]
    inputs: tuple[Shape, ...]

    def wrapped(self) -> nn.Module:
        """The module as a submodule call (``Unary`` or ``Binary``), as ``counted_work`` traces
        it: timed so, its fx nodes carry the names of cnnlint's kernels."""
        inner = self.make()
        return Unary(inner) if len(self.inputs) == 1 else Binary(inner)


def _conv(label: str, op_class: str, c_in: int, c_out: int, k: int, size: int, stride: int = 1,
          groups: int = 1, batch: int = 1, bias: bool = False) -> Bench:  # fmt: skip
    def make() -> nn.Module:
        return nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=bias)

    return Bench(f"{label} {c_in}->{c_out} {size}px s{stride} n{batch}", op_class, make,
                 ((batch, c_in, size, size),))  # fmt: skip


def benchmark_grid(grid: str, device: str) -> list[Bench]:
    """The microbenchmark grid. ``grid``: full, quick, or tiny (tests)."""
    # (channels, resolution) pairs follow the stages of an ImageNet CNN at 224 px.
    stages = {
        "full": [(32, 112), (64, 56), (128, 28), (256, 14), (512, 7)],
        "quick": [(64, 56), (256, 14)],
        "tiny": [(32, 28)],
    }[grid]
    batches = [1, 32] if device == "cuda" and grid != "tiny" else [1]
    benches: list[Bench] = []
    for n in batches:
        for c, s in stages:
            benches += [
                _conv("conv3x3", "conv3x3", c, c, 3, s, batch=n),
                _conv("conv1x1", "conv1x1", c, 2 * c, 1, s, batch=n),
                _conv("depthwise3x3", "depthwise_conv", c, c, 3, s, groups=c, batch=n),
                _elementwise("add", Add, c, s, n),
            ]
            if grid == "tiny":
                continue
            benches += [
                _conv("conv3x3", "conv3x3", c, 2 * c, 3, s, stride=2, batch=n),
                _conv("conv1x1", "conv1x1", 2 * c, c, 1, s, batch=n),
                _conv("conv5x5", "conv_kxk", c, c, 5, s, batch=n),
                _conv("conv7x7", "conv_kxk", max(c // 2, 3), c, 7, s, stride=2, batch=n),
                _conv("depthwise5x5", "depthwise_conv", c, c, 5, s, groups=c, batch=n),
                _conv("depthwise7x7", "depthwise_conv", c, c, 7, s, groups=c, batch=n),  # ConvNeXt's
                _conv("depthwise3x3", "depthwise_conv", c, c, 3, s, stride=2, groups=c, batch=n),
                _conv("group3x3 g8", "group_conv", c, c, 3, s, groups=8, batch=n),
                _conv("group1x1 g4", "group_conv", c, c, 1, s, groups=4, batch=n),
                _elementwise("mul", Mul, c, s, n),
                _elementwise("batchnorm", lambda c=c: nn.BatchNorm2d(c), c, s, n, op_class="norm"),
                _layernorm(c, s, n),
                _elementwise("relu", nn.ReLU, c, s, n),
                _elementwise("hardswish", nn.Hardswish, c, s, n),
                _elementwise("silu", nn.SiLU, c, s, n, op_class="transcendental"),
                _elementwise("sigmoid", nn.Sigmoid, c, s, n, op_class="transcendental"),
                _elementwise("concat", Cat, c, s, n, op_class="other"),
                _pool("maxpool3x3 s2", lambda: nn.MaxPool2d(3, 2, 1), c, s, n),
                _pool("maxpool2x2 s2", lambda: nn.MaxPool2d(2, 2), c, s, n),
                _pool("global avgpool", lambda: nn.AdaptiveAvgPool2d(1), c, s, n, op_class="reduce"),
            ]
            if grid == "full":
                benches += [
                    _conv("conv3x3", "conv3x3", c // 2, c // 2, 3, s * 2, batch=n),
                    # ResNeXt's 32 groups; at 32 channels that would be a depthwise conv
                    _conv(f"group3x3 g{min(32, c // 2)}", "group_conv", c, c, 3, s, groups=min(32, c // 2), batch=n),
                    _elementwise("add", Add, c, s * 2, n),
                    _elementwise("gelu", nn.GELU, c, s, n, op_class="transcendental"),
                    _elementwise("silu", nn.SiLU, 3 * c, s, n, op_class="transcendental"),
                    _elementwise("batchnorm", lambda c=c: nn.BatchNorm2d(3 * c), 3 * c, s, n, op_class="norm"),
                    _conv("conv1x1 expand", "conv1x1", c // 2, 3 * c, 1, s, batch=n),
                    _conv("conv1x1 project", "conv1x1", 3 * c, c // 2, 1, s, batch=n),
                    # a ResNet bottleneck's 1x1s (4x expansion) and its strided shortcut, at the
                    # widths real layers have (up to 2048 channels on the 7 x 7 map)
                    _conv("conv1x1 bottleneck expand", "conv1x1", c, 4 * c, 1, s, batch=n),
                    _conv("conv1x1 bottleneck reduce", "conv1x1", 4 * c, c, 1, s, batch=n),
                    _conv("conv1x1 shortcut", "conv1x1", 2 * c, 4 * c, 1, 2 * s, stride=2, batch=n),
                    # RegNet's group convs: fixed group widths (16 and 64 channels) on wide maps
                    _conv("group3x3 w16", "group_conv", 2 * c, 2 * c, 3, s, groups=2 * c // 16, batch=n),
                    _conv("group3x3 w64", "group_conv", 4 * c, 4 * c, 3, s, groups=4 * c // 64, batch=n),
                    _conv("group3x3 g4", "group_conv", 4 * c, 4 * c, 3, s // 2, groups=4, batch=n),
                    # ... and the strided one that opens each RegNet stage, on the previous map
                    _conv("group3x3 w16", "group_conv", 2 * c, 2 * c, 3, 2 * s, stride=2, groups=2 * c // 16, batch=n),
                    # an inverted-residual block's expanded map (MobileNetV2: 96 ch at 112 px)
                    _conv("depthwise3x3 expanded", "depthwise_conv", 3 * c, 3 * c, 3, s, groups=3 * c, batch=n),
                    _conv("depthwise3x3 expanded", "depthwise_conv", 3 * c, 3 * c, 3, s, stride=2, groups=3 * c,
                          batch=n),  # fmt: skip
                    # GoogLeNet's and Inception's branch pools: a 3x3 window at stride 1
                    _pool("maxpool3x3 s1", lambda: nn.MaxPool2d(3, 1, 1), c, s, n),
                    _pool("avgpool3x3 s1", lambda: nn.AvgPool2d(3, 1, 1), c, s, n, op_class="avg_pool"),
                    _pool("avgpool2x2 s2", lambda: nn.AvgPool2d(2, 2), c, s, n, op_class="avg_pool"),
                ]
        if grid != "tiny":  # _unaligned in quick too: CL201's advice on a calibrated profile rests on it
            benches += _unaligned(n) + _small(n)
        for features in ([512, 1000], [1024, 1000], [2048, 1000]) if grid != "tiny" else ([256, 100],):
            benches.append(_linear(*features, n))  # a classifier head: weight-bound at batch 1
        if grid != "tiny":  # a transformer's token projections and MLP: real matrix work
            benches += [_linear(768, 768, n, tokens=50), _linear(768, 3072, n, tokens=197)]
            if grid == "full":
                benches.append(_linear(3072, 768, n, tokens=197))
                # a hierarchical transformer's or ConvNeXt's token MLP and projections on its
                # first stages: few input features, thousands of tokens (Swin-T: 96 -> 288 qkv,
                # 96 -> 384 -> 96 MLP on 56 x 56 tokens, 192 -> 768 on 28 x 28)
                benches += [_linear(96, 384, n, tokens=3136), _linear(384, 96, n, tokens=3136),
                            _linear(96, 288, n, tokens=3136), _linear(192, 768, n, tokens=784)]  # fmt: skip
        benches += _matmuls(grid, n)
    if device == "cuda" and grid != "tiny":  # tensor-core sized work, where the peak shows
        benches += [_conv("conv3x3", "conv3x3", 256, 256, 3, 56, batch=64),
                    _conv("conv1x1", "conv1x1", 512, 2048, 1, 28, batch=64),
                    _matmul(4096, 4096, 4096)]  # fmt: skip
    return benches


def _elementwise(label: str, module: Callable[[], nn.Module], c: int, size: int, n: int,
                 op_class: str = "elementwise") -> Bench:  # fmt: skip
    arity = 2 if module in (Add, Mul, Cat) else 1  # the others: one input (relu, batch norm)
    shape = (n, c, size, size)
    return Bench(f"{label} {c}ch {size}px n{n}", op_class, module, (shape,) * arity)


def _layernorm(c: int, size: int, n: int) -> Bench:
    """LayerNorm over the channels of a channels-last map (ConvNeXt's blocks; a ViT's tokens)."""
    return Bench(f"layernorm {c}ch {size}px n{n}", "norm", lambda: nn.LayerNorm(c), ((n, size, size, c),))


def _pool(label: str, make: Callable[[], nn.Module], c: int, size: int, n: int, op_class: str = "pool") -> Bench:
    return Bench(f"{label} {c}ch {size}px n{n}", op_class, make, ((n, c, size, size),))


def _unaligned(n: int) -> list[Bench]:
    """Layers whose channels per group are off a 16-channel granule (AVX-512's vector, a tensor
    core's int8 tile), at the shapes real ones have: a MobileNetV3's or MnasNet's expanded 72 and
    120 channels (1x1 and depthwise), RegNet's group widths of 24, 56 and 120, a dense 3x3 at 120
    channels and one reading 24. Against the aligned grid they measure each class's
    ``[unaligned_efficiency]`` (one thread of a Xeon runs a depthwise conv of 120 channels at 0.46
    of the rate of one of 128, and a 1x1 conv of 120 at the same rate)."""
    return [
        _conv("conv1x1 unaligned", "conv1x1", 24, 72, 1, 56, batch=n),
        _conv("conv1x1 unaligned", "conv1x1", 72, 24, 1, 56, batch=n),
        _conv("conv1x1 unaligned", "conv1x1", 40, 120, 1, 28, batch=n),
        _conv("conv1x1 unaligned", "conv1x1", 120, 40, 1, 28, batch=n),
        _conv("conv3x3 unaligned", "conv3x3", 120, 120, 3, 28, batch=n),
        _conv("conv3x3 unaligned", "conv3x3", 24, 64, 3, 56, batch=n),
        _conv("depthwise3x3 unaligned", "depthwise_conv", 72, 72, 3, 56, groups=72, batch=n),
        _conv("depthwise3x3 unaligned", "depthwise_conv", 120, 120, 3, 28, groups=120, batch=n),
        _conv("depthwise5x5 unaligned", "depthwise_conv", 200, 200, 5, 14, groups=200, batch=n),
        _conv("group3x3 w24", "group_conv", 120, 120, 3, 28, groups=5, batch=n),
        _conv("group3x3 w24", "group_conv", 336, 336, 3, 14, groups=14, batch=n),
        _conv("group3x3 w56", "group_conv", 448, 448, 3, 28, groups=8, batch=n),
        _conv("group3x3 w120", "group_conv", 240, 240, 3, 28, groups=2, batch=n),
    ]


def _small(n: int) -> list[Bench]:
    """Ops too small for their work to show (late-stage maps, squeeze-excite 1x1 convs on pooled
    vectors): their time is the fixed cost per call of each op class, which the large grid
    above cannot tell from the rate."""
    return [
        _conv("conv3x3", "conv3x3", 16, 16, 3, 7, batch=n),
        _conv("conv1x1", "conv1x1", 16, 16, 1, 7, batch=n),
        _conv("conv1x1 squeeze", "conv1x1", 96, 24, 1, 1, batch=n, bias=True),  # SE convs have a bias
        _conv("conv1x1 excite", "conv1x1", 24, 96, 1, 1, batch=n, bias=True),
        _conv("conv5x5", "conv_kxk", 16, 16, 5, 7, batch=n),
        _conv("depthwise3x3", "depthwise_conv", 16, 16, 3, 7, groups=16, batch=n),
        _conv("group3x3 g4", "group_conv", 16, 16, 3, 7, groups=4, batch=n),
        _elementwise("add", Add, 16, 7, n),
        _elementwise("relu", nn.ReLU, 16, 7, n),
        _elementwise("batchnorm", lambda: nn.BatchNorm2d(16), 16, 7, n, op_class="norm"),
        _layernorm(16, 7, n),
        _elementwise("silu", nn.SiLU, 16, 7, n, op_class="transcendental"),
        _elementwise("concat", Cat, 16, 7, n, op_class="other"),
        _pool("maxpool3x3 s2", lambda: nn.MaxPool2d(3, 2, 1), 16, 8, n),
        _pool("global avgpool", lambda: nn.AdaptiveAvgPool2d(1), 16, 7, n, op_class="reduce"),
        _linear(64, 64, n),
        _matmul(16, 16, 16),
    ]


def _linear(in_features: int, out_features: int, n: int, tokens: int = 0) -> Bench:
    shape = (n, tokens, in_features) if tokens else (n, in_features)
    return Bench(f"linear {in_features}->{out_features} n{n}" + (f"x{tokens}" if tokens else ""), "linear",
                 lambda: nn.Linear(in_features, out_features), (shape,))  # fmt: skip


def _matmul(m: int, k: int, n: int) -> Bench:
    return Bench(f"matmul {m}x{k}x{n}", "matmul", MatMul, ((m, k), (k, n)))


def _matmuls(grid: str, n: int) -> list[Bench]:
    if grid == "tiny":
        return [_matmul(64, 64, 64)]
    sizes = [(196, 64, 196), (197, 768, 768), (512, 512, 512)] if n == 1 else [(2048, 1024, 1024)]
    return [_matmul(*s) for s in sizes[: 2 if grid == "quick" else None]]


def memory_sweep(grid: str) -> list[Bench]:
    """Element-wise adds over working sets from inside the caches to beyond the last one: where
    their bandwidth falls is the cache size, measured, not taken from what the OS reports (a
    virtual machine can report a host's cache, or one it does not give this core).

    Working sets go from 256 KiB (inside a core's own L2: 512 KiB on an AMD EPYC, 2 MiB on a
    recent Xeon, whose cache must show several points to fit its bandwidth) to 128 MiB, the
    largest a layer of a classifier has at batch 1 (efficientnet_b7's expanded maps at 600 px);
    each add reads two tensors and writes one, as a model's does. Larger sets are not what layers
    see, and past glibc's allocation threshold a fresh output's page faults dominate them.
    """
    top = 128 * 2**20
    if grid == "tiny":
        sizes = [2**20, 8 * 2**20, 96 * 2**20]
    else:
        sizes, size = [], 2**18
        while size <= top:
            sizes += [size, int(size * 2**0.5)] if grid == "full" and size < top else [size]
            size *= 2
    benches = []
    for size in sizes:
        length = max(1, size // (3 * 4 * 64))  # 3 fp32 tensors of 64 x length
        benches.append(Bench(f"memory sweep: add 3 x {64 * length} elements", "elementwise", Add,
                             ((1, 64, 1, length), (1, 64, 1, length))))  # fmt: skip
    return benches


class _KeptAlive(nn.Module):
    """``op(x)``, each result kept alive until ``kept_bytes`` of later ones are (a model's
    activations, which its skip connections and the allocator's free lists keep apart): the
    allocator cannot hand the next call the buffer it just freed, still in cache, as it does to
    a loop over one op; each output goes to a buffer no recent call touched."""

    def __init__(self, op: nn.Module, kept_bytes: int) -> None:
        super().__init__()
        self.op, self.kept_bytes = op, kept_bytes
        self.kept: collections.deque[torch.Tensor] = collections.deque()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.op(x)
        if not self.kept:  # the first call fills the queue, so that every later one is alike
            count = max(2, self.kept_bytes // max(1, y.numel() * y.element_size()))
            self.kept = collections.deque((self.op(x) for _ in range(count - 1)), maxlen=count)
        self.kept.append(y)
        return y


class _AddOne(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


# Bytes of results _KeptAlive keeps: a classifier's activations at batch 1 (the fresh outputs
# of the 80 torchvision classifiers' kernels sum to 27-346 MiB, median 114 MiB, in fp32), past
# the caches a calibration found on the machines it ran on (1.2-1.8 MiB a core on a Xeon VM).
KEPT_BYTES = 64 * 2**20


@dataclass(frozen=True)
class FreshOutputPair:
    """One op whose output has its input's shape, timed two ways: its output freed after each
    call (``plain``, a benchmark's, back in cache at the next call) and kept alive (``kept``, a
    model's)."""

    label: str
    make_op: Callable[[], nn.Module]
    shape: Shape

    @property
    def elements(self) -> int:
        """Of its output (and its input)."""
        return prod(self.shape)

    @property
    def plain(self) -> Bench:
        return Bench(f"fresh output: {self.label}, freed", "model", self.make_op, (self.shape,))

    @property
    def kept(self) -> Bench:
        return Bench(f"fresh output: {self.label}, kept alive", "model",
                     lambda: _KeptAlive(self.make_op(), KEPT_BYTES), (self.shape,))  # fmt: skip


def fresh_output_pairs(grid: str = "full") -> list[FreshOutputPair]:
    """The kernels a model is made of, each writing 256 or 512 KiB (fp32): inside a core's cache,
    where a benchmark's output stays and a model's does not (larger ones miss the cache both
    ways). The kinds differ (on one thread of a Xeon VM, 0.4-0.5 x 1e-10 s a byte for the 1x1
    conv, 1.1-2.5 for the others), so the grid times them all, and their median is the speed."""
    pairs = [FreshOutputPair("x + 1, 64ch 32px", _AddOne, (1, 64, 32, 32))]
    if grid == "tiny":
        return pairs
    return pairs + [
        FreshOutputPair("ReLU, 128ch 32px", nn.ReLU, (1, 128, 32, 32)),
        FreshOutputPair("batch norm, 128ch 32px", lambda: nn.BatchNorm2d(128), (1, 128, 32, 32)),
        FreshOutputPair("conv1x1 64->64, 32px", lambda: nn.Conv2d(64, 64, 1, bias=False), (1, 64, 32, 32)),
        FreshOutputPair("depthwise 3x3, 128ch 32px",
                        lambda: nn.Conv2d(128, 128, 3, padding=1, groups=128, bias=False), (1, 128, 32, 32)),
    ]  # fmt: skip


class _AddInPlace(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x.add_(y)


@dataclass(frozen=True)
class InPlacePair:
    """One element-wise op timed writing a new tensor (``plain``) and writing into its first
    input (``in_place``), in the same loop as the grid's benchmarks: what an in-place kernel's
    output costs beside a fresh one's (``memory.in_place_output_share``)."""

    label: str
    make_plain: Callable[[], nn.Module]
    make_in_place: Callable[[], nn.Module]
    shape: Shape
    operands: int  # tensors it reads, each of the output's shape

    @property
    def elements(self) -> int:
        """Of its output (and of each input)."""
        return prod(self.shape)

    @property
    def plain(self) -> Bench:
        return Bench(f"in place: {self.label}, new tensor", "elementwise", self.make_plain, (self.shape,) * self.operands)

    @property
    def in_place(self) -> Bench:
        return Bench(f"in place: {self.label}, into its input", "elementwise", self.make_in_place,
                     (self.shape,) * self.operands)  # fmt: skip


def in_place_pairs(grid: str = "full") -> list[InPlacePair]:
    """ReLU and add, the ops models run in place (torchvision's ``ReLU(inplace=True)``, ``out +=
    identity``), at 0.4 and 1.6 MB of fp32 output: inside a core's cache and beyond it (one
    thread of a Xeon VM: an in-place ReLU 0.37-0.59 of the time of one writing a new tensor,
    ``add_`` 0.38-0.64 of ``x + y``, at 0.4 to 3.2 MB)."""
    pairs = [InPlacePair("ReLU, 128ch 28px", nn.ReLU, lambda: nn.ReLU(inplace=True), (1, 128, 28, 28), 1)]
    if grid == "tiny":
        return pairs
    return pairs + [
        InPlacePair("ReLU, 512ch 28px", nn.ReLU, lambda: nn.ReLU(inplace=True), (1, 512, 28, 28), 1),
        InPlacePair("add, 128ch 28px", Add, _AddInPlace, (1, 128, 28, 28), 2),
        InPlacePair("add, 512ch 28px", Add, _AddInPlace, (1, 512, 28, 28), 2),
    ]


def _conv_norm(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1,
               act: Callable[[], nn.Module] | None = nn.ReLU) -> nn.Sequential:  # fmt: skip
    """Conv, batch norm and an activation, nested as torchvision's Conv2dNormActivation."""
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    return nn.Sequential(*layers, *([act()] if act else []))


class _SqueezeExcite(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.pool, self.reduce, self.expand = nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1)
        self.act, self.gate = nn.ReLU(), nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class _MobileBlock(nn.Module):
    """An inverted-residual block: 1x1 expansion, depthwise conv, optional squeeze-excite, 1x1
    projection, the residual add where the shapes allow."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int, kernel: int, se: bool,
                 act: Callable[[], nn.Module]) -> None:  # fmt: skip
        super().__init__()
        wide = c_in * expand
        self.residual = stride == 1 and c_in == c_out
        excite = [_SqueezeExcite(wide)] if se else []
        self.block = nn.Sequential(_conv_norm(c_in, wide, act=act), _conv_norm(wide, wide, kernel, stride, wide, act),
                                   *excite, _conv_norm(wide, c_out, act=None))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class _ResidualBlock(nn.Module):
    """A ResNet block: two 3x3 convs (basic), or 1x1, 3x3 of ``groups`` groups and 1x1 at a
    quarter of the width (bottleneck), with a projected shortcut where the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int, bottleneck: bool, groups: int = 1) -> None:
        super().__init__()
        if bottleneck:
            mid = c_out // 4
            body = [_conv_norm(c_in, mid), _conv_norm(mid, mid, 3, stride, groups), _conv_norm(mid, c_out, act=None)]
        else:
            body = [_conv_norm(c_in, c_out, 3, stride), _conv_norm(c_out, c_out, 3, act=None)]
        self.body = nn.Sequential(*body)
        changes = stride > 1 or c_in != c_out
        self.shortcut = _conv_norm(c_in, c_out, 1, stride, act=None) if changes else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


def _classifier(c: int) -> nn.Sequential:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1000))


def _mobile_net(widths: list[int], repeats: list[int], expand: int, se: bool, act: Callable[[], nn.Module],
                big_kernel: int = 3) -> nn.Sequential:  # fmt: skip
    """A MobileNet-like classifier: a strided 3x3 stem, stages of inverted-residual blocks (the
    first of each stage strided, the depthwise kernel ``big_kernel`` from the third stage), a 1x1
    to 4x the last width and the classifier."""
    layers: list[nn.Module] = [_conv_norm(3, 16, 3, 2, act=act)]
    c = 16
    for stage, (width, count) in enumerate(zip(widths, repeats)):
        for i in range(count):
            layers.append(_MobileBlock(c, width, 2 if i == 0 and stage else 1, expand,
                                       big_kernel if stage >= 2 else 3, se, act))  # fmt: skip
            c = width
    return nn.Sequential(*layers, _conv_norm(c, 4 * c, act=act), _classifier(4 * c))


def _residual_net(widths: list[int], repeats: list[int], bottleneck: bool, groups: int = 1) -> nn.Sequential:
    """A ResNet-like classifier: a 7x7 stride-2 stem, a max pool, stages of residual blocks."""
    c = widths[0] // (4 if bottleneck else 1)
    layers: list[nn.Module] = [_conv_norm(3, c, 7, 2), nn.MaxPool2d(3, 2, 1)]
    for stage, (width, count) in enumerate(zip(widths, repeats)):
        for i in range(count):
            layers.append(_ResidualBlock(c, width, 2 if i == 0 and stage else 1, bottleneck, groups))
            c = width
    return nn.Sequential(*layers, _classifier(c))


def model_chains(grid: str = "full") -> list[Bench]:
    """Small models whose ops, each timed where the forward runs it against at once again
    (``Timer.in_model_extras_s``), say what running inside a model adds per kernel: weights, input
    and the library's code for the op's shape come back cold after the rest of the model ran,
    where a microbenchmark looping on one op keeps them in cache.

    The tiny grid's is 8 inverted-residual blocks of one shape on an 8 x 8 map. The others are
    whole classifiers at 224 px, as models are: stages of distinct widths from 112 down to 7 px,
    strided stage openings, 1,000 classes. Their widths and depths are none of torchvision's:
    MobileNet-like (inverted residuals with squeeze-excite, hardswish and 5x5 depthwise convs; and
    without, with ReLU), ResNet-like (basic blocks) and ResNeXt-like (bottlenecks of 8 groups).
    """
    if grid == "tiny":
        def blocks() -> nn.Module:  # MobileNetV2's block at 2x expansion, nested as torchvision nests it
            return nn.Sequential(*[_MobileBlock(16, 16, 1, 2, 3, False, nn.ReLU) for _ in range(8)])

        return [Bench("model-like chain: 8 inverted-residual blocks, 16ch 8px", "model", blocks, ((1, 16, 8, 8),))]
    image = ((1, 3, 224, 224),)
    nets = [
        Bench("model-like network: MobileNet-like, squeeze-excite, hardswish, 5x5 depthwise", "model",
              lambda: _mobile_net([16, 24, 40, 56, 96], [1, 2, 2, 2, 2], 4, True, nn.Hardswish, 5), image),
        Bench("model-like network: ResNet-like, basic blocks", "model",
              lambda: _residual_net([48, 96, 192, 384], [2, 2, 2, 2], bottleneck=False), image),
    ]
    if grid == "quick":
        return nets
    return nets + [
        Bench("model-like network: MobileNet-like, ReLU", "model",
              lambda: _mobile_net([20, 28, 40, 80, 120, 200], [1, 2, 3, 3, 2, 1], 4, False, nn.ReLU), image),
        Bench("model-like network: ResNeXt-like, bottlenecks of 8 groups", "model",
              lambda: _residual_net([128, 256, 512, 1024], [1, 1, 2, 1], bottleneck=True, groups=8), image),
    ]


@dataclass(frozen=True)
class KernelWork:
    flops: float
    bytes: float
    op_class: str
    gemm_k: float = 0.0  # per-group matrix product of a conv or linear (cost.gemm_dims)
    gemm_n: float = 0.0
    gemm_m: float = 0.0  # its rows: output pixels or tokens of the batch
    strided_bytes: float = 0.0  # input a conv with stride > 1 gathers first (cost.Kernel.strided_input_bytes)
    # the share of its rate its channel widths keep on a profile with no [unaligned_efficiency]
    # (padded to the granule); below 1: its widths are off the granule (cost.Kernel.alignment)
    alignment: float = 1.0
    fresh_output_bytes: float = 0.0  # output it writes to a fresh buffer (cost.Kernel.fresh_output_bytes)
    window_outputs: float = 0.0  # outputs of a windowed pool or depthwise conv (cost.Kernel.window_outputs)
    weight_bytes: float = 0.0  # of bytes: the weights it reads (cost.Kernel.weight_bytes)
    name: str = ""  # its head layer's name: the fx node that runs it in ``Unary(bench.make())``


def counted_work(bench: Bench, profile: Profile, precision: str) -> list[KernelWork]:
    """The kernels cnnlint's trace, graph and cost stages count for ``bench``."""
    from cnnlint.cost import compute_cost
    from cnnlint.load import LoadedModel
    from cnnlint.pipeline import graph_of

    with torch.device("meta"):
        module = bench.wrapped()
    loaded = LoadedModel(name=bench.label, module=module, input_shapes=list(bench.inputs),
                         sites={}, built_on="meta")  # fmt: skip
    graph = graph_of(loaded)
    cost = compute_cost(graph, profile.model_copy(update={"unaligned_efficiency": {}}), precision)
    return [KernelWork(k.flops, k.bytes, k.op_class, k.gemm_k, k.gemm_n, k.gemm_m, k.strided_input_bytes, k.alignment,
                       k.fresh_output_bytes, k.window_outputs, k.weight_bytes, k.head)
            for k in cost.kernels.values()]  # fmt: skip
