"""The JSON report's contract as pydantic models: what ``--format json`` prints and what
``cnnlint.lint()`` returns are the same object, ``Report``.

The models are generated from the result dataclasses (:mod:`cnnlint.results`, and
:class:`cnnlint.core.SourceLocation` for ``related``), which state each field once: its type,
default, description and bounds, and whether and how it is reported (see that module). Field
order is output order. Numbers are rounded here, once, for every consumer.

:func:`json_schema` is the report's JSON schema; ``cnnlint schema`` prints it, and
``docs/schema/cnnlint-report.schema.json`` is that output, committed (a test fails when it is
stale).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from functools import partial
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from cnnlint import __version__
from cnnlint.core import SourceLocation, at_or_above
from cnnlint.results import Finding, ModelResult, Placement, PlacementRun, Summary

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILE = "docs/schema/cnnlint-report.schema.json"  # in the repository, where it is published


class _Contract(BaseModel):
    # Every field is in every report, so the schema of the output requires each one.
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    @classmethod
    def of(cls, source: Any) -> Any:
        """The report of a result dataclass: its reported fields, numbers rounded."""
        return cls.model_validate(source, from_attributes=True)


_GENERATED: dict[type, type[BaseModel]] = {}  # result dataclass -> its report model


def _reported(annotation: Any) -> Any:
    """``annotation`` with each result dataclass in it replaced by its report model."""
    if annotation in _GENERATED:
        return _GENERATED[annotation]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if not args or origin in (Literal, Annotated):
        return annotation
    swapped = tuple(_reported(a) for a in args)
    if origin in (Union, types.UnionType):
        return Union[swapped]  # noqa: UP007 - built from a tuple
    return origin[swapped]


def _rounded(value: float | None, digits: int) -> float | None:
    """``round`` for a number that may be null (a placement's fallback_ms without a profile)."""
    return None if value is None else round(value, digits)


def _generate(source: type, name: str, base: type[_Contract] = _Contract) -> Any:
    """A report model of the dataclass ``source``: its fields in order, less those whose metadata
    says ``reported: False``; a ``digits`` entry rounds the value; the rest is pydantic's
    ``Field`` (description, bounds)."""
    hints = typing.get_type_hints(source)
    fields: dict[str, Any] = {}
    for item in dataclasses.fields(source):
        about = dict(item.metadata)
        if not about.pop("reported", True):
            continue
        annotation = _reported(hints[item.name])
        digits = about.pop("digits", None)
        if digits is not None:
            annotation = Annotated[annotation, AfterValidator(partial(_rounded, digits=digits))]
        if item.default is not dataclasses.MISSING:
            about["default"] = item.default
        elif item.default_factory is not dataclasses.MISSING:
            about["default_factory"] = item.default_factory
        fields[item.name] = (annotation, Field(**about))
    model = create_model(name, __base__=base, __module__=__name__, __doc__=source.__doc__, **fields)
    _GENERATED[source] = model
    return model


class _FindingReport(_Contract):
    @property
    def where(self) -> str:
        """``path:line:col``, or "" for a finding about the model as a whole."""
        path, line, column = self.path, self.line, self.column  # type: ignore[attr-defined]
        return f"{path}:{line}:{column}" if path else ""


class _ResultReport(_Contract):
    # What the field types cannot say: a result has a summary or an error, and an error no findings.
    model_config = ConfigDict(json_schema_extra={"allOf": [
        {"if": {"properties": {"status": {"const": "ok"}}},
         "then": {"properties": {"error": {"type": "null"}, "summary": {"type": "object"}}}},
        {"if": {"properties": {"status": {"const": "error"}}},
         "then": {"properties": {"error": {"type": "string"}, "findings": {"maxItems": 0}}}},
    ]})  # fmt: skip


Location = _generate(SourceLocation, "Location")
FindingReport = _generate(Finding, "FindingReport", _FindingReport)
SummaryReport = _generate(Summary, "SummaryReport")
PlacementRunReport = _generate(PlacementRun, "PlacementRunReport")
PlacementReport = _generate(Placement, "PlacementReport")
ResultReport = _generate(ModelResult, "ResultReport", _ResultReport)


class Report(_Contract):
    """Every model x target linted in one run: what ``--format json`` prints
    (``model_dump(mode="json")``) and what ``cnnlint.lint()`` returns."""

    cnnlint_version: str = __version__
    results: list[ResultReport]  # type: ignore[valid-type]

    @classmethod
    def of(cls, results: list[ModelResult]) -> Report:
        return cls(results=[ResultReport.of(r) for r in results])

    @property
    def findings(self) -> list[Any]:
        """Every finding (a ``FindingReport``) of every model on every target, in report order."""
        return [f for r in self.results for f in r.findings]

    @property
    def errors(self) -> list[str]:
        """Why each model that could not be linted failed."""
        return [r.error or f"{r.model}: unknown error" for r in self.results if r.status == "error"]

    def at_or_above(self, severity: str) -> list[Any]:
        return [f for f in self.findings if at_or_above(f.severity, severity)]


def json_schema() -> dict[str, Any]:
    """The JSON schema of ``--format json``'s output (pydantic's, in serialization mode)."""
    schema = Report.model_json_schema(mode="serialization")
    schema.pop("title")
    return {"$schema": SCHEMA_DIALECT, "title": "cnnlint JSON report", **schema}


def json_schema_text() -> str:
    """:func:`json_schema` as ``docs/schema/cnnlint-report.schema.json`` holds it."""
    return json.dumps(json_schema(), indent=2) + "\n"
