"""Random CNN definitions as Python source, an independent cost count, and the fuzz properties.

``models()`` is a hypothesis strategy for one generated model: a ``GeneratedModel`` holding the
source of a file that defines one ``nn.Module`` subclass, every layer's construction line, and the
facts the test knows without asking cnnlint: input shape, MACs, parameters, which convs are
depthwise, which read the image, which feed the model output. ``check_run`` lints-result-checks a
batch against those facts; ``tests/test_fuzz.py`` and ``benchmarks/fuzz.py`` share it.

The generator does its own shape arithmetic (PyTorch's documented output-size formulas) and its
own MAC formula (torchvision ``_ops``: conv MACs = output elements x in_channels / groups x kernel
volume; linear MACs = output elements x in_features). It never imports cnnlint's cost code.

Some generated models are invalid on purpose (a dilated kernel larger than its input, groups that
do not divide the channels, a conv or linear layer expecting the wrong width): cnnlint must report
them as a one-paragraph error naming the file, the model and the offending line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from math import prod

from hypothesis import strategies as st

# Channel granules are 4, 8 or 16: draw aligned and misaligned widths alike.
ALIGNED = (8, 16, 24, 32, 48, 64, 96, 128)
TARGETS = ("t4", "a4000", "arm-cpu", "hi3519", "x3", "cv22", "generic")
CL301_TARGETS = frozenset({"t4", "a4000", "hi3519", "cv22", "generic"})
DEFAULT_SPATIAL = {1: (224,), 2: (224, 224), 3: (16, 112, 112)}
# Op kinds the rules count as channel-preserving paths from the image (see CL201).
WEIGHTED = ("conv", "linear")


@dataclass
class LayerInfo:
    """One constructed module: where it is built and what it is."""

    path: str  # module path: "l3" or "l3.0" inside an nn.Sequential
    kind: str  # conv, linear, norm, act, pool, shuffle, identity, seq
    line: int = 0  # construction line in the generated file (set by render)
    params: int = 0
    in_ch: int = 0
    out_ch: int = 0
    groups: int = 1
    kernel: tuple[int, ...] = ()

    @property
    def depthwise(self) -> bool:
        return self.kind == "conv" and self.groups > 1 and self.groups == self.in_ch


@dataclass
class Call:
    """One application of a layer in forward(), with the shapes the generator computed."""

    path: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    reads_image: bool = False  # input channels come from the image through channel-preserving ops
    feeds_output: bool = False  # result reaches the model output through shape-only ops
    # result reaches the model output through channel-keeping ops only: a task head (CL201 leaves
    # its output channels alone)
    heads_output: bool = False


@dataclass
class Invalid:
    stage: str  # "build" (constructor raises) or "forward" (shape propagation fails)
    reason: str
    path: str  # the offending layer
    forward_line: int = 0  # set by render


@dataclass(repr=False)
class GeneratedModel:
    name: str
    dims: int
    input_shape: tuple[int, ...]
    layers: dict[str, LayerInfo]
    calls: list[Call]
    invalid: Invalid | None
    source: str = ""
    forward_ops: dict[int, str] = field(default_factory=dict)  # forward line -> statement

    @property
    def valid(self) -> bool:
        return self.invalid is None

    def __repr__(self) -> str:
        state = "valid" if self.invalid is None else f"invalid: {self.invalid.reason}"
        return f"<{self.name}: {self.dims}-D, {len(self.layers)} layers, {state}>"

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis prints failing examples so
        printer.text(repr(self))


# ---------------------------------------------------------------------------- shape arithmetic
def conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """torch.nn.Conv*d / MaxPool*d output size (floor mode); < 1 means the input is too small."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_params(in_ch: int, out_ch: int, groups: int, kernel: tuple[int, ...], bias: bool) -> int:
    return out_ch * (in_ch // groups) * prod(kernel) + (out_ch if bias else 0)


def expected_macs(model: GeneratedModel) -> int:
    """MACs of conv and linear calls only (torchvision ``_ops`` convention)."""
    total = 0
    for call in model.calls:
        layer = model.layers[call.path]
        if layer.kind == "conv":
            total += prod(call.out_shape) * (layer.in_ch // layer.groups) * prod(layer.kernel)
        elif layer.kind == "linear":
            total += prod(call.out_shape) * layer.in_ch
    return total


def expected_params(model: GeneratedModel) -> int:
    return sum(layer.params for layer in model.layers.values())


# ---------------------------------------------------------------------------- the builder
class _Builder:
    """Emits __init__ and forward lines while tracking the tensor ``x``'s shape and provenance."""

    def __init__(self, name: str, dims: int, in_ch: int) -> None:
        self.name, self.dims = name, dims
        self.init: list[tuple[str, str | None, int]] = []  # (text, module path, indent level)
        self.forward: list[str] = []
        self.layers: dict[str, LayerInfo] = {}
        self.calls: list[Call] = []
        self.invalid: Invalid | None = None
        self._invalid_statement = -1
        self.shape: tuple[int, ...] = (1, in_ch, *DEFAULT_SPATIAL[dims])
        self.input_shape = self.shape
        self.image = True  # x's channels are the image's (through channel-preserving ops)
        self.last_weighted: Call | None = None  # the call whose output x is (shape-only ops since)
        self._count = 0
        self._temps = 0
        self.names: list[str] = []
        # Calls whose output reaches x through channel-keeping ops only (activations, norms,
        # pools, element-wise ops, resizes, views): task heads if x is the model output.
        self.heads: list[Call] = []

    # state
    @property
    def channels(self) -> int:
        return self.shape[1]

    @property
    def spatial(self) -> tuple[int, ...]:
        return self.shape[2:]

    def temp(self) -> str:
        self._temps += 1
        return f"t{self._temps}"

    def new_path(self) -> str:
        self._count += 1
        if self.names:  # names fx gives its own nodes, drawn for this model: each must be safe
            return self.names.pop(0)
        return f"l{self._count - 1}"

    # emitting
    def module(self, ctor: str, info: LayerInfo) -> str:
        self.init.append((f"self.{info.path} = {ctor}", info.path, 0))
        self.layers[info.path] = info
        return info.path

    def sequential(self, children: list[tuple[str, LayerInfo]], container: str = "Sequential") -> str:
        path = self.new_path()
        bracket = "[" if container == "ModuleList" else ""
        self.init.append((f"self.{path} = nn.{container}({bracket}", None, 0))
        for index, (ctor, info) in enumerate(children):
            info.path = f"{path}.{index}"
            self.init.append((f"{ctor},", info.path, 1))
            self.layers[info.path] = info
        self.init.append(("])" if bracket else ")", None, 0))
        return path

    def statement(self, text: str) -> None:
        self.forward.append(text)

    def mark_invalid(self, stage: str, reason: str, path: str) -> None:
        """The statement emitted next is the one that fails (for forward errors)."""
        self.invalid = Invalid(stage, reason, path)
        self._invalid_statement = len(self.forward)

    def render(self) -> GeneratedModel:
        lines = [
            '"""Generated by tests/fuzz_models.py: one random CNN."""',
            "import torch",
            "from torch import nn",
            "",
            "",
            f"class {self.name}(nn.Module):",
            "    def __init__(self):",
            "        super().__init__()",
        ]
        for text, path, indent in self.init:
            lines.append("        " + "    " * indent + text)
            if path is not None:
                self.layers[path].line = len(lines)
        lines += ["", "    def forward(self, x):"]
        forward_ops: dict[int, str] = {}
        for index, text in enumerate(self.forward):
            lines.append("        " + text)
            forward_ops[len(lines)] = text
            if index == self._invalid_statement and self.invalid is not None:
                self.invalid.forward_line = len(lines)
        lines.append("        return x")
        return GeneratedModel(
            name=self.name, dims=self.dims, input_shape=self.input_shape, layers=self.layers,
            calls=self.calls, invalid=self.invalid, source="\n".join(lines) + "\n",
            forward_ops=forward_ops,
        )  # fmt: skip

    # applying a layer to x (or to another variable)
    def apply(self, path: str, out_shape: tuple[int, ...]) -> Call:
        """``x = self.path(x)``: records the call with x's current shape and provenance."""
        call = Call(path, self.shape, out_shape, reads_image=self.image)
        self.statement(f"x = self.{path}(x)")
        self.calls.append(call)
        return call


def _nn(kind: str, dims: int) -> str:
    return f"nn.{kind}{dims}d"


def _fmt_tuple(values: tuple[int, ...]) -> str:
    return f"({', '.join(map(str, values))},)" if len(values) == 1 else f"({', '.join(map(str, values))})"


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


# ---------------------------------------------------------------------------- strategies
channels = st.one_of(st.sampled_from(ALIGNED), st.integers(1, 80))


@st.composite
def _conv_geometry(draw, b: _Builder, odd: bool = False, same: bool = False) -> dict:
    """Kernel (int or per-dim tuple), stride, padding, dilation that fit x's spatial size."""
    dims = b.dims
    sizes = [1, 3, 5, 7] if odd else [1, 2, 3, 4, 5, 6, 7]
    per_dim = dims > 1 and draw(st.booleans()) and draw(st.booleans())
    if per_dim:
        kernel = tuple(draw(st.sampled_from(sizes)) for _ in range(dims))
    else:
        kernel = (draw(st.sampled_from(sizes)),) * dims
    dilation = draw(st.sampled_from([1, 1, 1, 2, 3])) if max(kernel) > 1 else 1
    stride = 1 if same else draw(st.sampled_from([1, 1, 2, 2, 3, 4]))
    if same or odd:
        padding = tuple(dilation * (k - 1) // 2 for k in kernel)
    else:
        padding = tuple(draw(st.integers(0, k // 2 + 1)) for k in kernel)
    return {"kernel": kernel, "per_dim": per_dim, "stride": stride, "padding": padding,
            "dilation": dilation}  # fmt: skip


def _fits(b: _Builder, g: dict) -> bool:
    return all(
        conv_out(size, k, g["stride"], p, g["dilation"]) >= 1
        for size, k, p in zip(b.spatial, g["kernel"], g["padding"])
    )


def _out_spatial(b: _Builder, g: dict) -> tuple[int, ...]:
    return tuple(
        conv_out(size, k, g["stride"], p, g["dilation"])
        for size, k, p in zip(b.spatial, g["kernel"], g["padding"])
    )


def _conv_ctor(dims: int, cin: int, cout: int, g: dict, groups: int, bias: bool,
               padding_same: bool = False) -> str:  # fmt: skip
    kernel = g["kernel"]
    args = [str(cin), str(cout), _fmt_tuple(kernel) if g["per_dim"] else str(kernel[0])]
    if g["stride"] != 1:
        args.append(f"stride={g['stride']}")
    if padding_same:
        args.append("padding='same'")
    elif any(g["padding"]):
        same_all = len(set(g["padding"])) == 1
        args.append(f"padding={g['padding'][0] if same_all else _fmt_tuple(g['padding'])}")
    if g["dilation"] != 1:
        args.append(f"dilation={g['dilation']}")
    if groups != 1:
        args.append(f"groups={groups}")
    if not bias:
        args.append("bias=False")
    return f"{_nn('Conv', dims)}({', '.join(args)})"


def _conv_info(b: _Builder, cin: int, cout: int, groups: int, g: dict, bias: bool) -> LayerInfo:
    return LayerInfo(b.new_path(), "conv", params=conv_params(cin, cout, groups, g["kernel"], bias),
                     in_ch=cin, out_ch=cout, groups=groups, kernel=g["kernel"])  # fmt: skip


def _after_weighted(b: _Builder, call: Call, out_shape: tuple[int, ...]) -> None:
    b.shape, b.image, b.last_weighted, b.heads = out_shape, False, call, [call]


def _after_op(
    b: _Builder, out_shape: tuple[int, ...], keeps_channels: bool, shape_only: bool,
    carries: bool | None = None,
) -> None:  # fmt: skip
    """``keeps_channels``: the image's channels survive the op; ``carries``: the op keeps the
    channel count (cnnlint.ops.keeps_channel_count; default ``keeps_channels``)."""
    b.image = b.image and keeps_channels
    if not shape_only:
        b.last_weighted = None
    if not (keeps_channels if carries is None else carries):
        b.heads = []
    b.shape = out_shape


@st.composite
def _norm_act(draw, b: _Builder) -> None:
    """Optional BatchNorm then an optional activation, as modules or functions."""
    if draw(st.booleans()):
        c = b.channels
        path = b.module(f"{_nn('BatchNorm', b.dims)}({c})",
                        LayerInfo(b.new_path(), "norm", params=2 * c))  # fmt: skip
        b.apply(path, b.shape)
        _after_op(b, b.shape, keeps_channels=True, shape_only=False)
    act = draw(st.sampled_from(["none", "ReLU", "SiLU", "ReLU6", "torch.relu", "F.relu6", "Hardswish"]))
    if act == "none":
        return
    if act.startswith(("torch.", "F.")):
        fn = act if act.startswith("torch.") else "torch.nn.functional." + act[2:]
        b.statement(f"x = {fn}(x)")
    else:
        path = b.module(f"nn.{act}()", LayerInfo(b.new_path(), "act"))
        b.apply(path, b.shape)
    _after_op(b, b.shape, keeps_channels=True, shape_only=False)


@st.composite
def conv_block(draw, b: _Builder) -> None:
    cin = b.channels
    g = draw(_conv_geometry(b))
    if not _fits(b, g):
        g = {**g, "stride": 1, "dilation": 1, "kernel": (1,) * b.dims, "padding": (0,) * b.dims,
             "per_dim": False}  # fmt: skip
    cout = draw(channels)
    common = [d for d in _divisors(cin) if cout % d == 0]
    groups = draw(st.sampled_from(common)) if draw(st.integers(0, 3)) == 0 else 1
    bias = draw(st.booleans())
    same = g["stride"] == 1 and draw(st.integers(0, 4)) == 0
    if same:  # padding='same' keeps the size whatever the kernel
        g = {**g, "padding": tuple(g["dilation"] * (k - 1) // 2 for k in g["kernel"])}
    path = b.module(_conv_ctor(b.dims, cin, cout, g, groups, bias, padding_same=same),
                    _conv_info(b, cin, cout, groups, g, bias))  # fmt: skip
    out = (1, cout, *(b.spatial if same else _out_spatial(b, g)))
    call = b.apply(path, out)
    _after_weighted(b, call, out)
    draw(_norm_act(b))


@st.composite
def depthwise_block(draw, b: _Builder) -> None:
    c = b.channels
    if c == 1:
        return
    g = draw(_conv_geometry(b, odd=True))
    if not _fits(b, g):
        return
    multiplier = draw(st.sampled_from([1, 1, 1, 2]))
    bias = draw(st.booleans())
    path = b.module(_conv_ctor(b.dims, c, c * multiplier, g, c, bias),
                    _conv_info(b, c, c * multiplier, c, g, bias))  # fmt: skip
    out = (1, c * multiplier, *_out_spatial(b, g))
    call = b.apply(path, out)
    _after_weighted(b, call, out)
    draw(_norm_act(b))


@st.composite
def residual_block(draw, b: _Builder) -> None:
    """y = conv(x) [+ norm/act]; x = x + y, with a 1x1 projection shortcut when shapes change."""
    cin, spatial, image = b.channels, b.spatial, b.image
    g = draw(_conv_geometry(b, odd=True))
    project = draw(st.booleans())
    stride = draw(st.sampled_from([1, 2])) if project else 1
    g = {**g, "stride": stride}
    if not _fits(b, g):
        return
    cout = draw(channels) if project else cin
    main = b.module(_conv_ctor(b.dims, cin, cout, g, 1, False),
                    _conv_info(b, cin, cout, 1, g, False))  # fmt: skip
    out = (1, cout, *_out_spatial(b, g))
    start = b.shape
    y = b.temp()
    b.calls.append(Call(main, start, out, reads_image=image))
    b.statement(f"{y} = self.{main}(x)")
    if project:
        g1 = {"kernel": (1,) * b.dims, "per_dim": False, "stride": stride, "padding": (0,) * b.dims,
              "dilation": 1}  # fmt: skip
        short = b.module(_conv_ctor(b.dims, cin, cout, g1, 1, False),
                         _conv_info(b, cin, cout, 1, g1, False))  # fmt: skip
        b.calls.append(Call(short, start, out, reads_image=image))
        b.statement(f"x = self.{short}(x)")
    form = draw(st.sampled_from(["x = x + {y}", "x = {y} + x", "x = torch.add(x, {y})", "x += {y}"]))
    b.statement(form.format(y=y))
    # Channels still the image's when the shortcut is the untouched input (rule: any producer).
    _after_op(b, out, keeps_channels=not project, shape_only=False, carries=True)
    b.heads = [c for c in b.calls[-2 if project else -1:]]  # the add reads the branch (and shortcut)
    b.image = image and not project
    draw(_norm_act(b))


def _branch_conv(draw, b: _Builder, cin: int, cout: int, stride: int) -> tuple[str, tuple]:
    """An odd-kernel conv padded to keep the size (up to the stride): branches line up."""
    g = {**draw(_conv_geometry(b, odd=True, same=True)), "stride": stride}
    bias = draw(st.booleans())
    path = b.module(_conv_ctor(b.dims, cin, cout, g, 1, bias), _conv_info(b, cin, cout, 1, g, bias))
    return path, (1, cout, *_out_spatial(b, g))


@st.composite
def concat_block(draw, b: _Builder) -> None:
    """Two to four branches read x (a conv, or x itself); torch.cat joins them on channels."""
    cin, image, start = b.channels, b.image, b.shape
    stride = draw(st.sampled_from([1, 1, 2]))
    kinds = draw(st.lists(st.sampled_from(["conv", "conv", "identity"] if stride == 1 else ["conv"]),
                          min_size=2, max_size=4))  # fmt: skip
    names, total, out = [], 0, start
    for kind in kinds:
        if kind == "identity":
            names.append("x")
            total += cin
            continue
        path, out = _branch_conv(draw, b, cin, draw(channels), stride)
        name = b.temp()
        b.calls.append(Call(path, start, out, reads_image=image))
        b.statement(f"{name} = self.{path}(x)")
        names.append(name)
        total += out[1]
    form = draw(st.sampled_from(["torch.cat([{}], dim=1)", "torch.cat(({}), 1)", "torch.concat([{}], 1)"]))
    b.statement("x = " + form.format(", ".join(names)))
    _after_op(b, (1, total, *out[2:]), keeps_channels=False, shape_only=False)


@st.composite
def split_block(draw, b: _Builder) -> None:
    """torch.chunk / split the channels, a conv on some parts, then concatenate."""
    c = b.channels
    if c < 2:
        return
    style = draw(st.sampled_from(["chunk", "method_chunk", "split_sizes", "split_int"]))
    if style in ("chunk", "method_chunk"):
        n = draw(st.sampled_from([d for d in _divisors(c) if 1 < d <= 4] or [0]))
        if not n:
            return
        sizes = [c // n] * n
        call = f"torch.chunk(x, {n}, dim=1)" if style == "chunk" else f"x.chunk({n}, 1)"
    elif style == "split_sizes":
        first = draw(st.integers(1, c - 1))
        sizes = [first, c - first]
        call = f"x.split([{first}, {c - first}], dim=1)"
    else:
        size = draw(st.integers(max(1, c // 4), c - 1))
        sizes = [size] * (c // size) + ([c % size] if c % size else [])
        if len(sizes) > 4:
            return
        call = f"torch.split(x, {size}, dim=1)"
    parts = [b.temp() for _ in sizes]
    unpack = draw(st.booleans())
    if unpack:
        b.statement(f"{', '.join(parts)} = {call}")
    else:
        whole = b.temp()
        b.statement(f"{whole} = {call}")
        for i, part in enumerate(parts):
            b.statement(f"{part} = {whole}[{i}]")
    outs, total = [], 0
    for part, size in zip(parts, sizes):
        if draw(st.booleans()):
            path, out = _branch_conv(draw, b, size, draw(channels), 1)
            b.calls.append(Call(path, (1, size, *b.spatial), out, reads_image=False))
            b.statement(f"{part} = self.{path}({part})")
            total += out[1]
        else:
            total += size
        outs.append(part)
    b.statement(f"x = torch.cat([{', '.join(outs)}], dim=1)")
    _after_op(b, (1, total, *b.spatial), keeps_channels=False, shape_only=False)


@st.composite
def shuffle_block(draw, b: _Builder) -> None:
    c = b.channels
    groups = [d for d in _divisors(c) if 1 < d < c]
    if not groups:
        return
    g = draw(st.sampled_from(groups))
    if draw(st.booleans()):
        path = b.module(f"nn.ChannelShuffle({g})", LayerInfo(b.new_path(), "shuffle"))
        b.apply(path, b.shape)
    else:
        rest = ", ".join(f"x.size({i})" for i in range(2, 2 + b.dims))
        b.statement(f"x = x.view(x.size(0), {g}, {c // g}, {rest})")
        b.statement("x = torch.transpose(x, 1, 2).contiguous()" if draw(st.booleans())
                    else "x = x.transpose(1, 2).contiguous()")  # fmt: skip
        b.statement(f"x = x.view(x.size(0), {c}, {', '.join(f'x.size({i})' for i in range(3, 3 + b.dims))})"
                    if draw(st.booleans()) else "x = x.flatten(1, 2)")  # fmt: skip
    _after_op(b, b.shape, keeps_channels=False, shape_only=False, carries=True)  # views


@st.composite
def pool_block(draw, b: _Builder) -> None:
    kind = draw(st.sampled_from(["MaxPool", "AvgPool"]))
    k = draw(st.integers(1, 4))
    stride = draw(st.integers(1, 3))
    padding = draw(st.integers(0, k // 2))
    out = tuple((size + 2 * padding - k) // stride + 1 for size in b.spatial)
    if min(b.spatial) < k:  # 3-D average pooling wants the unpadded input at least the kernel
        return
    args = [str(k)] + ([f"stride={stride}"] if stride != k else []) + ([f"padding={padding}"] if padding else [])
    path = b.module(f"{_nn(kind, b.dims)}({', '.join(args)})", LayerInfo(b.new_path(), "pool"))
    b.apply(path, (1, b.channels, *out))
    _after_op(b, (1, b.channels, *out), keeps_channels=True, shape_only=False)


@st.composite
def sequential_block(draw, b: _Builder) -> None:
    """nn.Sequential or nn.ModuleList of (conv, norm, act), each child on its own line."""
    cin = b.channels
    g = draw(_conv_geometry(b))
    if not _fits(b, g):
        return
    cout = draw(channels)
    conv = LayerInfo("", "conv", params=conv_params(cin, cout, 1, g["kernel"], True), in_ch=cin,
                     out_ch=cout, kernel=g["kernel"])
    children = [(_conv_ctor(b.dims, cin, cout, g, 1, True), conv)]
    if draw(st.booleans()):
        children.append((f"{_nn('BatchNorm', b.dims)}({cout})", LayerInfo("", "norm", params=2 * cout)))
    children.append(("nn.ReLU(inplace=True)", LayerInfo("", "act")))
    as_list = draw(st.booleans())
    path = b.sequential(children, container="ModuleList" if as_list else "Sequential")
    out = (1, cout, *_out_spatial(b, g))
    b.calls.append(Call(conv.path, b.shape, out, reads_image=b.image))
    if as_list:
        b.statement(f"for layer in self.{path}:")
        b.statement("    x = layer(x)")
    else:
        b.statement(f"x = self.{path}(x)")
    _after_op(b, out, keeps_channels=False, shape_only=False)  # the conv feeds the ReLU
    b.heads = [b.calls[-1]]  # through its norm and ReLU


@st.composite
def shared_block(draw, b: _Builder) -> None:
    """One C -> C conv applied twice: its MACs count twice, its parameters once."""
    c = b.channels
    g = draw(_conv_geometry(b, odd=True, same=True))
    if not _fits(b, g):
        return
    path = b.module(_conv_ctor(b.dims, c, c, g, 1, True), _conv_info(b, c, c, 1, g, True))
    first = Call(path, b.shape, b.shape, reads_image=b.image)
    second = Call(path, b.shape, b.shape, reads_image=False)
    b.calls += [first, second]
    b.statement(f"x = self.{path}(self.{path}(x))")
    _after_weighted(b, second, b.shape)


@st.composite
def squeeze_excite_block(draw, b: _Builder) -> None:
    """x * sigmoid(conv(relu(conv(pool(x))))): a broadcasting multiply after two 1x1 convs."""
    c, image, start = b.channels, b.image, b.shape
    squeezed = max(1, c // draw(st.sampled_from([4, 8, 16, 3])))
    one = (1,) * b.dims
    g1 = {"kernel": one, "per_dim": False, "stride": 1, "padding": (0,) * b.dims, "dilation": 1}
    pool = b.module(f"{_nn('AdaptiveAvgPool', b.dims)}(1)", LayerInfo(b.new_path(), "pool"))
    reduce = b.module(_conv_ctor(b.dims, c, squeezed, g1, 1, True), _conv_info(b, c, squeezed, 1, g1, True))
    expand = b.module(_conv_ctor(b.dims, squeezed, c, g1, 1, True), _conv_info(b, squeezed, c, 1, g1, True))
    s = b.temp()
    b.calls.append(Call(pool, start, (1, c, *one)))
    b.statement(f"{s} = self.{pool}(x)")
    b.calls.append(Call(reduce, (1, c, *one), (1, squeezed, *one), reads_image=image))
    b.statement(f"{s} = self.{reduce}({s})")
    b.statement(f"{s} = torch.relu({s})")
    b.calls.append(Call(expand, (1, squeezed, *one), (1, c, *one)))
    b.statement(f"{s} = self.{expand}({s})")
    b.statement(f"x = x * torch.sigmoid({s})")
    _after_op(b, start, keeps_channels=True, shape_only=False)
    b.heads = [b.calls[-1]]  # x's producers also feed the squeeze conv; the gate reaches x


@st.composite
def upsample_block(draw, b: _Builder) -> None:
    if max(b.spatial) > 64:
        return
    out = (1, b.channels, *(2 * size for size in b.spatial))
    if draw(st.booleans()):
        path = b.module("nn.Upsample(scale_factor=2, mode='nearest')", LayerInfo(b.new_path(), "upsample"))
        b.apply(path, out)
    else:
        b.statement("x = torch.nn.functional.interpolate(x, scale_factor=2.0, mode='nearest')")
    _after_op(b, out, keeps_channels=False, shape_only=False, carries=True)


@st.composite
def identity_block(draw, b: _Builder) -> None:
    path = b.module(draw(st.sampled_from(["nn.Dropout(0.1)", "nn.Identity()"])),
                    LayerInfo(b.new_path(), "identity"))  # fmt: skip
    b.apply(path, b.shape)
    _after_op(b, b.shape, keeps_channels=True, shape_only=True)


BLOCKS = {
    "conv": (conv_block, 6), "depthwise": (depthwise_block, 3), "residual": (residual_block, 3),
    "concat": (concat_block, 2), "split": (split_block, 2), "shuffle": (shuffle_block, 2),
    "pool": (pool_block, 2), "sequential": (sequential_block, 1), "shared": (shared_block, 1),
    "identity": (identity_block, 1), "norm_act": (_norm_act, 1), "se": (squeeze_excite_block, 1),
    "upsample": (upsample_block, 1),
}  # fmt: skip
_BLOCK_NAMES = [name for name, (_, weight) in BLOCKS.items() for _ in range(weight)]


@st.composite
def head(draw, b: _Builder) -> None:
    style = draw(st.sampled_from(["none", "adaptive", "adaptive", "mean", "flatten", "tokens"]))
    c = b.channels
    if style == "none":
        return
    if style == "tokens":  # a linear layer over the flattened positions of each channel
        positions = prod(b.spatial)
        if positions > 4096:
            return
        b.statement("x = x.flatten(2)")
        width = draw(channels)
        path = b.module(f"nn.Linear({positions}, {width})",
                        LayerInfo(b.new_path(), "linear", params=positions * width + width,
                                  in_ch=positions, out_ch=width))  # fmt: skip
        call = Call(path, (1, c, positions), (1, c, width))
        b.calls.append(call)
        b.statement(f"x = self.{path}(x)")
        b.shape, b.last_weighted, b.image, b.heads = (1, c, width), call, False, [call]
        return
    if style == "adaptive":
        path = b.module(f"{_nn('AdaptiveAvgPool', b.dims)}(1)", LayerInfo(b.new_path(), "pool"))
        b.apply(path, (1, c, *(1,) * b.dims))
        if draw(st.booleans()):
            b.statement("x = torch.flatten(x, 1)")
        else:
            flat = b.module("nn.Flatten()", LayerInfo(b.new_path(), "identity"))
            b.statement(f"x = self.{flat}(x)")
        features = c
    elif style == "mean":
        dims = tuple(range(2, 2 + b.dims))
        b.statement(f"x = x.mean({dims if len(dims) > 1 else dims[0]})")
        features = c
    else:
        features = c * prod(b.spatial)
        if features > 8192:
            return
        b.statement("x = x.flatten(1)")
    b.image = False
    if draw(st.booleans()):
        hidden = draw(channels)
        path = b.module(f"nn.Linear({features}, {hidden})",
                        LayerInfo(b.new_path(), "linear", params=features * hidden + hidden,
                                  in_ch=features, out_ch=hidden))  # fmt: skip
        call = Call(path, (1, features), (1, hidden))
        b.calls.append(call)
        b.statement(f"x = self.{path}(x)")
        b.statement("x = torch.relu(x)")
        features = hidden
    classes = draw(st.sampled_from([10, 1000, 7, 2, 16]))
    bias = draw(st.booleans())
    path = b.module(f"nn.Linear({features}, {classes}{'' if bias else ', bias=False'})",
                    LayerInfo(b.new_path(), "linear", params=features * classes + (classes if bias else 0),
                              in_ch=features, out_ch=classes))  # fmt: skip
    call = Call(path, (1, features), (1, classes))
    b.calls.append(call)
    b.statement(f"x = self.{path}(x)")
    b.shape, b.last_weighted, b.heads = (1, classes), call, [call]


INVALID_REASONS = ("kernel", "groups", "channels", "linear")


@st.composite
def invalid_tail(draw, b: _Builder, reason: str) -> None:
    """One layer that cannot work: the model must fail with a clear error."""
    c = b.channels
    if reason == "kernel":
        k = draw(st.sampled_from([3, 5, 7]))
        # Larger than the map at every guessed input size (cnnlint tries larger guesses, up to
        # twice the first one's sides, when a guess fails).
        dilation = 2 * max(b.spatial) // (k - 1) + draw(st.integers(1, 3))
        g = {"kernel": (k,) * b.dims, "per_dim": False, "stride": 1, "padding": (0,) * b.dims,
             "dilation": dilation}  # fmt: skip
        path = b.module(_conv_ctor(b.dims, c, 16, g, 1, True), _conv_info(b, c, 16, 1, g, True))
        b.mark_invalid("forward", "kernel larger than the input", path)
        b.statement(f"x = self.{path}(x)")
    elif reason == "groups":
        groups = draw(st.sampled_from([g for g in (2, 3, 4, 5, 7) if c % g] or [c + 1]))
        g = {"kernel": (3,) * b.dims, "per_dim": False, "stride": 1, "padding": (1,) * b.dims,
             "dilation": 1}  # fmt: skip
        cout = groups * 4
        path = b.module(_conv_ctor(b.dims, c, cout, g, groups, True),
                        LayerInfo(b.new_path(), "conv", in_ch=c, out_ch=cout, groups=groups))  # fmt: skip
        b.mark_invalid("build", "groups do not divide the channels", path)
        b.statement(f"x = self.{path}(x)")
    elif reason == "channels":
        g = {"kernel": (1,) * b.dims, "per_dim": False, "stride": 1, "padding": (0,) * b.dims,
             "dilation": 1}  # fmt: skip
        wrong = c + draw(st.integers(1, 5))
        path = b.module(_conv_ctor(b.dims, wrong, 8, g, 1, True), _conv_info(b, wrong, 8, 1, g, True))
        b.mark_invalid("forward", "conv expects another channel count", path)
        b.statement(f"x = self.{path}(x)")
    else:
        b.statement("x = torch.flatten(x, 1)")
        features = c * prod(b.spatial) + draw(st.integers(1, 9))
        path = b.module(f"nn.Linear({features}, 10)",
                        LayerInfo(b.new_path(), "linear", in_ch=features, out_ch=10))  # fmt: skip
        b.mark_invalid("forward", "linear expects another width", path)
        b.statement(f"x = self.{path}(x)")


# Names torch.fx gives the nodes of its own graphs (the output, placeholders, attribute reads,
# numbered ops) and forward()'s usual argument name: as submodule names they must not collide
# with anything cnnlint names after fx's nodes.
FX_NODE_NAMES = ["output", "input", "x", "getattr_1", "sum_1", "add", "add_1", "cat", "relu",
                 "size", "flatten", "_tensor_constant0"]


@st.composite
def models(draw, name: str = "Net", invalid_rate: int = 8) -> GeneratedModel:
    """One random CNN: a stem conv, 0-8 blocks, an optional head; 1 in ``invalid_rate`` invalid."""
    dims = draw(st.sampled_from([2, 2, 2, 2, 1, 3]))
    in_ch = draw(st.sampled_from([3, 3, 1, 4, 16, 5]))
    b = _Builder(name, dims, in_ch)
    b.names = draw(st.lists(st.sampled_from(FX_NODE_NAMES), max_size=3, unique=True))
    if draw(st.integers(0, 5)) == 0:  # something channel-preserving before the first conv
        before = draw(st.sampled_from([pool_block, identity_block, _norm_act]))
        draw(before(b))
    draw(conv_block(b))
    for block in draw(st.lists(st.sampled_from(_BLOCK_NAMES), max_size=8)):
        draw(BLOCKS[block][0](b))
    # One draw decides validity and the reason (hypothesis correlates consecutive small draws).
    reasons = [""] * (len(INVALID_REASONS) * (invalid_rate - 1)) + list(INVALID_REASONS)
    reason = draw(st.sampled_from(reasons)) if invalid_rate else ""
    if reason:
        draw(invalid_tail(b, reason))
    else:
        draw(head(b))
        if b.last_weighted is not None:
            b.last_weighted.feeds_output = True
        for call in b.heads:
            call.heads_output = True
    return b.render()


@dataclass(repr=False)
class Batch:
    models: list[GeneratedModel]
    targets: list[str]
    precision: str | None

    def __repr__(self) -> str:
        return f"<{len(self.models)} models on {', '.join(self.targets)} {self.precision or ''}>"

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))


PRECISIONS = {"t4": {"fp32", "fp16", "int8"}, "a4000": {"fp32", "fp16", "int8"},
              "arm-cpu": {"fp32", "fp16", "int8"}, "generic": {"fp32", "fp16", "int8"},
              "hi3519": {"int8"}, "x3": {"int8"}, "cv22": {"int8"}}  # fmt: skip


@st.composite
def batches(draw, min_models: int = 1, max_models: int = 30) -> Batch:
    """Models linted by one CLI call, on one to three targets and maybe one precision."""
    count = draw(st.integers(min_models, max_models))
    generated = [draw(models(name=f"Net{i}")) for i in range(count)]
    targets = draw(st.lists(st.sampled_from(TARGETS), min_size=1, max_size=3, unique=True))
    common = set.intersection(*(PRECISIONS[t] for t in targets))
    precision = draw(st.sampled_from([None, None, *sorted(common)]))
    return Batch(generated, targets, precision)


# ---------------------------------------------------------------------------- the properties
def file_name(index: int) -> str:
    return f"m{index:03d}.py"


def expected_cl201(model: GeneratedModel, granule_in: int, granule_out: int) -> set[tuple[str, int]]:
    """(module, line) of every weighted call CL201 should flag (see rules/cl201_channel_misaligned)."""
    flagged = set()
    for call in model.calls:
        layer = model.layers[call.path]
        if layer.kind not in WEIGHTED or call.feeds_output:
            continue
        # A grouped (not depthwise) conv is judged per group, and a group narrower than one
        # granule is not judged at all (CL102's concern).
        groups = layer.groups if layer.kind == "conv" and not layer.depthwise else 1
        width_in, width_out = layer.in_ch // groups, layer.out_ch // groups
        bad_in = (groups == 1 or width_in >= granule_in) and width_in % granule_in and not call.reads_image
        bad_out = (groups == 1 or width_out >= granule_out) and width_out % granule_out and not call.heads_output
        if bad_in or bad_out:
            flagged.add((call.path, layer.line))
    return flagged


# CL301 judges a depthwise conv only where its arithmetic intensity is below the target's ridge
# point (peak FLOP/s over bandwidth). The answer key works that out on its own from the layer's
# arithmetic and the profile's peak and bandwidth. A norm and activation fused into the conv's
# kernel add up to FUSED_FLOPS per output value (BatchNorm 2, hardswish and SiLU a few more),
# which can move a thin 1-D kernel across the ridge: between the bounds with and without them,
# and within RIDGE_BAND of either, both answers are accepted.
RIDGE_BAND = 1.1
FUSED_FLOPS = 12


def expected_cl301(model: GeneratedModel, target: str, precision: str) -> tuple[set, set]:
    """(module, line) of depthwise calls CL301 must flag, and of those it may flag."""
    if target not in CL301_TARGETS:
        return set(), set()
    from cnnlint.core import BYTES_PER_ELEMENT
    from cnnlint.profile import load_profile

    profile = load_profile(target)
    width = BYTES_PER_ELEMENT[precision]
    ridge = profile.peak_flops(precision) / profile.bandwidth_bytes_per_s
    must, may = set(), set()
    for call in model.calls:
        layer = model.layers[call.path]
        if not layer.depthwise:
            continue
        flops = 2 * prod(call.out_shape) * prod(layer.kernel) * layer.out_ch // layer.in_ch
        weights = layer.out_ch * prod(layer.kernel)
        moved = width * (prod(call.in_shape) + prod(call.out_shape) + weights)
        least, most = flops / moved, (flops + FUSED_FLOPS * prod(call.out_shape)) / moved
        site = (call.path, layer.line)
        if most * RIDGE_BAND < ridge:
            must.add(site)
        if least < ridge * RIDGE_BAND:
            may.add(site)
    return must, may


_OP_WORDS = {"add": ("+", "add"), "iadd": ("+=",), "cat": ("cat",), "concat": ("concat",),
             "chunk": ("chunk",), "split": ("split",), "transpose": ("transpose",),
             "view": ("view",), "flatten": ("flatten",), "mean": ("mean",), "relu": ("relu",),
             "contiguous": ("contiguous",), "getitem": ("[",), "mul": ("*", "mul"),
             "sigmoid": ("sigmoid",)}  # fmt: skip


def check_result_findings(model: GeneratedModel, display: str, result: dict, granule: tuple[int, int]) -> list[str]:
    problems = []
    path = display.partition("::")[0]
    lines = model.source.splitlines()
    for finding in result["findings"]:
        where = f"{finding['code']} {finding['module']!r} at line {finding['line']}"
        if not finding["module"] and not finding["line"]:
            continue  # a model-level finding
        if finding["path"] != path:
            problems.append(f"{where}: path {finding['path']!r}, expected {path!r}")
        layer = model.layers.get(finding["module"])
        if layer is not None:
            if finding["line"] != layer.line:
                problems.append(f"{where}: {finding['module']} is built on line {layer.line}")
            continue
        # A function or method call in forward(): the line must apply that op.
        op = re.sub(r"_\d+$", "", finding["module"])
        if finding["line"] not in model.forward_ops:
            problems.append(f"{where}: names no layer and no forward() line")
            continue
        text = lines[finding["line"] - 1]
        words = _OP_WORDS.get(op, (op,))
        if not any(w in text for w in words):
            problems.append(f"{where}: line {finding['line']} ({text.strip()!r}) does not apply {op}")
    got201 = {(f["module"], f["line"]) for f in result["findings"] if f["code"] == "CL201"}
    want201 = expected_cl201(model, *granule)
    if got201 != want201:
        problems.append(
            f"CL201 [{result['target']} {result['precision']}, granule {granule[0]} in / "
            f"{granule[1]} out]: unexpected {sorted(got201 - want201)}, missing {sorted(want201 - got201)}"
        )
    got301 = {(f["module"], f["line"]) for f in result["findings"] if f["code"] == "CL301"}
    must301, may301 = expected_cl301(model, result["target"], result["precision"])
    if not must301 <= got301 <= may301:
        problems.append(
            f"CL301 [{result['target']}]: unexpected {sorted(got301 - may301)}, "
            f"missing {sorted(must301 - got301)}"
        )
    return problems


def check_run(batch: Batch, displays: list[str], document: dict, returncode: int, stderr: str,
              granules: dict[tuple[str, str], tuple[int, int]]) -> dict[int, list[str]]:  # fmt: skip
    """Problems per model index (-1: the run as a whole) for one CLI call over ``batch``.

    ``displays[i]`` is model i's file as the CLI names it; ``granules[(target, precision)]`` the
    channel granule (input, output) from the target's profile.
    """
    problems: dict[int, list[str]] = {}

    def fail(index: int, text: str) -> None:
        problems.setdefault(index, []).append(text)

    if "Traceback" in stderr:
        fail(-1, f"a traceback on stderr:\n{stderr[-3000:]}")
    results = document["results"]
    by_file: dict[str, list[dict]] = {}
    for result in results:
        by_file.setdefault(result["model"].partition("::")[0], []).append(result)
    any_error = any(r["status"] == "error" for r in results)
    for index, (model, file_display) in enumerate(zip(batch.models, displays)):
        display = f"{file_display}::{model.name}"
        got = by_file.pop(file_display, [])
        # One result per target, error results included (a model that fails to build too).
        expected_count = len(batch.targets)
        if len(got) != expected_count:
            fail(index, f"{len(got)} results, expected {expected_count}: {got}")
            continue
        for result in got:
            if model.invalid is not None:
                _check_error(model, display, result, fail_to=lambda text: fail(index, text))
                continue
            if result["status"] != "ok":
                fail(index, f"status {result['status']} on {result['target']}: {result['error']}")
                continue
            if tuple(result["input_shape"]) != model.input_shape:
                fail(index, f"input shape {result['input_shape']}, expected {list(model.input_shape)}")
            summary = result["summary"]
            if summary["macs"] != expected_macs(model):
                fail(index, f"MACs {summary['macs']}, expected {expected_macs(model)}")
            if summary["params"] != expected_params(model):
                fail(index, f"params {summary['params']}, expected {expected_params(model)}")
            granule = granules[(result["target"], result["precision"])]
            for text in check_result_findings(model, display, result, granule):
                fail(index, text)
    if by_file:
        fail(-1, f"results for files not linted: {sorted(by_file)}")
    if any_error and returncode != 2:
        fail(-1, f"exit code {returncode} with an error result; expected 2")
    if not any_error and returncode not in (0, 1):
        fail(-1, f"exit code {returncode} with no error result")
    if not any_error:
        warned = any(f["severity"] in ("warning", "error") for r in results for f in r["findings"])
        if returncode != (1 if warned else 0):
            fail(-1, f"exit code {returncode}, expected {1 if warned else 0}")
    return problems


def _check_error(model: GeneratedModel, display: str, result: dict, fail_to) -> None:
    invalid = model.invalid
    assert invalid is not None
    error = result.get("error") or ""
    if result["status"] != "error":
        fail_to(f"status {result['status']} for an invalid model ({invalid.reason})")
        return
    file_display = display.partition("::")[0]
    if display not in error:
        fail_to(f"the error does not name {display}: {error!r}")
    if "Traceback" in error or "\n\n" in error.strip():
        fail_to(f"the error is not one paragraph: {error!r}")
    if "cnnlint bug" in error or "cnnlint failed" in error:
        fail_to(f"an internal error for an invalid model: {error!r}")
    if invalid.stage == "build":
        line = model.layers[invalid.path].line
        if f"{file_display}:{line}" not in error:
            fail_to(f"the build error does not point at {file_display}:{line}: {error!r}")
    elif f"{file_display}:{invalid.forward_line}" not in error:
        fail_to(f"the forward error does not point at {file_display}:{invalid.forward_line}: {error!r}")


# ---------------------------------------------------------------------------- running the CLI
@dataclass
class Run:
    batch: Batch
    displays: list[str]  # each model's file as the CLI names it
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    document: dict | None  # None when stdout is not JSON

    def problems(self) -> dict[int, list[str]]:
        if self.document is None:
            return {-1: [f"stdout is not JSON (exit {self.returncode}):\n{self.stdout[:2000]}\n"
                         f"stderr:\n{self.stderr[-3000:]}"]}  # fmt: skip
        return check_run(self.batch, self.displays, self.document, self.returncode, self.stderr,
                         granules(self.batch))  # fmt: skip


def granules(batch: Batch) -> dict[tuple[str, str], tuple[int, int]]:
    """(target, precision) -> the channel granule (input, output) from the target's profile."""
    from cnnlint.profile import load_profile

    table = {}
    for target in batch.targets:
        profile = load_profile(target)
        precision = batch.precision or profile.default_precision
        granule = profile.channel_granule[precision]
        table[(profile.name, precision)] = (granule.input, granule.output)
    return table


def write_batch(batch: Batch, folder, first_index: int = 0) -> list[str]:
    """One file per model in ``folder``; returns the file names (relative to ``folder``)."""
    names = []
    for offset, model in enumerate(batch.models):
        name = file_name(first_index + offset)
        (folder / name).write_text(model.source)
        names.append(name)
    return names


def cli_args(batch: Batch, files: list[str], *extra: str) -> list[str]:
    args = [*files, "--format", "json"]
    for target in batch.targets:
        args += ["--target", target]
    if batch.precision:
        args += ["--precision", batch.precision]
    return [*args, *extra]


def lint_batch(cnnlint: str, batch: Batch, folder, *extra: str, timeout: float = 600) -> Run:
    """Write the batch's files into ``folder`` and lint them all in one ``cnnlint`` process."""
    import json
    import subprocess

    files = write_batch(batch, folder)
    args = cli_args(batch, files, *extra)
    proc = subprocess.run([cnnlint, *args], cwd=folder, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    try:
        document = json.loads(proc.stdout)
    except ValueError:
        document = None
    return Run(batch, files, args, proc.returncode, proc.stdout, proc.stderr, document)


def describe(run: Run, problems: dict[int, list[str]]) -> str:
    """A failure report: each failing model's problems and its generated source."""
    parts = [f"cnnlint {' '.join(run.args)}"]
    for index, texts in sorted(problems.items()):
        if index < 0:
            parts.append("the run: " + "\n  ".join(texts))
            continue
        model = run.batch.models[index]
        parts.append(f"{run.displays[index]}::{model.name}:\n  " + "\n  ".join(texts))
        parts.append(model.source)
    return "\n".join(parts)
