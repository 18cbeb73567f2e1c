"""What several report formats need alike: a finding's fingerprint, a model's file, counts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TextIO

from cnnlint.core import SEVERITIES
from cnnlint.results import Finding, ModelResult, Placement, identity

WORST_FIRST = SEVERITIES[::-1]  # error, warning, info: the order reports count them in


def write_json(document: object, stream: TextIO) -> None:
    """``document`` as JSON indented by two, in one write: ``json.dump`` hands the stream every
    token on its own (600,000 writes for the JSON report of 80 classifiers)."""
    stream.write(json.dumps(document, indent=2))


def _identity_text(result: ModelResult, finding: Finding) -> str:
    return "\0".join(identity(result, finding))


def fingerprint(result: ModelResult, finding: Finding) -> str:
    """A stable hash of the finding's :func:`~cnnlint.results.identity` (not of the line, so
    edits elsewhere keep it)."""
    return hashlib.sha256(_identity_text(result, finding).encode()).hexdigest()


def unique_fingerprints(results: list[ModelResult]) -> dict[int, str]:
    """``id(finding) -> fingerprint``, distinct per finding: two findings with one identity (a
    rule that reports a module twice) are told apart by their rank among those, in report order,
    which is deterministic."""
    seen: dict[str, int] = {}
    unique: dict[int, str] = {}
    for result in results:
        for finding in result.findings:
            key = _identity_text(result, finding)
            rank = seen.get(key, 0)
            seen[key] = rank + 1
            text = key if rank == 0 else f"{key}\0{rank}"
            unique[id(finding)] = hashlib.sha256(text.encode()).hexdigest()
    return unique


def model_file(model: str) -> str:
    """The source file a model spec names ("" for an import spec like pkg.mod:attr)."""
    path = model.partition("::")[0]
    return path if path.endswith(".py") else ""


def finding_path(result: ModelResult, finding: Finding) -> str:
    """Where a finding is: its layer's file, else the model's file, else ""."""
    return finding.path or model_file(result.model)


def headline(result: ModelResult, finding: Finding) -> str:
    """One line for people: ``[t4] message``, with the model for a finding without a file."""
    where = "" if finding.path else f"{result.model}: "
    return f"[{result.target}] {where}{finding.message}"


def counts(result: ModelResult) -> dict[str, int]:
    """Findings per severity, every severity present (error, warning, info)."""
    found = {severity: 0 for severity in WORST_FIRST}
    for finding in result.findings:
        found[finding.severity or "info"] += 1
    return found


def placement_text(placement: Placement) -> str:
    """The placement in a few words: "41 of 44 layers on the NPU (3 on the CPU), 2 partitions,
    est. +0.120 ms transfers"; on a target that cuts the graph once, where the cut is."""
    p = placement
    partitions = f"{p.partitions} partition{'' if p.partitions == 1 else 's'}"
    if p.on_accelerator == p.layers:
        return f"all {p.layers} layers on the {p.accelerator}, {partitions}"
    off = p.layers - p.on_accelerator
    if p.mode == "first-unsupported-tail" and p.fallback_layers:
        rest = f"{p.fallback_layers[0]} and all after it on the {p.fallback_device}"
    else:
        rest = f"{off} on the {p.fallback_device}"
    transfers = f", est. +{p.transfer_ms:.3f} ms transfers" if p.switches else ""
    if p.fallback_ms is not None:
        there = f", est. +{p.fallback_ms:.3f} ms for them on the {p.fallback_device}"
    else:  # a wrong number is worse than none: say what the latency leaves out
        there = f" (timed at {p.accelerator} rates: no fallback profile)"
    return (f"{p.on_accelerator} of {p.layers} layers on the {p.accelerator} ({rest}), "
            f"{partitions}{transfers}{there}")


def repository_root(start: Path | None = None) -> Path:
    """The nearest folder above the working directory with a .git entry, else the working
    directory: report URIs are relative to it, as code scanning expects."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return here


def relative_to_root(path: str, root: Path) -> str | None:
    """``path`` (as the report shows it) relative to ``root`` in POSIX form, None if outside."""
    absolute = Path(path).resolve()
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        return None
