"""Stage 1, load: a ModelSpec (:mod:`cnnlint.spec`) -> nn.Module instances built on ``meta``.

A file spec without a name lints every nn.Module subclass defined in the file that builds with
no arguments (components of another such model excepted), plus the factory functions named in
``[tool.cnnlint.models]``.

While a model is built, every ``nn.Module.__init__`` notes where it was called from: the innermost
frame outside torch and outside the constructor chain of the module itself. That is the line a
user edits to change the layer, and the line every finding points at.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import hashlib
import importlib
import importlib.util
import inspect
import itertools
import json
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
from cnnlint.frames import frame_location, is_library_frame, is_package_file, pick_site, where_raised
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
    sites: dict[str, SourceLocation]  # module path -> where it was constructed (pick_site)
    built_on: str  # a _BUILD_MODES key: "meta", "meta-weights" or "cpu"
    notes: list[str] = field(default_factory=list)
    input_source: str = "guess"  # a cnnlint.results.INPUT_SOURCES key: where input_shapes came from
    # module path -> its construction chain, outermost call first (model -> block -> helper)
    chains: dict[str, list[SourceLocation]] = field(default_factory=dict)
    # Builds the model again on CPU with its own initialisation, for a forward that needs real
    # values (the trace stage's real run): tensors a constructor computes and keeps outside
    # parameters and buffers (a detector's anchors) have values only then. None for a model
    # given as an instance.
    rebuild: Callable[[], nn.Module] | None = None
    # The model's own package directory when the model is library code (torchvision.models:x),
    # None for the user's own: where findings point (cnnlint.frames.pick_site).
    model_dir: str | None = None


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
    and the module's own ``__init__`` frames. :func:`cnnlint.frames.pick_site` picks the line a finding shows.
    """
    sites: dict[int, tuple[nn.Module, Chain]] = {}
    original_init = nn.Module.__init__
    # one location per call site (with the file: code objects from two files can compare equal)
    where: dict[tuple[str, types.CodeType, int], SourceLocation] = {}

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
                    key = (frame.f_code.co_filename, frame.f_code, frame.f_lasti)
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
# Where installed code lives: modules from here are shared by every spec and never forgotten.
_INSTALLED_DIRS = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)
_scope_depth = 0


def _is_project_module(module: types.ModuleType | None) -> bool:
    """A module imported from the user's project: not built in, not the standard library, not
    torch, cnnlint or an installed package."""
    file = getattr(module, "__file__", None)
    if not file:
        locations = list(getattr(module, "__path__", None) or [])  # a namespace package
        file = locations[0] if locations else None
    if not isinstance(file, str):
        return False
    file = os.path.abspath(file)
    return not is_library_frame(file) and not any(d in file for d in _INSTALLED_DIRS)


def project_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` with a pyproject.toml or a .git."""
    folder = (start if start.is_dir() else start.parent).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / "pyproject.toml").is_file() or (candidate / ".git").exists():
            return candidate
    return None


@contextlib.contextmanager
def spec_imports(spec: ModelSpec) -> Iterator[None]:
    """Import a spec's code as if it ran alone, and forget it afterwards.

    A file's own folder goes first on ``sys.path`` (so ``from blocks import block`` finds its
    sibling, as when the file runs as a script); an import spec gets the project root (the
    nearest pyproject.toml or git root above the working directory). When the scope ends, every
    module the spec brought into ``sys.modules`` from the project is removed again, so the next
    spec's ``blocks`` is its own, in this process and in a reused worker. Installed packages
    (torch above all) stay imported. Nested scopes are one scope: the outermost forgets.
    """
    global _scope_depth
    if _scope_depth:
        yield
        return
    if spec.path is not None:
        folder: Path | None = (spec.path if spec.path.is_dir() else spec.path.parent).resolve()
    else:
        folder = project_root(Path.cwd())
    entry = str(folder) if folder is not None else None
    before = set(sys.modules)
    saved_path = list(sys.path)
    if entry is not None:
        sys.path.insert(0, entry)
    _scope_depth += 1
    try:
        yield
    finally:
        _scope_depth -= 1
        sys.path[:] = saved_path
        for name in set(sys.modules) - before:
            # cnnlint's own rules live beside the package in a checkout: never forgotten.
            if name.partition(".")[0] != "cnnlint" and _is_project_module(sys.modules.get(name)):
                del sys.modules[name]
        importlib.invalidate_caches()


def import_file(path: Path) -> types.ModuleType:
    """Execute ``path`` as a fresh module (never a cached one: the file may have changed), under
    the ``spec_imports`` scope of its spec."""
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
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - .py files always get a loader
        raise LoadError(f"{label}: cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    folder = str(path.resolve().parent)
    if not sys.path or sys.path[0] != folder:  # a file imported outside spec_imports
        sys.path.insert(0, folder)
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
        if isinstance(exc, ImportError) and "relative import" in str(exc):
            hint = " " + _relative_import_hint(path)
        raise LoadError(
            f"{label}: importing it raised {type(exc).__name__}: {exc}{where_raised(exc, path)}.{hint}"
        ) from None
    return module


def _relative_import_hint(path: Path) -> str:
    """How to lint a file that is part of a package: by its import path, from the project root."""
    root = project_root(path)
    dotted = None
    if root is not None:
        with contextlib.suppress(ValueError):
            dotted = ".".join(path.resolve().with_suffix("").relative_to(root).parts)
    example = f"{dotted}:ModelName" if dotted else "package.module:ModelName"
    where = f" (from {display_path(root) or '.'}, the project root)" if root is not None else ""
    return (
        "The file uses a relative import, so it can only be imported as part of its package: "
        f"lint it by its import path, e.g. `cnnlint {example}`{where}; cnnlint puts the project "
        "root (the nearest folder with a pyproject.toml or .git) on sys.path for such specs."
    )


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


def _twin_with_sites(
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
    """Say what the constructor needs, which zero-argument factories in the same file build it,
    and the pyproject.toml snippet, unless an argument is something TOML cannot express."""
    name = getattr(factory, "__name__", display)
    head = f"{display}: {name}() needs arguments ({', '.join(missing)})."
    factories, examples = _factories_and_examples(factory, missing)
    prefix = display.rpartition("::")[0] + "::" if "::" in display else display.rpartition(":")[0] + ":"
    lint_factory = ""
    if factories:
        names = ", ".join(f"{prefix}{f}" for f in factories)
        lint_factory = f" Lint a zero-argument factory in the same file that builds it: {names}."
    unexpressible = {arg: text for arg, (text, literal) in examples.items() if not literal}
    if unexpressible:
        given = "; ".join(f"{arg} is {text}" for arg, text in unexpressible.items())
        return (
            f"{head}{lint_factory} Its arguments cannot go in pyproject.toml: {given}, and TOML holds only numbers, strings, booleans, lists and tables, not a class "
            "or function. "
            + ("" if factories else f"Write a function with no arguments that builds it and lint "
               f"that ({prefix}make_model).")
        ).rstrip()  # fmt: skip
    kwargs = ", ".join(
        f"{arg} = {examples[arg][0] if arg in examples else '...'}" for arg in missing
    )
    return (
        f"{head}{lint_factory}{' Or give' if factories else ' Give'} them in pyproject.toml:\n"
        f'    [tool.cnnlint.models."{display}"]\n'
        f"    kwargs = {{ {kwargs} }}"
    )


def _factories_and_examples(
    factory: Callable[..., Any], missing: list[str]
) -> tuple[list[str], dict[str, tuple[str, bool]]]:
    """Zero-argument functions of the factory's own module that call it, and for each missing
    argument the first value they pass: (its source text, whether TOML can express it)."""
    module = inspect.getmodule(factory)
    name = getattr(factory, "__name__", None)
    if module is None or name is None:
        return [], {}
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return [], {}
    try:
        order = list(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        order = []
    factories: list[str] = []
    examples: dict[str, tuple[str, bool]] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
            continue
        calls = [c for c in ast.walk(node) if isinstance(c, ast.Call) and _called_name(c) == name]
        if not calls:
            continue
        obj = vars(module).get(node.name)
        # A factory returns what it builds; a `main()` that builds and trains a model does not.
        returns = any(isinstance(r, ast.Return) and r.value is not None for r in ast.walk(node))
        if callable(obj) and not required_parameters(obj) and returns:
            factories.append(node.name)
        for call in calls:
            given = dict(zip(order[1:] if order[:1] == ["self"] else order, call.args))
            given.update({k.arg: k.value for k in call.keywords if k.arg})
            for arg in missing:
                if arg in given and arg not in examples:
                    text, literal = _toml_value(given[arg], module)
                    examples[arg] = (text if literal else f"{text} in {node.name}()", literal)
    return factories, examples


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _toml_value(node: ast.expr, module: types.ModuleType) -> tuple[str, bool]:
    """(how to write the value, whether TOML can express it)."""
    text = ast.unparse(node)
    try:
        value = ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        resolved = vars(module).get(text) if isinstance(node, ast.Name) else None
        kind = "a class" if inspect.isclass(resolved) else "a function" if callable(resolved) else (
            "an expression")  # fmt: skip
        return f"{text} ({kind})", False
    if isinstance(value, (bool, int, float, str)) or (
        isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str)) for v in value)
    ):
        return (json.dumps(list(value)) if isinstance(value, tuple) else json.dumps(value)), True
    return f"{text} (not expressible in TOML)", False


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


def _sites_by_path(
    module: nn.Module, sites: dict[int, tuple[nn.Module, Chain]], model_dir: str | None
) -> tuple[dict[str, SourceLocation], dict[str, Chain]]:
    """Each submodule's edit site and construction chain (outermost first), by module path."""
    by_path: dict[str, SourceLocation] = {}
    chains: dict[str, Chain] = {}
    shown: dict[SourceLocation, SourceLocation] = {}  # chains share their outer sites

    def show(site: SourceLocation) -> SourceLocation:
        if site not in shown:
            shown[site] = SourceLocation(display_path(site.path), site.line, site.column, site.function)
        return shown[site]

    for path, sub in module.named_modules():
        entry = sites.get(id(sub))
        if entry is not None and entry[0] is sub:
            chain = entry[1]
            by_path[path] = show(pick_site(chain, model_dir))
            chains[path] = [show(site) for site in reversed(chain)]
    return by_path, chains


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
    shapes, source = input_shapes_for(module, display, input_override, settings.input_shapes)
    by_path, chains = _sites_by_path(module, sites, model_dir)
    return LoadedModel(display, module, shapes, by_path, built_on, notes, source, chains, model_dir=model_dir)


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
    already crashed on) are not built again. The spec's own modules are forgotten afterwards
    (:func:`spec_imports`; the pipeline holds that scope open until the spec is traced).
    """
    with spec_imports(spec):
        return _load(spec, settings_for, input_override, factory_names, watch or Watch(), skip)


def _load(
    spec: ModelSpec,
    settings_for: Callable[[ModelSpec], ModelSettings],
    input_override: list[Shape] | None,
    factory_names: list[str] | None,
    watch: Watch,
    skip: frozenset[str],
) -> list[LoadedModel | LoadError]:
    if spec.module is not None:
        assert spec.attr is not None
        try:
            with watch.guard(spec.display), record_construction_sites() as import_sites:
                target = import_attr(spec.module, spec.attr, spec.display)
                if isinstance(target, nn.Module):  # an instance: lint a meta twin, never change it
                    return [
                        _finish(spec.display, *_twin_with_sites(target, import_sites, spec.display),
                                "cpu", [], settings_for(spec), input_override,
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
            # The class needs arguments: the file's zero-argument factories that build it are
            # linted in its place (they are what the file's author calls).
            factories = _factories_and_examples(obj, missing)[0]
            candidates += [(f, getattr(module, f)) for f in factories
                           if f not in dict(candidates)]  # fmt: skip
            if not factories:
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
    if isinstance(obj, nn.Module):  # an instance: lint a meta twin, never change it
        return _finish(display, meta_copy(obj, display), {}, "cpu", [], settings, input_override)
    if not callable(obj):
        raise LoadError(f"{display}: is a {type(obj).__name__}, not a model class or function.")
    missing = required_parameters(obj)
    missing = [name for name in missing if name not in settings.kwargs]
    if missing:
        raise LoadError(needs_arguments_message(display, obj, missing))
    module, sites, built_on, notes = _build(display, obj, settings.kwargs, path)
    if built_on != "meta":
        module.to("meta")  # shapes are propagated on meta either way
    loaded = _finish(display, module, sites, built_on, notes, settings, input_override,
                     library_model_dir(obj))
    loaded.rebuild = functools.partial(_build_on_cpu, obj, dict(settings.kwargs))
    return loaded


def _build_on_cpu(factory: Callable[..., Any], kwargs: dict[str, Any]) -> nn.Module:
    """The model built on CPU as its author builds it, initialisers included, seeded."""
    with torch.random.fork_rng(devices=[]), torch.device("cpu"):
        torch.manual_seed(0)
        module = factory(**kwargs)
    return module.eval()
