"""The Python API: ``cnnlint.lint(model_or_spec, target="t4") -> Report``.

``model_or_spec`` is what the command line takes (``"models/net.py::Net"``,
``"torchvision.models:resnet18"``), linted exactly as the command line lints it, or an
``nn.Module`` instance that is already built. An instance is never changed: cnnlint traces a copy
whose parameters and buffers are ``meta`` tensors (no weight is copied), so its weights, device
and train/eval mode stay as they were. Its construction lines are unknown (it was built before
cnnlint could watch), so its findings point at the ``forward`` lines that call each layer.

A model that cannot be linted is a result with ``status == "error"``, as in the JSON report;
``Report.errors`` lists them. Inline ``# cnnlint: disable=...`` comments on the lines findings
point at apply, as on the command line (an unused one is not reported here: that is the command
line's CL002).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Union

from cnnlint.errors import CnnlintError
from cnnlint.report.contract import Report
from cnnlint.results import ModelResult

if TYPE_CHECKING:
    from torch import nn

    from cnnlint.core import Shape

__all__ = ["Report", "lint"]

InputShape = Union[str, Sequence[int], Sequence[Sequence[int]], None]


def lint(
    model_or_spec: nn.Module | str | os.PathLike[str],
    target: str | Sequence[str] = "t4",
    *,
    input_shape: InputShape = None,
    input_dtype: str | Sequence[str] | None = None,
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    precision: str | None = None,
    name: str | None = None,
) -> Report:
    """Lint a model on one target or several and return the report.

    ``input_shape``: ``(1, 3, 224, 224)``, several inputs ``[(1, 3, 224, 224), (1, 16)]``, or the
    command line's ``"1,3,224,224"``; default: inferred from the first conv, as on the command
    line. ``input_dtype``: the inputs' element type, one for all (``"int64"``) or one per input
    (``["float32", "int64"]``); default float32. ``select``/``ignore``: rule codes, prefixes (``"CL3"``) or names, one or a list. ``name``: how the
    report names an instance (default: its class, ``package.module.Class``).
    """
    targets, select, ignore = _names(target), _names(select), _names(ignore)
    shapes = _shapes(input_shape)
    dtypes = None
    if input_dtype is not None:
        from cnnlint.options import check_input_dtypes

        dtypes = check_input_dtypes(_names(input_dtype), "input_dtype")
    if isinstance(model_or_spec, (str, os.PathLike)):
        from cnnlint.options import RunOptions
        from cnnlint.spec import ModelSpec
        from cnnlint.workers import run

        options = RunOptions(targets=targets, precision=precision, select=select, ignore=ignore,
                             input_shapes=shapes, input_dtypes=dtypes)  # fmt: skip
        return Report.of(_accepted(run([ModelSpec.parse(os.fspath(model_or_spec))], options)))
    from torch import nn

    if not isinstance(model_or_spec, nn.Module):
        raise TypeError(
            f"cnnlint.lint() takes an nn.Module instance or a spec string, not "
            f"{type(model_or_spec).__name__}."
        )
    label = name or f"{type(model_or_spec).__module__}.{type(model_or_spec).__qualname__}"
    return Report.of(_accepted(_lint_instance(model_or_spec, label, targets, shapes, dtypes, select, ignore, precision)))


def _accepted(results: list[ModelResult]) -> list[ModelResult]:
    """The results without the findings inline comments suppress."""
    from cnnlint.suppress import Suppressions

    Suppressions().apply(results)
    return results


def _names(value: str | Sequence[str]) -> list[str]:
    """One name or several: ``"CL3"`` is ``["CL3"]``, not three letters."""
    return [value] if isinstance(value, str) else list(value)


def _shapes(input_shape: InputShape) -> list[Shape] | None:
    if input_shape is None:
        return None
    if isinstance(input_shape, str):
        from cnnlint.options import parse_input_shape

        return parse_input_shape(input_shape, "input_shape")
    items = list(input_shape)
    if items and all(isinstance(d, int) for d in items):
        return [tuple(items)]
    return [tuple(int(d) for d in shape) for shape in items]


def _lint_instance(
    module: nn.Module,
    label: str,
    targets: list[str],
    shapes: list[Shape] | None,
    dtypes: list[str] | None,
    select: list[str],
    ignore: list[str],
    precision: str | None,
) -> list[ModelResult]:
    from cnnlint.check import validate_selectors
    from cnnlint.load import LoadedModel, input_dtypes_for, input_shapes_for, meta_copy
    from cnnlint.pipeline import lint_loaded
    from cnnlint.profile import load_profile

    try:
        validate_selectors(select, "select")
        validate_selectors(ignore, "ignore")
        profiles = [load_profile(t) for t in targets]
        twin = meta_copy(module, label)
        twin.eval()  # the inference graph, as for every model cnnlint builds itself
        found, source = input_shapes_for(twin, label, shapes)
        found_dtypes = input_dtypes_for(label, found, dtypes)
    except CnnlintError as exc:
        return [
            ModelResult(model=label, target=t, precision=precision or "", status="error", error=str(exc))
            for t in targets
        ]
    loaded = LoadedModel(label, twin, found, {}, "cpu", input_source=source, input_dtypes=found_dtypes)
    return lint_loaded(loaded, profiles, precision, select, ignore)
