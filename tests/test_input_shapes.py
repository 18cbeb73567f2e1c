"""Input shapes: the command line, then pyproject.toml, then the size the model declares (timm's
``pretrained_cfg``/``default_cfg``), then a guess from the first conv that runs. Reports say
which, and a failed forward on a guessed shape says what to pass."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import cli, lint_specs

from cnnlint.report.text_format import summary_line


DECLARED = """\
import torch.nn as nn


class Net(nn.Module):
    default_cfg = {"input_size": (3, 256, 256)}

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(16 * 128 * 128, 10)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))
"""

SE_FIRST = """\
import torch.nn as nn


class SE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.down = nn.Conv2d(c, c // 4, 1)
        self.up = nn.Conv2d(c // 4, c, 1)

    def forward(self, x):
        return x * self.up(self.down(x.mean((2, 3), keepdim=True))).sigmoid()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.se = SE(64)  # registered before the stem
        self.stem = nn.Conv2d(3, 64, 3, padding=1)

    def forward(self, x):
        return self.se(self.stem(x))
"""

FIXED_SIZE = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16 * 64 * 64, 10)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))
"""


def _write(folder: Path, name: str, source: str) -> str:
    (folder / name).write_text(source)
    return str(folder / name)


def test_a_user_class_declaring_its_input_size_is_traced_at_that_size(tmp_path):
    (result,) = lint_specs(_write(tmp_path, "declared.py", DECLARED))
    assert result.status == "ok", result.error
    assert result.input_shape == [1, 3, 256, 256]
    assert result.input_shape_source == "declared"
    assert summary_line(result).endswith("; input 1x3x256x256 (the model's declared input size)")


def test_a_timm_model_is_traced_at_its_pretrained_cfg_input_size():
    (result,) = lint_specs("timm.models.efficientnet:test_efficientnet")
    assert result.status == "ok", result.error
    assert result.input_shape == [1, 3, 160, 160]  # timm declares 160 px for this model
    assert result.input_shape_source == "declared"


def test_the_guess_comes_from_the_first_conv_that_runs_not_the_first_registered(tmp_path):
    (result,) = lint_specs(_write(tmp_path, "se_first.py", SE_FIRST))
    assert result.status == "ok", result.error
    assert result.input_shape == [1, 3, 224, 224]
    assert result.input_shape_source == "guess"
    assert "input 1x3x224x224 (guessed from the first conv)" in summary_line(result)


def test_option_and_config_win_and_the_report_says_so(tmp_path):
    spec = _write(tmp_path, "declared.py", DECLARED)
    (from_option,) = lint_specs(spec, input_shapes=[(1, 3, 256, 256)])
    assert from_option.input_shape_source == "option"
    (tmp_path / "pyproject.toml").write_text("[tool.cnnlint]\ninput-shape = [1, 3, 256, 256]\n")
    proc = cli("declared.py", "--format", "json", cwd=tmp_path)
    (result,) = json.loads(proc.stdout)["results"]
    assert (result["input_shape"], result["input_shape_source"]) == ([1, 3, 256, 256], "config")
    text = cli("declared.py", "--no-color", cwd=tmp_path).stdout
    assert "; input 1x3x256x256 (from pyproject.toml)" in text


@pytest.mark.parametrize("source, says", [
    ("guess", "guessed: the model declares no input size"),
    ("option", "from --input-shape"),
])  # fmt: skip
def test_a_forward_failing_on_the_shape_says_where_it_came_from_and_what_to_pass(
    tmp_path, source, says
):
    spec = _write(tmp_path, "fixed.py", FIXED_SIZE)
    shapes = [(1, 3, 96, 96)] if source == "option" else None
    (result,) = lint_specs(spec, input_shapes=shapes)
    assert result.status == "error"
    assert says in result.error
    if source == "guess":
        assert "--input-shape 1,3,H,W" in result.error
        assert textwrap.dedent(f"""\
            [tool.cnnlint.models."{spec}::Net"]
                input-shape = [1, 3, H, W]""") in result.error
    else:
        assert "--input-shape 1," not in result.error


# Speech and audio-to-face models take integer inputs beside the features: a speaker index
# (an nn.Embedding) and sequence lengths. The lengths are read by value (the real run).
INTEGER_INPUTS = """\
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.speaker = nn.Embedding(8, 16)
        self.conv = nn.Conv1d(16, 32, 3, padding=1)

    def forward(self, x, pid, lengths):
        x = x + self.speaker(pid).unsqueeze(-1)
        x = x[:, :, : int(lengths.max()) + 63]
        return self.conv(x)
"""


def test_integer_inputs_are_stated_with_input_dtype(tmp_path):
    spec = _write(tmp_path, "speech.py", INTEGER_INPUTS)
    shapes = [(1, 16, 64), (1,), (1,)]
    (floats,) = lint_specs(spec, input_shapes=shapes)
    assert floats.status == "error"
    assert "indices" in floats.error and "--input-dtype float32,int64" in floats.error

    (result,) = lint_specs(spec, input_shapes=shapes, input_dtypes=["float32", "int64", "int64"])
    assert result.status == "ok", result.error
    assert result.summary.macs == 32 * 16 * 3 * 64  # the conv, over all 64 steps (lengths are 1)
    assert "input: element types float32, int64, int64 (as given)" in result.notes
    assert any("runtime capture on CPU tensors" in note for note in result.notes)  # by value

    # In pyproject.toml: one type per input; the command line's wins.
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""\
        [tool.cnnlint.models.Net]
        input-shape = [[1, 16, 64], [1], [1]]
        input-dtype = ["float32", "int64", "int32"]
        """))
    (result,) = json.loads(cli("speech.py", "--format", "json", cwd=tmp_path).stdout)["results"]
    assert result["status"] == "ok" and "float32, int64, int32" in result["notes"][0]
    text = cli("speech.py", "--input-dtype", "float32,int64,int64", "--no-color", cwd=tmp_path).stdout
    assert "note: speech.py::Net: input: element types float32, int64, int64 (as given)" in text


def test_a_wrong_input_dtype_is_a_clear_error_naming_the_key(tmp_path):
    spec = _write(tmp_path, "speech.py", INTEGER_INPUTS)
    bad = cli(spec, "--input-shape", "1,16,64;1;1", "--input-dtype", "float32,long", cwd=tmp_path)
    assert bad.returncode == 2
    assert "--input-dtype 'float32,long': 'long' is not an input type; use one of" in bad.stderr
    (tmp_path / "pyproject.toml").write_text('[tool.cnnlint]\ninput-dtype = ["float32", "long"]\n')
    bad = cli("speech.py", cwd=tmp_path)
    assert bad.returncode == 2
    assert "key 'tool.cnnlint.input-dtype': Value error, 'long' is not an input type" in bad.stdout
    (tmp_path / "pyproject.toml").unlink()
    (result,) = lint_specs(spec, input_shapes=[(1, 16, 64), (1,), (1,)], input_dtypes=["float32", "int64"])
    assert result.status == "error"
    assert "input-dtype names 2 types (float32, int64) for 3 input shape(s)" in result.error


def test_the_api_takes_input_dtype():
    import torch.nn as nn

    import cnnlint

    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(100, 32)
            self.proj = nn.Linear(32, 8)

        def forward(self, ids):
            return self.proj(self.embed(ids))

    report = cnnlint.lint(Tokens(), "t4", input_shape=(1, 10), input_dtype="int64")
    (result,) = report.results
    assert result.status == "ok", result.error
    assert result.summary.macs == 10 * 32 * 8


WRONG_MASK = """\
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.register_buffer("mask", torch.zeros(3, 3, dtype=torch.bool))

    def forward(self, x):
        return self.attn(x, x, x, attn_mask=self.mask, need_weights=False)[0]
"""


def test_a_mask_of_the_wrong_shape_is_not_told_to_state_an_input_type(tmp_path):
    """The type advice is for a float reaching an index or a mask, not for any error that names
    a mask: an attention mask sized for another sequence is a shape problem."""
    (result,) = lint_specs(_write(tmp_path, "mask.py", WRONG_MASK), input_shapes=[(1, 4, 16)])
    assert result.status == "error"
    assert "attn_mask" in result.error and "--input-dtype" not in result.error


def test_input_dtype_of_the_default_type_still_names_one_per_input(tmp_path):
    spec = _write(tmp_path, "speech.py", INTEGER_INPUTS)
    (result,) = lint_specs(spec, input_shapes=[(1, 16, 64), (1,)], input_dtypes=["float32"] * 3)
    assert result.status == "error"
    assert "input-dtype names 3 types (float32, float32, float32) for 2 input shape(s)" in result.error
