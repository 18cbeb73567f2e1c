"""A review as people read it (markdown, for a PR comment), as GitHub's create-a-review endpoint
takes it (``github-review``), and as JSON for scripts.

The markdown stays under GitHub's comment limit (65,536 characters): the summary tables come
first, then new findings, then fixed ones; what does not fit is counted and named at the end.
Past :data:`COLLAPSE_AT` rows or findings, a section folds into ``<details>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from cnnlint.fixes import UNSAFE_NOTE
from cnnlint.report.contract import FindingReport, SummaryReport
from cnnlint.report.markdown import cell, code
from cnnlint.results import Finding, Summary
from cnnlint.review import MARKER
from cnnlint.review.compare import Pair, Review

COMMENT_LIMIT = 65_536  # characters in one GitHub comment or review body
COLLAPSE_AT = 10


def _pct(before: float, after: float) -> str:
    if not before:
        return ""
    change = 100 * (after - before) / before
    return f"{change:+.1f}%" if abs(change) >= 0.05 else "0.0%"


def _numbers(s: Summary | None) -> tuple[str, str, str, str]:
    if s is None:
        return "—", "—", "—", "—"
    return (f"{s.macs / 1e9:.3f}", f"{s.params / 1e6:.3g}", f"{s.memory_access_bytes / 1e6:.3g}",
            f"{s.latency_ms:.3f}")  # fmt: skip


def _summary(pair: Pair, side: str):
    result = pair.base if side == "base" else pair.head
    return result.summary if result is not None and result.status == "ok" else None


def _row(pair: Pair) -> str:
    base, head = _summary(pair, "base"), _summary(pair, "head")
    b, h = _numbers(base), _numbers(head)
    if pair.base_error:
        b = ("failed",) * 4
    if pair.head_error:
        h = ("failed",) * 4
    change = _pct(base.latency_ms, head.latency_ms) if base and head else pair.status
    cells = [f"{x} → {y}" for x, y in zip(b, h)]
    return (f"| {code(pair.model)} | {' | '.join(cells)} | {change} | {len(pair.new)} | "
            f"{len(pair.fixed)} |")  # fmt: skip


def finding_line(pair: Pair, finding: Finding) -> str:
    where = f" {code(f'{finding.path}:{finding.line}')}" if finding.path else ""
    module = f" ({code(finding.module)})" if finding.module else ""
    fix = f" — fix: {cell(finding.fix)}" if finding.fix else ""
    return (f"- **{finding.code}** {finding.name} ({finding.severity}){where} in "
            f"{code(pair.model)}{module}: {cell(finding.message)}{fix}")  # fmt: skip


@dataclass
class _Block:
    """A section: its head and foot are shown only with at least one of its items."""

    head: list[str]
    items: list[str]
    foot: list[str] = field(default_factory=list)
    kind: str = ""  # what an item is, for the note about what was cut ("" : never cut)
    always: bool = False  # show the head and foot even with no items


def _fold(summary: str, count: int) -> tuple[list[str], list[str]]:
    if count <= COLLAPSE_AT:
        return [], []
    return [f"<details><summary>{summary}</summary>", ""], ["", "</details>"]


def _blocks(review: Review, inline: set[int]) -> list[_Block]:
    new, fixed = review.new_findings(), review.fixed_findings()
    regressed = [p for p in review.pairs if p.regressed]
    head = [
        MARKER,
        "## cnnlint review",
        "",
        f"{code(review.base_ref)} ({review.base_sha[:7]}) → {code(review.head_ref)} "
        f"({review.head_sha[:7]}): {len({p.model for p in review.pairs})} model(s) in "
        f"{len(review.files)} changed Python file(s)"
        + (f" and {len(review.importers)} that import them" if review.importers else "")
        + f"; **{len(new)} new** finding(s), "
        f"{len(fixed)} fixed" + (f", {len(regressed)} model(s) no longer lint" if regressed else "")
        + ".",
        "",
    ]  # fmt: skip
    blocks = [_Block(head, [], always=True)]
    if not review.pairs:
        blocks.append(_Block(["No model is defined in the changed files.", ""], [], always=True))
    targets = list(dict.fromkeys(p.target for p in review.pairs))
    for target in targets:
        pairs = [p for p in review.pairs if p.target == target]
        open_, close = _fold(f"{len(pairs)} models on {cell(target)}", len(pairs))
        table = [f"### {cell(target)}", "", *open_,
                 "| model | GMACs | params (M) | memory (MB) | est. latency (ms) | Δ latency "
                 "| new | fixed |",
                 "|---|--:|--:|--:|--:|--:|--:|--:|"]  # fmt: skip
        blocks.append(_Block(table, [_row(p) for p in pairs], [*close, ""], kind="table row"))
    sections = (("New findings", new, "new finding"), ("Fixed findings", fixed, "fixed finding"))
    for title, found, kind in sections:
        shown = [(p, f) for p, f in found if id(f) not in inline]
        if not found:
            continue
        note = [] if len(shown) == len(found) else [
            f"{len(found) - len(shown)} of them are inline comments on the diff.", ""]
        open_, close = _fold(f"{len(shown)} {kind}s", len(shown))
        blocks.append(_Block([f"### {title} ({len(found)})", "", *note, *open_],
                             [finding_line(p, f) for p, f in shown], [*close, ""], kind=kind,
                             always=not shown))  # fmt: skip
    troubled = [p for p in review.pairs if p.base_error or p.head_error]
    if troubled:
        items = []
        for p in troubled:
            side = "base and head" if p.base_error and p.head_error else ("base" if p.base_error else "head")
            error = (p.head_error or p.base_error or "").splitlines()[0]
            items.append(f"- {code(p.model)} on {cell(p.target)}: could not be linted at {side}, so "
                         f"its findings are not compared: {cell(error)}")  # fmt: skip
        blocks.append(_Block(["### Not compared", ""], items, [""], kind="failed model"))
    return blocks


def markdown(review: Review, inline: set[int] | None = None, limit: int = COMMENT_LIMIT) -> str:
    """The review for a PR comment; findings whose id is in ``inline`` are only counted."""
    reserve = 400  # the note about what was cut
    out: list[str] = []
    size = 0
    cut: dict[str, int] = {}
    for block in _blocks(review, inline or set()):
        frame = sum(len(line) + 1 for line in block.head + block.foot)
        kept: list[str] = []
        for item in block.items:
            needed = len(item) + 1 + (0 if kept else frame)
            if size + needed > limit - reserve and block.kind:
                cut[block.kind] = cut.get(block.kind, 0) + 1
                continue
            kept.append(item)
            size += needed
        if kept or block.always:
            out += block.head + kept + block.foot
    if cut:
        what = ", ".join(f"{n} {kind}(s)" for kind, n in cut.items())
        out += ["", f"**Cut to stay under GitHub's {limit:,}-character limit:** {what} not shown. "
                    "The `json` format of `cnnlint review` has everything."]  # fmt: skip
    return "\n".join(out).rstrip("\n") + "\n"


def inline_comment(review: Review, path: str, line: int, found: list[tuple[Pair, Finding]]) -> str:
    lines = [MARKER, f"**cnnlint**: {len(found)} new finding(s) on this line", ""]
    lines += [finding_line(p, f) for p, f in found]
    suggestion = review.suggestions.get((path, line))
    if suggestion is not None:
        edited, changes = suggestion
        lines += ["", f"Suggested edit ({', '.join(changes)}); it {UNSAFE_NOTE}:", "",
                  "```suggestion", edited, "```"]  # fmt: skip
    return "\n".join(lines) + "\n"


def github_review(review: Review) -> dict:
    """The JSON body of ``POST /repos/{owner}/{repo}/pulls/{pull_number}/reviews``."""
    by_line: dict[tuple[str, int], list[tuple[Pair, Finding]]] = {}
    for pair, finding in review.new_findings():
        if finding.path and finding.line in review.diff.get(finding.path, set()):
            by_line.setdefault((finding.path, finding.line), []).append((pair, finding))
    comments = [{"path": path, "line": line, "side": "RIGHT",
                 "body": inline_comment(review, path, line, found)}
                for (path, line), found in sorted(by_line.items())]  # fmt: skip
    inline = {id(f) for found in by_line.values() for _, f in found}
    return {"commit_id": review.head_sha, "body": markdown(review, inline), "event": "COMMENT",
            "comments": comments}  # fmt: skip


def _side(pair: Pair, which: str) -> dict | None:
    result = pair.base if which == "base" else pair.head
    summary = _summary(pair, which)
    if result is None:
        return None
    report = SummaryReport.model_validate(summary.__dict__).model_dump() if summary else None
    return {"status": result.status, "error": result.error, "summary": report}


def as_json(review: Review) -> str:
    data = {
        "base": {"ref": review.base_ref, "sha": review.base_sha},
        "head": {"ref": review.head_ref, "sha": review.head_sha},
        "files": [{"status": f.status, "path": f.path, "old_path": f.old_path} for f in review.files],
        "importers": review.importers,
        "models": [
            {
                "model": p.model, "target": p.target, "status": p.status,
                "base_error": p.base_error, "head_error": p.head_error,
                "base": _side(p, "base"), "head": _side(p, "head"),
                "new": [FindingReport.of(f).model_dump(mode="json") for f in p.new],
                "fixed": [FindingReport.of(f).model_dump(mode="json") for f in p.fixed],
                "unchanged": [FindingReport.of(f).model_dump(mode="json") for f in p.unchanged],
            }
            for p in review.pairs
        ],
        "suggestions": [{"path": path, "line": line, "line_after": after, "changes": changes}
                        for (path, line), (after, changes) in sorted(review.suggestions.items())],
    }  # fmt: skip
    return json.dumps(data, indent=2) + "\n"


FORMATS = {
    "markdown": lambda review: markdown(review),
    "github-review": lambda review: json.dumps(github_review(review), indent=2) + "\n",
    "json": as_json,
}
