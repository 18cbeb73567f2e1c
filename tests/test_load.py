"""Loading: every spec form, meta-device builds, construction sites."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, cli, lint_specs

from cnnlint.errors import LoadError
from cnnlint.load import ModelSettings, load
from cnnlint.spec import ModelSpec

LINES = FIXTURES / "core_lines.py"


def _load(spec: str, **settings):
    return load(ModelSpec.parse(spec), lambda _: ModelSettings(**settings))


def test_file_spec_discovers_models_and_skips_components_and_classes_needing_args():
    models = _load(str(LINES))
    names = sorted(m.name.rpartition("::")[2] for m in models)
    # Component is used inside UsesComponent; NeedsArgs needs a constructor argument.
    assert names == ["Misaligned", "UsesComponent"]


def test_class_spec_builds_on_meta_without_allocating_weights():
    (model,) = _load(f"{LINES}::Misaligned")
    assert model.built_on == "meta"
    assert {p.device.type for p in model.module.parameters()} == {"meta"}
    assert model.input_shapes == [(1, 3, 224, 224)]


def test_function_spec_and_import_spec():
    (from_function,) = _load(f"{LINES}::make_small")
    assert type(from_function.module).__name__ == "UsesComponent"
    (from_import,) = _load("torchvision.models:resnet18")
    assert from_import.built_on == "meta"
    assert from_import.input_shapes == [(1, 3, 224, 224)]


def test_construction_sites_point_at_the_user_line():
    (model,) = _load(f"{LINES}::Misaligned")
    assert model.sites["narrow"].line == 11
    assert model.sites["narrow"].path.endswith("core_lines.py")
    assert model.sites["narrow"].column == 23  # the `nn.Conv2d(` call
    assert model.sites["head"].line == 14
    # A layer built in a helper function points at the line inside the helper.
    (small,) = _load(f"{LINES}::UsesComponent")
    assert small.sites["block.body.0"].line == 24
    # A user-defined block points where it is instantiated, not at its super().__init__().
    assert small.sites["block"].line == 43


def test_constructor_arguments_from_settings():
    (model,) = _load(f"{LINES}::NeedsArgs", kwargs={"width": 48})
    assert model.module.conv.out_channels == 48


def test_constructor_needing_arguments_shows_the_config_snippet():
    with pytest.raises(LoadError) as excinfo:
        _load(f"{LINES}::NeedsArgs")
    message = str(excinfo.value)
    assert "needs arguments (width)" in message
    assert '[tool.cnnlint.models."' in message and "kwargs = { width = ... }" in message


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("nothing_here.py", "no such file"),
        ("pkg.mod", "not a model spec"),
        ("torchvision.models:not_a_model", "has no attribute 'not_a_model'"),
        ("no_such_package_cnnlint.x:y", "cannot import 'no_such_package_cnnlint.x'"),
    ],
)
def test_bad_specs_raise_clear_errors(spec, expected):
    with pytest.raises(LoadError, match=expected):
        _load(spec) if "nothing" not in spec else load(ModelSpec.parse(spec), lambda _: ModelSettings())


def test_input_shape_default_for_1d_and_3d(tmp_path):
    source = tmp_path / "dims.py"
    source.write_text(
        "from torch import nn\n"
        "class OneD(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv1d(8, 16, 3)\n"
        "    def forward(self, x):\n"
        "        return self.conv(x)\n"
        "class ThreeD(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv3d(3, 16, 3)\n"
        "    def forward(self, x):\n"
        "        return self.conv(x)\n"
    )
    results = {r.model.rpartition("::")[2]: r for r in lint_specs(str(source))}
    assert results["OneD"].input_shape == [1, 8, 224]
    assert results["ThreeD"].input_shape == [1, 3, 16, 112, 112]
    assert results["OneD"].summary.macs == 16 * 222 * 8 * 3
    assert results["ThreeD"].summary.macs == 16 * 14 * 110 * 110 * 3 * 27


def test_model_that_cannot_be_built_on_meta_falls_back_to_cpu(tmp_path):
    source = tmp_path / "needs_cpu.py"
    source.write_text(
        "import torch\n"
        "from torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 16, 3)\n"
        "        self.scale = float(self.conv.weight.abs().max().item())  # needs real data\n"
        "    def forward(self, x):\n"
        "        return self.conv(x) * self.scale\n"
    )
    (model,) = load(ModelSpec.parse(str(source)), lambda _: ModelSettings())
    assert model.built_on == "cpu"
    assert "meta" in model.notes[0]
    assert {p.device.type for p in model.module.parameters()} == {"meta"}
    assert torch.device("meta") == next(model.module.parameters()).device


def test_a_spec_is_parsed_once_into_its_parts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nets").mkdir()
    one = ModelSpec.parse("nets/m.py::Net")
    assert (one.path, one.attr, one.module) == (Path("nets/m.py"), "Net", None)
    assert one.display == "nets/m.py::Net"
    assert not one.names_many_models
    whole = ModelSpec.parse("nets/m.py")
    assert whole.names_many_models and whole.member("Net").display == "nets/m.py::Net"
    imported = ModelSpec.parse("torchvision.models:resnet18")
    assert (imported.module, imported.attr, imported.path) == ("torchvision.models", "resnet18", None)
    folder = ModelSpec.parse("nets")  # a folder needs no slash
    assert folder.path == Path("nets") and folder.names_many_models and not folder.from_directory
    found = ModelSpec.found_file(tmp_path / "nets" / "m.py")
    assert found.display == "nets/m.py" and found.from_directory
    for bad in ("nets/m.py::", ":attr", "pkg.mod"):
        with pytest.raises(LoadError):
            ModelSpec.parse(bad)


# ---------------------------------------------------------------------------- file mode messages
NEEDS_ARGS = '''\
import torch.nn as nn


class Basic(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3)

    def forward(self, x):
        return self.conv(x)


class ResNet(nn.Module):
    def __init__(self, depth, width=16):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3)

    def forward(self, x):
        return self.stem(x)


class Staged(nn.Module):
    def __init__(self, block, layers):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3)
        self.blocks = nn.Sequential(*[block(16) for _ in layers])

    def forward(self, x):
        return self.blocks(self.stem(x))


def ResNet18():
    return ResNet(18)


def staged_small():
    return Staged(Basic, [2, 2])
'''


def test_a_class_needing_arguments_points_at_the_factories_that_build_it(tmp_path):
    source = tmp_path / "needs.py"
    source.write_text(NEEDS_ARGS)
    with pytest.raises(LoadError) as excinfo:
        load(ModelSpec.parse(f"{source}::ResNet"), lambda _: ModelSettings())
    message = str(excinfo.value)
    assert "needs arguments (depth)" in message
    assert f"{source}::ResNet18" in message or "needs.py::ResNet18" in message
    assert "kwargs = { depth = 18 }" in message  # the value the factory passes, as TOML


def test_an_argument_toml_cannot_express_is_named_not_suggested(tmp_path):
    source = tmp_path / "needs.py"
    source.write_text(NEEDS_ARGS)
    with pytest.raises(LoadError) as excinfo:
        load(ModelSpec.parse(f"{source}::Staged"), lambda _: ModelSettings())
    message = str(excinfo.value)
    assert "needs.py::staged_small" in message
    assert "block is Basic (a class) in staged_small()" in message
    assert "kwargs =" not in message


def test_a_relative_import_says_to_use_the_import_path_which_works_from_the_project(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'proj'\n")
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "blocks.py").write_text("import torch.nn as nn\n\ndef block():\n"
                                       "    return nn.Conv2d(3, 8, 3)\n")  # fmt: skip
    (package / "net.py").write_text(
        "import torch.nn as nn\nfrom .blocks import block\n\n\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.conv = block()\n\n"
        "    def forward(self, x):\n        return self.conv(x)\n"
    )
    by_file = cli("pkg/net.py", cwd=tmp_path)
    assert by_file.returncode == 2
    assert "relative import" in by_file.stdout + by_file.stderr
    assert "`cnnlint pkg.net:ModelName`" in by_file.stdout + by_file.stderr
    # The import path works from the project root and from below it: the root goes on sys.path.
    for cwd in (tmp_path, package):
        by_import = cli("pkg.net:Net", "--format", "json", cwd=cwd)
        assert by_import.returncode == 0, by_import.stdout + by_import.stderr
        assert '"status": "ok"' in by_import.stdout


def test_a_malformed_spec_is_an_error_result_and_the_other_specs_are_linted():
    proc = cli("pkg.mod", f"{LINES}::", f"{LINES}::Misaligned", "--format", "json")
    assert proc.returncode == 2
    results = json.loads(proc.stdout)["results"]
    assert [r["status"] for r in results] == ["error", "error", "ok"]
    assert "not a model spec" in results[0]["error"]
    assert "nothing after '::'" in results[1]["error"]
