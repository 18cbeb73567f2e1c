"""The models a spec names, each imported, built on meta, with its construction sites and input
shapes: the load stage's entry point, :func:`load`.

A file spec without a name lints every nn.Module subclass defined in the file that builds with
no arguments (components of another such model excepted), plus the factory functions named in
``[tool.cnnlint.models]``.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from cnnlint.core import Shape, SourceLocation
from cnnlint.errors import LoadError, NoModelsError
from cnnlint.frames import where_raised
from cnnlint.load.build import build_model, build_on_cpu, meta_copy, twin_with_sites
from cnnlint.load.hints import factories_and_examples, needs_arguments_message, required_parameters
from cnnlint.load.importing import import_attr, import_file, spec_imports
from cnnlint.load.shapes import input_dtypes_for, input_shapes_for
from cnnlint.load.sites import Chain, library_model_dir, record_construction_sites, sites_by_path
from cnnlint.paths import display_path
from cnnlint.spec import ModelSpec
from cnnlint.watch import ModelTimeout, Watch


@dataclass
class LoadedModel:
    name: str
    module: nn.Module
    input_shapes: list[Shape]
    sites: dict[str, SourceLocation]  # module path -> where it was constructed (pick_site)
    built_on: str  # a build mode (cnnlint.load.build): "meta", "meta-weights" or "cpu"
    notes: list[str] = field(default_factory=list)
    input_source: str = "guess"  # a cnnlint.results.INPUT_SOURCES key: where input_shapes came from
    # One element type per input (cnnlint.core.INPUT_DTYPES); empty: every input is float32.
    input_dtypes: list[str] = field(default_factory=list)
    # module path -> its construction chain, outermost call first (model -> block -> helper)
    chains: dict[str, list[SourceLocation]] = field(default_factory=dict)
    # Builds the model again on CPU with its own initialisation, for a forward that needs real
    # values (the trace stage's real run): tensors a constructor computes and keeps outside
    # parameters and buffers (a detector's anchors) have values only then. None for a model
    # given as an instance.
    rebuild: Callable[[], nn.Module] | None = None
    # The model's own package directory when the model is library code (torchvision.models:x),
    # None for the user's own: where findings point (cnnlint.frames.pick_site).
    model_dir: str | None = None


@dataclass
class ModelSettings:
    """Per-model settings from ``[tool.cnnlint.models]`` (already validated by cnnlint.config)."""

    kwargs: dict[str, Any] = field(default_factory=dict)
    input_shapes: list[Shape] | None = None
    input_dtypes: list[str] | None = None  # one for every input, or one per input


def _finish(
    display: str,
    module: nn.Module,
    sites: dict[int, tuple[nn.Module, Chain]],
    built_on: str,
    notes: list[str],
    settings: ModelSettings,
    input_override: list[Shape] | None,
    model_dir: str | None = None,
) -> LoadedModel:
    module.eval()  # inference graph: no aux heads, dropout off, BN in eval
    shapes, source = input_shapes_for(module, display, input_override, settings.input_shapes)
    dtypes = input_dtypes_for(display, shapes, settings.input_dtypes)
    by_path, chains = sites_by_path(module, sites, model_dir)
    return LoadedModel(display, module, shapes, by_path, built_on, notes, source, dtypes, chains,
                       model_dir=model_dir)  # fmt: skip


def _discover(module: types.ModuleType, factory_names: list[str]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name, obj in vars(module).items():
        if (
            inspect.isclass(obj)
            and issubclass(obj, nn.Module)
            and obj.__module__ == module.__name__
            and not inspect.isabstract(obj)
            and not name.startswith("_")
        ):
            found.append((name, obj))
    for name in factory_names:
        obj = getattr(module, name, None)
        if callable(obj) and (name, obj) not in found:
            found.append((name, obj))
    return found


def _timed_out(display: str, stage: str, exc: ModelTimeout, path: Path | None) -> LoadError:
    return LoadError(
        f"{display}: {stage} did not finish within {exc.seconds:g} s{where_raised(exc, path)}; it was "
        "stopped. Fix the loop, or give it longer with --timeout."
    )


def load(
    spec: ModelSpec,
    settings_for: Callable[[ModelSpec], ModelSettings],
    input_override: list[Shape] | None = None,
    factory_names: list[str] | None = None,
    watch: Watch | None = None,
    skip: frozenset[str] = frozenset(),
) -> list[LoadedModel | LoadError]:
    """Load every model a spec names. A model that fails to load becomes a LoadError entry.

    Each import and build runs under ``watch.guard``; models named in ``skip`` (ones a worker
    already crashed on) are not built again. The spec's own modules are forgotten afterwards
    (:func:`spec_imports`; the pipeline holds that scope open until the spec is traced).
    """
    with spec_imports(spec):
        return _load(spec, settings_for, input_override, factory_names, watch or Watch(), skip)


def _load(
    spec: ModelSpec,
    settings_for: Callable[[ModelSpec], ModelSettings],
    input_override: list[Shape] | None,
    factory_names: list[str] | None,
    watch: Watch,
    skip: frozenset[str],
) -> list[LoadedModel | LoadError]:
    if spec.module is not None:
        assert spec.attr is not None
        try:
            with watch.guard(spec.display), record_construction_sites() as import_sites:
                target = import_attr(spec.module, spec.attr, spec.display)
                if isinstance(target, nn.Module):  # an instance: lint a meta twin, never change it
                    return [
                        _finish(spec.display, *twin_with_sites(target, import_sites, spec.display),
                                "cpu", [], settings_for(spec), input_override,
                                library_model_dir(sys.modules.get(spec.module)))
                    ]  # fmt: skip
                return [_load_one(spec.display, target, None, settings_for(spec),
                                  input_override)]  # fmt: skip
        except ModelTimeout as exc:
            return [_timed_out(spec.display, "building the model", exc, None)]

    assert spec.path is not None
    try:
        with watch.guard(display_path(spec.path), importing=True):
            module = import_file(spec.path)
    except ModelTimeout as exc:
        raise _timed_out(display_path(spec.path), "importing it", exc, spec.path) from None
    if spec.attr is not None:
        if not hasattr(module, spec.attr):
            raise LoadError(f"{spec.display}: {display_path(spec.path)} defines no {spec.attr!r}.")
        obj = getattr(module, spec.attr)
        try:
            with watch.guard(spec.display):
                return [_load_one(spec.display, obj, spec.path, settings_for(spec),
                                  input_override)]  # fmt: skip
        except ModelTimeout as exc:
            return [_timed_out(spec.display, "building the model", exc, spec.path)]

    candidates = _discover(module, factory_names or [])
    base = display_path(spec.path)
    results: list[LoadedModel | LoadError] = []
    skipped: list[str] = []
    for name, obj in candidates:
        member = spec.member(name)
        display = member.display
        if display in skip:
            continue
        settings = settings_for(member)
        missing = required_parameters(obj)
        if missing and not settings.kwargs:
            # The class needs arguments: the file's zero-argument factories that build it are
            # linted in its place (they are what the file's author calls).
            factories = factories_and_examples(obj, missing)[0]
            candidates += [(f, getattr(module, f)) for f in factories
                           if f not in dict(candidates)]  # fmt: skip
            if not factories:
                skipped.append(needs_arguments_message(display, obj, missing))
            continue
        try:
            with watch.guard(display):
                results.append(_load_one(display, obj, spec.path, settings, input_override))
        except LoadError as exc:
            exc.model = display
            results.append(exc)
        except ModelTimeout as exc:
            error = _timed_out(display, "building the model", exc, spec.path)
            error.model = display
            results.append(error)
    results = _drop_components(results)
    if not results and not skip:
        if skipped:
            raise LoadError(
                f"{base}: no model in this file builds without arguments.\n" + "\n".join(skipped)
            )
        raise NoModelsError(
            f"{base}: defines no nn.Module subclass to lint. Name one with {base}::Name, or list a "
            f"factory function under [tool.cnnlint.models]."
        )
    return results


def _drop_components(results: list[LoadedModel | LoadError]) -> list[LoadedModel | LoadError]:
    """A class used inside another model from the same file is a component, not a model."""
    loaded = [r for r in results if isinstance(r, LoadedModel)]
    used_inside: set[type] = set()
    for model in loaded:
        for sub in list(model.module.modules())[1:]:
            used_inside.add(type(sub))
    return [r for r in results if not (isinstance(r, LoadedModel) and type(r.module) in used_inside)]


def _load_one(
    display: str,
    obj: Any,
    path: Path | None,
    settings: ModelSettings,
    input_override: list[Shape] | None,
) -> LoadedModel:
    if isinstance(obj, nn.Module):  # an instance: lint a meta twin, never change it
        return _finish(display, meta_copy(obj, display), {}, "cpu", [], settings, input_override)
    if not callable(obj):
        raise LoadError(f"{display}: is a {type(obj).__name__}, not a model class or function.")
    missing = required_parameters(obj)
    missing = [name for name in missing if name not in settings.kwargs]
    if missing:
        raise LoadError(needs_arguments_message(display, obj, missing))
    module, sites, built_on, notes = build_model(display, obj, settings.kwargs, path)
    if built_on != "meta":
        module.to("meta")  # shapes are propagated on meta either way
    loaded = _finish(display, module, sites, built_on, notes, settings, input_override,
                     library_model_dir(obj))
    loaded.rebuild = functools.partial(build_on_cpu, obj, dict(settings.kwargs))
    return loaded
