"""Rule documentation generated from the rules themselves (``docs/rules.md``)."""

from __future__ import annotations

import inspect

from cnnlint.check import Rule, all_rules, settings_for
from cnnlint.profile import builtin_profile_names, load_profile

HEADER = """# cnnlint rules

Generated from the rule modules' docstrings by `cnnlint rules --format markdown`; do not edit by
hand (a test fails when this file is stale).
"""


def _options_table(rule: Rule) -> str:
    fields = rule.options_model.model_fields
    if not fields:
        return ""
    rows = ["| option | type | default |", "|---|---|---|"]
    for name, field in fields.items():
        annotation = getattr(field.annotation, "__name__", str(field.annotation))
        rows.append(f"| `{name}` | {annotation} | `{field.default!r}` |")
    return "\n".join(rows) + "\n"


def _targets_table(rule: Rule) -> str:
    names = builtin_profile_names()
    cells = []
    for name in names:
        settings = settings_for(rule, load_profile(name))
        cells.append(settings.severity if settings.enabled else "off")
    return f"| {' | '.join(names)} |\n|{'---|' * len(names)}\n| {' | '.join(cells)} |\n"


def render_markdown() -> str:
    parts = [HEADER, "| code | name | summary |", "|---|---|---|"]
    rules = all_rules()
    for rule in rules:
        parts.append(f"| [{rule.code}](#{rule.code.lower()}-{rule.name}) | {rule.name} | {rule.summary} |")
    for rule in rules:
        doc = inspect.cleandoc(rule.doc)
        summary, _, body = doc.partition("\n")
        parts.append(f"\n## {rule.code} {rule.name}\n")
        parts.append(f"{summary}\n\nDefault severity: **{rule.severity}**. Per target:\n")
        parts.append(_targets_table(rule))
        parts.append("```text\n" + body.strip("\n") + "\n```\n")
        options = _options_table(rule)
        if options:
            parts.append(options)
    return "\n".join(parts).rstrip("\n") + "\n"
