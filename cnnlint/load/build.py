"""The meta build: a factory called in the cheapest build mode that works, so no weight is
allocated where it can be helped, and meta copies of models given as instances."""

from __future__ import annotations

import contextlib
import copy
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlint.errors import LoadError
from cnnlint.frames import where_raised
from cnnlint.load.sites import Chain, record_construction_sites
from cnnlint.watch import ModelTimeout


def meta_copy(module: nn.Module, label: str = "model") -> nn.Module:
    """A deep copy of ``module`` whose parameters and buffers are ``meta`` tensors.

    The copy shares nothing with the original; no weight is copied, whatever device it is on.
    """
    memo: dict[int, Any] = {}
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        meta = tensor.detach().to("meta")
        if isinstance(tensor, nn.Parameter):
            meta = nn.Parameter(meta, requires_grad=tensor.requires_grad)
        memo[id(tensor)] = meta
    try:
        return copy.deepcopy(module, memo)
    except Exception as exc:  # noqa: BLE001 - whatever the user's attributes refuse
        raise LoadError(
            f"{label}: cannot copy the model to trace it without touching it "
            f"(copy.deepcopy failed: {type(exc).__name__}: {exc}). Lint it by spec instead, "
            "e.g. cnnlint.lint('models/net.py::Net')."
        ) from None


def twin_with_sites(
    module: nn.Module, sites: dict[int, tuple[nn.Module, Chain]], label: str
) -> tuple[nn.Module, dict[int, tuple[nn.Module, Chain]]]:
    """A meta twin of a module-level instance, with the construction sites of the original's
    submodules carried over to the twin's (same structure, so same module paths)."""
    twin = meta_copy(module, label)
    carried = {}
    for (_, original), (_, copied) in zip(module.named_modules(), twin.named_modules()):
        entry = sites.get(id(original))
        if entry is not None and entry[0] is original:
            carried[id(copied)] = (copied, entry[1])
    return twin, carried

# Weight initialisers fill values, and meta tensors have none: skipping them on meta tensors is
# free of effect on shapes and saves a third of the build time (their meta kernels run in
# Python). A CPU tensor a constructor computes with is still filled as written.
_INITIALISERS = [name for name in dir(nn.init) if name.endswith("_") and not name.startswith("_")]
_RANDOM_FILLS = ("uniform_", "normal_", "random_", "bernoulli_", "exponential_", "log_normal_")


def _unless_meta(fill: Callable[..., Any]) -> Callable[..., Any]:
    def skip_on_meta(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(tensor, torch.Tensor) and tensor.is_meta:
            return tensor
        return fill(tensor, *args, **kwargs)

    return skip_on_meta


@contextlib.contextmanager
def _initialisers_skipped_on_meta() -> Iterator[None]:
    saved_init = {name: getattr(nn.init, name) for name in _INITIALISERS}
    saved_fills = {name: getattr(torch.Tensor, name) for name in _RANDOM_FILLS}
    for name, function in saved_init.items():
        setattr(nn.init, name, _unless_meta(function))
    for name, method in saved_fills.items():
        setattr(torch.Tensor, name, _unless_meta(method))
    try:
        yield
    finally:
        for name, function in saved_init.items():
            setattr(nn.init, name, function)
        for name, method in saved_fills.items():
            setattr(torch.Tensor, name, method)


@contextlib.contextmanager
def _on_meta() -> Iterator[None]:
    with _initialisers_skipped_on_meta(), torch.device("meta"):
        yield


@contextlib.contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Run the constructor on CPU but move each parameter and buffer to meta as it is registered.

    For constructors that compute with tensors (``torch.arange(...).tolist()``, torchvision's
    RegNet) and so cannot run under ``torch.device("meta")``: their arithmetic runs on CPU, their
    weights are never kept, and initialisers skip the weights already on meta.
    """
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def parameter_on_meta(self: nn.Module, name: str, param: Any) -> None:
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(self, name, param)

    def buffer_on_meta(self: nn.Module, name: str, tensor: Any, persistent: bool = True) -> None:
        if tensor is not None and tensor.device.type != "meta":
            tensor = tensor.to("meta")
        register_buffer(self, name, tensor, persistent)

    nn.Module.register_parameter = parameter_on_meta  # type: ignore[method-assign]
    nn.Module.register_buffer = buffer_on_meta  # type: ignore[method-assign]
    try:
        with _initialisers_skipped_on_meta():
            yield
    finally:
        nn.Module.register_parameter = register_parameter  # type: ignore[method-assign]
        nn.Module.register_buffer = register_buffer  # type: ignore[method-assign]


# How to build, cheapest first: everything on meta; CPU arithmetic with weights moved to meta as
# they are registered; plain CPU (weights allocated, then moved to meta for tracing).
_BUILD_MODES: dict[str, Callable[[], contextlib.AbstractContextManager[Any]]] = {
    "meta": _on_meta,
    "meta-weights": _parameters_on_meta,
    "cpu": lambda: torch.device("cpu"),
}


def build_model(
    display: str, factory: Callable[..., Any], kwargs: dict[str, Any], path: Path | None
) -> tuple[nn.Module, dict[int, tuple[nn.Module, Chain]], str, list[str]]:
    """Call the factory in the cheapest build mode that works (see _BUILD_MODES)."""
    notes: list[str] = []
    first_error: BaseException | None = None
    for mode, context in _BUILD_MODES.items():
        with record_construction_sites() as sites:
            try:
                with context():
                    module = factory(**kwargs)
            except BaseException as exc:  # noqa: BLE001 - user constructors raise anything
                if isinstance(exc, (KeyboardInterrupt, ModelTimeout)):
                    raise
                first_error = first_error or exc
                if mode != "cpu":
                    continue
                raise LoadError(
                    f"{display}: building the model raised {type(exc).__name__}: {exc}"
                    f"{where_raised(exc, path)}."
                ) from None
        if not isinstance(module, nn.Module):
            raise LoadError(
                f"{display}: {getattr(factory, '__name__', 'the factory')}() returned "
                f"{type(module).__name__}, not an nn.Module."
            )
        if mode != "meta" and first_error is not None:
            notes.append(
                f"built with {mode}: building on the meta device failed with "
                f"{type(first_error).__name__}: {first_error}"
            )
        return module, sites, mode, notes
    raise AssertionError("unreachable")  # pragma: no cover


def build_on_cpu(factory: Callable[..., Any], kwargs: dict[str, Any]) -> nn.Module:
    """The model built on CPU as its author builds it, initialisers included, seeded."""
    with torch.random.fork_rng(devices=[]), torch.device("cpu"):
        torch.manual_seed(0)
        module = factory(**kwargs)
    return module.eval()
