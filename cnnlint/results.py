"""What the check stage produces and the report stage prints. Torch-free, like the rules, and
pydantic-free, so that the text report never imports pydantic.

These dataclasses state each result field once. The JSON report (:mod:`cnnlint.report.contract`)
is generated from them, in field order: a field's metadata gives its ``description`` and bounds
(``ge``) for the JSON schema, ``digits`` to round a float to in the report, and ``reported:
False`` for what the run keeps but the report leaves out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from cnnlint.core import Layer, Severity, SourceLocation, at_or_above

_DIGITS = re.compile(r"(\d+)")
NOT_REPORTED = {"reported": False}  # field metadata: kept for the run, left out of the report

# Where a model's input shapes came from (ModelResult.input_shape_source), as reports say it.
INPUT_SOURCES = {
    "option": "from --input-shape",
    "config": "from pyproject.toml",
    "declared": "the model's declared input size",
    "guess": "guessed from the first conv",
}


def _doc(description: str, **more: Any) -> dict[str, Any]:
    return {"description": description, **more}


@dataclass
class Finding:
    """One problem a rule found. Rules fill what and why; the engine fills code, name, where."""

    message: str = field(metadata=_doc("what is wrong, and what it costs on this target"))
    layer: Layer | None = field(default=None, metadata=NOT_REPORTED)  # None: about the whole model
    fix: str | None = field(default=None, metadata=_doc("the change the rule proposes, if any"))
    metrics: dict[str, Any] = field(default_factory=dict, metadata=_doc("the numbers behind it"))
    # None until the engine gives it the severity configured for the rule on this target.
    severity: Severity | None = field(default=None, metadata=_doc("info, warning or error"))
    code: str = field(default="", metadata=_doc("the rule's code, e.g. CL301"))
    name: str = field(default="", metadata=_doc("the rule's name, e.g. depthwise-on-accelerator"))
    path: str = field(default="", metadata=_doc('the file it points into; "" for the whole model'))
    line: int = field(default=0, metadata=_doc("1-based; 0 without a path", ge=0))
    column: int = field(default=0, metadata=_doc("1-based; 0 without a path", ge=0))
    module: str = field(default="", metadata=_doc("the layer's module path, e.g. features.3.conv"))
    related: list[SourceLocation] = field(default_factory=list, metadata=_doc(
        "the construction chain of the layer, outermost call first (model -> block -> helper), so "
        "a finding inside a helper also says which of its callers built this instance"
    ))  # fmt: skip

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
    """The model's totals on the target, as the cost stage estimates them."""

    flops: int = field(metadata=_doc("floating-point operations of one forward", ge=0))
    macs: int = field(metadata=_doc("multiply-accumulates of one forward", ge=0))
    params: int = field(metadata=_doc("parameters the forward uses", ge=0))
    memory_access_bytes: int = field(metadata=_doc("bytes read and written by the kernels", ge=0))
    latency_ms: float = field(metadata=_doc(
        "estimated latency of one forward, with the placement's transfers", ge=0, digits=6))  # fmt: skip
    throughput_per_s: float = field(metadata=_doc(
        "estimated inputs per second at throughput_batch", ge=0, digits=3))  # fmt: skip
    utilization: float = field(metadata=_doc(
        "share of the target's peak the model reaches", ge=0, digits=6))  # fmt: skip
    throughput_batch: int = field(metadata=_doc("the batch throughput_per_s is estimated at", ge=1))
    not_counted: list[str] = field(default_factory=list, metadata=_doc(
        "opaque submodules left out of the MACs, traffic and latency"))  # fmt: skip
    params_unused: int = field(default=0, metadata=_doc(
        "parameters the model has but its forward never uses (aux heads); not in params",
        ge=0))  # fmt: skip
    unused_modules: list[str] = field(default_factory=list, metadata=_doc(
        "the submodules that hold params_unused"))  # fmt: skip


@dataclass
class PlacementRun:
    """Layers that run one after another on one device, in the order they run."""

    device: str = field(metadata=_doc("the accelerator or the fallback device, as the profile names it"))
    on_accelerator: bool = field(metadata=_doc("true: on the accelerator"))
    layers: int = field(metadata=_doc("how many layers", ge=1))
    first: str = field(metadata=_doc("the first layer's module path"))
    last: str = field(metadata=_doc("the last layer's module path"))


@dataclass
class Placement:
    """Where the layers run on an accelerator target: on the accelerator, or on the profile's
    fallback device, by the decision rule CL304 reports (the vendor's operator list and
    documented limits) and the toolchain's way of cutting the graph."""

    accelerator: str = field(metadata=_doc('what runs the layers the toolchain takes, e.g. "NPU"'))
    fallback_device: str = field(metadata=_doc('what runs the others, e.g. "CPU"'))
    mode: Literal["per-op", "first-unsupported-tail"] = field(metadata=_doc(
        "per-op: only the layers the accelerator does not take leave it; first-unsupported-tail: "
        "the first such layer and every layer after it do (the Edge TPU)"))  # fmt: skip
    layers: int = field(metadata=_doc(
        "layers placed: all but inputs, outputs, pass-throughs and folded constants", ge=0))  # fmt: skip
    on_accelerator: int = field(metadata=_doc("layers on the accelerator", ge=0))
    partitions: int = field(metadata=_doc(
        "runs of layers on the accelerator: the subgraphs its toolchain compiles", ge=0))  # fmt: skip
    switches: int = field(metadata=_doc("changes of device between consecutive runs", ge=0))
    transfer_bytes: int = field(metadata=_doc(
        "bytes of the tensors that change device, each counted once per device that reads it",
        ge=0))  # fmt: skip
    transfer_ms: float = field(metadata=_doc(
        "estimated time of the switches and copies; included in summary.latency_ms", ge=0,
        digits=6))  # fmt: skip
    fallback_ms: float | None = field(default=None, metadata=_doc(
        "estimated extra time of the fallback layers on the fallback device over the "
        "accelerator's estimate for them ([placement] fallback_profile); included in "
        "summary.latency_ms; null: the profile names no fallback profile, and those layers are "
        "timed at the accelerator's rates", digits=6))  # fmt: skip
    runs: list[PlacementRun] = field(default_factory=list, metadata=_doc(
        "the layers by device, in the order they run"))  # fmt: skip
    fallback_layers: list[str] = field(default_factory=list, metadata=_doc(
        "module paths of the layers on the fallback device"))  # fmt: skip


@dataclass
class ModelResult:
    """One model on one target: its totals and findings, or why it could not be linted."""

    model: str = field(metadata=_doc("the spec, e.g. models/net.py::Net"))
    target: str = field(metadata=_doc("the target profile's name"))
    precision: str = field(metadata=_doc("the number format it was linted at, e.g. fp16"))
    status: Literal["ok", "error"] = field(metadata=_doc("error: the model could not be linted"))
    error: str | None = field(default=None, metadata=_doc("why it could not be linted"))
    input_shape: list[int] = field(default_factory=list, metadata=_doc("the first input's shape"))
    input_shapes: list[list[int]] = field(default_factory=list, metadata=_doc("each input's shape"))
    input_shape_source: str = field(default="", metadata=_doc(
        'where the shapes came from; "" when loading failed',
        json_schema_extra={"enum": ["", *INPUT_SOURCES]}))  # fmt: skip
    summary: Summary | None = field(default=None, metadata=_doc("the totals; null on an error"))
    placement: Placement | None = field(default=None, metadata=_doc(
        "where the layers run on an accelerator target; null on other targets and on an "
        "error"))  # fmt: skip
    findings: list[Finding] = field(default_factory=list, metadata=_doc("in report order"))
    notes: list[str] = field(default_factory=list, metadata=_doc(
        "how the model was read (fallbacks, guesses)"))  # fmt: skip
    # Lowest severity that makes the run fail, as resolved for this model's spec.
    fail_on: str = field(default="warning", metadata=NOT_REPORTED)
    # Project files the model's import loaded, with their content hashes (for the cache).
    sources: dict[str, str] = field(default_factory=dict, metadata=NOT_REPORTED)
    # What the stages made for it, (LayerGraph, ModelCost), when the run was asked to keep them
    # (RunOptions.keep_stages: the HTML report draws them); None otherwise.
    stages: Any = field(default=None, metadata=NOT_REPORTED)

    def fails(self) -> bool:
        """Whether a finding here is at or above ``fail_on``."""
        return any(at_or_above(f.severity, self.fail_on) for f in self.findings)
