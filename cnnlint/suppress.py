"""Inline suppressions and per-file ignores: findings the user has looked at and accepted.

Comments, read with :mod:`tokenize` (a ``#`` inside a string is not a comment)::

    nn.Conv2d(c, c, 3, groups=c)  # cnnlint: disable=CL301          the finding on this line
    # cnnlint: disable-next=depthwise-on-accelerator,CL302          ... on the next line
    # cnnlint: disable-file=CL101                                   ... anywhere in this file
    class Net(nn.Module):  # cnnlint: disable=CL301                 ... in this class, and every
                                                                    finding of the model Net

Codes are exact rule codes or names, comma-separated. A suppression that silenced nothing is
reported as CL002 (unused-suppression, info), as ruff reports an unused ``noqa`` (RUF100), so
that suppressions do not outlive the code they were written for.

``[tool.cnnlint.per-file-ignores]`` maps gitignore-style globs (relative to the pyproject.toml
folder) to codes, prefixes or names: a finding in a matching file is dropped.

Torch-free: this runs after the pipeline, also on results answered from the cache.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cnnlint.paths import display_path
from cnnlint.results import Finding, ModelResult

UNUSED_CODE, UNUSED_NAME = "CL002", "unused-suppression"

_DIRECTIVE = re.compile(
    r"cnnlint:\s*(?P<kind>disable-next|disable-file|disable)\s*=\s*(?P<codes>[\w\-]+(?:\s*,\s*[\w\-]+)*)"
)
_WHOLE_FILE = 1 << 30


@dataclass
class Directive:
    """One ``# cnnlint: disable...`` comment."""

    path: Path  # resolved
    line: int  # where the comment is
    column: int
    kind: str  # "line", "next", "file" or "class"
    codes: tuple[str, ...]  # as written
    first: int  # lines it covers
    last: int
    class_name: str | None = None  # for "class"
    used: set[str] = field(default_factory=set)  # the codes that silenced a finding

    def covers(self, finding: Finding, model_file: Path | None, model_name: str | None) -> bool:
        if self.kind == "class" and model_file == self.path and model_name == self.class_name:
            return True  # every finding of the model, wherever its layers were built
        if self.kind == "file" and not finding.path and model_file == self.path:
            return True  # a model-level finding of a model defined in this file
        return (
            bool(finding.path)
            and Path(finding.path).resolve() == self.path
            and self.first <= finding.line <= self.last
        )

    def silences(self, finding: Finding) -> str | None:
        for code in self.codes:
            if code.upper() == finding.code or code == finding.name:
                return code
        return None


def _class_headers(source: str) -> list[tuple[int, int, int, str]]:
    """(first header line, last header line, last line, name) of every class in the file."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            body_start = node.body[0].lineno if node.body else node.lineno + 1
            header_end = max(node.lineno, body_start - 1)
            spans.append((node.lineno, header_end, node.end_lineno or node.lineno, node.name))
    return spans


def parse_directives(path: Path, source: str | None = None) -> list[Directive]:
    """Every suppression comment in a file (none when it cannot be read or tokenized)."""
    resolved = path.resolve()
    try:
        source = source if source is not None else path.read_text(encoding="utf-8")
        if "cnnlint:" not in source:  # no directive can match: skip tokenizing and parsing it
            return []
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (OSError, UnicodeDecodeError, tokenize.TokenError, SyntaxError):
        return []
    classes = _class_headers(source)
    # The logical line a comment ends: a header that spans lines ends at its NEWLINE token.
    newline_lines = sorted(t.start[0] for t in tokens if t.type == tokenize.NEWLINE)
    directives = []
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        match = _DIRECTIVE.search(token.string)
        if match is None:
            continue
        line, column = token.start[0], token.start[1] + 1
        codes = tuple(c.strip() for c in match["codes"].split(",") if c.strip())
        kind = {"disable": "line", "disable-next": "next", "disable-file": "file"}[match["kind"]]
        first = last = line
        class_name = None
        if kind == "next":
            first = last = line + 1
        elif kind == "file":
            first, last = 1, _WHOLE_FILE
        else:
            header = next((c for c in classes if c[0] <= line <= _header_end(c, newline_lines)), None)
            if header is not None:
                kind, first, last, class_name = "class", header[0], header[2], header[3]
        directives.append(Directive(resolved, line, column, kind, codes, first, last, class_name))
    return directives


def _header_end(span: tuple[int, int, int, str], newline_lines: list[int]) -> int:
    start, body_start_minus_one = span[0], span[1]
    ends = [n for n in newline_lines if n >= start]
    return min(ends[0], body_start_minus_one) if ends else start


def _model_location(model: str) -> tuple[Path | None, str | None]:
    """``path/net.py::Net`` -> (resolved path, "Net"); import specs have no file."""
    if "::" in model:
        file_part, _, name = model.partition("::")
        return Path(file_part).resolve(), name
    if model.endswith(".py"):
        return Path(model).resolve(), None
    return None, None


class Suppressions:
    """The directives of every file a run's findings point into, read once each."""

    def __init__(self) -> None:
        self._files: dict[Path, list[Directive]] = {}
        self._resolved: dict[str, Path] = {}  # findings share a few files: resolve each once

    def resolve(self, path: str | Path) -> Path:
        key = str(path)
        if key not in self._resolved:
            self._resolved[key] = Path(path).resolve()
        return self._resolved[key]

    def of(self, path: Path) -> list[Directive]:
        resolved = self.resolve(path)
        if resolved not in self._files:
            self._files[resolved] = parse_directives(resolved) if resolved.is_file() else []
        return self._files[resolved]

    def apply(self, results: list[ModelResult]) -> None:
        """Drop suppressed findings from ``results``, noting which directives were used."""
        for result in results:
            model_file, model_name = _model_location(result.model)
            kept = []
            for finding in result.findings:
                files = {self.resolve(finding.path)} if finding.path else set()
                if model_file is not None:
                    files.add(model_file)
                directives = [d for f in files for d in self.of(f)]
                if not _silence(finding, directives, model_file, model_name):
                    kept.append(finding)
            result.findings = kept

    def report_unused(
        self, results: list[ModelResult], ran: Callable[[ModelResult], set[str]], known: set[str]
    ) -> None:
        """Add a CL002 finding for each directive that silenced nothing.

        Only for files a model was linted from, whose models all linted cleanly, and only for
        codes that ran (a ``--select`` that leaves a rule out does not make its suppression
        unused). ``ran(result)``: the codes and names that ran for a result; ``known``: every
        rule code and name (a directive naming something else is reported too).
        """
        by_file: dict[Path, list[ModelResult]] = {}
        for result in results:
            model_file, _ = _model_location(result.model)
            if model_file is not None:
                by_file.setdefault(model_file, []).append(result)
        for path, file_results in by_file.items():
            if any(r.status != "ok" for r in file_results):
                continue
            ran_here = set().union(*(ran(r) for r in file_results))
            for directive in self.of(path):
                unknown = [c for c in directive.codes if c not in known and c.upper() not in known]
                unused = [
                    c for c in directive.codes
                    if c not in directive.used and c not in unknown
                    and (c in ran_here or c.upper() in ran_here)
                ]  # fmt: skip
                if not unused and not unknown:
                    continue
                owner = _owner(directive, file_results)
                owner.findings.append(_unused_finding(directive, unused, unknown))
                owner.findings.sort(key=Finding.sort_key)


def _silence(
    finding: Finding, directives: Iterable[Directive], model_file: Path | None, model_name: str | None
) -> bool:
    silenced = False
    for directive in directives:
        code = directive.silences(finding)
        if code is not None and directive.covers(finding, model_file, model_name):
            directive.used.add(code)
            silenced = True  # keep going: every directive that covers it counts as used
    return silenced


def _owner(directive: Directive, results: list[ModelResult]) -> ModelResult:
    """The result an unused-suppression finding is reported with: its class's model, else the
    file's first model (on the first target)."""
    for result in results:
        if directive.class_name and result.model.endswith(f"::{directive.class_name}"):
            return result
    return results[0]


def _unused_finding(directive: Directive, unused: list[str], unknown: list[str]) -> Finding:
    parts = []
    if unused:
        parts.append(f"{', '.join(unused)} silenced nothing here")
    if unknown:
        parts.append(f"{', '.join(unknown)} is no rule code or name (`cnnlint rules` lists them)")
    comment = {"line": "disable", "next": "disable-next", "file": "disable-file",
               "class": "disable"}[directive.kind]  # fmt: skip
    return Finding(
        message=f"unused suppression `cnnlint: {comment}`: {'; '.join(parts)}",
        fix=f"remove {', '.join(unused + unknown)} from the comment",
        severity="info",
        code=UNUSED_CODE,
        name=UNUSED_NAME,
        path=display_path(directive.path),
        line=directive.line,
        column=directive.column,
        metrics={"codes": unused + unknown},
    )


# ---------------------------------------------------------------------------- per-file ignores
def apply_per_file_ignores(
    results: list[ModelResult],
    patterns: dict[str, list[str]],
    root: Path,
    matches: Callable[[str, str, str], bool],
) -> None:
    """Drop findings in files matching a glob of ``[tool.cnnlint.per-file-ignores]``.

    A finding's file is where it points; a model-level finding's is the model's file.
    ``matches(code, name, selector)`` is the selector test --select uses (code, prefix, name).
    """
    if not patterns:
        return
    import pathspec  # only when there are patterns: a cached run without them skips the import

    compiled = [(pathspec.GitIgnoreSpec.from_lines([glob]), codes) for glob, codes in patterns.items()]
    root = root.resolve()
    for result in results:
        model_file, _ = _model_location(result.model)
        kept = []
        for finding in result.findings:
            file = Path(finding.path).resolve() if finding.path else model_file
            relative = _relative(file, root) if file is not None else None
            ignored = relative is not None and any(
                spec.match_file(relative) and any(matches(finding.code, finding.name, s) for s in codes)
                for spec, codes in compiled
            )
            if not ignored:
                kept.append(finding)
        result.findings = kept


def _relative(path: Path, root: Path) -> str | None:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return None
