"""Each spec imports its own code: same-named sibling modules never leak from one spec to the
next (in this process, in a reused worker, from a directory), an edited file is read again, and a
module-level instance is never changed by linting it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import cnnlint
from cnnlint.options import RunOptions
from cnnlint.spec import ModelSpec
from cnnlint.workers import run

CNNLINT = str(Path(sys.executable).with_name("cnnlint"))

NET = """\
import torch.nn as nn
from blocks import block


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 3, padding=1)
        self.body = block(64)

    def forward(self, x):
        return self.body(self.stem(x))
"""
DENSE = "import torch.nn as nn\n\ndef block(c):\n    return nn.Conv2d(c, c, 3, padding=1)\n"
DEPTHWISE = (
    "import torch.nn as nn\n\ndef block(c):\n    return nn.Conv2d(c, c, 3, padding=1, groups=c)\n"
)


@pytest.fixture
def siblings(tmp_path: Path) -> Path:
    """a/net.py and b/net.py, each importing its own blocks.py: dense in a, depthwise in b."""
    for name, blocks in (("a", DENSE), ("b", DEPTHWISE)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "net.py").write_text(NET)
        (tmp_path / name / "blocks.py").write_text(blocks)
    return tmp_path


def _by_model(results) -> dict[str, tuple[int, list[str]]]:
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    return {Path(r.model.partition("::")[0]).parent.name: (r.summary.macs, sorted(f.code for f in r.findings))
            for r in results}  # fmt: skip


@pytest.mark.parametrize("jobs, isolate", [(1, False), (1, True), (2, False)],
                         ids=["in-process", "isolate", "jobs-2"])  # fmt: skip
def test_sibling_modules_of_the_same_name_stay_with_their_spec(siblings, jobs, isolate):
    specs = [ModelSpec.parse(str(siblings / d / "net.py")) for d in "ab"]
    results = run(specs, RunOptions(targets=["t4"], select=["CL301"]), jobs=jobs, isolate=isolate)
    models = _by_model(results)
    dense_macs = 224 * 224 * 64 * (3 * 9 + 64 * 9)
    depthwise_macs = 224 * 224 * 64 * (3 * 9 + 9)
    assert models["a"] == (dense_macs, [])
    assert models["b"] == (depthwise_macs, ["CL301"])
    # Both orders: b first must not leave its depthwise blocks to a either.
    results = run(list(reversed(specs)), RunOptions(targets=["t4"], select=["CL301"]), jobs=jobs,
                  isolate=isolate)  # fmt: skip
    assert _by_model(results) == models


def test_sibling_modules_from_a_directory_spec(siblings):
    proc = subprocess.run([CNNLINT, ".", "-t", "t4", "--select", "CL301", "--format", "json"],
                          cwd=siblings, capture_output=True, text=True, timeout=300)  # fmt: skip
    report = json.loads(proc.stdout)
    macs = {r["model"]: r["summary"]["macs"] for r in report["results"]}
    codes = {r["model"]: [f["code"] for f in r["findings"]] for r in report["results"]}
    assert macs["a/net.py::Net"] > 10 * macs["b/net.py::Net"]
    assert codes == {"a/net.py::Net": [], "b/net.py::Net": ["CL301"]}


def test_two_files_importing_different_names_from_their_own_blocks(tmp_path):
    """The ShuffleNet V1/V2 case: both have network.py and blocks.py, with different names."""
    for name, block in (("v1", "ShuffleV1Block"), ("v2", "ShuffleV2Block")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "blocks.py").write_text(textwrap.dedent(f"""\
            import torch.nn as nn

            class {block}(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(3, 8, 3)

                def forward(self, x):
                    return self.conv(x)
            """))
        (folder / "network.py").write_text(textwrap.dedent(f"""\
            import torch.nn as nn
            from blocks import {block}

            class Network(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.block = {block}()

                def forward(self, x):
                    return self.block(x)
            """))
    specs = [ModelSpec.parse(str(tmp_path / d / "network.py")) for d in ("v1", "v2")]
    for jobs, isolate in ((1, False), (1, True)):
        results = run(specs, RunOptions(targets=["generic"]), jobs=jobs, isolate=isolate)
        assert [r.status for r in results] == ["ok", "ok"], [r.error for r in results]


def test_spec_modules_are_forgotten_and_torch_is_not_reimported(siblings):
    torch_before = sys.modules["torch"]
    run([ModelSpec.parse(str(siblings / "a" / "net.py"))], RunOptions(targets=["generic"]))
    assert "blocks" not in sys.modules
    assert not any(name.startswith("cnnlint_user_net_") for name in sys.modules)
    assert str(siblings / "a") not in sys.path
    assert sys.modules["torch"] is torch_before


def test_an_edited_file_is_read_again_in_the_same_process(tmp_path):
    model = tmp_path / "model.py"
    template = textwrap.dedent("""\
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, {width}, 3)

            def forward(self, x):
                return self.conv(x)
        """)
    model.write_text(template.format(width=8))
    first = cnnlint.lint(str(model), "generic")
    model.write_text(template.format(width=16))
    second = cnnlint.lint(str(model), "generic")
    assert first.results[0].summary.params == 8 * 27 + 8
    assert second.results[0].summary.params == 16 * 27 + 16


def test_linting_a_module_level_instance_leaves_it_untouched(tmp_path, monkeypatch):
    (tmp_path / "instance_mod.py").write_text(textwrap.dedent("""\
        import torch.nn as nn

        model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import instance_mod

    before = instance_mod.model[0].weight.detach().clone()
    report = cnnlint.lint("instance_mod:model", "generic")
    assert report.results[0].status == "ok", report.results[0].error
    assert instance_mod.model[0].weight.device.type == "cpu"
    assert torch.equal(instance_mod.model[0].weight, before)
    # The file form of the same instance: still linted, still untouched.
    report = cnnlint.lint(f"{tmp_path / 'instance_mod.py'}::model", "generic")
    assert report.results[0].status == "ok", report.results[0].error
    assert instance_mod.model[0].weight.device.type == "cpu"


def test_cnnlint_modules_first_imported_during_a_spec_are_kept(siblings):
    """The built-in rules live beside the package in a checkout, outside site-packages; the first
    spec imports them, and they must not be forgotten with the spec's own modules."""
    script = (
        "import sys\n"
        "from cnnlint.options import RunOptions\n"
        "from cnnlint.spec import ModelSpec\n"
        "from cnnlint.workers import run\n"
        "assert not any(n.startswith('cnnlint.rules.') for n in sys.modules)\n"
        "run([ModelSpec.parse('a/net.py')], RunOptions(targets=['generic']))\n"
        "print(sorted(n for n in sys.modules if n.startswith('cnnlint.rules.cl')))\n"
        "print('blocks' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=siblings, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    kept, blocks = proc.stdout.splitlines()
    assert "cnnlint.rules.cl301_depthwise" in kept and blocks == "False"
