"""Importing a spec's code: a file as a fresh module, or an attribute of an importable module,
under a scope that forgets the spec's own modules afterwards (:func:`spec_imports`)."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cnnlint.errors import LoadError
from cnnlint.frames import is_library_frame, where_raised
from cnnlint.paths import display_path
from cnnlint.spec import ModelSpec
from cnnlint.watch import ModelTimeout

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
