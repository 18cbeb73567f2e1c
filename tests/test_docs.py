"""Rule documentation: complete docstrings, and docs/rules.md generated from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlint.check import all_rules
from cnnlint.docs import render_markdown

DOCS = Path(__file__).resolve().parent.parent / "docs" / "rules.md"
SECTIONS = ("What it flags", "Why", "Example", "Use instead", "Options", "Targets")
FIXED_CODES = {
    "CL001": "partial-trace",
    "CL101": "unequal-channel-width", "CL102": "excessive-group-conv", "CL103": "fragmented-block",
    "CL104": "elementwise-heavy", "CL201": "channel-misaligned", "CL301": "depthwise-on-accelerator",
    "CL302": "low-channel-separable", "CL303": "large-kernel-on-gpu", "CL304": "unsupported-op",
    "CL401": "dense-concat", "CL402": "reparameterizable-branches", "CL501": "memory-bound-hotspot",
}  # fmt: skip


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_rule_docstring_has_every_section(rule):
    for section in SECTIONS:
        assert f"\n{section}" in rule.doc, f"{rule.code} docstring lacks '{section}'"


def test_rule_codes_and_names_are_the_fixed_ones():
    for rule in all_rules():
        assert FIXED_CODES.get(rule.code) == rule.name


def test_docs_rules_md_is_generated_from_the_code():
    if not DOCS.exists():
        pytest.fail("docs/rules.md is missing: run `cnnlint rules --format markdown > docs/rules.md`")
    assert DOCS.read_text() == render_markdown(), (
        "docs/rules.md is stale: run `cnnlint rules --format markdown > docs/rules.md`"
    )
