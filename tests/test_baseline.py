"""Baseline files: record today's findings, report only new ones, say when an entry is stale.

End to end with the real command line on a real model in a temporary project."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import Ran, cli

from cnnlint.baseline import apply_baseline, read_baseline, write_baseline
from cnnlint.errors import ConfigError
from cnnlint.results import Finding, ModelResult


MODEL = """from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.pw = nn.Conv2d(32, 64, 1)

    def forward(self, x):
        return self.pw(self.dw(self.stem(x)))
"""


def run(folder: Path, *args: str) -> Ran:
    proc = cli(*args, "--no-cache", cwd=folder)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def findings(proc: Ran) -> list[tuple[str, str, int]]:
    document = json.loads(proc.stdout)
    return [(f["code"], f["module"], f["line"]) for r in document["results"] for f in r["findings"]]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[tool.cnnlint]\ntarget = "t4"\n', encoding="utf-8")
    (tmp_path / "net.py").write_text(MODEL, encoding="utf-8")
    return tmp_path


def test_only_new_findings_are_reported_and_moved_lines_stay_accepted(folder):
    today = findings(run(folder, "net.py", "--format", "json"))
    assert ("CL302", "dw", 8) in today  # the depthwise + 1x1 pair (CL302 supersedes CL301)

    wrote = run(folder, "net.py", "--write-baseline", "baseline.json")
    assert wrote.returncode == 0, wrote.stderr
    assert f"{len(today)} findings" in wrote.stderr
    recorded = json.loads((folder / "baseline.json").read_text())["findings"]
    assert {(e["code"], e["model"], e["module"], e["target"]) for e in recorded} == {
        (code, "net.py::Net", module, "t4") for code, module, _ in today
    }
    assert all("line" not in e for e in recorded)

    clean = run(folder, "net.py", "--baseline", "baseline.json", "--format", "json")
    assert clean.returncode == 0 and findings(clean) == []

    # Lines move (a comment and an import above the class) and a second depthwise conv appears.
    edited = MODEL.replace("from torch import nn\n", "# moved down\nimport math\nfrom torch import nn\n")
    edited = edited.replace(
        "        self.pw = nn.Conv2d(32, 64, 1)\n",
        "        self.pw = nn.Conv2d(32, 64, 1)\n        self.dw2 = nn.Conv2d(64, 64, 3, padding=1, groups=64)\n",
    ).replace("self.pw(self.dw(", "self.dw2(self.pw(self.dw(").replace("(x)))", "(x))))")
    (folder / "net.py").write_text(edited, encoding="utf-8")
    # --fail-on info: dw2's finding may be info on t4 (its fix saves under 1% of latency).
    now = run(folder, "net.py", "--baseline", "baseline.json", "--format", "json", "--fail-on", "info")
    new = findings(now)
    assert new and {module for _, module, _ in new} == {"dw2"}, new
    assert now.returncode == 1


def test_a_fixed_finding_leaves_a_stale_entry_reported_at_info(folder):
    run(folder, "net.py", "--write-baseline", "baseline.json")
    # The depthwise conv becomes a regular one: its entries no longer match anything.
    (folder / "net.py").write_text(MODEL.replace(", groups=32", ""), encoding="utf-8")
    proc = run(folder, "net.py", "--baseline", "baseline.json", "--format", "json")
    stale = [f for r in json.loads(proc.stdout)["results"] for f in r["findings"] if f["code"] == "CL003"]
    assert stale and all(f["severity"] == "info" and f["module"] == "dw" for f in stale)
    assert "CL302" in " ".join(f["message"] for f in stale)
    assert proc.returncode == 0  # info does not fail the run (fail-on warning)
    # Left out by --select, a rule's entries are neither matched nor stale.
    selected = run(folder, "net.py", "--baseline", "baseline.json", "--select", "CL5,CL003",
                   "--format", "json")  # fmt: skip
    assert "CL302" not in selected.stdout


def test_the_baseline_matches_from_another_working_directory(folder):
    run(folder, "net.py", "--write-baseline", "baseline.json")
    (folder / "sub").mkdir()
    proc = run(folder / "sub", "../net.py", "--baseline", "../baseline.json", "--format", "json")
    assert proc.returncode == 0 and findings(proc) == []


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "not valid JSON (line 1"),
        ('{"findings": []}', "not a cnnlint baseline"),
        ('{"format": "cnnlint-baseline", "version": 7, "findings": []}', "format version 7"),
        ('{"format": "cnnlint-baseline", "version": 1, "findings": [{"code": 3}]}', "findings[0]"),
    ],
)
def test_a_corrupt_baseline_is_a_clear_error(folder, text, says):
    (folder / "baseline.json").write_text(text, encoding="utf-8")
    proc = run(folder, "net.py", "--baseline", "baseline.json")
    assert proc.returncode == 2
    assert "baseline.json" in proc.stderr and says in proc.stderr, proc.stderr
    assert proc.stdout == ""  # stopped before linting


def test_a_missing_baseline_says_how_to_write_one(folder):
    proc = run(folder, "net.py", "--baseline", "nope.json")
    assert proc.returncode == 2 and "--write-baseline nope.json" in proc.stderr


def test_entries_are_counted(tmp_path):
    def result(*modules: str) -> ModelResult:
        found = [Finding(message="m", code="CL301", name="n", module=m) for m in modules]
        return ModelResult(model=str(tmp_path / "n.py") + "::Net", target="t4", precision="fp16",
                           status="ok", findings=found)  # fmt: skip

    path = tmp_path / "baseline.json"
    write_baseline(path, [result("a", "a")])
    later = result("a", "a", "a")  # one more on the same module: it is new
    apply_baseline(path, read_baseline(path), [later], lambda r: {"CL301", "CL003"})
    assert [f.module for f in later.findings] == ["a"]


def test_reading_names_the_file(tmp_path):
    path = tmp_path / "b.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(ConfigError, match="b.json: not a cnnlint baseline"):
        read_baseline(path)


def test_a_baseline_file_written_before_still_hides_its_findings(tmp_path):
    """Committed baselines stay readable: version 1, entries matched by the finding's identity
    (code, model, module, target), whatever the line and the numbers of the message."""
    path = tmp_path / "baseline.json"
    entry = {"code": "CL302", "model": "n.py::Net", "module": "dw", "target": "t4", "message": "old"}
    document = {"format": "cnnlint-baseline", "version": 1, "cnnlint_version": "0.1.0", "findings": [entry]}
    path.write_text(json.dumps(document), encoding="utf-8")
    found = [Finding(message="new numbers", code="CL302", name="low-channel-separable", module="dw", line=9),
             Finding(message="m", code="CL201", name="channel-misaligned", module="pw", line=10)]  # fmt: skip
    result = ModelResult(model=str(tmp_path / "n.py") + "::Net", target="t4", precision="fp16",
                         status="ok", findings=found)  # fmt: skip
    assert apply_baseline(path, read_baseline(path), [result], lambda r: {"CL302", "CL201", "CL003"}) == 1
    assert [f.code for f in result.findings] == ["CL201"]
