"""Whole-model timings for ``cnnlint calibrate --from-measurements``: the CSV (one row per timed
model), each row's architecture family, and the kernels cnnlint counts for each model, linted
once.

The CSV has a header row; columns are found by name, and others are kept but not read:

    spec         a cnnlint spec: package.module:attr, path/model.py::Name (required)
    input_shape  the input's shape as --input-shape takes it, 1,3,224,224 (several inputs: ;
                 between them); its first dimension is the batch unless ``batch`` says otherwise;
                 empty: the shape cnnlint would choose for the spec
    batch        inputs per timed forward call (default: input_shape's first dimension, else 1)
    ms           milliseconds per forward call of the whole batch
    throughput   inputs per second (ms = 1000 x batch / throughput); each row gives ms or
                 throughput
    family       the architecture family, for folds held out by family (default: from the spec)

A family left empty comes from the spec's model name (:func:`family_of`): the name after the last
``:`` or ``::`` (a file spec: the file's stem), lower-cased, split at ``_``; leading tokens that
name a weight port rather than an architecture (``tf``, ``legacy``, ``gluon``, ``tv``, ``hf``) are
dropped; the first remaining token is cut before its first digit, except that a ``v`` and digits
right after the letters stay (a version), as does a version token after them: resnet50d -> resnet,
resnext101_32x8d -> resnext, tf_efficientnet_b0 -> efficientnet, mobilenetv3_large_100 and
mobilenet_v3_large -> mobilenetv3, regnetx_002 -> regnetx.
Names that the rule splits badly (res2net50 -> res) want a family column.

Each distinct (spec, input shape) is loaded and traced once at batch 1 (``pipeline.graph_of``) and
costed once (``cost.compute_cost``) with the profile being fitted, so a row's kernels are exactly
the ones cnnlint will cost (the profile's fusion decides which layers share a kernel). A row's
time at its batch is then the cost stage's throughput arithmetic: activations scale with the
batch, weights are read once, and kernels computed from parameters alone run once per call.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cnnlint.core import LayerGraph, Shape
from cnnlint.errors import CnnlintError
from cnnlint.profile import Profile

TIME_COLUMNS = ("ms", "throughput")
COLUMNS = ("spec", "input_shape", "batch", *TIME_COLUMNS, "family")
# Leading name tokens that say whose weights a model has, not what it is.
PORT_PREFIXES = frozenset({"tf", "legacy", "gluon", "tv", "hf"})


class MeasurementError(CnnlintError):
    """The measurements file cannot be read as whole-model timings."""


@dataclass(frozen=True)
class Measurement:
    """One timed model: ``seconds`` per forward call of ``batch`` inputs."""

    spec: str
    input_shapes: tuple[Shape, ...]  # at batch 1; () for the spec's default
    batch: int
    seconds: float
    family: str
    line: int
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> tuple[str, tuple[Shape, ...]]:
        """What is linted once: the spec at its input shapes."""
        return self.spec, self.input_shapes

    @property
    def per_input_s(self) -> float:
        return self.seconds / self.batch


def family_of(spec: str) -> str:
    """The architecture family a spec's model name says (the module docstring gives the rule)."""
    name = re.split(r"::|:", spec)[-1] if (":" in spec) else Path(spec).stem
    tokens = [t for t in name.lower().split("_") if t]
    while len(tokens) > 1 and tokens[0] in PORT_PREFIXES:
        tokens = tokens[1:]
    if not tokens:
        return name.lower()
    head = re.match(r"([a-z]+?)(v\d+)?(?=\d|$)", tokens[0])
    family = head.group(1) + (head.group(2) or "") if head else tokens[0]
    if head and not head.group(2) and len(tokens) > 1 and re.fullmatch(r"v\d+", tokens[1]):
        family += tokens[1]  # mobilenet_v2: a version as a token of its own
    return family


def read_measurements(path: Path) -> list[Measurement]:
    """Every row of a measurements CSV, checked; a bad row is an error that names its line."""
    from cnnlint.options import parse_input_shape

    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise MeasurementError(f"{path}: {exc.strerror or exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        if "spec" not in header or not any(c in header for c in TIME_COLUMNS):
            raise MeasurementError(
                f"{path}: the header must name a spec column and an ms or throughput column "
                f"(columns: {', '.join(COLUMNS)}); it has {', '.join(header) or 'nothing'}."
            )
        rows = []
        for line, raw in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            where = f"{path}:{line}"
            if not row.get("spec"):
                raise MeasurementError(f"{where}: no spec.")
            shapes: list[Shape] = []
            if row.get("input_shape"):
                try:
                    shapes = parse_input_shape(row["input_shape"], f"{where}: input_shape")
                except CnnlintError as exc:
                    raise MeasurementError(str(exc)) from None
            batch = _number(row, "batch", where, int) or (shapes[0][0] if shapes else 1)
            ms, throughput = _number(row, "ms", where), _number(row, "throughput", where)
            if (ms is None) == (throughput is None):
                raise MeasurementError(f"{where}: give ms or throughput, not {'both' if ms else 'neither'}.")
            seconds = ms / 1e3 if ms is not None else batch / throughput
            rows.append(Measurement(
                spec=row["spec"], input_shapes=tuple((1, *s[1:]) for s in shapes), batch=batch,
                seconds=seconds, family=row.get("family") or family_of(row["spec"]), line=line,
                extra={k: v for k, v in row.items() if k not in COLUMNS},
            ))  # fmt: skip
    if not rows:
        raise MeasurementError(f"{path}: no rows.")
    return rows


def _number(row: dict[str, str], column: str, where: str, kind: type = float) -> float | None:
    text = row.get(column, "")
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        whole = "whole " if kind is int else ""
        raise MeasurementError(f"{where}: {column} {text!r} is not a {whole}number.") from None
    if value <= 0:
        raise MeasurementError(f"{where}: {column} must be positive, got {text}.")
    return value


# ------------------------------------------------------------------------------- kernels
@dataclass
class ModelWork:
    """The kernels cnnlint costs for one model at batch 1, as parallel lists: what the fit
    needs of each (``cost.Kernel``)."""

    flops: list[float] = field(default_factory=list)
    activation_bytes: list[float] = field(default_factory=list)  # read and written; scale with the batch
    weight_bytes: list[float] = field(default_factory=list)  # read once per call
    op_class: list[str] = field(default_factory=list)
    gemm_k: list[float] = field(default_factory=list)
    gemm_n: list[float] = field(default_factory=list)
    alignment: list[float] = field(default_factory=list)  # the share of its rate its channel widths keep
    fresh_output_bytes: list[float] = field(default_factory=list)  # written to a fresh buffer; scale with the batch
    strided_input_bytes: list[float] = field(default_factory=list)  # a strided conv's gathered input; scale too
    window_outputs: list[float] = field(default_factory=list)  # a windowed pool's or depthwise conv's outputs; scale too
    once: list[bool] = field(default_factory=list)  # computed from parameters alone: once per call
    macs: int = 0  # of the whole model at batch 1
    total_flops: int = 0

    def __len__(self) -> int:
        return len(self.flops)


def kernel_work(graph: LayerGraph, profile: Profile, precision: str) -> ModelWork:
    """The kernels the cost stage plans for ``graph`` under ``profile`` (its fusion decides which
    layers share one)."""
    from cnnlint.cost import compute_cost

    cost = compute_cost(graph, profile, precision)
    work = ModelWork(macs=cost.macs, total_flops=cost.flops)
    for kernel in cost.kernels.values():
        work.flops.append(float(kernel.flops))
        written = profile.output_bytes_moved(kernel.output_bytes, kernel.in_place)  # as the cost stage moves them
        work.activation_bytes.append(float(kernel.input_bytes + written))
        work.weight_bytes.append(float(kernel.weight_bytes))
        work.op_class.append(kernel.op_class)
        work.gemm_k.append(float(kernel.gemm_k))
        work.gemm_n.append(float(kernel.gemm_n))
        work.alignment.append(kernel.alignment)
        work.fresh_output_bytes.append(float(kernel.fresh_output_bytes))
        work.strided_input_bytes.append(float(kernel.strided_input_bytes))
        work.window_outputs.append(float(kernel.window_outputs))
        work.once.append(bool(graph[kernel.head].param_only))
    return work


def graph_for(spec: str, input_shapes: tuple[Shape, ...] = ()) -> LayerGraph:
    """Load and trace one spec at batch 1 (the load, trace and graph stages, as a lint does)."""
    from cnnlint.load import ModelSettings, load
    from cnnlint.pipeline import graph_of
    from cnnlint.spec import ModelSpec

    loaded = load(ModelSpec.parse(spec), lambda _: ModelSettings(), list(input_shapes) or None)
    if len(loaded) != 1:
        raise MeasurementError(f"{spec}: names {len(loaded)} models; a row times one (write path.py::Name).")
    (model,) = loaded
    if isinstance(model, Exception):
        raise model
    return graph_of(model)


def _work_of(spec: str, shapes: tuple[Shape, ...], profile: Profile, precision: str) -> ModelWork | str:
    """One model's kernels, or why it could not be linted (in a worker process)."""
    try:
        return kernel_work(graph_for(spec, shapes), profile, precision)
    except Exception as exc:  # noqa: BLE001 - one model's failure is reported, the rest are fitted
        text = str(exc).splitlines()[0][:200] if str(exc) else ""
        return f"{type(exc).__name__}: {text}" if not isinstance(exc, CnnlintError) else text


def model_work(
    rows: Iterable[Measurement],
    profile: Profile,
    precision: str,
    jobs: int = 1,
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[dict[tuple, ModelWork], dict[tuple, str]]:
    """Each distinct (spec, input shape) among ``rows`` linted once: its kernels, or why not."""
    keys = list(dict.fromkeys(r.key for r in rows))
    works: dict[tuple, ModelWork] = {}
    errors: dict[tuple, str] = {}

    def record(i: int, key: tuple, result: ModelWork | str) -> None:
        (works if isinstance(result, ModelWork) else errors)[key] = result  # type: ignore[index]
        if progress:
            progress(i + 1, len(keys), key[0])

    if jobs <= 1:
        for i, key in enumerate(keys):
            record(i, key, _work_of(*key, profile, precision))
        return works, errors
    with ProcessPoolExecutor(jobs) as pool:
        futures = [pool.submit(_work_of, *key, profile, precision) for key in keys]
        for i, (key, future) in enumerate(zip(keys, futures)):
            record(i, key, future.result())
    return works, errors
