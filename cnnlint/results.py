"""What the check stage produces and the report stage prints. Torch-free, like the rules."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from cnnlint.core import Layer, SourceLocation, at_or_above

_DIGITS = re.compile(r"(\d+)")

# Where a model's input shapes came from (ModelResult.input_shape_source), as reports say it.
INPUT_SOURCES = {
    "option": "from --input-shape",
    "config": "from pyproject.toml",
    "declared": "the model's declared input size",
    "guess": "guessed from the first conv",
}


@dataclass
class Finding:
    """One problem a rule found. Rules fill what and why; the engine fills code, name, where."""

    message: str
    layer: Layer | None = None  # where it is; None for a model-level finding
    fix: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    severity: str | None = None  # None: the severity configured for the rule on this target
    code: str = ""
    name: str = ""
    path: str = ""
    line: int = 0
    column: int = 0
    module: str = ""
    # The construction chain of the layer, outermost call first (model -> block -> helper), so
    # a finding inside a helper also says which of its callers built this instance.
    related: list[SourceLocation] = field(default_factory=list)

    def sort_key(self) -> tuple:
        return (natural_key(self.path), self.line, self.column, self.code,
                natural_key(self.module), self.message)  # fmt: skip


class FindingId(NamedTuple):
    """What a finding is, whatever line it moved to and whatever numbers its message holds."""

    code: str
    model: str
    module: str
    target: str


def identity(result: ModelResult, finding: Finding) -> FindingId:
    """Code + model + module path + target: the one identity of a finding. The baseline matches
    its entries by it, the review bot tells new findings from unchanged ones by it, and SARIF and
    GitLab fingerprints hash it, so an edit that moves lines keeps every finding what it was."""
    return FindingId(finding.code, result.model, finding.module, result.target)


def natural_key(text: str) -> tuple:
    """Sort ``features.2`` before ``features.10``: digit runs compare as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(text))


@dataclass
class Summary:
    flops: int
    macs: int
    params: int
    memory_access_bytes: int
    latency_ms: float
    throughput_per_s: float
    utilization: float
    throughput_batch: int
    not_counted: list[str] = field(default_factory=list)  # opaque submodules left out of the totals
    # parameters the model has but its forward never uses (aux heads), left out of ``params``
    params_unused: int = 0
    unused_modules: list[str] = field(default_factory=list)  # the submodules that hold them


@dataclass
class ModelResult:
    model: str
    target: str
    precision: str
    status: str  # "ok" | "error"
    error: str | None = None
    input_shape: list[int] = field(default_factory=list)
    input_shapes: list[list[int]] = field(default_factory=list)
    input_shape_source: str = ""  # an INPUT_SOURCES key; "" before the model was loaded
    summary: Summary | None = None
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Lowest severity that makes the run fail, as resolved for this model's spec (not reported).
    fail_on: str = "warning"
    # Project files the model's import loaded, with their content hashes (for the cache).
    sources: dict[str, str] = field(default_factory=dict)

    def fails(self) -> bool:
        """Whether a finding here is at or above ``fail_on``."""
        return any(at_or_above(f.severity, self.fail_on) for f in self.findings)
