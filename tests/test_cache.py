"""The result cache: keys, what invalidates an entry, entries it must never trust, and a re-run
over unchanged files that answers without importing torch (real CLI processes, real files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cnnlint.cache import (
    DIR_NAME, Cache, cache_folder, decode, encode, file_digest, recording_imports,
)  # fmt: skip
from cnnlint.results import Finding, ModelResult, Summary

CNNLINT = str(Path(sys.executable).with_name("cnnlint"))

BLOCKS = """
from torch import nn


def separable(c):
    return nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c), nn.Conv2d(c, 2 * c, 1))
"""

MODEL = """
from torch import nn

from blocks import separable


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, stride=2, padding=1)
        self.body = separable(32)

    def forward(self, x):
        return self.body(self.stem(x))
"""

# Runs the real CLI in this process, then says whether torch was imported.
TORCH_PROBE = """
import sys
from cnnlint.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
print("torch imported:", "torch" in sys.modules, file=sys.stderr)
print("pydantic imported:", "pydantic" in sys.modules, file=sys.stderr)
sys.exit(code)
"""


def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[tool.cnnlint]\ntarget = "t4"\n', encoding="utf-8")
    (tmp_path / "blocks.py").write_text(BLOCKS.lstrip(), encoding="utf-8")
    (tmp_path / "model.py").write_text(MODEL.lstrip(), encoding="utf-8")
    return tmp_path


def lint(folder: Path, *args: str) -> tuple[subprocess.CompletedProcess, bool]:
    """Run ``cnnlint`` as a process; also return whether it imported torch."""
    env = {k: v for k, v in os.environ.items() if k != "CNNLINT_NO_CACHE"}
    proc = subprocess.run(
        [sys.executable, "-c", TORCH_PROBE, *args], cwd=folder, capture_output=True, text=True,
        timeout=300, env=env,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    imported = "torch imported: True" in proc.stderr
    assert imported or "torch imported: False" in proc.stderr, proc.stderr
    return proc, imported


def entries(folder: Path) -> list[Path]:
    return sorted((folder / DIR_NAME).rglob("*.json"))


# ---------------------------------------------------------------------------- end to end
def test_a_rerun_answers_from_the_cache_without_importing_torch(tmp_path):
    folder = project(tmp_path)
    first, imported = lint(folder, "model.py", "--format", "json")
    assert imported and first.returncode == 1, first.stderr
    assert (folder / DIR_NAME / ".gitignore").read_text().splitlines()[-1] == "*"
    assert len(entries(folder)) == 1

    second, imported = lint(folder, "model.py", "--format", "json")
    assert not imported, second.stderr
    assert second.returncode == first.returncode
    assert json.loads(second.stdout) == json.loads(first.stdout)  # the same report, byte for byte
    assert second.stdout == first.stdout
    # Nor are the config and profiles validated again, since the key is made of the raw tables
    # (the text report needs no pydantic; the JSON one is the pydantic contract).
    lint(folder, "model.py")
    text, imported = lint(folder, "model.py")
    assert not imported and "pydantic imported: False" in text.stderr, text.stderr


def test_editing_an_imported_file_relints_the_model(tmp_path):
    folder = project(tmp_path)
    before, _ = lint(folder, "model.py", "--format", "json")
    assert {"CL301", "CL302"} & {f["code"] for f in json.loads(before.stdout)["results"][0]["findings"]}

    # blocks.py, imported by model.py, now builds a regular conv instead of the depthwise one.
    (folder / "blocks.py").write_text(BLOCKS.replace(", groups=c", "").lstrip(), encoding="utf-8")
    after, imported = lint(folder, "model.py", "--format", "json")
    assert imported, "an edit to blocks.py must invalidate model.py's entry"
    assert not {"CL301", "CL302"} & {f["code"] for f in json.loads(after.stdout)["results"][0]["findings"]}


@pytest.mark.slow
def test_results_linted_in_worker_processes_are_cached_with_their_imports(tmp_path):
    folder = project(tmp_path)
    (folder / "other.py").write_text(MODEL.replace("class Net", "class Other").lstrip(), encoding="utf-8")
    first, imported = lint(folder, "model.py", "other.py", "--isolate", "--format", "json")
    assert imported and len(entries(folder)) == 2, first.stderr
    again, imported = lint(folder, "model.py", "other.py", "--isolate", "--format", "json")
    assert not imported and again.stdout == first.stdout
    (folder / "blocks.py").write_text(BLOCKS.replace(", groups=c", "").lstrip(), encoding="utf-8")
    _, imported = lint(folder, "model.py", "other.py", "--isolate")
    assert imported


@pytest.mark.slow
def test_other_options_or_targets_miss(tmp_path):
    folder = project(tmp_path)
    lint(folder, "model.py")
    for change in (
        ["--target", "arm-cpu"],  # another profile
        ["--precision", "int8"],  # another option
        ["--select", "CL3"],
        ["--input-shape", "1,3,64,64"],
        ["--select", "CL1", "--extend-select", "CL3"],
    ):
        _, imported = lint(folder, "model.py", *change)
        assert imported, change


def test_a_config_edit_misses_and_a_hit_still_applies_per_file_ignores(tmp_path):
    folder = project(tmp_path)
    first, _ = lint(folder, "model.py", "--format", "json")
    codes = {f["code"] for f in json.loads(first.stdout)["results"][0]["findings"]}
    assert "CL302" in codes

    (folder / "pyproject.toml").write_text(
        '[tool.cnnlint]\ntarget = "t4"\n[tool.cnnlint.per-file-ignores]\n"blocks.py" = ["CL302"]\n',
        encoding="utf-8",
    )
    edited, imported = lint(folder, "model.py", "--format", "json")
    assert imported, "a [tool.cnnlint] edit must miss"
    cached, imported = lint(folder, "model.py", "--format", "json")
    assert not imported
    assert cached.stdout == edited.stdout
    assert "CL302" not in {f["code"] for f in json.loads(cached.stdout)["results"][0]["findings"]}


def test_a_broken_config_is_reported_not_answered_from_the_cache(tmp_path):
    folder = project(tmp_path)
    lint(folder, "model.py")
    (folder / "pyproject.toml").write_text('[tool.cnnlint]\ntarget = "t4"\nfail-on = 3\n', encoding="utf-8")
    for _ in range(2):  # an error is never stored, so the second run reports it too
        proc, _ = lint(folder, "model.py")
        assert proc.returncode == 2 and "fail-on" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_a_profile_edit_in_its_extends_chain_misses(tmp_path):
    folder = project(tmp_path)
    (folder / "base.toml").write_text('extends = "t4"\nname = "base"\n', encoding="utf-8")
    (folder / "board.toml").write_text('extends = "base.toml"\nname = "board"\n', encoding="utf-8")
    lint(folder, "model.py", "--target", "board.toml")
    _, imported = lint(folder, "model.py", "--target", "board.toml")
    assert not imported
    # The grandparent changes; board.toml itself does not.
    (folder / "base.toml").write_text(
        'extends = "t4"\nname = "base"\nkernel_overhead_us = 9.0\n', encoding="utf-8"
    )
    _, imported = lint(folder, "model.py", "--target", "board.toml")
    assert imported


def test_no_cache_neither_reads_nor_writes_and_clean_removes_it(tmp_path):
    folder = project(tmp_path)
    lint(folder, "model.py", "--no-cache")
    assert not (folder / DIR_NAME).exists()
    lint(folder, "model.py")
    _, imported = lint(folder, "model.py", "--no-cache")
    assert imported
    proc = subprocess.run([CNNLINT, "clean"], cwd=folder, capture_output=True, text=True)
    assert proc.returncode == 0 and not (folder / DIR_NAME).exists(), proc.stderr
    assert "removed" in proc.stderr


def test_a_garbage_entry_is_ignored_and_rewritten_by_the_command_line(tmp_path):
    folder = project(tmp_path)
    first, _ = lint(folder, "model.py", "--format", "json")
    (entry,) = entries(folder)
    entry.write_bytes(b"garbage \x00\x01 not json")

    again, imported = lint(folder, "model.py", "--format", "json")
    assert imported and again.returncode == first.returncode, again.stderr
    assert again.stdout == first.stdout
    assert json.loads(entry.read_text(encoding="utf-8"))["schema"] == 1  # rewritten whole
    _, imported = lint(folder, "model.py", "--format", "json")
    assert not imported


DAMAGES = {
    "garbage": lambda text: "garbage \x00\x01 not json",
    "truncated": lambda text: text[: len(text) // 2],
    "empty": lambda text: "",
    "schema": lambda text: text.replace('"schema": 1', '"schema": 999'),
    "foreign-key": lambda text: text.replace('"key": "', '"key": "0'),  # written for another key
    "foreign-class": lambda text: text.replace("cnnlint.results:Finding", "os:system"),
    "unknown-field": lambda text: text.replace('"message":', '"surprise": 1, "message":'),
    "wrong-shape": lambda text: json.dumps({**json.loads(text), "results": {"not": "a list"}}),
    "not-results": lambda text: json.dumps({**json.loads(text), "results": [1, 2]}),
    "no-sources": lambda text: json.dumps({**json.loads(text), "sources": {}}),
    "bad-sources": lambda text: json.dumps({**json.loads(text), "sources": [1]}),
    "deep": lambda text: "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_corrupt_or_foreign_entry_is_a_miss_and_is_overwritten(tmp_path, damage):
    source = tmp_path / "model.py"
    source.write_text("x = 1\n", encoding="utf-8")
    finding = Finding(message="m", code="CL301", name="depthwise-on-accelerator", path="model.py",
                      line=1, severity="warning")  # fmt: skip
    results = [ModelResult(model="model.py::Net", target="t4", precision="fp16", status="ok",
                           findings=[finding])]  # fmt: skip
    cache, key = Cache(tmp_path / DIR_NAME), "cd" * 32
    cache.put(key, results, {str(source): file_digest(source)}, {"ran": {}})
    assert cache.get(key)["results"] == results
    (entry,) = entries(tmp_path)
    entry.write_text(damage(entry.read_text(encoding="utf-8")), encoding="utf-8")

    assert cache.get(key) is None
    cache.put(key, results, {str(source): file_digest(source)}, {"ran": {}})
    assert cache.get(key)["results"] == results


def test_an_entry_whose_source_changed_or_vanished_is_a_miss(tmp_path):
    source = tmp_path / "blocks.py"
    source.write_text("x = 1\n", encoding="utf-8")
    cache, key = Cache(tmp_path / DIR_NAME), "ef" * 32
    cache.put(key, [], {str(source): file_digest(source)}, {})
    assert cache.get(key) is not None
    source.write_text("x = 2\n", encoding="utf-8")
    assert cache.get(key) is None
    source.unlink()
    assert cache.get(key) is None


def test_the_cache_lives_beside_the_nearest_pyproject(tmp_path):
    folder = project(tmp_path)
    (folder / "sub").mkdir()
    assert cache_folder(folder / "sub") == folder.resolve() / DIR_NAME
    lint(folder / "sub", "../model.py")
    assert entries(folder) and not (folder / "sub" / DIR_NAME).exists()


# ---------------------------------------------------------------------------- the parts
def test_recording_imports_names_project_files_only(tmp_path, monkeypatch):
    (tmp_path / "cache_probe_helper.py").write_text("import json\nVALUE = 1\n", encoding="utf-8")
    (tmp_path / "cache_probe_model.py").write_text(
        "import email.mime.text\nimport cache_probe_helper\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with recording_imports() as sources:
        import cache_probe_model  # noqa: F401

    names = {Path(p).name for p in sources}
    assert {"cache_probe_model.py", "cache_probe_helper.py"} <= names
    assert not any("email" in p or "site-packages" in p for p in sources)  # stdlib, packages


def test_results_survive_the_round_trip_through_json():
    finding = Finding(message="m", fix="f", metrics={"share": 0.5, "ops": [1, 2]}, severity="info",
                      code="CL301", name="depthwise-on-accelerator", path="a.py", line=3, column=7,
                      module="features.1")  # fmt: skip
    summary = Summary(1, 2, 3, 4, 5.5, 6.5, 0.5, 64, ["x"])
    result = ModelResult(model="a.py::Net", target="t4", precision="fp16", status="ok",
                         input_shape=[1, 3], input_shapes=[[1, 3]], summary=summary,
                         findings=[finding], notes=["n"])  # fmt: skip
    assert decode(json.loads(json.dumps(encode([result])))) == [result]


def test_an_unwritable_cache_is_skipped(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    cache = Cache(blocker / DIR_NAME)
    source = tmp_path / "m.py"
    source.write_text("x = 1\n", encoding="utf-8")
    cache.put("ab" * 32, [], {str(source): "0"}, {})  # no exception
    assert cache.get("ab" * 32) is None
