"""Path display shared by every stage (torch-free)."""

from __future__ import annotations

import functools
import os


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
