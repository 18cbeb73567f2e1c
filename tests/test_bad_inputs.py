"""The bad-input corpus: whatever users feed cnnlint, each model gets a clear answer.

Every file in tests/bad_inputs/ is linted in one real CLI run, isolated, beside a good model: each
bad one must give one paragraph naming the file and model (no traceback), the good ones must
still be linted, stdout must stay a valid report, and the exit code is 2. Option and profile
mistakes, which stop a run before any model, are their own rows below.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from conftest import TESTS

BAD = TESTS / "bad_inputs"
REPO = TESTS.parent
CNNLINT = str(Path(sys.executable).with_name("cnnlint"))
SCHEMA = json.loads((REPO / "docs" / "schema" / "cnnlint-report.schema.json").read_text())

# Long enough for every tiny model of the corpus on a loaded 2-core machine; the one that loops
# forever waits it out, so it is kept short.
CORPUS_TIMEOUT_S = 6

# file -> (status, words its error must contain). None: the model lints fine ("unless noted").
CORPUS: dict[str, tuple[str, list[str]] | None] = {
    "empty.py": ("error", ["empty.py: defines no nn.Module subclass", "::Name"]),
    "no_module.py": ("error", ["no_module.py: defines no nn.Module subclass"]),
    "not_utf8.py": ("error", ["not_utf8.py: not UTF-8 text", "save the file as UTF-8"]),
    "init_raises.py": ("error", ["init_raises.py::Broken: building the model raised RuntimeError",
                                 "checkpoint path not configured", "init_raises.py:10"]),
    "forward_raises.py": ("error", ["forward_raises.py::Unfinished", "NotImplementedError",
                                    "forward is not written yet"]),
    "needs_args.py": ("error", ["Configurable() needs arguments (width, depth)",
                                '[tool.cnnlint.models."tests/bad_inputs/needs_args.py::Configurable"]',
                                "kwargs = { width = ..., depth = ... }"]),
    "two_inputs.py": None,  # tests/bad_inputs/pyproject.toml gives both shapes
    "two_inputs_unconfigured.py": ("error", ["Pair: forward() takes 2 input(s) (left, right)",
                                             "[tool.cnnlint.models]"]),
    "returns_none.py": None,
    "returns_tuple.py": None,
    "returns_dict.py": None,
    "sys_exit_at_import.py": ("error", ["sys_exit_at_import.py: importing it raised SystemExit",
                                        "sys_exit_at_import.py:5", 'if __name__ == "__main__":']),
    "exits_at_import.py": ("error", ["exits_at_import.py", "exited with status 3",
                                     "while importing", "other models were still linted"]),
    "segfaults.py": ("error", ["segfaults.py::Crashes", "killed by SIGSEGV",
                               "other models were still linted"]),
    "loops_forever.py": ("error", ["loops_forever.py::Spins", f"did not finish within {CORPUS_TIMEOUT_S} s",
                                   "loops_forever.py:13", "--timeout"]),
    "good_model.py": None,
}  # fmt: skip


def run(*args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CNNLINT, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})  # fmt: skip


@pytest.fixture(scope="module")
def corpus_run() -> tuple[subprocess.CompletedProcess, dict]:
    files = [str((BAD / name).relative_to(REPO)) for name in CORPUS]
    # CI=true: several files linted unattended, so isolation is on by default.
    proc = run(*files, "--target", "t4", "--format", "json", "--timeout", str(CORPUS_TIMEOUT_S), "--jobs", "2",
               env={"CI": "true"})  # fmt: skip
    document = json.loads(proc.stdout)
    jsonschema.validate(document, SCHEMA)
    return proc, document


def _results_for(document: dict, name: str) -> list[dict]:
    return [r for r in document["results"] if r["model"].split("::")[0].endswith(name)]


def test_corpus_run_exits_2_without_tracebacks(corpus_run):
    proc, document = corpus_run
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr, proc.stderr
    # Results come back in the order the files were given, whatever finished first.
    order = [next(i for i, name in enumerate(CORPUS) if r["model"].split("::")[0].endswith(name))
             for r in document["results"]]  # fmt: skip
    assert order == sorted(order)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_bad_input_gets_its_own_clear_answer(corpus_run, name):
    _, document = corpus_run
    (result,) = _results_for(document, name)
    expected = CORPUS[name]
    if expected is None:
        assert result["status"] == "ok", result["error"]
        assert result["summary"]["macs"] > 0
        return
    status, words = expected
    assert result["status"] == status
    message = result["error"]
    assert "\n\n" not in message and "Traceback" not in message  # one paragraph
    for word in words:
        assert word in message, message


def test_two_configured_inputs_are_both_traced(corpus_run):
    _, document = corpus_run
    (result,) = _results_for(document, "two_inputs.py")
    assert result["input_shapes"] == [[1, 3, 64, 64], [1, 1, 64, 64]]


def test_unreadable_file(tmp_path):
    # A socket cannot be opened as a file even by root, unlike a chmod 000 file.
    unreadable = tmp_path / "model.py"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(unreadable))
    try:
        proc = run(str(unreadable), str(BAD / "good_model.py"), "--format", "json")
    finally:
        server.close()
    document = json.loads(proc.stdout)
    assert proc.returncode == 2
    bad, good = document["results"]
    assert "model.py: cannot read it" in bad["error"] and good["status"] == "ok"


def test_a_directory_lints_its_python_files_and_honours_gitignore(tmp_path):
    (tmp_path / ".gitignore").write_text("generated/\nscratch_*.py\n")
    for relative in ("nets/good.py", "generated/net.py", "scratch_net.py"):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text((BAD / "good_model.py").read_text())
    (tmp_path / "nets" / "helpers.py").write_text("def scale(x):\n    return 2 * x\n")
    (tmp_path / "nets" / ".gitignore").write_text("old.py\n")
    (tmp_path / "nets" / "old.py").write_text((BAD / "good_model.py").read_text())
    proc = run(".", "--format", "json", cwd=tmp_path)
    document = json.loads(proc.stdout)
    # helpers.py defines no model: in a directory that is not an error, only skipped.
    assert [r["model"] for r in document["results"]] == ["nets/good.py::Fine"]
    assert proc.returncode in (0, 1), proc.stderr


def test_an_empty_directory_is_an_error(tmp_path):
    proc = run(str(tmp_path), "--format", "json")
    assert proc.returncode == 2
    assert "is a directory with no .py files to lint" in json.loads(proc.stdout)["results"][0]["error"]


PROFILE_ROWS = {
    "bad syntax": ('name = "x"\nkind = gpu\n', ["bad.toml", "TOML"]),
    "wrong type": ('extends = "t4"\nname = "mine"\nkernel_overhead_us = "fast"\n',
                   ["bad.toml", "kernel_overhead_us"]),
    "unknown key": ('extends = "t4"\nname = "mine"\nturbo = true\n', ["bad.toml", "turbo"]),
    "negative bandwidth": ('extends = "t4"\nname = "mine"\n[memory]\nbandwidth_gbps = -1\n',
                           ["bad.toml", "bandwidth_gbps"]),
    "extends cycle": ('extends = "bad.toml"\nname = "loop"\n', ["bad.toml", "cycle"]),
}  # fmt: skip


@pytest.mark.parametrize("row", sorted(PROFILE_ROWS))
def test_bad_profile_toml_names_file_and_key(tmp_path, row):
    text, words = PROFILE_ROWS[row]
    (tmp_path / "bad.toml").write_text(text)
    proc = run(str(BAD / "good_model.py"), "--target", str(tmp_path / "bad.toml"), "--format", "json")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    message = json.loads(proc.stdout)["results"][0]["error"]
    for word in words:
        assert word in message, message


def test_pyproject_with_wrong_types_names_the_key(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.cnnlint]\ntarget = 4\nfail-on = ["x"]\n')
    model = tmp_path / "model.py"
    model.write_text((BAD / "good_model.py").read_text())
    proc = run(str(model), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    message = json.loads(proc.stdout)["results"][0]["error"]
    assert "pyproject.toml" in message and "target" in message, message


@pytest.mark.parametrize("shape", ["1,x,3", "1,-3,224,224", "", "1,3,,224"])
def test_garbage_input_shape(shape):
    proc = run(str(BAD / "good_model.py"), "--input-shape", shape)
    assert proc.returncode == 2 and "--input-shape" in proc.stderr and "Traceback" not in proc.stderr


def test_the_pre_commit_hook_passes_over_files_without_models():
    # pre-commit hands over every changed .py file; helpers and scripts define no model.
    hook = (REPO / ".pre-commit-hooks.yaml").read_text()
    assert "--skip-files-without-models" in hook
    proc = run(str(BAD / "no_module.py"), str(BAD / "empty.py"), str(BAD / "good_model.py"),
               "--skip-files-without-models", "--format", "json")  # fmt: skip
    assert [r["model"] for r in json.loads(proc.stdout)["results"]] == [
        "tests/bad_inputs/good_model.py::Fine"
    ]
    assert proc.returncode in (0, 1), proc.stdout
