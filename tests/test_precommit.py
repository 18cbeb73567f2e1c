"""The pre-commit hook, run by real pre-commit in a real git repository, and the pre-scan that
lets a commit without models pass without importing torch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cnnlint.prescan import may_define_model, model_classes

REPO = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
PRE_COMMIT = BIN / "pre-commit"

BAD = """from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.pw = nn.Conv2d(32, 64, 1)

    def forward(self, x):
        return self.pw(self.dw(self.stem(x)))
"""

CLEAN = """from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 3, stride=2, padding=1)
        self.head = nn.Linear(64, 16)

    def forward(self, x):
        return self.head(self.stem(x).mean((2, 3)))
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- the pre-scan
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from torch import nn\nclass A(nn.Module): pass\n", {"A"}),
        ("import torch\nclass A(torch.nn.Module): pass\n", {"A"}),
        ("from torch.nn import Module as M\nclass A(M): pass\n", {"A"}),
        ("from torch import nn\nclass A(nn.Sequential): pass\n", {"A"}),
        ("import lightning as L\nclass A(L.LightningModule): pass\n", {"A"}),
        # A subclass of a model class defined later in the same file.
        ("from torch import nn\nclass B(A): pass\nclass A(nn.Module): pass\n", {"A", "B"}),
        ("class Config:\n    pass\nclass Error(ValueError): pass\n", set()),
        ("import torch\nx = torch.zeros(3)  # nn.Module\ns = 'class A(nn.Module)'\n", set()),
    ],
)
def test_the_prescan_finds_model_classes_by_their_bases(tmp_path, source, expected):
    assert model_classes(write(tmp_path, "m.py", source)) == expected


def test_the_prescan_follows_bases_imported_from_sibling_modules(tmp_path):
    write(tmp_path, "pkg/blocks.py", "from torch import nn\nclass Backbone(nn.Module): pass\n")
    write(tmp_path, "pkg/utils.py", "class Helper: pass\n")
    model = write(tmp_path, "pkg/net.py", """
        from .blocks import Backbone
        from utils import Helper
        class Net(Backbone): pass
        class Tool(Helper): pass
    """)
    assert model_classes(model) == {"Net"}


def test_a_file_that_does_not_parse_is_kept_for_the_loader_to_report(tmp_path):
    assert may_define_model(write(tmp_path, "broken.py", "class A(:\n"))
    assert not may_define_model(write(tmp_path, "plain.py", "def f():\n    return 1\n"))


# ---------------------------------------------------------------------------- real pre-commit
def git(folder: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, env=env,
                          timeout=600)  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A git repository whose pre-commit config runs this checkout's hook (the manifest's
    `cnnlint-system` entry, as a local hook) with the cnnlint of this environment."""
    if shutil.which("git") is None or not PRE_COMMIT.exists():
        pytest.skip("needs git and pre-commit (pip install -e '.[test]')")
    import yaml  # pre-commit depends on PyYAML

    (hook,) = [h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
               if h["id"] == "cnnlint-system"]  # fmt: skip
    folder = tmp_path / "project"
    folder.mkdir()
    config = {"repos": [{"repo": "local", "hooks": [{**hook, "verbose": True}]}]}
    (folder / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    write(folder, "pyproject.toml", '[tool.cnnlint]\ntarget = "t4"\n')
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
    }  # fmt: skip
    env.pop("CI", None)
    assert git(folder, "init", "-q", "-b", "main", env=env).returncode == 0
    installed = subprocess.run([str(PRE_COMMIT), "install"], cwd=folder, capture_output=True,
                               text=True, env=env)  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    git(folder, "add", ".", env=env)
    first = git(folder, "commit", "-q", "-m", "config", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    return folder, env


def commit(repo: tuple[Path, dict[str, str]], files: dict[str, str], **env_extra: str):
    folder, env = repo
    for name, text in files.items():
        write(folder, name, text)
    git(folder, "add", *files, env=env)
    proc = git(folder, "commit", "-m", "change", env={**env, **env_extra})
    return proc, proc.stdout + proc.stderr


@pytest.mark.slow
def test_a_commit_with_a_bad_model_fails_with_the_finding(repo):
    proc, output = commit(repo, {"models/net.py": BAD})
    assert proc.returncode != 0, output
    assert "models/net.py:8:19: CL302 [t4]" in output, output
    assert "Failed" in output


@pytest.mark.slow
def test_a_clean_model_passes(repo):
    proc, output = commit(repo, {"models/net.py": CLEAN})
    assert proc.returncode == 0, output
    assert "Passed" in output and "net.py::Net [t4 fp16]" in output


@pytest.mark.slow
def test_a_suppressed_finding_passes(repo):
    suppressed = BAD.replace("groups=32)", "groups=32)  # cnnlint: disable=CL301,CL302")
    suppressed = suppressed.replace("self.pw = nn.Conv2d(32, 64, 1)",
                                    "self.pw = nn.Conv2d(32, 64, 1)  # cnnlint: disable=CL501")
    proc, output = commit(repo, {"models/net.py": suppressed})
    assert proc.returncode == 0, output
    assert " CL302 [" not in output and " CL301 [" not in output, output


def test_a_commit_without_models_passes_without_importing_torch(repo):
    files = {
        "scripts/train.py": "import argparse\n\n\ndef main():\n    return argparse.ArgumentParser()\n",
        "data/loader.py": "class Loader:\n    def __iter__(self):\n        return iter(())\n",
        "conftest.py": "import pytest\n",
    }
    # Every Python process of the commit (pre-commit and the hook) prints what it imports.
    proc, output = commit(repo, files, PYTHONPROFILEIMPORTTIME="1")
    assert proc.returncode == 0, output
    assert "Passed" in output
    assert "| cnnlint.cli" in output, "the hook ran cnnlint"
    imported = [line.rsplit("|", 1)[-1].strip() for line in output.splitlines() if "import time:" in line]
    assert "torch" not in imported and not any(m.startswith("torch.") for m in imported)
