"""Does a file define a model? Decided from its syntax tree, without importing it or torch.

The pre-commit hook hands cnnlint every changed ``.py`` file. Most define no model (tests,
scripts, data loading), and importing torch to find that out would cost a second or more per
commit. A file *may* define a model when a class in it has a base that looks like a torch module:

- ``nn.X`` or ``torch.nn.X`` (``nn.Module``, ``nn.Sequential``, ``nn.ModuleList``, ...);
- a bare name imported from ``torch.nn`` (``from torch.nn import Module``), or any base whose
  last name part ends in ``Module`` (``Module``, ``LightningModule``);
- a class defined earlier in the same file that is itself model-like, or a class imported from a
  sibling module of the project (``from .blocks import Backbone``, ``from blocks import
  Backbone``) that is model-like there.

What it misses (such a file is passed over, as one without models is):
- bases from other packages that do not end in ``Module`` (``torchvision.models.ResNet``,
  ``timm.models.VisionTransformer``), and project modules imported by an absolute dotted path
  that is not a sibling file (``from myproj.models.blocks import Backbone``);
- classes made at run time (``type(...)``, class factories, ``exec``) and factory functions;
  name those under ``[tool.cnnlint.models]`` (the hook keeps files that the config names).
A file that does not parse is kept: importing it is how its author hears about the syntax error.
"""

from __future__ import annotations

import ast
from pathlib import Path

_TORCH_NN = ("nn", "torch.nn")
_MAX_DEPTH = 4  # sibling modules followed through this many imports


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        parent = _dotted(node.value)
        return f"{parent}.{node.attr}" if parent else None
    if isinstance(node, ast.Subscript):  # Generic[T]-style bases: look at what is subscripted
        return _dotted(node.value)
    return None


def _sibling(path: Path, module: str | None, level: int) -> Path | None:
    """The project file ``from MODULE import ...`` names, when it lies beside ``path``."""
    if module is None:
        return None
    folder = path.parent
    for _ in range(max(level - 1, 0)):
        folder = folder.parent
    relative = Path(*module.split("."))
    for candidate in (folder / relative.with_suffix(".py"), folder / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None


def model_classes(path: Path, _depth: int = 0, _seen: frozenset[Path] = frozenset()) -> set[str]:
    """Names of the classes in ``path`` that look like nn.Module subclasses."""
    tree = _parse(path)
    if tree is None:
        return set()
    seen = _seen | {path.resolve()}
    torch_names: set[str] = set()  # bare names imported from torch.nn
    imported: dict[str, tuple[str | None, int, str]] = {}  # local name -> (module, level, name)
    found: set[str] = set()

    def looks_like_model(base: ast.expr) -> bool:
        name = _dotted(base)
        if name is None:
            return False
        head, _, last = name.rpartition(".")
        if head in _TORCH_NN or last.endswith("Module"):
            return True
        if not head and (name in torch_names or name in found):
            return True
        if not head and name in imported and _depth < _MAX_DEPTH:
            module, level, original = imported[name]
            sibling = _sibling(path, module, level)
            if sibling is not None and sibling.resolve() not in seen:
                return original in model_classes(sibling, _depth + 1, seen)
        return False

    # Walk the module in order, so a base is known before the class that uses it.
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                local = alias.asname or alias.name
                if node.module in _TORCH_NN and node.level == 0:
                    torch_names.add(local)
                else:
                    imported[local] = (node.module, node.level or 1, alias.name)
    classes = [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    while True:  # until no class joins: a base may be defined after the class that uses it
        joined = {c.name for c in classes if c.name not in found and any(map(looks_like_model, c.bases))}
        if not joined:
            return found
        found |= joined


def may_define_model(path: Path) -> bool:
    """True when ``path`` may define a model (see the module docstring for the heuristic)."""
    if _parse(path) is None:
        return True  # let the loader report the syntax error, or the missing or unreadable file
    return bool(model_classes(path))
