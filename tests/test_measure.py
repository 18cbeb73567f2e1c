"""``--measure``: each covered finding's fix is built and timed for real on this CPU.

The fixture has one finding of each kind ``cnnlint.measure`` times (CL201, CL302, CL102, CL303,
CL402) on 64x64 inputs, so a run takes seconds. No timing is asserted beyond being positive: the
speedups are this machine's, and benchmarks/measure.py is where they are compared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, Ran, cli

FIXTURE = str(FIXTURES / "measure_fixes.py")
COVERED = {"CL201", "CL302", "CL102", "CL303", "CL402"}


def cnnlint(*args: str, cwd: Path) -> Ran:
    return cli(FIXTURE, "--target", "t4", *args, cwd=cwd)


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> tuple[list[dict], str]:
    proc = cnnlint("--measure", "--measure-budget", "4", "--measure-threads", "1", "--format", "json",
                   cwd=tmp_path_factory.mktemp("m"))
    assert proc.returncode == 1, proc.stderr  # findings, no error
    (result,) = json.loads(proc.stdout)["results"]
    return result["findings"], proc.stderr


def test_every_covered_fix_is_timed_with_two_positive_medians(measured):
    findings, _ = measured
    covered = [f for f in findings if f["code"] in COVERED]
    assert {f["code"] for f in covered} == COVERED
    for finding in covered:
        m = finding["metrics"]
        assert "measured_skipped" not in m, (finding["code"], m["measured_skipped"])
        assert m["measured_speedup"] > 0
        assert m["measured_before_ms"] > 0 and m["measured_after_ms"] > 0
        assert m["measured_speedup"] == pytest.approx(m["measured_before_ms"] / m["measured_after_ms"], rel=1e-3)
        assert (m["measured_device"], m["measured_dtype"]) == ("cpu", "fp32")
        ratio = m["measured_speedup"]
        verdict = f"{'faster' if ratio >= 1 else 'slower'} ("
        assert "; on this machine: " in finding["message"] and verdict in finding["message"], finding["message"]
        assert " ms → " in finding["message"]
    fixes = {f["code"]: f["metrics"]["measured_fix"] for f in covered}
    assert fixes["CL102"] == "16 groups 64->64 -> dense 16->16"  # the same-FLOPs dense conv it proposes first
    assert fixes["CL303"].startswith("5x5 -> 2 stacked 3x3")
    assert "one 3x3 conv" in fixes["CL402"] and "one 3x3 conv 32->20" in fixes["CL302"]


def test_findings_without_a_concrete_fix_are_counted_not_measured(measured):
    findings, stderr = measured
    others = [f for f in findings if f["code"] not in COVERED]
    assert others, "the fixture also has findings no fix of which is measured (CL101, CL104)"
    assert not any(k.startswith("measured") for f in others for k in f["metrics"])
    (line,) = [line for line in stderr.splitlines() if line.startswith("cnnlint: measured")]
    measured_count = sum(1 for f in findings if "measured_speedup" in f["metrics"])
    assert f"measured {measured_count} of {len(findings)} findings on cpu" in line
    assert f"{len(others)} had no concrete fix" in line
    assert "cpu (1 thread, fp32)" in line


def test_a_budget_of_zero_reports_every_finding_as_not_measured_and_caches_nothing(tmp_path, monkeypatch):
    # A project with the cache on: a measured run neither answers from it nor fills it.
    monkeypatch.delenv("CNNLINT_NO_CACHE")
    (tmp_path / "pyproject.toml").write_text("[tool.cnnlint]\n")
    proc = cnnlint("--measure", "--measure-budget", "0", "--select", ",".join(sorted(COVERED)),
                   "--format", "json", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert not (tmp_path / ".cnnlint_cache").exists()
    findings = json.loads(proc.stdout)["results"][0]["findings"]
    assert {f["code"] for f in findings} == COVERED
    for finding in findings:
        assert finding["metrics"]["measured_skipped"] == "budget"
        assert "measured_speedup" not in finding["metrics"]
        assert finding["message"].endswith("not measured on this machine: --measure-budget ran out")
    assert f"measured 0 of {len(findings)} findings" in proc.stderr
    assert f"{len(findings)} skipped: budget ran out (" in proc.stderr


def test_cuda_without_a_gpu_is_one_line_and_exit_2(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    proc = cnnlint("--measure", "--device", "cuda", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "--device cuda" in proc.stderr and "no CUDA GPU" in proc.stderr


def test_measure_options_without_measure_are_refused(tmp_path):
    proc = cnnlint("--measure-budget", "5", cwd=tmp_path)
    assert proc.returncode == 2 and "add --measure" in proc.stderr


def test_a_run_without_measure_never_imports_it(tmp_path):
    code = (
        "import atexit, sys\n"
        "from cnnlint.cli import main\n"
        "atexit.register(lambda: print('imported:', 'cnnlint.measure' in sys.modules, file=sys.stderr))\n"
        f"sys.argv = ['cnnlint', {FIXTURE!r}, '--select', 'CL201', '--format', 'json', '--fail-on', 'info']\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "imported: False" in proc.stderr
    assert not any(k.startswith("measured") for f in json.loads(proc.stdout)["results"][0]["findings"]
                   for k in f["metrics"])  # fmt: skip


def test_the_message_says_faster_or_slower_as_measured():
    from cnnlint.measure import verdict

    assert verdict(0.21e-3, 0.15e-3) == "1.4x faster (0.21 ms → 0.15 ms)"
    assert verdict(0.15e-3, 0.21e-3) == "1.4x slower (0.15 ms → 0.21 ms)"
    assert verdict(1.0e-3, 0.98e-3) == "1.02x faster (1 ms → 0.98 ms)"
    assert verdict(250e-3, 125e-3) == "2.0x faster (250 ms → 125 ms)"
