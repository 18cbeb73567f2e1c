"""Stage 1, load: a ModelSpec (:mod:`cnnlint.spec`) -> nn.Module instances built on ``meta``.

A file spec without a name lints every nn.Module subclass defined in the file that builds with
no arguments (components of another such model excepted), plus the factory functions named in
``[tool.cnnlint.models]``.

While a model is built, every ``nn.Module.__init__`` notes where it was called from: the innermost
frame outside torch and outside the constructor chain of the module itself. That is the line a
user edits to change the layer, and the line every finding points at.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlint.core import Shape, SourceLocation
from cnnlint.errors import LoadError, NoModelsError
from cnnlint.frames import frame_location, is_library_frame, is_package_file, where_raised
from cnnlint.paths import display_path
from cnnlint.spec import ModelSpec
from cnnlint.watch import ModelTimeout, Watch

_MAX_FRAMES = 64
_CNNLINT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")


@dataclass
class LoadedModel:
    name: str
    module: nn.Module
    input_shapes: list[Shape]
    sites: dict[str, SourceLocation]  # module path -> where it was constructed (edit_site)
    built_on: str  # a _BUILD_MODES key: "meta", "meta-weights" or "cpu"
    notes: list[str] = field(default_factory=list)
    # module path -> its construction chain, outermost call first (model -> block -> helper)
    chains: dict[str, list[SourceLocation]] = field(default_factory=dict)


@dataclass
class ModelSettings:
    """Per-model settings from ``[tool.cnnlint.models]`` (already validated by cnnlint.config)."""

    kwargs: dict[str, Any] = field(default_factory=dict)
    input_shapes: list[Shape] | None = None


# ---------------------------------------------------------------------------- construction sites
Chain = list[SourceLocation]  # construction frames, innermost first


@contextlib.contextmanager
def record_construction_sites() -> Iterator[dict[int, tuple[nn.Module, Chain]]]:
    """Patch ``nn.Module.__init__`` to note where each module is created.

    Yields a dict ``id(module) -> (module, chain)``: the module is kept so its id stays unique;
    the chain is every frame from the constructor call out to the code cnnlint called (the
    factory, or the module imported), innermost first, without torch's, the standard library's
    and the module's own ``__init__`` frames. :func:`edit_site` picks the line a finding shows.
    """
    sites: dict[int, tuple[nn.Module, Chain]] = {}
    original_init = nn.Module.__init__
    where: dict[tuple[types.CodeType, int], SourceLocation] = {}  # one location per call site

    def recording_init(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        if id(self) not in sites:
            chain: Chain = []
            frame = sys._getframe(1)
            for _ in range(_MAX_FRAMES):
                if frame is None or frame.f_code.co_filename.startswith(_CNNLINT_DIR):
                    break  # the loader's own call: the chain ends at the model's code
                # Skip the module's own constructor chain (super().__init__ lines) and library code.
                if not is_library_frame(frame.f_code.co_filename) and (
                    frame.f_locals.get("self") is not self
                ):
                    key = (frame.f_code, frame.f_lasti)
                    if key not in where:
                        where[key] = frame_location(frame)
                    chain.append(where[key])
                frame = frame.f_back
            if chain:
                sites[id(self)] = (self, chain)
        original_init(self, *args, **kwargs)

    nn.Module.__init__ = recording_init  # type: ignore[method-assign]
    try:
        yield sites
    finally:
        nn.Module.__init__ = original_init  # type: ignore[method-assign]


def edit_site(chain: Chain, model_dir: str | None) -> SourceLocation:
    """The line a user edits to change a layer, from its construction chain (innermost first).

    A model that is itself library code (``torchvision.models:mobilenet_v2``): the innermost
    frame in the model's own package directory (``torchvision/models/mobilenetv2.py``, not the
    ``torchvision/ops/misc.py`` helper every conv goes through). The user's own model: the
    innermost frame outside installed packages. Else the innermost frame.
    """
    if model_dir is not None:
        preferred = (site for site in chain if site.path.startswith(model_dir))
    else:
        preferred = (site for site in chain if not is_package_file(site.path))
    return next(preferred, chain[0])


def library_model_dir(obj: Any) -> str | None:
    """The directory of the file that defines ``obj`` (a factory, class or module) when that file
    is in an installed package; None for the user's own code."""
    target = type(obj) if isinstance(obj, nn.Module) else obj
    try:
        filename = inspect.getsourcefile(target) or inspect.getfile(target)
    except (TypeError, OSError):
        return None
    if not filename or not is_package_file(filename):
        return None
    return os.path.join(os.path.dirname(os.path.abspath(filename)), "")


# ---------------------------------------------------------------------------- importing
def import_file(path: Path) -> types.ModuleType:
    label = display_path(path)
    if not path.exists():
        raise LoadError(f"{label}: no such file.")
    if path.is_dir():
        raise LoadError(
            f"{label}: is a directory with no .py files to lint (files git ignores are skipped)."
        )
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise LoadError(f"{label}: cannot read it ({exc.strerror or exc}).") from None
    try:
        source.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LoadError(
            f"{label}: not UTF-8 text (byte {exc.start}); save the file as UTF-8."
        ) from None
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    module_name = f"cnnlint_user_{path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - .py files always get a loader
        raise LoadError(f"{label}: cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # Let the file import its siblings, as it would when run as a script.
    sys.path.insert(0, str(path.resolve().parent))
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[module_name]
        raise LoadError(
            f"{display_path(exc.filename or path)}:{exc.lineno}: syntax error: {exc.msg}."
        ) from None
    except BaseException as exc:  # noqa: BLE001 - user code may raise anything, even SystemExit
        del sys.modules[module_name]
        if isinstance(exc, (KeyboardInterrupt, ModelTimeout)):
            raise
        # A script's top-level code runs when cnnlint imports it; say how to keep it from running.
        hint = (
            " The file runs script code at import: put it under `if __name__ == \"__main__\":`."
            if isinstance(exc, SystemExit) else ""
        )  # fmt: skip
        raise LoadError(
            f"{label}: importing it raised {type(exc).__name__}: {exc}{where_raised(exc, path)}.{hint}"
        ) from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(path.resolve().parent))
    return module


def import_attr(module_name: str, attr: str, display: str) -> Any:
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, (KeyboardInterrupt, ModelTimeout)):
            raise
        raise LoadError(
            f"{display}: cannot import {module_name!r}: {type(exc).__name__}: {exc}."
        ) from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise LoadError(f"{display}: module {module_name!r} has no attribute {attr!r}.")
        target = getattr(target, part)
    return target


# ---------------------------------------------------------------------------- building
def required_parameters(factory: Callable[..., Any]) -> list[str]:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return []
    return [
        name
        for name, param in signature.parameters.items()
        if param.default is inspect.Parameter.empty
        and param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
    ]


def needs_arguments_message(display: str, factory: Callable[..., Any], missing: list[str]) -> str:
    kwargs = ", ".join(f"{name} = ..." for name in missing)
    return (
        f"{display}: {getattr(factory, '__name__', display)}() needs arguments "
        f"({', '.join(missing)}). Give them in pyproject.toml:\n"
        f'    [tool.cnnlint.models."{display}"]\n'
        f"    kwargs = {{ {kwargs} }}"
    )


@contextlib.contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Run the constructor on CPU but move each parameter and buffer to meta as it is registered.

    For constructors that compute with tensors (``torch.arange(...).tolist()``) and so cannot run
    under ``torch.device("meta")``: their arithmetic runs on CPU, their weights are never kept.
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
        yield
    finally:
        nn.Module.register_parameter = register_parameter  # type: ignore[method-assign]
        nn.Module.register_buffer = register_buffer  # type: ignore[method-assign]


# How to build, cheapest first: everything on meta; CPU arithmetic with weights moved to meta as
# they are registered; plain CPU (weights allocated, then moved to meta for tracing).
# Weight initialisers fill values, and meta tensors have none: skipping them is free of effect
# on shapes and saves a third of the build time (their meta kernels run in Python).
_INITIALISERS = [name for name in dir(nn.init) if name.endswith("_") and not name.startswith("_")]
_RANDOM_FILLS = ("uniform_", "normal_", "random_", "bernoulli_", "exponential_", "log_normal_")


def _keep(tensor: Any, *args: Any, **kwargs: Any) -> Any:
    return tensor


@contextlib.contextmanager
def _on_meta_without_initialisers() -> Iterator[None]:
    saved_init = {name: getattr(nn.init, name) for name in _INITIALISERS}
    saved_fills = {name: getattr(torch.Tensor, name) for name in _RANDOM_FILLS}
    for name in _INITIALISERS:
        setattr(nn.init, name, _keep)
    for name in _RANDOM_FILLS:
        setattr(torch.Tensor, name, _keep)
    try:
        with torch.device("meta"):
            yield
    finally:
        for name, function in saved_init.items():
            setattr(nn.init, name, function)
        for name, method in saved_fills.items():
            setattr(torch.Tensor, name, method)


_BUILD_MODES: dict[str, Callable[[], contextlib.AbstractContextManager[Any]]] = {
    "meta": _on_meta_without_initialisers,
    "meta-weights": _parameters_on_meta,
    "cpu": lambda: torch.device("cpu"),
}


def _build(
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


def default_input_shapes(module: nn.Module, display: str) -> list[Shape]:
    """N=1, C = the first conv's in_channels, 224 (2-D), 224 (1-D) or 16x112x112 (3-D)."""
    for sub in module.modules():
        if isinstance(sub, (nn.Conv1d, nn.ConvTranspose1d)):
            return [(1, sub.in_channels, 224)]
        if isinstance(sub, (nn.Conv2d, nn.ConvTranspose2d)):
            return [(1, sub.in_channels, 224, 224)]
        if isinstance(sub, (nn.Conv3d, nn.ConvTranspose3d)):
            return [(1, sub.in_channels, 16, 112, 112)]
        if isinstance(sub, nn.Linear):
            return [(1, sub.in_features)]
    raise LoadError(
        f"{display}: cannot infer an input shape (no conv or linear layer found); "
        "pass --input-shape or set input-shape for this model in [tool.cnnlint.models]."
    )


def _sites_by_path(
    module: nn.Module, sites: dict[int, tuple[nn.Module, Chain]], model_dir: str | None
) -> tuple[dict[str, SourceLocation], dict[str, Chain]]:
    """Each submodule's edit site and construction chain (outermost first), by module path."""
    by_path: dict[str, SourceLocation] = {}
    chains: dict[str, Chain] = {}
    for path, sub in module.named_modules():
        entry = sites.get(id(sub))
        if entry is not None and entry[0] is sub:
            chain = entry[1]
            by_path[path] = _shown(edit_site(chain, model_dir))
            chains[path] = [_shown(site) for site in reversed(chain)]
    return by_path, chains


def _shown(site: SourceLocation) -> SourceLocation:
    return SourceLocation(display_path(site.path), site.line, site.column, site.function)


def _finish(
    display: str,
    module: nn.Module,
    sites: dict[int, tuple[nn.Module, Chain]],
    built_on: str,
    notes: list[str],
    settings: ModelSettings,
    input_override: list[Shape] | None,
    model_dir: str | None = None,
) -> LoadedModel:
    module.eval()  # inference graph: no aux heads, dropout off, BN in eval
    shapes = input_override or settings.input_shapes or default_input_shapes(module, display)
    by_path, chains = _sites_by_path(module, sites, model_dir)
    return LoadedModel(display, module, list(shapes), by_path, built_on, notes, chains)


def _discover(module: types.ModuleType, factory_names: list[str]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name, obj in vars(module).items():
        if (
            inspect.isclass(obj)
            and issubclass(obj, nn.Module)
            and obj.__module__ == module.__name__
            and not inspect.isabstract(obj)
            and not name.startswith("_")
        ):
            found.append((name, obj))
    for name in factory_names:
        obj = getattr(module, name, None)
        if callable(obj) and (name, obj) not in found:
            found.append((name, obj))
    return found


def _timed_out(display: str, stage: str, exc: ModelTimeout, path: Path | None) -> LoadError:
    return LoadError(
        f"{display}: {stage} did not finish within {exc.seconds:g} s{where_raised(exc, path)}; it was "
        "stopped. Fix the loop, or give it longer with --timeout."
    )


def load(
    spec: ModelSpec,
    settings_for: Callable[[ModelSpec], ModelSettings],
    input_override: list[Shape] | None = None,
    factory_names: list[str] | None = None,
    watch: Watch | None = None,
    skip: frozenset[str] = frozenset(),
) -> list[LoadedModel | LoadError]:
    """Load every model a spec names. A model that fails to load becomes a LoadError entry.

    Each import and build runs under ``watch.guard``; models named in ``skip`` (ones a worker
    already crashed on) are not built again.
    """
    watch = watch or Watch()
    if spec.module is not None:
        assert spec.attr is not None
        try:
            with watch.guard(spec.display), record_construction_sites() as import_sites:
                target = import_attr(spec.module, spec.attr, spec.display)
                if isinstance(target, nn.Module):
                    target.to("meta")
                    return [
                        _finish(spec.display, target, import_sites, "cpu", [],
                                settings_for(spec), input_override,
                                library_model_dir(sys.modules.get(spec.module)))
                    ]  # fmt: skip
                return [_load_one(spec.display, target, None, settings_for(spec),
                                  input_override)]  # fmt: skip
        except ModelTimeout as exc:
            return [_timed_out(spec.display, "building the model", exc, None)]

    assert spec.path is not None
    try:
        with watch.guard(display_path(spec.path), importing=True):
            module = import_file(spec.path)
    except ModelTimeout as exc:
        raise _timed_out(display_path(spec.path), "importing it", exc, spec.path) from None
    if spec.attr is not None:
        if not hasattr(module, spec.attr):
            raise LoadError(f"{spec.display}: {display_path(spec.path)} defines no {spec.attr!r}.")
        obj = getattr(module, spec.attr)
        try:
            with watch.guard(spec.display):
                return [_load_one(spec.display, obj, spec.path, settings_for(spec),
                                  input_override)]  # fmt: skip
        except ModelTimeout as exc:
            return [_timed_out(spec.display, "building the model", exc, spec.path)]

    candidates = _discover(module, factory_names or [])
    base = display_path(spec.path)
    results: list[LoadedModel | LoadError] = []
    skipped: list[str] = []
    for name, obj in candidates:
        member = spec.member(name)
        display = member.display
        if display in skip:
            continue
        settings = settings_for(member)
        missing = required_parameters(obj)
        if missing and not settings.kwargs:
            skipped.append(needs_arguments_message(display, obj, missing))
            continue
        try:
            with watch.guard(display):
                results.append(_load_one(display, obj, spec.path, settings, input_override))
        except LoadError as exc:
            exc.model = display
            results.append(exc)
        except ModelTimeout as exc:
            error = _timed_out(display, "building the model", exc, spec.path)
            error.model = display
            results.append(error)
    results = _drop_components(results)
    if not results and not skip:
        if skipped:
            raise LoadError(
                f"{base}: no model in this file builds without arguments.\n" + "\n".join(skipped)
            )
        raise NoModelsError(
            f"{base}: defines no nn.Module subclass to lint. Name one with {base}::Name, or list a "
            f"factory function under [tool.cnnlint.models]."
        )
    return results


def _drop_components(results: list[LoadedModel | LoadError]) -> list[LoadedModel | LoadError]:
    """A class used inside another model from the same file is a component, not a model."""
    loaded = [r for r in results if isinstance(r, LoadedModel)]
    used_inside: set[type] = set()
    for model in loaded:
        for sub in list(model.module.modules())[1:]:
            used_inside.add(type(sub))
    return [r for r in results if not (isinstance(r, LoadedModel) and type(r.module) in used_inside)]


def _load_one(
    display: str,
    obj: Any,
    path: Path | None,
    settings: ModelSettings,
    input_override: list[Shape] | None,
) -> LoadedModel:
    if isinstance(obj, nn.Module):
        obj.to("meta")
        return _finish(display, obj, {}, "cpu", [], settings, input_override)
    if not callable(obj):
        raise LoadError(f"{display}: is a {type(obj).__name__}, not a model class or function.")
    missing = required_parameters(obj)
    missing = [name for name in missing if name not in settings.kwargs]
    if missing:
        raise LoadError(needs_arguments_message(display, obj, missing))
    module, sites, built_on, notes = _build(display, obj, settings.kwargs, path)
    if built_on != "meta":
        module.to("meta")  # shapes are propagated on meta either way
    return _finish(display, module, sites, built_on, notes, settings, input_override,
                   library_model_dir(obj))
