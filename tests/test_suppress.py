"""Inline suppressions, unused ones (CL002), per-file ignores and selectors.

The parsing tests read real source text; the end-to-end tests lint real models with the real
command line, in a temporary project.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cnnlint.results import Finding, ModelResult
from cnnlint.suppress import Suppressions, parse_directives

CNNLINT = str(Path(sys.executable).with_name("cnnlint"))


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- parsing
def test_a_hash_inside_a_string_is_not_a_comment(tmp_path):
    path = write(tmp_path, "m.py", '''
        text = "# cnnlint: disable=CL301"
        doc = """
        # cnnlint: disable-file=CL101
        """
        x = 1  # cnnlint: disable=CL201
    ''')
    (directive,) = parse_directives(path)
    assert (directive.kind, directive.line, directive.codes) == ("line", 5, ("CL201",))


def test_each_form_covers_its_lines(tmp_path):
    path = write(tmp_path, "m.py", """
        from torch import nn
        # cnnlint: disable-file=CL101


        class Net(
            nn.Module,
        ):  # cnnlint: disable=CL501
            def __init__(self):
                super().__init__()
                # cnnlint: disable-next=CL301, depthwise-on-accelerator
                self.dw = nn.Conv2d(8, 8, 3, groups=8)
                self.pw = nn.Conv2d(8, 8, 1)  # cnnlint: disable=CL201
    """)
    found = {d.kind: d for d in parse_directives(path)}
    assert (found["file"].first, found["file"].last > 1000) == (1, True)
    # A comment on any line of a class statement's header covers the class body.
    assert (found["class"].first, found["class"].last, found["class"].class_name) == (5, 12, "Net")
    assert (found["next"].line, found["next"].first, found["next"].last) == (10, 11, 11)
    assert found["next"].codes == ("CL301", "depthwise-on-accelerator")
    assert (found["line"].first, found["line"].last) == (12, 12)


def test_a_file_that_does_not_tokenize_has_no_directives(tmp_path):
    path = write(tmp_path, "m.py", 'x = (1,  # cnnlint: disable=CL301\n')
    assert parse_directives(path) == []


# ---------------------------------------------------------------------------- applying
def _result(model: str, *findings: Finding, target: str = "t4") -> ModelResult:
    return ModelResult(model=model, target=target, precision="fp16", status="ok",
                       findings=list(findings))  # fmt: skip


def _finding(code: str, name: str, path: Path, line: int) -> Finding:
    return Finding(message="m", code=code, name=name, path=str(path), line=line, severity="warning")


def test_suppressed_findings_go_and_unused_directives_are_reported(tmp_path):
    path = write(tmp_path, "m.py", """
        from torch import nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.dw = nn.Conv2d(8, 8, 3, groups=8)  # cnnlint: disable=depthwise-on-accelerator
                self.pw = nn.Conv2d(8, 8, 1)  # cnnlint: disable=CL201,CL999
                self.out = nn.Conv2d(8, 8, 1)  # cnnlint: disable=CL104
    """)
    result = _result(
        f"{path}::Net",
        _finding("CL301", "depthwise-on-accelerator", path, 7),
        _finding("CL501", "memory-bound-hotspot", path, 7),
        _finding("CL201", "channel-misaligned", path, 8),
    )
    suppressions = Suppressions()
    suppressions.apply([result])
    assert [(f.code, f.line) for f in result.findings] == [("CL501", 7)]

    ran = {"CL301", "CL201", "CL501", "CL104", "CL002", "depthwise-on-accelerator"}
    suppressions.report_unused([result], lambda r: ran, known=ran)
    unused = [(f.code, f.line, f.severity) for f in result.findings if f.code == "CL002"]
    # line 8: CL999 is no rule; line 9: CL104 silenced nothing.
    assert unused == [("CL002", 8, "info"), ("CL002", 9, "info")]
    messages = [f.message for f in result.findings if f.code == "CL002"]
    assert "CL999 is no rule code or name" in messages[0]
    assert "CL104 silenced nothing" in messages[1]


def test_a_suppression_of_a_rule_that_did_not_run_is_not_unused(tmp_path):
    path = write(tmp_path, "m.py", """
        from torch import nn
        class Net(nn.Module):  # cnnlint: disable=CL301
            pass
    """)
    result = _result(f"{path}::Net")
    suppressions = Suppressions()
    suppressions.apply([result])
    suppressions.report_unused([result], lambda r: {"CL201", "CL002"}, known={"CL201", "CL301"})
    assert result.findings == []


def test_a_class_comment_covers_every_finding_of_the_model(tmp_path):
    blocks = write(tmp_path, "blocks.py", "x = 1\n" * 20)
    path = write(tmp_path, "m.py", """
        from torch import nn
        class Net(nn.Module):  # cnnlint: disable=CL301
            pass
        class Other(nn.Module):
            pass
    """)
    inside = _finding("CL301", "depthwise-on-accelerator", blocks, 12)  # built in another file
    model_level = Finding(message="m", code="CL301", name="depthwise-on-accelerator")
    net = _result(f"{path}::Net", inside, model_level)
    other = _result(f"{path}::Other", _finding("CL301", "depthwise-on-accelerator", blocks, 12))
    Suppressions().apply([net, other])
    assert net.findings == [] and len(other.findings) == 1
