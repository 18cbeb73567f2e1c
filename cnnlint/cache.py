"""The result cache: a re-run over unchanged files answers without importing torch.

An entry holds one file spec's results. It is found by a key that hashes everything the results
depend on other than the project's source files:

- the spec (resolved path and name) and the run's options (precision, select, ignore, input
  shapes, whether the file may hold no model);
- the ``[tool.cnnlint]`` table, and each target's resolved profile (its ``extends`` chain
  merged: the resolved Profile's JSON);
- cnnlint's version and a digest of its own source (so a development checkout does not answer
  with results of older code), the Python version, and every installed distribution with its
  version (torch and the rule plugins among them; read as folder names, importing nothing).

The entry then lists every project file the model's import loaded, with a hash of its content:
the modules that came into ``sys.modules`` during the import from outside the standard library
and site-packages (the named file, the ``blocks.py`` it imports, a project package installed in
editable mode). The entry answers only while every one of them hashes the same, so an edit to
``blocks.py`` re-lints ``model.py``. Within one process that lints several specs, a module that an
earlier spec imported is counted for every later spec too: more re-linting, never a stale answer.

Entries live in ``.cnnlint_cache/`` beside the nearest ``pyproject.toml`` (else the working
directory), with a ``.gitignore`` of ``*`` inside, as ruff's cache has. An entry is JSON and is
validated when read: a corrupt, truncated, foreign or older-format entry is a miss and is
overwritten by the next store, never trusted and never an error. Errors are not cached (a
timeout or a crash may not happen again). Import specs (``package.module:attr``) are not cached:
their code lives in site-packages, which the entry does not hash.

Torch-free: the command line asks the cache before it imports anything of the pipeline's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cnnlint import __version__

DIR_NAME = ".cnnlint_cache"
SCHEMA_VERSION = 1
_ENTRIES = "entries"
_GITIGNORE = "# Automatically created by cnnlint.\n*\n"
_CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by cnnlint.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
# Classes a cached result may hold; anything else in an entry makes it foreign.
_ALLOWED_MODULES = ("cnnlint.results", "cnnlint.core")


# ---------------------------------------------------------------------------- where
def cache_folder(start: Path) -> Path:
    """``.cnnlint_cache`` beside the nearest pyproject.toml above ``start``, else in the cwd."""
    folder = (start if start.is_dir() else start.parent).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate / DIR_NAME
    return Path.cwd() / DIR_NAME


def clean(folder: Path) -> bool:
    """Remove a cache folder; True when there was one."""
    if not (folder / _ENTRIES).is_dir() and not (folder / ".gitignore").is_file():
        return False  # not ours: never delete a folder cnnlint did not make
    shutil.rmtree(folder, ignore_errors=True)
    return True


# ---------------------------------------------------------------------------- what the results depend on
def file_digest(path: str | os.PathLike[str]) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


_environment: dict[str, Any] | None = None


def environment() -> dict[str, Any]:
    """cnnlint, Python and every installed distribution (torch and the rule plugins among
    them): the part of every key that no file spec sets."""
    global _environment
    if _environment is None:
        _environment = {
            "cnnlint": __version__,
            "cnnlint_source": _own_source_digest(),
            "python": sys.version,
            "installed": _installed_distributions(),
        }
    return _environment


def _installed_distributions() -> list[str]:
    """The ``name-version.dist-info`` (and ``.egg-info``) folders on ``sys.path``: torch's
    version and each rule plugin's are among them, so installing, upgrading or removing any
    distribution starts a fresh cache. Read as folder names rather than through
    ``importlib.metadata``, whose import alone costs more than the rest of a cached run."""
    names = set()
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as found:
                names.update(e.name for e in found if e.name.endswith((".dist-info", ".egg-info")))
        except OSError:
            continue  # a zip file, or a folder that is gone
    return sorted(names)


def _own_source_digest() -> str:
    """A digest of cnnlint's own files (code and built-in profiles)."""
    import cnnlint

    digest = hashlib.sha256()
    roots = [Path(cnnlint.__file__).parent]
    rules_spec = importlib.util.find_spec("cnnlint.rules")
    if rules_spec is not None and rules_spec.submodule_search_locations:
        roots.extend(Path(p) for p in rules_spec.submodule_search_locations)
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".toml") and "__pycache__" not in path.parts:
                digest.update(path.as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def make_key(parts: dict[str, Any]) -> str:
    """The key of an entry: a hash of ``parts`` (spec, options, config, profiles) and the
    environment. ``parts`` must be JSON-serialisable."""
    document = {"schema": SCHEMA_VERSION, "environment": environment(), **parts}
    text = json.dumps(document, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------- recording imports
_STDLIB_DIRS = tuple(
    {os.path.realpath(sysconfig.get_paths()[k]) + os.sep for k in ("stdlib", "platstdlib")}
)
_PACKAGE_PARTS = ("site-packages", "dist-packages")
_CNNLINT_DIR = os.path.realpath(os.path.dirname(os.path.abspath(__file__))) + os.sep
_imported_before: set[str] = set()  # project files earlier specs of this process imported


def project_file(module: Any) -> str | None:
    """The module's file when it is the project's: not the standard library, not an installed
    package, not cnnlint."""
    filename = getattr(module, "__file__", None)
    if not isinstance(filename, str) or not filename:
        return None
    real = os.path.realpath(filename)
    if real.startswith(_STDLIB_DIRS) or real.startswith(_CNNLINT_DIR):
        return None
    if any(part in _PACKAGE_PARTS for part in Path(real).parts):
        return None
    return real if os.path.isfile(real) else None


@contextlib.contextmanager
def recording_imports() -> Iterator[dict[str, str]]:
    """Fill the yielded dict with ``{project file: content hash}`` for the modules imported in
    the block (and, conservatively, those earlier blocks of this process imported)."""
    before = set(sys.modules)
    sources: dict[str, str] = {}
    try:
        yield sources
    finally:
        found = set(_imported_before)
        for name, module in list(sys.modules.items()):
            if name not in before:
                path = project_file(module)
                if path is not None:
                    found.add(path)
        _imported_before.update(found)
        for path in sorted(found):
            digest = file_digest(path)
            if digest is not None:
                sources[path] = digest


# ---------------------------------------------------------------------------- results <-> JSON
def encode(value: Any) -> Any:
    """Results as JSON data; dataclasses carry their class. A finding's Layer is not kept (the
    reports need only its location, as when results come back from a worker process)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {"__class__": f"{type(value).__module__}:{type(value).__qualname__}"}
        for item in dataclasses.fields(value):
            if item.name == "layer":
                continue
            data[item.name] = encode(getattr(value, item.name))
        return data
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot cache a {type(value).__name__}")


def decode(data: Any) -> Any:
    """The inverse of :func:`encode`; raises ValueError on anything it did not write."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if isinstance(data, dict):
        if "__class__" not in data:
            return {k: decode(v) for k, v in data.items()}
        module_name, _, qualname = str(data["__class__"]).partition(":")
        if module_name not in _ALLOWED_MODULES:
            raise ValueError(f"unexpected class {data['__class__']!r}")
        cls = getattr(importlib.import_module(module_name), qualname, None)
        if cls is None or not dataclasses.is_dataclass(cls):
            raise ValueError(f"unexpected class {data['__class__']!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {k: decode(v) for k, v in data.items() if k != "__class__"}
        if not set(fields) <= known:
            raise ValueError(f"{qualname}: unexpected fields {sorted(set(fields) - known)}")
        try:
            return cls(**fields)
        except TypeError as exc:
            raise ValueError(str(exc)) from None
    return data


# ---------------------------------------------------------------------------- the store
class Cache:
    """Entries under ``folder`` (``.cnnlint_cache``), one JSON file per key."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / _ENTRIES / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry's ``{"results", "extra"}`` if present, well-formed and its sources unchanged."""
        try:
            document = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            return None
        if not isinstance(document, dict) or document.get("schema") != SCHEMA_VERSION:
            return None
        sources = document.get("sources")
        if document.get("key") != key or not isinstance(sources, dict) or not sources:
            return None
        for path, digest in sources.items():
            if not isinstance(path, str) or not isinstance(digest, str) or file_digest(path) != digest:
                return None
        try:
            results = decode(document.get("results"))
        except (ValueError, RecursionError):
            return None
        from cnnlint.results import ModelResult

        if not isinstance(results, list) or not all(isinstance(r, ModelResult) for r in results):
            return None
        extra = document.get("extra")
        return {"results": results, "extra": extra if isinstance(extra, dict) else {}}

    def put(self, key: str, results: list[Any], sources: dict[str, str], extra: dict[str, Any]) -> None:
        """Store an entry; a cache that cannot be written is skipped (never an error)."""
        if not sources:
            return  # nothing to check it against later
        document = {
            "schema": SCHEMA_VERSION,
            "key": key,
            "cnnlint_version": __version__,
            "sources": sources,
            "extra": extra,
            "results": encode(results),
        }
        path = self._path(key)
        try:
            self._prepare()
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(document, stream)
            os.replace(temporary, path)
        except (OSError, TypeError, ValueError):
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(temporary)

    def _prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        gitignore = self.folder / ".gitignore"
        if not gitignore.is_file():
            gitignore.write_text(_GITIGNORE, encoding="utf-8")
            (self.folder / "CACHEDIR.TAG").write_text(_CACHEDIR_TAG, encoding="utf-8")
