"""Lint the changed files at base and at head, and tell each finding new, fixed or unchanged.

Findings are matched by :func:`cnnlint.results.identity` (code + model + module path + target),
the identity the baseline matches its entries by, so an edit elsewhere in the file that moves a
layer's line does not make its finding new. :func:`match` is the one place that pairs findings
of two runs.

A renamed file keeps its models' identity: base model names are rewritten to the head path git's
rename detection gives (``-M``). A model that fails to lint at base is reported as such; its
head findings are not called new, because nothing says they are.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from cnnlint.core import at_or_above
from cnnlint.options import RunOptions
from cnnlint.report.common import model_file
from cnnlint.results import Finding, ModelResult, identity
from cnnlint.review.git import ChangedFile, changed_files, commit_of, diff_lines, toplevel, worktree
from cnnlint.review.imports import importers


@dataclass
class Pair:
    """One model on one target, at base and at head (None where it does not exist there)."""

    model: str  # the head name ("path.py::Name"); a deleted model keeps its base name
    target: str
    base: ModelResult | None
    head: ModelResult | None
    base_error: str | None = None  # the base version could not be linted
    head_error: str | None = None
    new: list[Finding] = field(default_factory=list)
    fixed: list[Finding] = field(default_factory=list)
    unchanged: list[Finding] = field(default_factory=list)

    @property
    def status(self) -> str:
        """added | deleted | changed | base-failed | head-failed | failed."""
        if self.head_error and self.base_error:
            return "failed"
        if self.head_error:
            return "head-failed"
        if self.base_error:
            return "base-failed"
        if self.base is None:
            return "added"
        return "deleted" if self.head is None else "changed"

    @property
    def regressed(self) -> bool:
        """It linted at base and fails at head: a new problem even without a finding."""
        return self.status == "head-failed" and self.base is not None


@dataclass
class Review:
    base_ref: str
    head_ref: str
    base_sha: str
    head_sha: str
    targets: list[str]
    files: list[ChangedFile]
    pairs: list[Pair]
    diff: dict[str, set[int]]  # head path -> lines the diff shows
    # (path, line) -> (the edited line, what changed): one-click fixes of new findings.
    suggestions: dict[tuple[str, int], tuple[str, list[str]]] = field(default_factory=dict)
    # Unchanged files linted too, because they import a changed one (cnnlint.review.imports).
    importers: list[str] = field(default_factory=list)

    def new_findings(self) -> list[tuple[Pair, Finding]]:
        return [(p, f) for p in self.pairs for f in p.new]

    def fixed_findings(self) -> list[tuple[Pair, Finding]]:
        return [(p, f) for p in self.pairs for f in p.fixed]

    def fails(self, threshold: str) -> bool:
        """Whether a new finding is at or above ``threshold`` ("never": never)."""
        if threshold == "never":
            return False
        return any(at_or_above(f.severity, threshold) for _, f in self.new_findings()) or (
            any(p.regressed for p in self.pairs)
        )


def match(base: list[tuple[ModelResult, Finding]], head: list[tuple[ModelResult, Finding]]):
    """(new, fixed, unchanged): head findings without a base twin, base findings without a head
    twin, and head findings with one. Twins share an identity; a rule that reports the same
    identity twice is matched count for count."""
    remaining = Counter(identity(r, f) for r, f in base)
    new, unchanged = [], []
    for result, finding in head:
        key = identity(result, finding)
        if remaining[key] > 0:
            remaining[key] -= 1
            unchanged.append(finding)
        else:
            new.append(finding)
    still_there = Counter(identity(r, f) for r, f in head)
    fixed = []
    for result, finding in base:
        key = identity(result, finding)
        if still_there[key] > 0:
            still_there[key] -= 1
        else:
            fixed.append(finding)
    return new, fixed, unchanged


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    """Run with ``folder`` as the working directory: model names and paths come out relative to
    it, as the diff names them."""
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def lint_files(files: list[str], options: RunOptions, jobs: int = 1) -> list[ModelResult]:
    """Lint files as ``cnnlint check`` does, from the working directory; files that define no
    model are passed over. Each spec runs in a worker process, so the base and head versions of
    a module never meet in one interpreter. A spec-wide error names every target: split it."""
    from cnnlint.spec import ModelSpec
    from cnnlint.workers import run

    specs = [ModelSpec.parse(path) for path in files if Path(path).is_file()]
    if not specs:
        return []
    options = replace(options, skip_files_without_models=True)
    results = run(specs, options, jobs=jobs, isolate=True)
    split: list[ModelResult] = []
    for result in results:
        targets = result.target.split(",") if result.status == "error" else [result.target]
        split.extend(replace(result, target=t) for t in targets)
    return split


def _renamed(result: ModelResult, renames: dict[str, str]) -> ModelResult:
    path, sep, name = result.model.partition("::")
    if path in renames:
        return replace(result, model=renames[path] + sep + name)
    return result


def _whole_file_errors(results: list[ModelResult]) -> dict[tuple[str, str], str]:
    """(file, target) -> error, for files that failed before naming a model (an import error)."""
    return {(r.model, r.target): r.error or ""
            for r in results if r.status == "error" and "::" not in r.model}  # fmt: skip


def _error(result: ModelResult | None) -> str | None:
    return (result.error or "") if result is not None and result.status == "error" else None


def pair_up(base: list[ModelResult], head: list[ModelResult]) -> list[Pair]:
    """Pairs of (model, target), in head order then the deleted ones; findings classified."""
    base_by = {(r.model, r.target): r for r in base}
    head_by = {(r.model, r.target): r for r in head}
    base_failed, head_failed = _whole_file_errors(base), _whole_file_errors(head)
    keys = list(head_by) + [k for k in base_by if k not in head_by]
    named = {(model_file(m), t) for m, t in keys if "::" in m}
    pairs: list[Pair] = []
    for model, target in keys:
        if "::" not in model and (model, target) in named:
            continue  # the file failed on one side only: its models, from the other, carry that
        b, h = base_by.get((model, target)), head_by.get((model, target))
        pair = Pair(model, target, b, h)
        where = (model_file(model) or model, target)
        pair.base_error = _error(b) or (base_failed.get(where) if b is None else None)
        pair.head_error = _error(h) or (head_failed.get(where) if h is None else None)
        if pair.base_error is None and pair.head_error is None and h is not None:
            # (A deleted model's findings left with it: they are not "fixed".)
            base_items = [(b, f) for f in b.findings] if b is not None else []
            pair.new, pair.fixed, pair.unchanged = match(base_items, [(h, f) for f in h.findings])
        pairs.append(pair)
    return pairs


@contextlib.contextmanager
def _head_tree(repo: Path, head: str | None) -> Iterator[Path]:
    if head is None:
        yield repo
    else:
        with worktree(repo, head) as folder:
            yield folder


def _python_files(root: Path) -> list[str]:
    """The tree's .py files, relative to ``root``, as a folder spec finds them (.gitignore
    honoured)."""
    from cnnlint.discover import python_files

    return [path.relative_to(root).as_posix() for path in python_files(root)]


def review(
    base: str, head: str | None, options: RunOptions, start: Path | None = None, jobs: int = 1
) -> Review:
    """Lint the models of every changed .py file at base and at head, and compare them."""
    from cnnlint.fixes import edited_lines, plan

    repo = toplevel(start or Path.cwd())
    base_sha = commit_of(repo, base)
    head_sha = commit_of(repo, head or "HEAD")
    files = changed_files(repo, base, head)
    renames = {f.old_path: f.path for f in files if f.status == "R"}
    base_files = [f.old_path for f in files if f.status != "A"]
    head_files = [f.path for f in files if f.status != "D"]
    with _head_tree(repo, head) as head_root, _inside(head_root):
        # Unchanged files whose models change through an import: linted on both sides too.
        reached = importers(head_root, _python_files(head_root), head_files)
        head_results = lint_files(head_files + reached, options, jobs)
        with worktree(repo, base_sha) as base_root, _inside(base_root):
            base_results = [_renamed(r, renames) for r in lint_files(base_files + reached, options, jobs)]
        pairs = pair_up(base_results, head_results)
        result = Review(base, head or "working tree", base_sha, head_sha, list(options.targets),
                        files, pairs, diff_lines(repo, base, head), importers=reached)  # fmt: skip
        for where, (on_line, text) in edited_lines(plan(f for p in pairs for f in p.new)).items():
            result.suggestions[where] = (text, [e.summary for e in on_line])
    return result
