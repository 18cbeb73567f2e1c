"""Fixes that are a literal edit of a layer's construction call: ``nn.Conv2d(16, 40, 3)`` ->
``nn.Conv2d(16, 48, 3)`` for CL201, ``groups=32`` -> ``groups=4`` for CL102.

Every fix changes the shape of the layer's weights (a checkpoint trained for the old shape no
longer loads), so all of them are *unsafe* in ruff's sense: ``cnnlint --diff`` prints them,
``cnnlint --fix --unsafe-fixes`` writes them, and ``cnnlint review`` offers them as GitHub
suggestions.

An edit is offered only where the argument is an integer literal in the call on the finding's
line, and the call is a torch layer whose signature is known (a helper of the user's own takes
its arguments in an order we cannot know). The edit is made on the concrete syntax tree
(libcst): the literal node is replaced, and every other character of the file stays as it was.
What to edit is the rule's: its module declares ``EDIT``, a :class:`cnnlint.proposal.LiteralEdit`
naming the argument and the finding's metrics that hold the value now and the value to write
(CL201: ``out_channels`` from ``padded_out_channels``; CL102: ``groups`` from
``suggested_groups``). This module asks the rule registry for it and knows no rule. Torch-free.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cnnlint.check import rule_by_code
from cnnlint.cost import is_slower
from cnnlint.proposal import LiteralEdit
from cnnlint.report.common import relative_to_root, repository_root
from cnnlint.results import Finding, ModelResult

UNSAFE_NOTE = "changes the shape of the layer's weights: a checkpoint saved for the old shape will not load"


# Where each argument a LiteralEdit may name (cnnlint.proposal.EDIT_ARGUMENTS) sits in torch's
# layer constructors: its positional index, and the keywords that spell it.
_SIGNATURES: dict[str, dict[str, int]] = {
    **{f"Conv{d}d": {"out_channels": 1, "groups": 6} for d in (1, 2, 3)},
    **{f"ConvTranspose{d}d": {"out_channels": 1, "groups": 6} for d in (1, 2, 3)},
    "Linear": {"out_channels": 1},  # out_features: a Linear's out_channels
}
_KEYWORDS = {"out_channels": ("out_channels", "out_features"), "groups": ("groups",)}


@dataclass(frozen=True)
class Edit:
    """One integer literal to rewrite, and the line it sits on before and after."""

    path: str
    line: int
    column: int  # of the literal, 0-based
    argument: str
    old: int
    new: int
    codes: tuple[str, ...]
    before: str = ""  # the whole line, without its newline
    after: str = ""
    follow_up: str = ""  # what else the edit asks of the model, as its rule says it

    @property
    def summary(self) -> str:
        return f"{self.argument} {self.old} -> {self.new}" + (f"; {self.follow_up}" if self.follow_up else "")


def _declared(code: str) -> LiteralEdit | None:
    """The one-click edit the rule reporting ``code`` declares (its ``EDIT``), if any."""
    rule = rule_by_code(code) if code else None
    return rule.edit if rule is not None else None


def _wanted(finding: Finding) -> tuple[LiteralEdit, int, int] | None:
    # No fix text: the check stage withdrew the fix (estimated to save nothing on the target).
    if not finding.path or finding.line <= 0 or not finding.fix:
        return None
    edit = _declared(finding.code)
    if edit is None:
        return None
    current, suggested = finding.metrics.get(edit.current), finding.metrics.get(edit.suggested)
    if not isinstance(current, int) or not isinstance(suggested, int) or current == suggested:
        return None
    if edit.no_slower is not None:
        now, after = (finding.metrics.get(name) for name in edit.no_slower)
        if not isinstance(now, (int, float)) or not isinstance(after, (int, float)) or is_slower(after, now):
            return None
    return edit, current, suggested


def _read(path: str) -> str | None:
    try:  # newline="": CRLF files keep their line endings
        with open(path, encoding="utf-8", newline="") as stream:
            return stream.read()
    except (OSError, UnicodeDecodeError):
        return None


class _Locator:
    """The integer literal of one argument of the layer call at (line, column) in a file."""

    def __init__(self, source: str) -> None:
        import libcst as cst
        from libcst.metadata import MetadataWrapper, PositionProvider

        self.cst = cst
        self.wrapper = MetadataWrapper(cst.parse_module(source))
        self.positions = self.wrapper.resolve(PositionProvider)
        self.calls = [node for node in self.positions if isinstance(node, cst.Call)]

    def _name(self, call) -> str:
        func = call.func
        if isinstance(func, self.cst.Attribute):
            return func.attr.value
        return func.value if isinstance(func, self.cst.Name) else ""

    def literal(self, line: int, column: int, argument: str, value: int):
        """The Integer node, or None when the call or a literal for it is not on that line."""
        on_line = [c for c in self.calls
                   if self.positions[c].start.line == line and self._name(c) in _SIGNATURES]  # fmt: skip
        exact = [c for c in on_line if self.positions[c].start.column == column - 1]
        candidates = exact or (on_line if len(on_line) == 1 else [])
        for call in candidates:
            index = _SIGNATURES[self._name(call)].get(argument)
            if index is None:
                continue
            node = self._argument(call, argument, index)
            if (
                isinstance(node, self.cst.Integer)
                and node.evaluated_value == value
                and self.positions[node].start.line == line == self.positions[node].end.line
            ):
                return node
        return None

    def integer_at(self, line: int, column: int, value: int):
        """The integer literal ``value`` that starts at (line, 0-based column), or None."""
        for node, position in self.positions.items():
            if (isinstance(node, self.cst.Integer) and node.evaluated_value == value
                    and (position.start.line, position.start.column) == (line, column)):  # fmt: skip
                return node
        return None

    def _argument(self, call, argument: str, index: int):
        positional = [a for a in call.args if a.keyword is None and not a.star]
        if any(a.star for a in call.args):
            return None  # *args or **kwargs: which argument lands where is not known here
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value in _KEYWORDS[argument]:
                return arg.value
        return positional[index].value if index < len(positional) else None


def _rewrite(locator: _Locator, values: dict[int, int]) -> str:
    """The located file with each integer literal (by node id) set to its new value."""
    cst = locator.cst

    class Rewriter(cst.CSTTransformer):
        def leave_Integer(self, original, updated):
            new = values.get(id(original))
            return updated if new is None else updated.with_changes(value=str(new))

    return locator.wrapper.module.visit(Rewriter()).code


def plan(findings: Iterable[Finding]) -> list[Edit]:
    """The edits that fix these findings, one per literal: findings of several targets on one
    argument agree on the value their rule's :class:`LiteralEdit` prefers. Sorted by file and
    line."""
    wanted: dict[tuple[str, int, int, str], tuple[LiteralEdit, int, list[int], set[str]]] = {}
    for finding in findings:
        found = _wanted(finding)
        if found is None:
            continue
        declared, current, suggested = found
        key = (finding.path, finding.line, finding.column, declared.argument)
        entry = wanted.setdefault(key, (declared, current, [], set()))
        entry[2].append(suggested)
        entry[3].add(finding.code)
    edits: list[Edit] = []
    by_file: dict[str, list] = {}
    for key, entry in wanted.items():
        by_file.setdefault(key[0], []).append((key, entry))
    for path, entries in sorted(by_file.items()):
        source = _read(path)
        if source is None:
            continue
        try:
            locator = _Locator(source)
        except Exception:  # noqa: BLE001 - libcst cannot parse it: no edit, never a crash
            continue
        lines = source.splitlines()
        for (_, line, column, argument), (declared, current, values, codes) in entries:
            node = locator.literal(line, column, argument, current)
            if node is None:
                continue
            new = max(values) if declared.prefer == "max" else min(values)
            after = _rewrite(locator, {id(node): new}).splitlines()[line - 1]
            edits.append(Edit(path, line, locator.positions[node].start.column, argument, current,
                              new, tuple(sorted(codes)), lines[line - 1], after,
                              declared.follow_up.format(new=new)))  # fmt: skip
    return sorted(edits, key=lambda e: (e.path, e.line, e.column))


def plan_results(results: list[ModelResult]) -> list[Edit]:
    return plan(f for r in results for f in r.findings)


def fixed_text(path: str, edits: list[Edit]) -> str | None:
    """The file with every edit of it applied, computed on the syntax tree in one pass."""
    source = _read(path)
    if source is None:
        return None
    locator = _Locator(source)
    values = {}
    for edit in edits:
        node = locator.integer_at(edit.line, edit.column, edit.old)
        if node is not None:
            values[id(node)] = edit.new
    return _rewrite(locator, values) if values else source


def edited_lines(edits: list[Edit]) -> dict[tuple[str, int], tuple[list[Edit], str]]:
    """(path, line) -> the edits on that line, and the line with all of them applied (two edits
    on one line make one edited line)."""
    by_line: dict[tuple[str, int], list[Edit]] = {}
    for edit in edits:
        by_line.setdefault((edit.path, edit.line), []).append(edit)
    found = {}
    for (path, line), on_line in by_line.items():
        text = fixed_text(path, on_line)
        if text is not None:
            found[(path, line)] = (on_line, text.splitlines()[line - 1])
    return found


def _by_file(edits: list[Edit]) -> dict[str, list[Edit]]:
    grouped: dict[str, list[Edit]] = {}
    for edit in edits:
        grouped.setdefault(edit.path, []).append(edit)
    return grouped


def unified_diff(edits: list[Edit]) -> str:
    """A unified diff (``a/PATH`` ``b/PATH``, as ``git apply`` takes it) of every edit."""
    chunks: list[str] = []
    for path, file_edits in sorted(_by_file(edits).items()):
        before, after = _read(path), fixed_text(path, file_edits)
        if before is None or after is None or before == after:
            continue
        # Relative to the repository's top, as git apply reads a patch from any subfolder.
        # Outside any repository: the path from the filesystem's root (``a/tmp/net.py``, for
        # ``git apply`` run there), never ``a//tmp/net.py``.
        name = relative_to_root(path, repository_root()) or Path(path).as_posix().lstrip("/")
        chunks.extend(difflib.unified_diff(before.splitlines(keepends=True),
                                           after.splitlines(keepends=True),
                                           f"a/{name}", f"b/{name}"))  # fmt: skip
    return "".join(chunks)


def apply(edits: list[Edit]) -> list[str]:
    """Write every edit; returns the files changed."""
    changed: list[str] = []
    for path, file_edits in sorted(_by_file(edits).items()):
        before, after = _read(path), fixed_text(path, file_edits)
        if before is not None and after is not None and before != after:
            with open(path, "w", encoding="utf-8", newline="") as stream:
                stream.write(after)
            changed.append(path)
    return changed


def run_fixes(results: list[ModelResult], show_diff: bool, write: bool, out, err):
    """``--diff``, ``--fix`` and ``--fix --unsafe-fixes``: (the results left to report, the edits).

    ``write`` only with both flags; ``--fix`` alone says what it would do and changes nothing.
    After writing, the findings the edits fix are dropped from the report."""
    from dataclasses import replace

    edits = plan_results(results)
    if show_diff:
        out.write(unified_diff(edits))
        return results, edits
    if not write:
        if edits:
            err.write(f"{len(edits)} fix(es) available, all unsafe: each {UNSAFE_NOTE}. Nothing was "
                      "changed; rerun with --fix --unsafe-fixes to apply them, or --diff to see them.\n")
        return results, edits
    changed = apply(edits)
    err.write(f"Fixed {len(edits)} finding site(s) in {len(changed)} file(s) (unsafe: each {UNSAFE_NOTE}).\n")
    done = {(e.path, e.line, code) for e in edits for code in e.codes}
    left = [replace(r, findings=[f for f in r.findings if (f.path, f.line, f.code) not in done])
            for r in results]  # fmt: skip
    return left, edits
