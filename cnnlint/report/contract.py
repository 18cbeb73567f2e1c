"""The JSON report's contract as pydantic models: what ``--format json`` prints and what
``cnnlint.lint()`` returns are the same object, ``Report``.

Field order is output order. Numbers are rounded here, once, for every consumer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from cnnlint import __version__
from cnnlint.core import at_or_above
from cnnlint.results import Finding, ModelResult


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Location(_Contract):
    path: str
    line: int
    column: int
    function: str


class FindingReport(_Contract):
    code: str
    name: str
    severity: str | None
    message: str
    path: str
    line: int
    column: int
    module: str
    metrics: dict[str, Any]
    fix: str | None
    related: list[Location] = []

    @classmethod
    def of(cls, finding: Finding) -> FindingReport:
        return cls(
            code=finding.code, name=finding.name, severity=finding.severity,
            message=finding.message, path=finding.path, line=finding.line,
            column=finding.column, module=finding.module, metrics=finding.metrics,
            fix=finding.fix,
            related=[Location(path=r.path, line=r.line, column=r.column, function=r.function)
                     for r in finding.related],
        )  # fmt: skip

    @property
    def where(self) -> str:
        """``path:line:col``, or "" for a finding about the model as a whole."""
        return f"{self.path}:{self.line}:{self.column}" if self.path else ""


class SummaryReport(_Contract):
    flops: int
    macs: int
    params: int
    memory_access_bytes: int
    latency_ms: float
    throughput_per_s: float
    throughput_batch: int
    utilization: float
    not_counted: list[str]
    params_unused: int = 0  # parameters the forward never uses (aux heads), not in ``params``
    unused_modules: list[str] = []


class ResultReport(_Contract):
    model: str
    target: str
    precision: str
    status: str
    error: str | None
    input_shape: list[int]
    input_shapes: list[list[int]]
    input_shape_source: str = ""  # option | config | declared | guess; "" when loading failed
    summary: SummaryReport | None
    findings: list[FindingReport]
    notes: list[str]

    @classmethod
    def of(cls, result: ModelResult) -> ResultReport:
        summary = None
        if result.summary is not None:
            s = result.summary
            summary = SummaryReport(
                flops=s.flops, macs=s.macs, params=s.params,
                memory_access_bytes=s.memory_access_bytes, latency_ms=round(s.latency_ms, 6),
                throughput_per_s=round(s.throughput_per_s, 3), throughput_batch=s.throughput_batch,
                utilization=round(s.utilization, 6), not_counted=list(s.not_counted),
                params_unused=s.params_unused, unused_modules=list(s.unused_modules),
            )  # fmt: skip
        return cls(
            model=result.model, target=result.target, precision=result.precision,
            status=result.status, error=result.error, input_shape=list(result.input_shape),
            input_shapes=[list(s) for s in result.input_shapes],
            input_shape_source=result.input_shape_source, summary=summary,
            findings=[FindingReport.of(f) for f in result.findings], notes=list(result.notes),
        )  # fmt: skip


class Report(_Contract):
    """Every model x target linted in one run. ``model_dump(mode="json")`` is the JSON report."""

    cnnlint_version: str = __version__
    results: list[ResultReport]

    @classmethod
    def of(cls, results: list[ModelResult]) -> Report:
        return cls(results=[ResultReport.of(r) for r in results])

    @property
    def findings(self) -> list[FindingReport]:
        """Every finding of every model on every target, in report order."""
        return [f for r in self.results for f in r.findings]

    @property
    def errors(self) -> list[str]:
        """Why each model that could not be linted failed."""
        return [r.error or f"{r.model}: unknown error" for r in self.results if r.status == "error"]

    def at_or_above(self, severity: str) -> list[FindingReport]:
        return [f for f in self.findings if at_or_above(f.severity, severity)]
