"""A baseline: today's findings, recorded so that only new ones are reported.

``cnnlint models/ --write-baseline .cnnlint-baseline.json`` records every finding;
``cnnlint models/ --baseline .cnnlint-baseline.json`` then reports only findings not in it.

A finding is matched by its :func:`~cnnlint.results.identity` (code + model + module path +
target, as the review bot matches findings), never by line or message, so an edit elsewhere in
the file (which moves lines) or a change in the numbers of a message does not bring an accepted
finding back. Entries are counted: two CL301 findings on the same module need two entries. An
entry that matches nothing on a model and target that were linted, with the rule run, is stale
(the problem was fixed): it is reported as CL003 (stale-baseline-entry, info), so the baseline is
rewritten rather than left to hide a future regression.

Model names are stored relative to the baseline file's folder, so a baseline written from the
repository root still matches when cnnlint runs from elsewhere. Torch-free.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cnnlint import __version__
from cnnlint.errors import ConfigError
from cnnlint.paths import display_path
from cnnlint.results import Finding, FindingId, ModelResult, identity

FORMAT = "cnnlint-baseline"
SCHEMA_VERSION = 1
STALE_CODE, STALE_NAME = "CL003", "stale-baseline-entry"

# Findings about the suppressions and the baseline themselves are never recorded.
_ENGINE_CODES = frozenset({STALE_CODE, "CL002"})


@dataclass(frozen=True)
class Entry:
    code: str
    model: str
    module: str
    target: str
    message: str = ""  # for people reading the file; not matched

    @property
    def key(self) -> FindingId:
        return FindingId(self.code, self.model, self.module, self.target)


def _model_key(model: str, folder: Path) -> str:
    """``models/net.py::Net`` relative to the baseline's folder; import specs as they are."""
    file_part, sep, name = model.partition("::")
    if not (sep or file_part.endswith(".py")):
        return model
    try:
        relative = Path(os.path.relpath(Path(file_part).resolve(), folder.resolve())).as_posix()
    except ValueError:  # another drive
        relative = Path(file_part).resolve().as_posix()
    return f"{relative}{sep}{name}"


def _key(result: ModelResult, finding: Finding, folder: Path) -> FindingId:
    """The finding's identity, with the model named as the baseline file names it."""
    return identity(result, finding)._replace(model=_model_key(result.model, folder))


def _entry(result: ModelResult, finding: Finding, folder: Path) -> Entry:
    return Entry(*_key(result, finding, folder), message=finding.message)


def write_baseline(path: Path, results: list[ModelResult]) -> int:
    """Record every finding of ``results`` in ``path``; returns how many."""
    folder = path.resolve().parent
    entries = sorted(
        (_entry(r, f, folder) for r in results if r.status == "ok" for f in r.findings
         if f.code not in _ENGINE_CODES),
        key=lambda e: (e.model, e.target, e.code, e.module, e.message),
    )  # fmt: skip
    document = {
        "format": FORMAT,
        "version": SCHEMA_VERSION,
        "cnnlint_version": __version__,
        "findings": [
            {"code": e.code, "model": e.model, "module": e.module, "target": e.target,
             "message": e.message}
            for e in entries
        ],
    }  # fmt: skip
    text = json.dumps(document, indent=2) + "\n"
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--write-baseline {path}: cannot write it ({exc.strerror or exc}).") from None
    return len(entries)


def read_baseline(path: Path) -> list[Entry]:
    """The entries of a baseline file; a missing or malformed file is a ConfigError naming it."""
    where = f"--baseline {display_path(path)}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{where}: no such file. Write one with --write-baseline {display_path(path)}."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read it ({exc}).") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}). "
            "Rewrite it with --write-baseline."
        ) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ConfigError(f"{where}: not a cnnlint baseline (no \"format\": \"{FORMAT}\").")
    if document.get("version") != SCHEMA_VERSION:
        raise ConfigError(
            f"{where}: baseline format version {document.get('version')!r}; this cnnlint reads "
            f"version {SCHEMA_VERSION}. Rewrite it with --write-baseline."
        )
    findings = document.get("findings")
    if not isinstance(findings, list):
        raise ConfigError(f"{where}: key 'findings' must be a list.")
    entries = []
    for index, item in enumerate(findings):
        fields = ("code", "model", "module", "target")
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in fields):
            raise ConfigError(
                f"{where}: findings[{index}] must be an object with string keys "
                f"{', '.join(fields)}."
            )
        entries.append(Entry(item["code"], item["model"], item["module"], item["target"],
                             str(item.get("message", ""))))  # fmt: skip
    return entries


def apply_baseline(
    path: Path,
    entries: list[Entry],
    results: list[ModelResult],
    ran: Callable[[ModelResult], set[str]],
) -> int:
    """Drop findings the baseline holds; report its stale entries as CL003. Returns how many
    findings were dropped.

    ``ran(result)``: the rule codes that ran for a result; an entry for a rule that did not run
    (left out by ``--select``) is not stale, and stale entries are reported only where CL003
    itself is selected.
    """
    folder = path.resolve().parent
    remaining = Counter(e.key for e in entries)
    dropped = 0
    for result in results:
        kept = []
        for finding in result.findings:
            key = _key(result, finding, folder)
            if remaining[key] > 0:
                remaining[key] -= 1
                dropped += 1
            else:
                kept.append(finding)
        result.findings = kept
    by_model_target = {(_model_key(r.model, folder), r.target): r for r in results if r.status == "ok"}
    reported: Counter[FindingId] = Counter()
    for entry in entries:
        result = by_model_target.get((entry.model, entry.target))
        if result is None or entry.code not in ran(result) or STALE_CODE not in ran(result):
            continue  # not linted this time: neither matched nor stale
        if reported[entry.key] >= remaining[entry.key]:
            continue
        reported[entry.key] += 1
        result.findings.append(_stale_finding(path, entry))
    for result in by_model_target.values():
        result.findings.sort(key=Finding.sort_key)
    return dropped


def _stale_finding(path: Path, entry: Entry) -> Finding:
    where = entry.module or "the model"
    return Finding(
        message=(
            f"stale baseline entry: {entry.code} on {where} no longer fires on {entry.target} "
            f"(recorded: {entry.message or 'no message'})"
        ),
        fix=f"rewrite the baseline: --write-baseline {display_path(path)}",
        severity="info",
        code=STALE_CODE,
        name=STALE_NAME,
        module=entry.module,
        metrics={"baseline": display_path(path)},
    )
