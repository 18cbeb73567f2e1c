"""The pipeline, start to end, for one spec: ModelSpec -> ModelResults (``cnnlint.workers`` runs
many specs, in this process or in workers).

load -> trace -> graph -> cost -> check. A spec's settings are resolved once (:func:`resolve`:
the command line over the spec's own [tool.cnnlint]). Each model is traced once and then costed
and checked for every requested target. A model that fails at any stage becomes an error result;
the others are still linted.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlint.cache import recording_imports
from cnnlint.config import ProjectConfig, load_config, selection
from cnnlint.core import LayerGraph, Shape
from cnnlint.errors import CnnlintError, NoModelsError
from cnnlint.frames import where_raised
from cnnlint.options import DEFAULT_TARGET, RunOptions, fail_on_for, targets_for
from cnnlint.profile import Profile, load_profile
from cnnlint.results import ModelResult, Summary
from cnnlint.spec import ModelSpec
from cnnlint.watch import ModelTimeout, Watch

if TYPE_CHECKING:
    from cnnlint.load import LoadedModel, ModelSettings


@dataclass
class SpecSettings:
    """What one spec is linted with: the command line, over the spec's own [tool.cnnlint], over
    the defaults. Resolved here and nowhere else."""

    config: ProjectConfig
    profiles: list[Profile]
    precision: str | None  # None: each target's default precision
    select: list[str]
    ignore: list[str]
    fail_on: str
    real_run_max_params: int | None = None  # None: cnnlint.trace's default
    input_dtypes: list[str] | None = None  # --input-dtype; None: from [tool.cnnlint]

    def for_model(self, spec: ModelSpec) -> ModelSettings:
        """Constructor arguments, input shapes and input types of one model: the command line's
        types, over [tool.cnnlint.models], over [tool.cnnlint]."""
        from cnnlint.load import ModelSettings

        tool, entry = self.config.tool, self.config.model_entry(spec)
        if entry is None:
            return ModelSettings(input_shapes=tool.input_shape,
                                 input_dtypes=self.input_dtypes or tool.input_dtype)  # fmt: skip
        return ModelSettings(kwargs=entry.kwargs, input_shapes=entry.input_shape or tool.input_shape,
                             input_dtypes=self.input_dtypes or entry.input_dtype or tool.input_dtype)  # fmt: skip


def resolve(spec: ModelSpec, options: RunOptions, validate: bool = True) -> SpecSettings:
    """Settings for ``spec``. Raises CnnlintError for a bad config, profile or (when
    ``validate``: the cache skips it, having keyed its entry by them) rule selector."""
    config = load_config(spec.path if spec.path is not None else Path.cwd())
    tool = config.tool
    targets, base = targets_for(options, tool.target, config.root)
    profiles = [load_profile(t, base) for t in targets]
    if validate:
        _validate_selectors(config, options)
    select, ignore = selection(tool, options.select, options.ignore, options.extend_select)
    fail_on = fail_on_for(options, tool.fail_on)
    precision = options.precision or tool.precision
    real_run = options.real_run_max_params
    real_run = tool.real_run_max_params if real_run is None else real_run
    return SpecSettings(config, profiles, precision, select, ignore, fail_on, real_run, options.input_dtypes)


def _validate_selectors(config: ProjectConfig, options: RunOptions) -> None:
    from cnnlint.check import validate_selectors

    tool = config.tool
    validate_selectors(options.select or tool.select,
                       "--select" if options.select else f"{config.path}: select")  # fmt: skip
    validate_selectors(options.extend_select, "--extend-select")
    validate_selectors(tool.extend_select, f"{config.path}: extend-select")
    validate_selectors(options.ignore or tool.ignore,
                       "--ignore" if options.ignore else f"{config.path}: ignore")  # fmt: skip
    for glob, codes in tool.per_file_ignores.items():
        validate_selectors(codes, f"{config.path}: per-file-ignores {glob!r}")


@contextlib.contextmanager
def user_output_to_stderr(debug: bool = False) -> Iterator[None]:
    """User code may print at import or in forward(); stdout belongs to the report. Warnings that
    user and library code raise meanwhile (a model registry's "Overwriting ... in registry",
    deprecations) are not findings: they are dropped, and shown on stderr only with --debug."""
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        if not debug:
            warnings.simplefilter("ignore")
        yield


def error_result(model: str, target: str, precision: str, message: str) -> ModelResult:
    return ModelResult(model=model, target=target, precision=precision, status="error", error=message)


def spec_error(
    model: str, options: RunOptions, message: str, settings: SpecSettings | None = None
) -> list[ModelResult]:
    """An error before the model reached a target (loading it, or its worker died): one result
    per target, labelled as ok results are, with the target's name and precision (the spec's
    resolved settings when there are any, else the command line's targets)."""
    if settings is not None:
        labels = [(p.name, settings.precision or p.default_precision) for p in settings.profiles]
    else:
        labels = []
        for name in options.targets or [DEFAULT_TARGET]:
            try:
                profile = load_profile(name)
            except CnnlintError:  # the error being reported may be this very profile
                labels.append((name, options.precision or ""))
            else:
                labels.append((profile.name, options.precision or profile.default_precision))
    return [error_result(model, target, precision, message) for target, precision in labels]


def _internal_error(model: str, stage: str, exc: BaseException, debug: bool) -> str:
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    return (
        f"{model}: cnnlint failed while {stage}: {type(exc).__name__}: {exc}. This is a cnnlint "
        "bug; rerun with --debug for the traceback and report it."
    )


def lint_spec(
    spec: ModelSpec,
    options: RunOptions,
    watch: Watch | None = None,
    done: frozenset[str] = frozenset(),
    skip: frozenset[str] = frozenset(),
    on_results: Callable[[list[ModelResult]], None] | None = None,
) -> list[ModelResult]:
    """Lint every model one spec names, on every target.

    ``done``: models already reported (built, for the component check, but not linted again);
    ``skip``: models not even built (a worker crashed on them). ``on_results`` hears each
    model's results as soon as they exist, so a worker can hand them on before the next model.
    """
    if spec.error is not None:
        return spec_error(spec.display, options, spec.error)
    watch = watch or Watch(options.timeout)
    if spec.is_onnx:
        results = _lint_onnx(spec, options, watch)
        if on_results is not None:
            on_results(results)
        return results
    # Imported here so that `cnnlint rules` and `--help` never pay for importing torch.
    from cnnlint.load import spec_imports

    # The spec's own modules stay importable while its models are built and traced (a forward
    # may import lazily), then are forgotten so the next spec's same-named modules are its own.
    with spec_imports(spec):
        return _lint_spec(spec, options, watch, done, skip, on_results)


def _lint_spec(
    spec: ModelSpec,
    options: RunOptions,
    watch: Watch,
    done: frozenset[str],
    skip: frozenset[str],
    on_results: Callable[[list[ModelResult]], None] | None,
) -> list[ModelResult]:
    from cnnlint.load import load

    settings: SpecSettings | None = None
    try:
        settings = resolve(spec, options)
        factory_names = settings.config.factory_names(spec.path) if spec.path is not None else []
        with user_output_to_stderr(options.debug), recording_imports() as sources:
            loaded = load(spec, settings.for_model, options.input_shapes, factory_names, watch, skip)
    except NoModelsError as exc:
        # A helper module found in a directory is not a mistake; a file named on its own is.
        if spec.from_directory or options.skip_files_without_models:
            return []
        return spec_error(spec.display, options, str(exc), settings)
    except CnnlintError as exc:
        return spec_error(spec.display, options, str(exc), settings)
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        return spec_error(spec.display, options,
                          _internal_error(spec.display, "loading", exc, options.debug), settings)

    results: list[ModelResult] = []
    for item in loaded:
        name = (item.model or spec.display) if isinstance(item, CnnlintError) else item.name
        if name in done:
            continue
        if isinstance(item, CnnlintError):
            model_results = spec_error(name, options, str(item), settings)
        else:
            model_results = _lint_model(item, settings, options, watch)
        for result in model_results:
            result.fail_on, result.sources = settings.fail_on, sources
        if on_results is not None:
            on_results(model_results)
        results.extend(model_results)
    return results


def _lint_onnx(spec: ModelSpec, options: RunOptions, watch: Watch) -> list[ModelResult]:
    """An exported ONNX model: its graph read from the file (cnnlint.graph.onnx; no load, no
    trace), then cost -> check on every target, as for a traced model."""
    from cnnlint.cache import file_digest
    from cnnlint.graph.onnx import build_onnx_graph

    assert spec.path is not None
    settings: SpecSettings | None = None
    try:
        settings = resolve(spec, options)
        with watch.guard(spec.display):
            graph = build_onnx_graph(spec.path, options.input_shapes)
            results = [check_graph(graph, profile, settings.precision, settings.select, settings.ignore,
                                   options.debug, options.keep_stages) for profile in settings.profiles]  # fmt: skip
    except ModelTimeout as exc:
        return spec_error(spec.display, options, f"{spec.display}: reading and checking did not finish "
                          f"within {exc.seconds:g} s; give it longer with --timeout.", settings)  # fmt: skip
    except CnnlintError as exc:
        return spec_error(spec.display, options, str(exc), settings)
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        return spec_error(spec.display, options,
                          _internal_error(spec.display, "reading the ONNX file", exc, options.debug), settings)
    digest = file_digest(spec.path)
    # the results depend on the file's bytes: the cache answers while they hash the same
    sources = {str(spec.path.resolve()): digest} if digest is not None else {}
    for result in results:
        result.fail_on, result.sources = settings.fail_on, sources
        result.input_shape_source = "option" if options.input_shapes else "declared"
    return results


def _lint_model(model: LoadedModel, settings: SpecSettings, options: RunOptions, watch: Watch):
    return lint_loaded(
        model, settings.profiles, settings.precision, settings.select, settings.ignore,
        debug=options.debug, watch=watch, real_run_max_params=settings.real_run_max_params,
        keep_stages=options.keep_stages,
    )  # fmt: skip


def graph_of(model: LoadedModel, real_run_max_params: int | None = None, debug: bool = False) -> LayerGraph:
    """trace -> graph for a loaded model, with what its code prints kept off stdout."""
    from cnnlint.graph.build import build_layer_graph
    from cnnlint.trace import REAL_RUN_MAX_PARAMS, trace

    budget = REAL_RUN_MAX_PARAMS if real_run_max_params is None else real_run_max_params
    with user_output_to_stderr(debug):
        return build_layer_graph(trace(model, budget))


def lint_loaded(
    model: LoadedModel,
    profiles: list[Profile],
    precision: str | None = None,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    *,
    debug: bool = False,
    watch: Watch | None = None,
    real_run_max_params: int | None = None,
    keep_stages: bool = False,
) -> list[ModelResult]:
    """trace -> graph -> cost -> check for one loaded model, once per target: every front end
    (the command line, ``cnnlint report``, the API's instances) lints a model through here. A
    failure becomes an error result per target, never an exception."""

    def errors(message: str) -> list[ModelResult]:
        return [error_result(model.name, p.name, precision or p.default_precision, message)
                for p in profiles]  # fmt: skip

    watch = watch or Watch(None)
    try:
        with watch.guard(model.name):
            graph = graph_of(model, real_run_max_params, debug)
            results = [check_graph(graph, profile, precision, select, ignore, debug, keep_stages)
                       for profile in profiles]  # fmt: skip
        for result in results:
            result.input_shape_source = model.input_source
        return results
    except ModelTimeout as exc:
        return errors(
            f"{model.name}: tracing and checking did not finish within {exc.seconds:g} s"
            f"{where_raised(exc)}; it was stopped. Fix the loop, or give it longer with --timeout."
        )
    except CnnlintError as exc:
        return errors(str(exc))
    except Exception as exc:  # noqa: BLE001
        return errors(_internal_error(model.name, "tracing", exc, debug))


def check_graph(
    graph: LayerGraph,
    profile: Profile,
    precision: str | None = None,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    debug: bool = False,
    keep_stages: bool = False,
) -> ModelResult:
    """Cost and check one traced model on one target (``keep_stages``: the result keeps the
    graph and the cost, for a report that draws them)."""
    from cnnlint.check import run_rules
    from cnnlint.cost import compute_cost
    from cnnlint.placement import place, transfer_at_batch_s

    chosen_precision = precision or profile.default_precision
    shapes = [list(s) for s in graph.input_shapes]
    try:
        cost = compute_cost(graph, profile, chosen_precision)
        findings = run_rules(graph, cost, profile, select or [], ignore or [])
        placement = place(graph, cost, profile)
    except CnnlintError as exc:
        return error_result(graph.model_name, profile.name, chosen_precision, str(exc))
    except Exception as exc:  # noqa: BLE001
        return error_result(graph.model_name, profile.name, chosen_precision,
                      _internal_error(graph.model_name, "checking", exc, debug))  # fmt: skip
    # The placement's switches and copies, and what its fallback layers take there beyond the
    # accelerator's estimate, are part of the latency (none off an accelerator).
    placement_s = (placement.transfer_ms + (placement.fallback_ms or 0.0)) * 1e-3 if placement is not None else 0.0
    batch = profile.throughput_batch
    throughput = cost.throughput_per_s
    if placement is not None and placement.switches and throughput:
        throughput = batch / (batch / throughput + transfer_at_batch_s(placement, profile, batch))
    summary = Summary(
        flops=cost.flops,
        macs=cost.macs,
        params=cost.params,
        memory_access_bytes=cost.memory_access_bytes,
        latency_ms=(cost.latency_s + placement_s) * 1e3,
        throughput_per_s=throughput,
        utilization=cost.utilization,
        throughput_batch=profile.throughput_batch,
        not_counted=cost.opaque,
        params_unused=graph.params_unused,
        unused_modules=list(graph.unused_modules),
    )
    return ModelResult(
        model=graph.model_name,
        target=profile.name,
        precision=chosen_precision,
        status="ok",
        input_shape=shapes[0] if shapes else [],
        input_shapes=shapes,
        summary=summary,
        placement=placement,
        findings=findings,
        notes=list(graph.notes),
        stages=(graph, cost) if keep_stages else None,
    )

