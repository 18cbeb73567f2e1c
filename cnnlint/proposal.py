"""What a rule proposes, as data: the one-click edit of its layer's construction call, and the
layers its fix builds for ``--measure``. Torch-free, like the rules that declare them.

A rule module that has a concrete fix declares it beside its check (the contract is in
:mod:`cnnlint.check`):

    EDIT      a :class:`LiteralEdit`: one integer argument of the layer's construction call and
              the metrics that hold its value now and the value to write. ``--diff``,
              ``--fix --unsafe-fixes`` and the review's suggestions apply it (:mod:`cnnlint.fixes`).
    MEASURED  a :class:`Measured`: for one finding, the layer (or block) before the fix and after
              it as plain layer specs (:class:`Conv`, :class:`Linear`, :class:`BatchNorm`,
              :class:`Identity`, :class:`Chain`, :class:`Sum`), with the input shape each reads, and
              the metrics holding the rule's own estimate of the two times. ``--measure`` builds
              the specs as torch modules and times them on this machine (:mod:`cnnlint.measure`).

As a ruff rule builds its own ``Fix``, the rule states its change; the fixes and the measure
machinery ask the rule registry for these declarations and know no rule themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Union

from cnnlint.core import Layer, Shape

if TYPE_CHECKING:
    from cnnlint.results import Finding

# The arguments a LiteralEdit may rewrite: those cnnlint.fixes can find in torch's layer calls
# (positional or keyword; a Linear's out_features is its out_channels).
EDIT_ARGUMENTS = ("out_channels", "groups")


# ----------------------------------------------------------------------------- the one-click edit
@dataclass(frozen=True)
class LiteralEdit:
    """A fix that rewrites one integer literal of the layer's construction call:
    ``nn.Conv2d(16, 40, 3)`` -> ``nn.Conv2d(16, 48, 3)``. The values come from the finding's
    metrics, which the JSON report keeps too (the review bot reads them)."""

    argument: str  # one of EDIT_ARGUMENTS
    current: str  # metric holding the value the call has now
    suggested: str  # metric holding the value to write
    prefer: Literal["max", "min"]  # when targets disagree on the value
    follow_up: str = ""  # what else the edit asks of the model ({new}: the new value)
    # (metric of the layer's estimated time now, metric of its time after the edit): the edit is
    # offered only where the target's own estimate says it is no slower (cost.is_slower).
    no_slower: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.argument not in EDIT_ARGUMENTS:
            raise ValueError(f"LiteralEdit argument {self.argument!r}: one of {', '.join(EDIT_ARGUMENTS)}")
        if self.prefer not in ("max", "min"):
            raise ValueError(f"LiteralEdit prefer {self.prefer!r}: 'max' or 'min'")


# ----------------------------------------------------------------------------- layers, as data
@dataclass(frozen=True)
class Conv:
    """``nn.Conv1d/2d/3d`` (by the kernel's rank) with these arguments."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...] | int | str
    dilation: tuple[int, ...]
    groups: int = 1
    bias: bool = False

    def __post_init__(self) -> None:
        for name in ("kernel_size", "stride", "dilation"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if isinstance(self.padding, list):
            object.__setattr__(self, "padding", tuple(self.padding))


@dataclass(frozen=True)
class Linear:
    """``nn.Linear(in_features, out_features, bias)``."""

    in_features: int
    out_features: int
    bias: bool = True


@dataclass(frozen=True)
class BatchNorm:
    """``nn.BatchNorm1d/2d/3d(channels)`` for maps of ``dims`` spatial dimensions."""

    channels: int
    dims: int = 2


@dataclass(frozen=True)
class Identity:
    """The input itself (a RepVGG block's identity branch)."""


@dataclass(frozen=True)
class Chain:
    """Layers applied one after the other (``nn.Sequential``)."""

    layers: tuple[Spec, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))


@dataclass(frozen=True)
class Sum:
    """Parallel branches that read one input, their outputs summed (a training-time RepVGG
    block)."""

    branches: tuple[Spec, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "branches", tuple(self.branches))


Spec = Union[Conv, Linear, BatchNorm, Identity, Chain, Sum]


@dataclass(frozen=True)
class Variant:
    """One finding's fix to time: the layers now and after the fix, each with its input shape."""

    fix: str  # what changes, for people: "out_channels 24 -> 32"
    before: Spec
    after: Spec
    before_input: Shape
    after_input: Shape | None = None  # None: the same input as before

    def __post_init__(self) -> None:
        object.__setattr__(self, "before_input", tuple(self.before_input))
        object.__setattr__(self, "after_input", tuple(self.after_input or self.before_input))


@dataclass(frozen=True)
class Measured:
    """How ``--measure`` times a rule's fix: ``variant(finding, layer)`` states the finding's
    layers before and after the fix (None where it has no concrete one), and ``estimated`` names
    the metrics (ms) that hold the rule's own estimate of the two times, to set beside the
    measurement."""

    variant: Callable[[Finding, Layer], Variant | None]
    estimated: tuple[str, str]  # (before, after)


# ----------------------------------------------------------------------------- helpers for rules
def conv_of(layer: Layer, **changes: Any) -> Conv:
    """The spec of a conv with the layer's geometry, some of it changed (channels, groups,
    kernel, ...).

    A functional conv records no stride or padding: the stride then follows from the shapes and
    the padding keeps the map ("same"), as most convs do."""
    attrs = layer.attrs
    kernel = tuple(changes.get("kernel_size", attrs.get("kernel_size") or (1,)))
    dims = len(kernel)
    stride = attrs.get("stride") or tuple(max(1, -(-i // max(o, 1))) for i, o in
                                          zip(layer.input_shape[2:], layer.output_shape[2:]))  # fmt: skip
    args: dict[str, Any] = {
        "in_channels": attrs["in_channels"], "out_channels": attrs["out_channels"],
        "kernel_size": kernel, "stride": tuple(stride),
        "padding": attrs.get("padding", tuple(k // 2 for k in kernel)),
        "dilation": attrs.get("dilation") or (1,) * dims, "groups": attrs.get("groups", 1),
        "bias": bool(attrs.get("bias", False)),
    }  # fmt: skip
    args.update(changes)
    if args["padding"] == "same" and any(s != 1 for s in args["stride"]):
        args["padding"] = tuple(k // 2 for k in args["kernel_size"])  # torch refuses "same" strided
    return Conv(**args)


def with_channels(shape: Shape, channels: int) -> Shape:
    """``shape`` (batch, channels, ...) with another channel count."""
    return (shape[0], channels, *shape[2:])
