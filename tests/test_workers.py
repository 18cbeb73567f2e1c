"""Running many specs: --jobs keeps the output identical, --timeout stops loops in-process too,
and the progress bar shows only on a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURES, TESTS

REPO = TESTS.parent
CNNLINT = str(Path(sys.executable).with_name("cnnlint"))
BAD = TESTS / "bad_inputs"
SPECS = [
    str(FIXTURES / "core_lines.py"), str(BAD / "good_model.py"), str(BAD / "init_raises.py"),
    str(FIXTURES / "cl102_bad.py"), str(BAD / "returns_dict.py"), str(FIXTURES / "cl401_bad.py"),
]  # fmt: skip


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([CNNLINT, *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                          **kwargs)  # fmt: skip


def test_jobs_do_not_change_the_output():
    one = run(*SPECS, "-t", "t4", "--format", "json", "--jobs", "1")
    two = run(*SPECS, "-t", "t4", "--format", "json", "--jobs", "2")
    isolated = run(*SPECS, "-t", "t4", "--format", "json", "--isolate")
    assert one.returncode == two.returncode == isolated.returncode == 2
    assert one.stdout == two.stdout == isolated.stdout
    assert '"status": "ok"' in one.stdout and "init_raises.py::Broken" in one.stdout


def test_timeout_stops_a_loop_in_process_and_the_run_goes_on():
    proc = run(str(BAD / "loops_forever.py"), str(BAD / "good_model.py"), "--no-isolate",
               "--timeout", "5", "--no-color")  # fmt: skip
    assert proc.returncode == 2
    assert "loops_forever.py::Spins: tracing and checking did not finish within 5 s" in proc.stdout, proc.stdout
    assert "(at tests/bad_inputs/loops_forever.py:13)" in proc.stdout
    assert "good_model.py::Fine [generic" in proc.stdout


def _stderr_on_a_terminal(*args: str) -> str:
    leader, follower = pty.openpty()
    proc = subprocess.Popen([CNNLINT, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=follower,
                            env={**os.environ, "COLUMNS": "120"})  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closes when the process exits
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=600)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_progress_bar_only_on_a_terminal_and_for_several_specs():
    several = _stderr_on_a_terminal(str(BAD / "good_model.py"), str(BAD / "returns_dict.py"))
    assert "cnnlint" in several and "/2" in several  # "1/2", "2/2" from the bar
    one = _stderr_on_a_terminal(str(BAD / "good_model.py"))
    assert "/1" not in one
    piped = run(str(BAD / "good_model.py"), str(BAD / "returns_dict.py"))
    assert "/2" not in piped.stderr


def test_a_crash_costs_only_its_model_and_the_rest_of_the_file_is_linted():
    import json

    proc = run(str(BAD / "crash_between_models.py"), str(BAD / "init_raises.py"), "--isolate",
               "--format", "json")  # fmt: skip
    results = json.loads(proc.stdout)["results"]
    by_model = {r["model"].split("::")[1]: r for r in results}
    assert [r["model"].split("::")[1] for r in results] == ["First", "Second", "Third", "Broken"]
    assert by_model["First"]["status"] == by_model["Third"]["status"] == "ok"
    assert "killed by SIGSEGV" in by_model["Second"]["error"]
    # An error the worker reports and one the parent records for a dead worker look alike.
    crashed, raised = by_model["Second"], by_model["Broken"]
    assert crashed["status"] == raised["status"] == "error"
    assert (crashed["target"], crashed["precision"]) == (raised["target"], raised["precision"])
    assert proc.returncode == 2


def test_a_model_deaf_to_the_time_limit_is_killed_and_the_run_goes_on():
    import json

    proc = run(str(BAD / "stuck_in_native_code.py"), str(BAD / "good_model.py"), "--isolate",
               "--timeout", "2", "--format", "json")  # fmt: skip
    stuck, good = json.loads(proc.stdout)["results"]
    assert "stuck_in_native_code.py::Stuck: did not finish within 2 s" in stuck["error"]
    assert "did not respond to the stop signal" in stuck["error"] and "worker was killed" in stuck["error"]
    assert good["status"] == "ok" and proc.returncode == 2


def test_library_modules_several_specs_share_are_imported_before_forking(tmp_path, monkeypatch):
    """torchvision.models is imported once in the parent for 2 jobs, not once per worker; the
    user's own modules (a file, or a module outside installed packages) only in the workers."""
    from cnnlint.spec import ModelSpec
    from cnnlint.workers import _shared_library_modules

    (tmp_path / "mynets.py").write_text("import torch\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    specs = [ModelSpec.parse(text) for text in (
        "torchvision.models:resnet18", "torchvision.models:vgg11", "timm.models:resnet18",
        "mynets:A", "mynets:B", str(FIXTURES / "cl101_bad.py"),
    )]  # fmt: skip
    assert _shared_library_modules(specs) == ["torchvision.models"]


def test_a_worker_forked_after_torch_ran_in_parallel_can_still_run_a_model_on_cpu(tmp_path):
    """The API in a program that already used torch's thread pool, with isolation on: the forked
    worker's real CPU run (a data-dependent forward) must not hang in OpenMP."""
    code = (
        "import torch, cnnlint\n"
        "torch.set_num_threads(2)\n"
        "x = torch.randn(512, 512); (x @ x).sum()  # the parent's thread pool is now up\n"
        f"from cnnlint.workers import run\n"
        "from cnnlint.options import RunOptions\n"
        "from cnnlint.spec import ModelSpec\n"
        f"specs = [ModelSpec.parse({str(FIXTURES / 'core_errors.py')!r} + '::DataDependent'), "
        f"ModelSpec.parse({str(FIXTURES / 'core_errors.py')!r} + '::Works')]\n"
        "results = run(specs, RunOptions(targets=['t4'], timeout=60), jobs=1, isolate=True)\n"
        "print([r.status for r in results])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=TESTS.parent, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "['ok', 'ok']", proc.stdout + proc.stderr
