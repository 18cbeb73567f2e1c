"""Stage 5, check: LayerGraph x Profile x cost -> findings, by running the rules.

A rule is a module (built-in: ``cnnlint.rules.*``; third-party: an entry point in the group
``cnnlint.rules`` that resolves to a module or any object with the same attributes) declaring:

    CODE      "CL301"
    NAME      "depthwise-on-accelerator" (kebab-case)
    SEVERITY  "warning" | "error" | "info" (default; a profile's [rules.CODE] may override)
    Options   its thresholds: a subclass of :class:`RuleOptions` (optional; none when absent)
    SUPERSEDES  codes of rules whose findings on a layer this rule's finding on the same layer
              replaces (optional): where two rules give one layer the same advice, the more
              specific one says it once (CL302 supersedes CL301 on a depthwise conv)
    check(ctx) -> Iterator[Finding]
    EDIT      its one-click fix, a :class:`cnnlint.proposal.LiteralEdit` (optional): the argument
              of the layer's construction call it rewrites, and the metrics with the value now
              and the value to write (``--diff``, ``--fix``, review suggestions)
    MEASURED  how ``--measure`` times its fix, a :class:`cnnlint.proposal.Measured` (optional):
              the finding's layers before and after the fix as plain layer specs, and the
              metrics with the rule's estimate of the two times
    __doc__   its documentation: What it flags / Why / Example / Use instead / Options / Targets
    ENGINE    True for a code the engine itself reports after the rules ran (CL002 unused
              suppressions, CL003 stale baseline entries): documented, selected and configured
              like a rule, with no check()

``ctx`` is a :class:`RuleContext`: ``ctx.graph`` (the LayerGraph), ``ctx.cost`` (the ModelCost),
``ctx.profile``, ``ctx.options`` (this rule's validated ``Options``), and the run's active rules
with their resolved settings (``ctx.is_active("CL301")``, ``ctx.settings["CL301"]``), so a rule
can leave to another rule what that rule reports in this run.

A profile turns a rule on or off and sets its severity and options in ``[rules.CODE]``:
``enabled``, ``severity``, and any field of the rule's ``Options``.

Advice pays or it is info. A rule that proposes a concrete change prices it with the cost stage
and records ``metrics["est_saving_ms"]``: the layer's estimated time now minus its estimated time
with the fix, on the same target (``cost.saving``: 0 within the roofline's rounding). A rule
without a concrete fix records ``metrics["est_share_at_stake"]``: the fraction of the model's
estimated latency that the layers it flags take. The engine, here and nowhere else, then
(``_price`` and ``_below_threshold_to_info``):

- adds ``metrics["est_saving_share"]``: the saving as a fraction of the model's estimated latency;
- drops the fix of a finding whose saving is 0 or less (a fix the estimate calls no faster is
  never offered) and makes the finding info;
- makes a warning info when its ``est_saving_share`` (or ``est_share_at_stake``), added up over
  the rule's findings on the same source line (one edit there changes them all; an ONNX layer's
  site key stands for the line), is below the profile's ``min_saving_share``
  (``Profile.min_saving_share`` documents its default).

Errors (correctness findings) keep their severity, and findings that record neither metric are
left as they are; a finding is never raised above the severity its rule and profile give it.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from cnnlint.core import SEVERITIES
from cnnlint.cost import ModelCost
from cnnlint.errors import ConfigError, ProfileError
from cnnlint.graph import LayerGraph
from cnnlint.options import selector_matches
from cnnlint.paths import display_path
from cnnlint.profile import Profile
from cnnlint.proposal import LiteralEdit, Measured
from cnnlint.results import Finding

ENTRY_POINT_GROUP = "cnnlint.rules"
_CODE = re.compile(r"^[A-Z]{1,4}\d{3,4}$")
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class RuleOptions(BaseModel):
    """The base of every rule's ``Options``: a profile's ``[rules.CODE]`` key that no field
    names is an error, not a silently ignored typo. Each field has a default and a
    ``Field(description=...)``, from which the docs' *Options* section is generated."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: str
    options_model: type[RuleOptions]
    check: Callable[[RuleContext], Iterable[Finding]]
    doc: str
    origin: str  # module or entry point it came from
    engine: bool = False  # reported by the engine, not by a check() (see ENGINE above)
    supersedes: tuple[str, ...] = ()  # codes whose findings on a layer this rule's replace
    edit: LiteralEdit | None = None  # its one-click fix (EDIT above)
    measured: Measured | None = None  # how --measure times its fix (MEASURED above)

    def run(self, ctx: RuleContext) -> Iterable[Finding]:
        return self.check(ctx)

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""


def rule_from_object(obj: Any, origin: str) -> Rule:
    """Validate a rule module/object against the contract; errors name the origin."""
    engine = getattr(obj, "ENGINE", False) is True
    required = ("CODE", "NAME", "SEVERITY") if engine else ("CODE", "NAME", "SEVERITY", "check")
    missing = [a for a in required if not hasattr(obj, a)]
    if missing:
        raise ConfigError(f"rule {origin}: missing {', '.join(missing)}; see `cnnlint rule --help`.")
    code, name, severity = obj.CODE, obj.NAME, obj.SEVERITY
    if not isinstance(code, str) or not _CODE.match(code):
        raise ConfigError(f"rule {origin}: CODE {code!r} must look like 'CL301'.")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"rule {origin}: NAME {name!r} must be kebab-case.")
    if severity not in SEVERITIES:
        raise ConfigError(f"rule {origin}: SEVERITY {severity!r} must be error, warning or info.")
    options_model = getattr(obj, "Options", RuleOptions)
    if not (isinstance(options_model, type) and issubclass(options_model, RuleOptions)):
        raise ConfigError(f"rule {origin}: Options must be a subclass of cnnlint.check.RuleOptions.")
    supersedes = getattr(obj, "SUPERSEDES", ())
    if isinstance(supersedes, str) or not all(isinstance(c, str) and _CODE.match(c) for c in supersedes):
        raise ConfigError(f"rule {origin}: SUPERSEDES must be a tuple of rule codes like ('CL301',).")
    edit, measured = getattr(obj, "EDIT", None), getattr(obj, "MEASURED", None)
    if edit is not None and not isinstance(edit, LiteralEdit):
        raise ConfigError(f"rule {origin}: EDIT must be a cnnlint.proposal.LiteralEdit.")
    if measured is not None and not isinstance(measured, Measured):
        raise ConfigError(f"rule {origin}: MEASURED must be a cnnlint.proposal.Measured.")
    check = getattr(obj, "check", None) or _reports_nothing
    return Rule(
        code, name, severity, options_model, check, obj.__doc__ or "", origin,
        engine=engine, supersedes=tuple(supersedes), edit=edit, measured=measured,
    )  # fmt: skip


def _reports_nothing(ctx: RuleContext) -> Iterable[Finding]:
    """The check() of an ENGINE code: the engine reports it, after the rules."""
    return ()


@functools.cache
def all_rules() -> tuple[Rule, ...]:
    """Built-in rules, then third-party ones from entry points, sorted by code."""
    import cnnlint.rules as builtin

    rules: dict[str, Rule] = {}
    for info in pkgutil.iter_modules(builtin.__path__):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"{builtin.__name__}.{info.name}")
        _add(rules, rule_from_object(module, module.__name__))
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = entry_point.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not hide the built-ins
            raise ConfigError(
                f"rule plugin {entry_point.name} ({entry_point.value}) failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        _add(rules, rule_from_object(obj, f"{entry_point.name} ({entry_point.value})"))
    return tuple(sorted(rules.values(), key=lambda r: r.code))


def _add(rules: dict[str, Rule], rule: Rule) -> None:
    for other in rules.values():
        if other.code == rule.code or other.name == rule.name:
            raise ConfigError(
                f"rule {rule.origin}: {rule.code} {rule.name} clashes with {other.origin}."
            )
    rules[rule.code] = rule


def find_rule(selector: str) -> Rule:
    for rule in all_rules():
        if selector.upper() == rule.code or selector == rule.name:
            return rule
    raise ConfigError(f"unknown rule {selector!r}; `cnnlint rules` lists them.")


def rule_by_code(code: str) -> Rule | None:
    """The rule that reports ``code``, or None where no installed rule does (a finding read
    back from a report of a run with another plugin)."""
    return next((rule for rule in all_rules() if rule.code == code), None)


def _matches(rule: Rule, selector: str) -> bool:
    return selector_matches(rule.code, rule.name, selector)


def validate_selectors(selectors: Iterable[str], source: str) -> None:
    for selector in selectors:
        if not any(_matches(rule, selector) for rule in all_rules()):
            raise ConfigError(
                f"{source}: {selector!r} matches no rule code, code prefix or name; "
                "`cnnlint rules` lists them."
            )


@dataclass(frozen=True)
class RuleSettings:
    enabled: bool
    severity: str
    options: RuleOptions


@dataclass(frozen=True)
class RuleContext:
    """What a rule's ``check(ctx)`` sees: the model, its cost on the target, the profile, this
    rule's options, and the rules active in this run with their resolved settings."""

    graph: LayerGraph
    cost: ModelCost
    profile: Profile
    options: RuleOptions
    settings: Mapping[str, RuleSettings]  # active rules only, by code

    def is_active(self, code: str) -> bool:
        """True when the rule ``code`` runs in this run (enabled on the target, selected, not
        ignored)."""
        return code in self.settings


def settings_for(rule: Rule, profile: Profile) -> RuleSettings:
    """A rule's enabled flag, severity and options on a target (profile ``[rules.CODE]``)."""
    table = dict(profile.rules.get(rule.code, {}))
    where = f"profile {profile.source or profile.name}, [rules.{rule.code}]"
    enabled = table.pop("enabled", True)
    severity = table.pop("severity", rule.severity)
    if not isinstance(enabled, bool):
        raise ProfileError(f"{where}: key 'enabled' must be true or false, got {enabled!r}.")
    if severity not in SEVERITIES:
        raise ProfileError(f"{where}: key 'severity' must be error, warning or info, got {severity!r}.")
    try:
        options = rule.options_model.model_validate(table)
    except ValidationError as exc:
        problems = "; ".join(
            f"key '{'.'.join(str(p) for p in err['loc'])}': {err['msg']}" for err in exc.errors()
        )
        raise ProfileError(f"{where}: {problems}.") from None
    return RuleSettings(enabled, severity, options)


def active_rules(
    profile: Profile, select: Iterable[str] = (), ignore: Iterable[str] = ()
) -> list[tuple[Rule, RuleSettings]]:
    """Rules to run on this target: those the profile enables, narrowed by select and ignore."""
    select, ignore = list(select), list(ignore)
    chosen = []
    for rule in all_rules():
        settings = settings_for(rule, profile)
        # select narrows what the target enables; a profile turns a rule on for a target.
        picked = settings.enabled and (not select or any(_matches(rule, s) for s in select))
        if picked and not any(_matches(rule, s) for s in ignore):
            chosen.append((rule, settings))
    return chosen


def run_rules(
    graph: LayerGraph,
    cost: ModelCost,
    profile: Profile,
    select: Iterable[str] = (),
    ignore: Iterable[str] = (),
) -> list[Finding]:
    findings: list[Finding] = []
    active = active_rules(profile, select, ignore)
    settings_by_code = {rule.code: settings for rule, settings in active}
    for rule, settings in active:
        if rule.engine:
            continue
        ctx = RuleContext(graph, cost, profile, settings.options, settings_by_code)
        findings.extend(_price(_complete(finding, rule, settings), cost) for finding in rule.run(ctx))
    findings = _drop_superseded(findings, [rule for rule, _ in active])
    return sorted(_below_threshold_to_info(findings, profile), key=Finding.sort_key)


def _drop_superseded(findings: list[Finding], rules: list[Rule]) -> list[Finding]:
    """One layer, one message: drop a finding on a layer that a rule superseding its rule also
    reports on that layer."""
    superseders: dict[str, set[str]] = {}
    for rule in rules:
        for code in rule.supersedes:
            superseders.setdefault(code, set()).add(rule.code)
    if not superseders:
        return findings
    reported = {(f.code, f.layer.name) for f in findings if f.layer is not None}
    return [
        f for f in findings
        if f.layer is None
        or not any((code, f.layer.name) in reported for code in superseders.get(f.code, ()))
    ]  # fmt: skip


SAVING = "est_saving_ms"  # what the finding's fix saves, by the rule's estimate (ms)
SAVING_SHARE = "est_saving_share"  # that saving over the model's estimated latency (engine)
AT_STAKE = "est_share_at_stake"  # a rule without a concrete fix: the flagged layers' share


def _price(finding: Finding, cost: ModelCost) -> Finding:
    """Advice that pays (module docstring): a finding's fix is offered only where the estimate
    says it saves time (``est_saving_ms`` > 0), and its saving is put as a share of latency."""
    metrics = finding.metrics
    saving = metrics.get(SAVING)
    if _is_number(saving):
        metrics[SAVING_SHARE] = round(cost.share(saving * 1e-3), 6)
        if saving <= 0:
            finding.fix = None  # a fix the estimate calls no faster is never offered
    return finding


def _edit_site(finding: Finding) -> tuple[str, str | int] | None:
    """Where one edit changes this finding's layer and the others built by the same code: its
    layer's site key (an ONNX layer's, whose location is a node), else its file and line; None
    for a finding about the whole model."""
    if finding.layer is not None and finding.layer.site_key:
        return ("", finding.layer.site_key)
    return (finding.path, finding.line) if finding.path else None


def _below_threshold_to_info(findings: list[Finding], profile: Profile) -> list[Finding]:
    """A warning stays one only where what its fix saves (or, without a fix, what is at stake)
    reaches the profile's ``min_saving_share`` of latency. One edit changes every layer a line
    builds (a ResNeXt stage's group convs come from one constructor line), so the shares of one
    rule's findings at one edit site (:func:`_edit_site`) are added up (after superseded
    findings are dropped). A fix that saves nothing never makes a warning; an error stays an
    error."""
    def share(finding: Finding) -> float | None:
        metrics = finding.metrics
        if _is_number(metrics.get(SAVING)):
            return metrics[SAVING_SHARE] if metrics[SAVING] > 0 else 0.0
        return metrics[AT_STAKE] if _is_number(metrics.get(AT_STAKE)) else None

    by_site: dict[tuple[str, tuple[str, str | int]], float] = {}
    for finding in findings:
        site = _edit_site(finding)
        if share(finding) is not None and site is not None:
            by_site[(finding.code, site)] = by_site.get((finding.code, site), 0.0) + share(finding)
    for finding in findings:
        own = share(finding)
        if own is None or finding.severity != "warning":
            continue
        site = _edit_site(finding)
        site_share = by_site.get((finding.code, site), own) if site is not None else own
        if own <= 0 or site_share < profile.min_saving_share:
            finding.severity = "info"
    return findings


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _complete(finding: Finding, rule: Rule, settings: RuleSettings) -> Finding:
    finding.code, finding.name = rule.code, rule.name
    finding.severity = finding.severity or settings.severity
    layer = finding.layer
    if layer is not None:
        finding.module = finding.module or layer.label
        location = layer.location
        if location is not None and not finding.path:
            finding.path = display_path(location.path)
            finding.line, finding.column = location.line, location.column
            if not finding.related:  # the frames the location was chosen from, outermost first
                finding.related = list(layer.built_via if location is layer.built_at else layer.called_via)
    return finding

