"""Input shapes: the command line's, then pyproject.toml's, then the size the model declares,
then a guess from the first layer that runs (its channels, and a size for its rank)."""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn

from cnnlint.core import DEFAULT_INPUT_DTYPE, Shape
from cnnlint.errors import LoadError

_FIRST_LAYERS = (nn.Conv1d, nn.ConvTranspose1d, nn.Conv2d, nn.ConvTranspose2d, nn.Conv3d,
                 nn.ConvTranspose3d, nn.Linear)  # fmt: skip


def input_shapes_for(
    module: nn.Module,
    display: str,
    option: list[Shape] | None = None,
    configured: list[Shape] | None = None,
) -> tuple[list[Shape], str]:
    """The input shapes to trace with and their ``cnnlint.results.INPUT_SOURCES`` key: the command line, then
    pyproject.toml, then the size the model declares, then a guess."""
    if option:
        return list(option), "option"
    if configured:
        return list(configured), "config"
    declared = declared_input_shapes(module)
    if declared:
        return declared, "declared"
    guessed = default_input_shapes(module, display)
    sized = _with_declared_size(module, guessed)
    return (sized, "declared") if sized else (guessed, "guess")


def input_dtypes_for(display: str, shapes: list[Shape], given: list[str] | None) -> list[str]:
    """One element type per input: none given is float32 for all (an empty list), one is for
    every input, several must be one per input shape."""
    if given and len(given) not in (1, len(shapes)):
        raise LoadError(
            f"{display}: input-dtype names {len(given)} types ({', '.join(given)}) for "
            f"{len(shapes)} input shape(s); give one type for every input, or one per input-shape."
        )
    if not given or all(name == DEFAULT_INPUT_DTYPE for name in given):
        return []
    return given * len(shapes) if len(given) == 1 else list(given)


def declared_input_shapes(module: nn.Module) -> list[Shape] | None:
    """``(1, C, H, W)`` from timm's ``pretrained_cfg["input_size"]`` (or the older
    ``default_cfg``), on a model built by a timm factory or a user class carrying such a dict."""
    for attr in ("pretrained_cfg", "default_cfg"):
        cfg = getattr(module, attr, None)
        size = cfg.get("input_size") if isinstance(cfg, dict) else None
        if _sizes(size) and 2 <= len(size) <= 4:
            return [(1, *size)]
    return None


# Attributes in which model zoos declare the input size they were built for, on the model itself:
# an int (square) or the spatial sizes, optionally with the channels first (pytorchcv's `in_size`,
# torchvision's `input_size` in some families, `img_size` / `image_size` in ViT-style code).
SIZE_ATTRIBUTES = ("in_size", "input_size", "img_size", "image_size")


def _sizes(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in value)  # fmt: skip


def _with_declared_size(module: nn.Module, guessed: list[Shape]) -> list[Shape] | None:
    """The guessed shape at the spatial size a :data:`SIZE_ATTRIBUTES` attribute declares, or
    None. The guess gives the batch, channels and rank; a linear-first model has no size."""
    (n, c, *spatial), rank = guessed[0], len(guessed[0]) - 2
    if rank < 1:
        return None
    for attr in SIZE_ATTRIBUTES:
        value = getattr(module, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            value = (value,) * rank
        if not _sizes(value):
            continue
        value = tuple(value)
        if len(value) == rank:
            return [(n, c, *value)]
        if len(value) == rank + 1:
            return [(n, *value)]
    return None


# Guessed input sizes per spatial rank, tried in order until one traces: the common size first,
# then one whose sides divide by 32 (five stride-2 stages; 3-D U-Nets and Swin-style patch merging
# need it), then the larger frame video transformers are built for.
GUESSED_SIZES: dict[type, tuple[tuple[int, ...], ...]] = {
    nn.Conv1d: ((224,), (256,)),
    nn.Conv2d: ((224, 224), (256, 256)),
    nn.Conv3d: ((16, 112, 112), (32, 128, 128), (16, 224, 224)),
}
for _conv, _transposed in ((nn.Conv1d, nn.ConvTranspose1d), (nn.Conv2d, nn.ConvTranspose2d),
                           (nn.Conv3d, nn.ConvTranspose3d)):  # fmt: skip
    GUESSED_SIZES[_transposed] = GUESSED_SIZES[_conv]


def larger_guesses(shapes: list[Shape]) -> list[list[Shape]]:
    """The guesses after ``shapes`` (one guessed input) in :data:`GUESSED_SIZES`, in order."""
    if len(shapes) != 1:
        return []
    (n, c, *spatial) = shapes[0]
    sizes = next((s for s in GUESSED_SIZES.values() if s[0] == tuple(spatial)), ())
    return [[(n, c, *size)] for size in sizes[1:]]


def default_input_shapes(module: nn.Module, display: str) -> list[Shape]:
    """N=1, C = the in_channels of the first conv that runs (asked of forward() on meta only when
    the first registered one does not read 1, 3 or 4 channels, as a stem does), the first of
    :data:`GUESSED_SIZES` for its rank; a linear layer first: its in_features."""
    registered = [sub for sub in module.modules() if isinstance(sub, _FIRST_LAYERS)]
    if not registered:
        raise LoadError(
            f"{display}: cannot infer an input shape (no conv or linear layer found); "
            "pass --input-shape or set input-shape for this model in [tool.cnnlint.models]."
        )
    first = registered[0]
    if _in_size(first) not in _IMAGE_CHANNELS:  # not a stem: ask which layer runs first
        first = _first_layer_run(module, registered) or first
    channels = _in_size(first)
    if channels not in _IMAGE_CHANNELS and not isinstance(first, nn.Linear):
        channels = _image_channels(module, first) or channels
    return [(1, channels, *_first_guess(first))]


def _holds_values(module: nn.Module) -> bool:
    """Whether any weight is off meta: a forward probe would then compute for real."""
    return any(t.device.type != "meta" for t in itertools.chain(module.parameters(), module.buffers()))


def _image_channels(module: nn.Module, first: nn.Module) -> int | None:
    """The image channel count (3, then 1 or 4) from which forward() reaches ``first`` with the
    channels it reads: a space-to-depth stem (TResNet's, YOLOv5's Focus) makes the first conv read
    48 or 12 channels of a 3-channel image. None when no image channel count does (the model
    reads features, not an image), or the module holds real weights."""
    if _holds_values(module):
        return None

    def reached(sub: nn.Module, args: Any) -> None:
        raise _ReachedWith(args[0] if args else None)

    hook = first.register_forward_pre_hook(reached)
    try:
        for channels in (3, 1, 4):
            try:
                with torch.no_grad():
                    module(torch.empty((1, channels, *_first_guess(first)), device="meta"))
            except _ReachedWith as found:
                seen = found.value
                if isinstance(seen, torch.Tensor) and seen.dim() > 1 and seen.shape[1] == _in_size(first):
                    return channels
            except Exception:  # noqa: BLE001 - this channel count does not reach the layer
                continue
    finally:
        hook.remove()
    return None


def _first_guess(layer: nn.Module) -> tuple[int, ...]:
    return next((sizes[0] for kind, sizes in GUESSED_SIZES.items() if isinstance(layer, kind)), ())


# A first registered layer reading this many channels (grey, RGB, RGBA) is taken as the stem
# without running forward(); anything else may be a block registered before it.
_IMAGE_CHANNELS = (1, 3, 4)


def _in_size(layer: nn.Module) -> int:
    return layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels


class _Reached(Exception):
    def __init__(self, module: nn.Module) -> None:
        self.module = module


class _ReachedWith(Exception):
    """A layer was reached with this input."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _first_layer_run(module: nn.Module, registered: list[nn.Module]) -> nn.Module | None:
    """The conv or linear layer forward() calls first, found by running it on meta tensors up
    to that call (an SE block's conv may be registered before the stem). None if the forward
    fails before any such layer or the module holds real weights."""
    if _holds_values(module):
        return None

    def reached(sub: nn.Module, args: Any) -> None:
        raise _Reached(sub)

    probe = registered[0]
    shape = (1, _in_size(probe), *_first_guess(probe))
    hooks = [sub.register_forward_pre_hook(reached) for sub in set(registered)]
    try:
        with torch.no_grad():
            module(torch.empty(shape, device="meta"))
    except _Reached as found:
        return found.module
    except Exception:  # noqa: BLE001 - the guess stays the first registered layer
        return None
    finally:
        for hook in hooks:
            hook.remove()
    return None
