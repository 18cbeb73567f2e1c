"""Rule documentation generated from the rules themselves (``docs/rules.md``)."""

from __future__ import annotations

import inspect
import textwrap

from cnnlint.check import Rule, all_rules, settings_for
from cnnlint.profile import builtin_profile_names, load_profile

# Where docs/rules.md is published: SARIF's helpUri and rdjson's code URLs link a rule's section.
RULES_URL = "https://github.com/cnnlint/cnnlint/blob/main/docs/rules.md"
_CODE_SECTIONS = ("Example", "Use instead")

HEADER = """# cnnlint rules

Generated from the rule modules' docstrings by `cnnlint rules --format markdown`; do not edit by
hand (a test fails when this file is stale).
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
        parts.append(f"| [{rule.code}](#{anchor(rule)}) | {rule.name} | {rule.summary} |")
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
