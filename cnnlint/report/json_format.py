"""The JSON report: a stable contract other tools (the review bot, CI) parse."""

from __future__ import annotations

import json
from typing import Any, TextIO

from cnnlint import __version__
from cnnlint.results import Finding, ModelResult


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    return {
        "code": finding.code,
        "name": finding.name,
        "severity": finding.severity,
        "message": finding.message,
        "path": finding.path,
        "line": finding.line,
        "column": finding.column,
        "module": finding.module,
        "metrics": finding.metrics,
        "fix": finding.fix,
    }


def result_to_dict(result: ModelResult) -> dict[str, Any]:
    summary = None
    if result.summary is not None:
        s = result.summary
        summary = {
            "flops": s.flops,
            "macs": s.macs,
            "params": s.params,
            "memory_access_bytes": s.memory_access_bytes,
            "latency_ms": round(s.latency_ms, 6),
            "throughput_per_s": round(s.throughput_per_s, 3),
            "throughput_batch": s.throughput_batch,
            "utilization": round(s.utilization, 6),
            "not_counted": s.not_counted,
        }
    return {
        "model": result.model,
        "target": result.target,
        "precision": result.precision,
        "status": result.status,
        "error": result.error,
        "input_shape": result.input_shape,
        "input_shapes": result.input_shapes,
        "summary": summary,
        "findings": [finding_to_dict(f) for f in result.findings],
        "notes": result.notes,
    }


def write_json(results: list[ModelResult], stream: TextIO, color: bool = False) -> None:
    document = {"cnnlint_version": __version__, "results": [result_to_dict(r) for r in results]}
    json.dump(document, stream, indent=2, sort_keys=False)
    stream.write("\n")
