"""Rule documentation generated from the rules and the profiles (``docs/rules.md``).

A rule's docstring says what it flags and why. Its "Options" section comes from its ``Options``
model (each field's type, default and ``Field(description=...)``) and its "Targets" section from
the built-in profiles (enabled, severity, options that differ from the defaults, and the profile's
``why`` for that difference), so neither can disagree with what the linter does.
"""

from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass
from typing import Any

from pydantic_core import PydanticUndefined

from cnnlint.check import Rule, all_rules, settings_for
from cnnlint.profile import Profile, builtin_profile_names, load_profile

# Where docs/rules.md is published: SARIF's helpUri and rdjson's code URLs link a rule's section.
RULES_URL = "https://github.com/cnnlint/cnnlint/blob/main/docs/rules.md"
_CODE_SECTIONS = ("Example", "Use instead")

HEADER = """# cnnlint rules

Generated from the rule modules (docstrings, `Options` field descriptions) and the built-in target
profiles by `cnnlint rules --format markdown`; do not edit by hand (a test fails when this file is
stale).
"""


def anchor(rule: Rule) -> str:
    """The id GitHub gives the rule's ``## CODE name`` heading in docs/rules.md."""
    return f"{rule.code.lower()}-{rule.name}"


def help_uri(rule: Rule) -> str:
    return f"{RULES_URL}#{anchor(rule)}"


def doc_sections(rule: Rule) -> tuple[str, dict[str, str]]:
    """A rule docstring's summary line and its sections (``What it flags``, ``Why``, ...)."""
    summary, _, body = inspect.cleandoc(rule.doc).partition("\n")
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in body.splitlines():
        if line and not line[0].isspace():
            current = sections.setdefault(line.strip(), [])
        elif current is not None:
            current.append(line)
    return summary.strip(), {k: textwrap.dedent("\n".join(v)).strip("\n") for k, v in sections.items()}


def help_markdown(rule: Rule) -> str:
    """The rule's documentation as markdown: prose sections as paragraphs, examples as code."""
    summary, sections = doc_sections(rule)
    parts = [f"**{rule.code} {rule.name}**: {summary}"]
    for title, text in sections.items():
        if title in _CODE_SECTIONS:
            parts.append(f"**{title}**\n\n```python\n{text}\n```")
        else:
            parts.append(f"**{title}**\n\n{text}")
    parts.append(f"[Documentation]({help_uri(rule)})")
    return "\n\n".join(parts) + "\n"


@dataclass(frozen=True)
class TargetSetting:
    """A rule on one built-in target, as the profile resolves it."""

    target: str
    enabled: bool
    severity: str
    changed_options: dict[str, Any]  # options whose value differs from the rule's default
    why: str  # the profile's reason for differing from the rule's defaults, if it gives one

    @property
    def state(self) -> str:
        return self.severity if self.enabled else "off"


def builtin_profiles() -> list[Profile]:
    """Every built-in target, found in the profile directory."""
    return [load_profile(name) for name in builtin_profile_names()]


def target_settings(rule: Rule, profiles: list[Profile] | None = None) -> list[TargetSetting]:
    defaults = rule.options_model()
    rows = []
    for profile in profiles if profiles is not None else builtin_profiles():
        settings = settings_for(rule, profile)
        changed = {
            name: getattr(settings.options, name)
            for name in rule.options_model.model_fields
            if getattr(settings.options, name) != getattr(defaults, name)
        }
        why = profile.rule_notes.get(rule.code, "")
        rows.append(TargetSetting(profile.name, settings.enabled, settings.severity, changed, why))
    return rows


def _default_text(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is not None:
        return repr(field.default_factory())
    return repr(field.default)


def _type_text(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def options_section(rule: Rule, markdown: bool) -> str:
    fields = rule.options_model.model_fields
    if not fields:
        return "None." if markdown else "    None."
    if markdown:
        rows = ["| option | type | default | meaning |", "|---|---|---|---|"]
        for name, field in fields.items():
            rows.append(f"| `{name}` | `{_type_text(field.annotation)}` | `{_default_text(field)}` "
                        f"| {field.description} |")  # fmt: skip
        return "\n".join(rows)
    lines = []
    for name, field in fields.items():
        lines.append(f"    {name} ({_type_text(field.annotation)}, default {_default_text(field)})")
        lines += textwrap.wrap(field.description or "", 96, initial_indent=" " * 8,
                               subsequent_indent=" " * 8)
    return "\n".join(lines)


def _setting_text(row: TargetSetting) -> str:
    changed = ", ".join(f"{name} = {value!r}" for name, value in row.changed_options.items())
    return f"{row.state} ({changed})" if changed and row.enabled else row.state


def targets_section(rule: Rule, markdown: bool, profiles: list[Profile] | None = None) -> str:
    rows = target_settings(rule, profiles)
    if markdown:
        lines = ["| target | setting | why it differs from the default |", "|---|---|---|"]
        lines += [f"| {r.target} | {_setting_text(r)} | {r.why} |" for r in rows]
        return "\n".join(lines)
    width = max(len(r.target) for r in rows)
    lines = []
    for r in rows:
        line = f"    {r.target.ljust(width)}  {_setting_text(r)}"
        if r.why:
            line += f": {r.why}"
        lines += textwrap.wrap(line, 96, subsequent_indent=" " * (6 + width))
    return "\n".join(lines)


def rule_text(rule: Rule) -> str:
    """``cnnlint rule CODE``: the docstring, then the generated Options and Targets sections."""
    doc = inspect.cleandoc(rule.doc).rstrip("\n")
    return (
        f"{doc}\n\nOptions\n{options_section(rule, markdown=False)}\n\n"
        f"Targets (default severity: {rule.severity})\n{targets_section(rule, markdown=False)}\n"
    )


def targets_overview(profiles: list[Profile]) -> str:
    """The built-in targets and the op kinds each one's toolchain does not run."""
    lines = ["## Targets\n", "| target | kind | description | op kinds it does not run |",
             "|---|---|---|---|"]  # fmt: skip
    for profile in profiles:
        lacks = "; ".join(f"`{kind}`: {why}" for kind, why in profile.unsupported_ops.items())
        lines.append(f"| {profile.name} | {profile.kind} | {profile.description} | {lacks or 'none'} |")
    return "\n".join(lines) + "\n"


def render_markdown() -> str:
    profiles = builtin_profiles()
    parts = [HEADER, "| code | name | summary |", "|---|---|---|"]
    rules = all_rules()
    for rule in rules:
        parts.append(f"| [{rule.code}](#{anchor(rule)}) | {rule.name} | {rule.summary} |")
    parts.append("\n" + targets_overview(profiles))
    for rule in rules:
        doc = inspect.cleandoc(rule.doc)
        summary, _, body = doc.partition("\n")
        parts.append(f"\n## {rule.code} {rule.name}\n")
        parts.append(f"{summary}\n")
        parts.append("```text\n" + body.strip("\n") + "\n```\n")
        parts.append(f"### Options\n\n{options_section(rule, markdown=True)}\n")
        parts.append(f"### Targets\n\nDefault severity: **{rule.severity}**.\n")
        parts.append(targets_section(rule, markdown=True, profiles=profiles) + "\n")
    return "\n".join(parts).rstrip("\n") + "\n"
