"""A directory given as a spec -> the ``.py`` files in it, honouring ``.gitignore`` as git does.

Each ``.gitignore`` applies to its own directory and below, like git's; hidden directories and
virtual environments are skipped, as ruff does. Torch-free: it runs before anything is imported.
"""

from __future__ import annotations

import os
from pathlib import Path

import pathspec

# Never user models: version control, caches and virtual environments.
_ALWAYS_SKIPPED = frozenset({"__pycache__", "node_modules", "site-packages", "build", "dist"})


def _is_virtualenv(directory: Path) -> bool:
    return (directory / "pyvenv.cfg").is_file()


def _ignore_spec(directory: Path) -> pathspec.GitIgnoreSpec | None:
    gitignore = directory / ".gitignore"
    if not gitignore.is_file():
        return None
    try:
        lines = gitignore.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _ancestor_specs(root: Path) -> list[tuple[Path, pathspec.GitIgnoreSpec]]:
    """.gitignore files above ``root`` up to the repository top (the folder holding .git)."""
    specs: list[tuple[Path, pathspec.GitIgnoreSpec]] = []
    for parent in root.resolve().parents:
        spec = _ignore_spec(parent)
        if spec is not None:
            specs.append((parent, spec))
        if (parent / ".git").exists():
            break
    return specs


def _ignored(path: Path, is_dir: bool, specs: list[tuple[Path, pathspec.GitIgnoreSpec]]) -> bool:
    for base, spec in specs:
        relative = path.resolve().relative_to(base).as_posix()
        if spec.match_file(relative + "/" if is_dir else relative):
            return True
    return False


def python_files(root: Path) -> list[Path]:
    """The ``.py`` files under ``root`` that git would not ignore, sorted."""
    found: list[Path] = []
    inherited = _ancestor_specs(root)

    def walk(directory: Path, specs: list[tuple[Path, pathspec.GitIgnoreSpec]]) -> None:
        own = _ignore_spec(directory)
        if own is not None:
            specs = [*specs, (directory.resolve(), own)]
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                if (
                    entry.name.startswith(".")
                    or entry.name in _ALWAYS_SKIPPED
                    or _is_virtualenv(path)
                    or _ignored(path, True, specs)
                ):
                    continue
                walk(path, specs)
            elif entry.name.endswith(".py") and not _ignored(path, False, specs):
                found.append(path)

    walk(root, inherited)
    return found
