"""Path display shared by every stage (torch-free)."""

from __future__ import annotations

import os


def display_path(path: str | os.PathLike[str]) -> str:
    """A path relative to the working directory when it lies below it, else as given."""
    text = os.fspath(path)
    try:
        rel = os.path.relpath(text)
    except ValueError:
        return text
    return text if rel.startswith("..") else rel
