"""Inline suppressions, unused ones (CL002), per-file ignores and selectors.

The parsing tests read real source text; the end-to-end tests lint real models with the real
command line, in a temporary project.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import Ran, cli

from cnnlint.results import Finding, ModelResult
from cnnlint.suppress import Suppressions, parse_directives



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


# ---------------------------------------------------------------------------- end to end
MODEL = """from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, stride=2, padding=1)  # cnnlint: disable=CL201
        self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)  # cnnlint: disable=CL301
        self.pw = nn.Conv2d(32, 64, 1)

    def forward(self, x):
        return self.pw(self.dw(self.stem(x)))
"""


def lint(folder: Path, *args: str) -> tuple[int, list[tuple[str, str, int, str]]]:
    proc = cli(*args, "--format", "json", "--no-cache", cwd=folder)
    assert "Traceback" not in proc.stderr and proc.stdout, proc.stderr
    document = json.loads(proc.stdout)
    return proc.returncode, sorted(
        (f["code"], f["path"], f["line"], f["severity"])
        for r in document["results"] for f in r["findings"]
    )  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""
        [tool.cnnlint]
        target = "t4"
        select = ["CL5"]

        [tool.cnnlint.per-file-ignores]
        "legacy/*.py" = ["memory-bound-hotspot", "CL30"]
    """), encoding="utf-8")
    (tmp_path / "net.py").write_text(MODEL, encoding="utf-8")
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "old.py").write_text(MODEL, encoding="utf-8")
    return tmp_path


def test_suppressions_selectors_and_per_file_ignores_on_real_models(project):
    # The file selects CL5; --extend-select adds the depthwise rules and unused suppressions.
    code, found = lint(project, "net.py", "legacy/old.py", "--extend-select", "CL301,CL302,CL002")
    assert code == 1
    assert found == [
        # legacy/*.py ignores CL30x and CL501, so its disable=CL301 has nothing left to silence;
        # CL201 did not run, so neither file's disable=CL201 is called unused.
        ("CL002", "legacy/old.py", 8, "info"),
        # CL302 supersedes CL301 on this depthwise conv, so disable=CL301 silences nothing
        # (unused) and CL302 stays on the line.
        ("CL002", "net.py", 8, "info"),
        ("CL302", "net.py", 8, "warning"),
        ("CL501", "net.py", 9, "info"),
    ]

    # ALL overrides the file's select: CL201 runs now, finds nothing on the stem, and its
    # suppression is reported unused.
    code, found = lint(project, "net.py", "--select", "ALL")
    assert found == [
        ("CL002", "net.py", 7, "info"),
        ("CL002", "net.py", 8, "info"),  # disable=CL301: CL302 superseded it
        ("CL302", "net.py", 8, "warning"),
        ("CL501", "net.py", 9, "info"),
    ]
    code, found = lint(project, "net.py", "--select", "ALL", "--ignore", "CL002,CL3,CL5")
    assert (code, found) == (0, [])


def test_a_bad_selector_in_per_file_ignores_names_the_key(project):
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"CL30"', '"CL9"'), encoding="utf-8")
    proc = cli("net.py", "--no-cache", cwd=project)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    said = proc.stdout + proc.stderr  # the report's error line
    assert "pyproject.toml: per-file-ignores 'legacy/*.py': 'CL9' matches no rule" in said, said


def test_unused_suppression_is_documented_like_a_rule():
    proc = cli("rule", "CL002")
    assert proc.returncode == 0 and proc.stdout.startswith("CL002 unused-suppression (default severity: info)")
    assert "What it flags" in proc.stdout
