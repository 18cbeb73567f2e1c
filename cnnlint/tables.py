"""The TOML a run reads, as plain tables: ``[tool.cnnlint]`` from the nearest pyproject.toml,
and each target's profile with its ``extends`` chain merged.

Pydantic-free and torch-free: the result cache keys its entries on these tables, so a cached
re-run never builds the validated models (:mod:`cnnlint.config`, :mod:`cnnlint.profile`), which
are made from the same tables when something is linted.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from cnnlint.errors import ConfigError, LoadError, ProfileError
from cnnlint.paths import BUILTIN_PACKAGE, builtin_profile_names
from cnnlint.spec import ModelSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


# ---------------------------------------------------------------------------- [tool.cnnlint]
def project_table(start: Path) -> tuple[Path | None, dict[str, Any]]:
    """The nearest pyproject.toml with a ``[tool.cnnlint]`` table, walking up from ``start``,
    and that raw table ((None, {}) when there is none); each candidate is read once. A broken
    file that names our table is an error; one that does not is passed over."""
    folder = start if start.is_dir() else start.parent
    folder = folder.resolve()
    for candidate_dir in (folder, *folder.parents):
        candidate = candidate_dir / "pyproject.toml"
        if not candidate.is_file():
            continue
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            if "[tool.cnnlint" in candidate.read_text(encoding="utf-8", errors="replace"):
                raise ConfigError(f"{candidate}: invalid TOML: {exc}.") from None
            continue
        if "cnnlint" in data.get("tool", {}):
            table = data["tool"]["cnnlint"]
            if not isinstance(table, dict):
                raise ConfigError(f"{candidate}: key 'tool.cnnlint' must be a table.")
            return candidate, table
    return None, {}


def project_root(path: Path | None) -> Path:
    """The folder a pyproject.toml's relative paths start from: its own, else the working one."""
    return path.parent if path is not None else Path.cwd()


def factory_names(models: Iterable[str], root: Path, file: Path) -> list[str]:
    """The keys of ``[tool.cnnlint.models]`` (``path.py::name``, relative to ``root``) that name
    a function in ``file``."""
    names = []
    for key in models:
        try:
            spec = ModelSpec.parse(key)
        except LoadError:
            continue  # a bare name: it names no file
        if spec.path is None or spec.attr is None:
            continue
        candidate = spec.path if spec.path.is_absolute() else root / spec.path
        if candidate.resolve() == file.resolve():
            names.append(spec.attr)
    return names


# ---------------------------------------------------------------------------- profiles
def _read_toml(label: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile {label}: invalid TOML: {exc}") from None


def profile_table(target: str, base_dir: Path | None, chain: tuple[str, ...] = ()) -> tuple[str, dict]:
    """(label, merged raw table) for a target name or a path to a profile .toml (relative to
    ``base_dir`` when given), with its ``extends`` chain merged in."""
    looks_like_path = target.endswith(".toml") or "/" in target or "\\" in target
    if looks_like_path:
        path = Path(target)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        label = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(f"profile {label}: cannot read it ({exc.strerror or exc}).") from None
        except UnicodeDecodeError:
            raise ProfileError(f"profile {label}: not UTF-8 text.") from None
        next_base = path.parent
    else:
        target = target.lower()  # -t T4: target names are case-insensitive
        if target not in builtin_profile_names():
            raise ProfileError(
                f"unknown target {target!r}. Built-in targets: {', '.join(builtin_profile_names())}; "
                "or pass a path to a profile .toml file."
            )
        label = f"{target} (built-in)"
        text = resources.files(BUILTIN_PACKAGE).joinpath(f"{target}.toml").read_text("utf-8")
        next_base = None
    if label in chain:
        cycle = " -> ".join((*chain, label))
        raise ProfileError(f"profile {chain[0]}: `extends` forms a cycle: {cycle}")
    raw = _read_toml(label, text)
    parent = raw.pop("extends", None)
    if parent is None:
        return label, raw
    if not isinstance(parent, str):
        raise ProfileError(f"profile {label}: key 'extends' must be a string, got {parent!r}")
    _, base = profile_table(parent, next_base, (*chain, label))
    return label, _deep_merge(base, raw)


def _deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
