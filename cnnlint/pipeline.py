"""The pipeline, start to end, for one run: specs -> ModelResults.

load -> trace -> graph -> cost -> check. Each model is traced once and then costed and checked
for every requested target. A model that fails at any stage becomes an error result; the others
are still linted.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cnnlint.errors import CnnlintError, NoModelsError
from cnnlint.graph import LayerGraph, Shape
from cnnlint.profile import Profile, load_profile
from cnnlint.results import ModelResult, Summary
from cnnlint.watch import ModelTimeout, Watch


@dataclass
class RunOptions:
    """Command-line choices; None means "take it from [tool.cnnlint], then the default"."""

    targets: list[str] = field(default_factory=list)
    precision: str | None = None
    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    input_shapes: list[Shape] | None = None
    debug: bool = False
    timeout: float | None = None  # seconds per model (import, build, trace and check)
    may_lack_models: frozenset[str] = frozenset()  # specs (from a directory) that may hold no model


DEFAULT_TARGET = "generic"


@contextlib.contextmanager
def user_output_to_stderr() -> Iterator[None]:
    """User code may print at import or in forward(); stdout belongs to the report."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _error(model: str, target: str, precision: str, message: str) -> ModelResult:
    return ModelResult(model=model, target=target, precision=precision, status="error", error=message)


def _internal_error(model: str, stage: str, exc: BaseException, debug: bool) -> str:
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    return (
        f"{model}: cnnlint failed while {stage}: {type(exc).__name__}: {exc}. This is a cnnlint "
        "bug; rerun with --debug for the traceback and report it."
    )


def lint_spec(
    spec_text: str,
    options: RunOptions,
    watch: Watch | None = None,
    done: frozenset[str] = frozenset(),
    skip: frozenset[str] = frozenset(),
    on_results: Callable[[list[ModelResult]], None] | None = None,
) -> list[ModelResult]:
    """Lint every model one command-line spec names, on every target.

    ``done``: models already reported (built, for the component check, but not linted again);
    ``skip``: models not even built (a worker crashed on them). ``on_results`` hears each
    model's results as soon as they exist, so a worker can hand them on before the next model.
    """
    watch = watch or Watch(options.timeout)
    # Imported here so that `cnnlint rules` and `--help` never pay for importing torch.
    from cnnlint.config import load_config
    from cnnlint.load import ModelSettings, load, parse_spec

    targets = options.targets or []
    label_target = ",".join(targets) or DEFAULT_TARGET
    label_precision = options.precision or ""
    model_label = spec_text
    try:
        spec = parse_spec(spec_text)
        model_label = spec.display
        config = load_config(spec.path if spec.path is not None else Path.cwd())
        tool = config.tool
        targets = targets or [tool.target or DEFAULT_TARGET]
        profiles = [load_profile(t, config.root if not options.targets else None) for t in targets]
        precision = options.precision or tool.precision
        select = options.select or tool.select
        ignore = options.ignore or tool.ignore
        from cnnlint.check import validate_selectors

        validate_selectors(select, "--select" if options.select else f"{config.path}: select")
        validate_selectors(ignore, "--ignore" if options.ignore else f"{config.path}: ignore")

        def settings_for(display: str) -> ModelSettings:
            entry = config.model_entry(display)
            if entry is None:
                return ModelSettings(input_shapes=tool.input_shape)
            return ModelSettings(kwargs=entry.kwargs, input_shapes=entry.input_shape or tool.input_shape)

        factory_names = config.factory_names(spec.path) if spec.path is not None else []
        with user_output_to_stderr():
            loaded = load(spec, settings_for, options.input_shapes, factory_names, watch, skip)
    except NoModelsError as exc:
        # A helper module found in a directory is not a mistake; a file named on its own is.
        if spec_text in options.may_lack_models:
            return []
        return [_error(model_label, label_target, label_precision, str(exc))]
    except CnnlintError as exc:
        return [_error(model_label, label_target, label_precision, str(exc))]
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        return [_error(model_label, label_target, label_precision,
                       _internal_error(model_label, "loading", exc, options.debug))]  # fmt: skip

    results: list[ModelResult] = []
    for item in loaded:
        name = (item.model or model_label) if isinstance(item, CnnlintError) else item.name
        if name in done:
            continue
        if isinstance(item, CnnlintError):
            model_results = [_error(name, label_target, label_precision, str(item))]
        else:
            model_results = _lint_model(item, profiles, precision, select, ignore, options.debug, watch)
        if on_results is not None:
            on_results(model_results)
        results.extend(model_results)
    return results


def _lint_model(model, profiles: list[Profile], precision, select, ignore, debug, watch: Watch):
    from cnnlint.graph.build import build_layer_graph
    from cnnlint.load import where_raised
    from cnnlint.trace import trace

    def errors(message: str) -> list[ModelResult]:
        return [_error(model.name, p.name, precision or p.default_precision, message) for p in profiles]

    try:
        with watch.guard(model.name):
            with user_output_to_stderr():
                graph = build_layer_graph(trace(model))
            return [check_graph(graph, profile, precision, select, ignore, debug) for profile in profiles]
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
) -> ModelResult:
    """Cost and check one traced model on one target."""
    from cnnlint.check import run_rules
    from cnnlint.cost import compute_cost

    chosen_precision = precision or profile.default_precision
    shapes = [list(s) for s in graph.input_shapes]
    try:
        cost = compute_cost(graph, profile, chosen_precision)
        findings = run_rules(graph, cost, profile, select or [], ignore or [])
    except CnnlintError as exc:
        return _error(graph.model_name, profile.name, chosen_precision, str(exc))
    except Exception as exc:  # noqa: BLE001
        return _error(graph.model_name, profile.name, chosen_precision,
                      _internal_error(graph.model_name, "checking", exc, debug))  # fmt: skip
    summary = Summary(
        flops=cost.flops,
        macs=cost.macs,
        params=cost.params,
        memory_access_bytes=cost.memory_access_bytes,
        latency_ms=cost.latency_s * 1e3,
        throughput_per_s=cost.throughput_per_s,
        utilization=cost.utilization,
        throughput_batch=profile.throughput_batch,
        not_counted=cost.opaque,
    )
    return ModelResult(
        model=graph.model_name,
        target=profile.name,
        precision=chosen_precision,
        status="ok",
        input_shape=shapes[0] if shapes else [],
        input_shapes=shapes,
        summary=summary,
        findings=findings,
        notes=list(graph.notes),
    )


def lint(specs: list[str], options: RunOptions) -> list[ModelResult]:
    """Lint in this process, spec after spec (``cnnlint.workers`` runs them in processes)."""
    results: list[ModelResult] = []
    for spec in specs:
        results.extend(lint_spec(spec, options))
    return results
