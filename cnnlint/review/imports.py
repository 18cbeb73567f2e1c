"""Which unchanged files a pull request reaches through imports: ``model.py`` imports
``blocks.py``, the PR edits only ``blocks.py``, and ``model.py``'s models change with it.

Read statically from the syntax trees of the tree's ``.py`` files (nothing is imported). A module
name resolves to a file the way cnnlint imports a linted file: first beside the importing file (its
folder is first on ``sys.path``), then from the repository's top (a package of the project);
relative imports resolve against the importing file's package. Names that resolve to no file in
the tree (torch, the standard library) are outside the project and are ignored. Torch-free.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path


def _imported_names(tree: ast.Module, package: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Dotted module names (as tuples) a file imports; ``from a import b`` names ``a`` and
    ``a.b`` (b may be a submodule). ``package``: the importing file's folder, for relative
    imports."""
    names: set[tuple[str, ...]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(tuple(alias.name.split(".")) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level - 1 > len(package):
                    continue  # above the repository: not the project's
                base = package[: len(package) - (node.level - 1)]
            else:
                base = ()
            module = base + tuple(node.module.split(".")) if node.module else base
            if module:
                names.add(module)
            names.update(module + (alias.name,) for alias in node.names if alias.name != "*")
    return names


def _resolve(name: tuple[str, ...], folders: Iterable[Path], known: set[Path]) -> Path | None:
    for folder in folders:
        for candidate in (folder.joinpath(*name).with_suffix(".py"), folder.joinpath(*name, "__init__.py")):
            if candidate in known:
                return candidate
    return None


def importers(root: Path, files: Iterable[str], changed: Iterable[str]) -> list[str]:
    """The files (of ``files``, relative to ``root``) that import a ``changed`` one, directly or
    through other files of the tree; the changed files themselves are not listed."""
    relative = sorted(set(files))
    known = {root / path for path in relative}
    imports: dict[Path, set[Path]] = {}
    for path in relative:
        file = root / path
        try:
            tree = ast.parse(file.read_bytes(), filename=str(file))
        except (OSError, SyntaxError, ValueError):
            continue  # unreadable or not Python: it imports nothing we can know
        package = Path(path).parent.parts
        resolved = (_resolve(name, (file.parent, root), known) for name in _imported_names(tree, package))
        imports[file] = {target for target in resolved if target is not None and target != file}
    start = {root / path for path in changed}
    reached, frontier = set(start), set(start)
    while frontier:
        frontier = {f for f, targets in imports.items() if f not in reached and targets & frontier}
        reached |= frontier
    return sorted(path for path in relative if root / path in reached and root / path not in start)
