"""GitLab Code Quality: a JSON array of issues (``artifacts:reports:codequality``).

Each issue has a description, ``check_name`` (the rule code), a ``fingerprint`` GitLab uses to
tell new issues from fixed ones, GitLab's severity words, and ``location.path`` (relative to the
repository root) + ``location.lines.begin``. Fingerprints come from code + model + module path +
target, not the line, so they survive edits elsewhere in the file; two findings never share one.
A model that could not be linted is a ``blocker``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, TextIO

from cnnlint.report import ReportOptions
from cnnlint.report.common import (
    finding_path,
    headline,
    model_file,
    relative_to_root,
    repository_root,
    unique_fingerprints,
    write_json,
)
from cnnlint.results import ModelResult

SEVERITY = {"error": "critical", "warning": "major", "info": "info"}


def gitlab_issues(results: list[ModelResult], root: Path | None = None) -> list[dict[str, Any]]:
    root = root or repository_root()

    def repo_path(path: str) -> str:  # GitLab matches paths relative to the repository root
        return (relative_to_root(path, root) or path) if path else ""

    fingerprints = unique_fingerprints(results)
    issues: list[dict[str, Any]] = []
    for result in results:
        if result.status == "error":
            key = f"error\0{result.model}\0{result.target}"
            issues.append({
                "type": "issue", "check_name": "cnnlint-error", "categories": ["Bug Risk"],
                "description": result.error or "unknown error", "severity": "blocker",
                "fingerprint": hashlib.sha256(key.encode()).hexdigest(),
                "location": {"path": repo_path(model_file(result.model)) or result.model,
                             "lines": {"begin": 1}},
            })  # fmt: skip
            continue
        for finding in result.findings:
            description = headline(result, finding) + (f" (fix: {finding.fix})" if finding.fix else "")
            issues.append({
                "type": "issue", "check_name": finding.code, "categories": ["Performance"],
                "description": description, "severity": SEVERITY[finding.severity or "info"],
                "fingerprint": fingerprints[id(finding)],
                "location": {"path": repo_path(finding_path(result, finding)) or result.model,
                             "lines": {"begin": max(finding.line, 1)}},
            })  # fmt: skip
    return issues


def write(results: list[ModelResult], stream: TextIO, options: ReportOptions) -> None:
    write_json(gitlab_issues(results), stream)
    stream.write("\n")
