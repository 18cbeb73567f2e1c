"""One ``cnnlint check`` run around the pipeline: what is linted, what is answered from the
cache, and what the user has already accepted.

1. pre-scan: a file that may lack models (found in a directory, or passed by the pre-commit hook)
   and defines no nn.Module subclass by its syntax tree is dropped before anything is imported;
2. cache: each file spec whose entry is valid is answered from it, without importing torch;
3. the pipeline lints the rest (in worker processes when asked), and their results are stored;
4. per-file ignores, inline suppressions (and unused ones, CL002), then the baseline (and its
   stale entries, CL003) are applied to every result, cached or not.

Torch-free until step 3 has something to lint.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlint.errors import CnnlintError
from cnnlint.results import ModelResult
from cnnlint.spec import ModelSpec


@dataclass
class Plan:
    """One spec's cache key and settings, and its results once answered or linted."""

    spec: ModelSpec
    key: str | None = None  # None: not cached (an import spec, or a config or profile error)
    root: Path | None = None  # the folder of the spec's pyproject.toml (per-file-ignores' root)
    fail_on: str | None = None
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    results: list[ModelResult] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # the rules that ran; every code and name


def prescan(specs: list[ModelSpec], skip_files_without_models: bool) -> list[ModelSpec]:
    """Drop the files that may lack models and, by their syntax, define none (unless the config
    names a factory function in them)."""
    kept = []
    for spec in specs:
        may_lack = spec.from_directory or skip_files_without_models
        path = spec.path
        if may_lack and spec.names_many_models and path is not None and path.suffix == ".py":
            from cnnlint.prescan import may_define_model

            if path.is_file() and not may_define_model(path):
                from cnnlint.tables import factory_names, project_root, project_table

                try:
                    config_path, table = project_table(path)
                    models = table.get("models") or {}
                    root = project_root(config_path)
                    named = factory_names(models, root, path) if isinstance(models, dict) else ["?"]
                except CnnlintError:
                    named = ["?"]  # keep it: the pipeline reports the broken config
                if not named:
                    continue
        kept.append(spec)
    return kept


def _plan(spec: ModelSpec, options: Any, use_cache: bool) -> Plan:
    """The spec's cache key, from the raw tables its settings are made from (so a hit never
    builds the validated config and profiles), and what a hit needs of those settings."""
    from cnnlint.options import fail_on_for, targets_for
    from cnnlint.tables import profile_table, project_root, project_table

    plan = Plan(spec)
    try:
        config_path, table = project_table(spec.path if spec.path is not None else Path.cwd())
        root = project_root(config_path)
        configured = table.get("target")
        targets, base = targets_for(options, configured if isinstance(configured, str) else None, root)
        profiles = [profile_table(target, base) for target in targets]
    except CnnlintError:
        return plan  # the pipeline reports it, as an error result of this spec
    plan.root = root
    plan.fail_on = fail_on_for(options, table.get("fail-on"))
    plan.per_file_ignores = table.get("per-file-ignores") or {}
    if not use_cache or spec.path is None or not spec.path.is_file():
        return plan
    from cnnlint.cache import make_key

    # Every input the settings are resolved from: an entry was stored only after a run that
    # validated them, so a hit needs no validation.
    plan.key = make_key({
        "spec": [str(spec.path.resolve()), spec.attr],
        "config": [str(config_path), table],
        "profiles": profiles,
        "options": {
            "targets": options.targets, "precision": options.precision,
            "select": options.select, "extend_select": options.extend_select,
            "ignore": options.ignore, "input_shapes": options.input_shapes,
            "input_dtypes": options.input_dtypes,
            "may_lack_models": spec.from_directory or options.skip_files_without_models,
            "real_run_max_params": options.real_run_max_params,
        },
    })  # fmt: skip
    return plan


def _owned(plan: Plan, result: ModelResult) -> bool:
    display = plan.spec.display
    if not plan.spec.names_many_models:
        return result.model == display
    return result.model == display or result.model.startswith(display + "::")


def _rules_that_ran(plan: Plan, options: Any) -> dict[str, Any]:
    from cnnlint.check import active_rules, all_rules
    from cnnlint.pipeline import resolve

    settings = resolve(plan.spec, options, validate=False)
    ran = {}
    for profile in settings.profiles:
        rules = active_rules(profile, settings.select, settings.ignore)
        ran[profile.name] = sorted({r.code for r, _ in rules} | {r.name for r, _ in rules})
    known = sorted({r.code for r in all_rules()} | {r.name for r in all_rules()})
    return {"ran": ran, "known": known}


def lint(
    specs: list[ModelSpec],
    options: Any,
    run: Callable[[list[ModelSpec]], list[ModelResult]],
    use_cache: bool = True,
    baseline: Path | None = None,
    cache_start: Path | None = None,
) -> list[ModelResult]:
    """Lint ``specs`` (after the pre-scan) with ``options`` (a pipeline RunOptions). ``run``
    lints the specs the cache cannot answer (``cnnlint.workers.run`` with the CLI's jobs)."""
    from cnnlint.cache import Cache, cache_folder

    accepted = None
    if baseline is not None:
        from cnnlint.baseline import read_baseline

        accepted = read_baseline(baseline)  # fails before linting
    specs = prescan(specs, options.skip_files_without_models)
    plans = [_plan(spec, options, use_cache) for spec in specs]
    cache = Cache(cache_folder(cache_start or Path.cwd())) if use_cache else None
    if cache is not None:
        for plan in plans:
            if plan.key is not None:
                entry = cache.get(plan.key)
                if entry is not None:
                    plan.results, plan.extra = entry["results"], entry["extra"]
                    for result in plan.results:  # --fail-on may differ from the cached run's
                        result.fail_on = plan.fail_on

    missed = [plan for plan in plans if plan.results is None]
    fresh = run([plan.spec for plan in missed]) if missed else []
    for plan in missed:
        plan.results = [r for r in fresh if _owned(plan, r)]
        fresh = [r for r in fresh if not _owned(plan, r)]
        try:
            plan.extra = _rules_that_ran(plan, options)
        except CnnlintError:
            plan.extra = {}  # a broken config, profile or rule plugin: the pipeline reported it
            plan.per_file_ignores = {}
        ok = plan.results and all(r.status == "ok" for r in plan.results)
        if cache is not None and plan.key is not None and ok:
            sources: dict[str, str] = {}
            for result in plan.results:
                sources.update(getattr(result, "sources", {}) or {})
            cache.put(plan.key, copy.deepcopy(plan.results), sources, plan.extra)
    leftovers = fresh  # results no plan claimed (a worker's error named differently): keep them

    results = [r for plan in plans for r in (plan.results or [])] + leftovers
    _accept(plans, results, baseline, accepted)
    return results


def _accept(plans: list[Plan], results: list[ModelResult], baseline: Path | None, accepted) -> None:
    """Per-file ignores, inline suppressions, then the baseline."""
    from cnnlint.options import selector_matches
    from cnnlint.suppress import UNUSED_CODE, Suppressions, apply_per_file_ignores

    ran_by_result: dict[int, set[str]] = {}
    known: set[str] = set()
    for plan in plans:
        known.update(plan.extra.get("known", []))
        for result in plan.results or []:
            ran_by_result[id(result)] = set(plan.extra.get("ran", {}).get(result.target, []))
        if plan.per_file_ignores and plan.results:
            apply_per_file_ignores(plan.results, plan.per_file_ignores, plan.root, selector_matches)

    def ran(result: ModelResult) -> set[str]:
        return ran_by_result.get(id(result), set())

    suppressions = Suppressions()
    suppressions.apply(results)
    with_unused = [r for r in results if UNUSED_CODE in ran(r)]
    if with_unused and known:
        suppressions.report_unused(with_unused, ran, known)
    if baseline is not None:
        from cnnlint.baseline import apply_baseline

        apply_baseline(baseline, accepted, results, ran)
