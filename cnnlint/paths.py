"""Path display shared by every stage, and where the built-in profiles are (torch-free, so the
command line's ``--help`` can list the targets without importing the pipeline)."""

from __future__ import annotations

import functools
import os
from importlib import resources

BUILTIN_PACKAGE = "cnnlint.rules.profiles"  # the folder of built-in profiles is the list of targets


def builtin_profile_names() -> list[str]:
    files = resources.files(BUILTIN_PACKAGE)
    return sorted(p.name[: -len(".toml")] for p in files.iterdir() if p.name.endswith(".toml"))


@functools.lru_cache(maxsize=4096)
def _relative(text: str, cwd: str) -> str:
    try:
        rel = os.path.relpath(text, cwd)
    except ValueError:
        return text
    return text if rel.startswith("..") else rel


def display_path(path: str | os.PathLike[str]) -> str:
    """A path relative to the working directory when it lies below it, else as given."""
    # Cached: every layer of every model asks, and relpath is slow.
    return _relative(os.fspath(path), os.getcwd())
