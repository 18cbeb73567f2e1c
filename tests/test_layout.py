"""Imports point one way: each layer imports only itself and the layers before it.

The table below is the one statement of the layering (docs/how-it-works.md describes it, and
tests/test_docs.py checks that its table is this one). Imports are read from the source with
``ast``, including those inside functions, so a lazy import cannot hide an upward one. A new
module must be placed in the table before it can land.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
# Where each package's files are: the built-in rules install as cnnlint.rules from rules/.
PACKAGE_DIRS = {"cnnlint.rules": REPO / "rules", "cnnlint": REPO / "cnnlint"}

# Bottom to top. A name stands for that module, or for a package and everything in it;
# "cnnlint.__init__" is the package's own __init__.py.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # Plumbing every stage may use; imports no stage.
    ("base", ("cnnlint.__init__", "cnnlint.errors", "cnnlint.paths", "cnnlint.core",
              "cnnlint.ops", "cnnlint.frames", "cnnlint.watch", "cnnlint.wording")),
    # What a run is told: specs, [tool.cnnlint], target profiles, and the results it hands back.
    ("settings", ("cnnlint.spec", "cnnlint.options", "cnnlint.tables", "cnnlint.config", "cnnlint.discover", "cnnlint.prescan",
                  "cnnlint.profile", "cnnlint.results")),
    # The pipeline stages, in order.
    ("load", ("cnnlint.load",)),
    ("trace", ("cnnlint.trace",)),
    ("graph", ("cnnlint.graph",)),
    ("cost", ("cnnlint.cost", "cnnlint.placement")),
    # The rules, and what their fixes are as data (cnnlint.proposal: edits, layer specs).
    ("check", ("cnnlint.check", "cnnlint.proposal", "cnnlint.rules")),
    # --measure: each finding's fix timed on this machine (the timer calibrate uses too).
    ("measure", ("cnnlint.timing", "cnnlint.measure")),
    ("report", ("cnnlint.report", "cnnlint.docs", "cnnlint.fixes")),
    # Running the stages over specs, in this process or in workers; calibrating a device.
    # Accepted findings (suppressions, baseline) and the cache apply to any run's results.
    ("run", ("cnnlint.cache", "cnnlint.suppress", "cnnlint.baseline", "cnnlint.pipeline",
             "cnnlint.workers", "cnnlint.session", "cnnlint.calibrate")),
    # What users invoke.
    ("front", ("cnnlint.cli", "cnnlint.__main__", "cnnlint.api", "cnnlint.testing",
               "cnnlint.review")),
]  # fmt: skip
# The one import allowed to point up: the package's lazy facade, ``cnnlint.lint`` and
# ``cnnlint.Report`` (a module ``__getattr__``, so ``import cnnlint`` itself imports nothing).
FACADE = {("cnnlint.__init__", "cnnlint.api")}
RANK = {name: rank for rank, (_, names) in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    for package, folder in sorted(PACKAGE_DIRS.items(), key=lambda item: -len(item[0])):
        if path.is_relative_to(folder):
            parts = path.relative_to(folder).with_suffix("").parts
            return ".".join((package, *parts))
    raise AssertionError(f"{path} is in no package")


def module_file(name: str) -> Path | None:
    """The file a dotted cnnlint name is, or None when it is no module (an attribute)."""
    for package, folder in sorted(PACKAGE_DIRS.items(), key=lambda item: -len(item[0])):
        if name == package or name.startswith(package + "."):
            base = folder.joinpath(*name[len(package):].split(".")[1:])
            for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                if candidate.is_file():
                    return candidate
    return None


def layer_of(name: str) -> str | None:
    """The table entry ``name`` falls under: the longest that is it or a package holding it."""
    matches = [entry for entry in RANK if name == entry or name.startswith(entry + ".")]
    return max(matches, key=len) if matches else None


def imported_files(path: Path) -> list[tuple[int, Path]]:
    """(line, file) of every cnnlint module ``path`` imports, at the top or inside a function."""
    name = module_name(path)
    package = name.removesuffix(".__init__") if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, Path]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import name` imports the submodule pkg.name when there is one, else pkg.
            targets = [f"{base}.{a.name}" if module_file(f"{base}.{a.name}") else base for a in node.names]
        for target in targets:
            file = module_file(target)
            if file is not None:
                found.append((node.lineno, file))
    return found


SOURCES = sorted([*(REPO / "cnnlint").rglob("*.py"), *(REPO / "rules").rglob("*.py")])


def test_every_module_has_a_place_in_the_table():
    unplaced = [module_name(p) for p in SOURCES if layer_of(module_name(p)) is None]
    assert not unplaced, f"add these modules to LAYERS in {Path(__file__).name}: {unplaced}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_imports_point_down(path: Path):
    importer = module_name(path)
    own = layer_of(importer)
    if own is None:
        pytest.skip("not in the table (the test above fails)")
    upward = []
    for line, file in imported_files(path):
        imported = module_name(file)
        theirs = layer_of(imported)
        if (importer, imported) in FACADE:
            continue
        if theirs is None or RANK[theirs] > RANK[own]:
            upward.append(
                f"{path.relative_to(REPO)}:{line}: {importer} ({LAYERS[RANK[own]][0]}) imports "
                f"{imported} ({LAYERS[RANK[theirs]][0] if theirs else 'not in the table'})"
            )
    assert not upward, "imports must point down the layers:\n" + "\n".join(upward)


def test_the_layers_below_the_stages_never_import_torch():
    below = [name.removesuffix(".__init__") for _, names in LAYERS[:2] for name in names]
    modules = [name for name in below if module_file(name) is not None]
    assert "cnnlint.frames" in modules and "cnnlint.spec" in modules
    code = f"import sys\nfor m in {modules!r}:\n    __import__(m)\nprint('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", f"one of {modules} imports torch"
