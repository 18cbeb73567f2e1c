"""The command line, run in process (tests/conftest.py's ``cli``): formats, exit codes, and every
error path."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from conftest import FIXTURES, REPO, cli
SCHEMA = json.loads((REPO / "docs" / "schema" / "cnnlint-report.schema.json").read_text())
LINES = FIXTURES / "core_lines.py"
ERRORS = FIXTURES / "core_errors.py"


def run(*args: str, cwd: Path = REPO):
    return cli(*args, cwd=cwd)


def run_json(*args: str, cwd: Path = REPO) -> tuple[int, dict]:
    proc = run(*args, "--format", "json", cwd=cwd)
    document = json.loads(proc.stdout)
    jsonschema.validate(document, SCHEMA)
    assert "Traceback" not in proc.stderr
    return proc.returncode, document


def test_text_report_is_ruff_like_with_a_summary_line():
    proc = run(f"{LINES}::Misaligned", "--target", "t4", "--precision", "int8", "--no-color")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("tests/fixtures/core_lines.py:11:23: CL201 [t4] narrow: ")
               for line in lines), proc.stdout  # fmt: skip
    assert any(line.startswith("tests/fixtures/core_lines.py:12:26: CL302 [t4] depthwise: ")
               for line in lines), proc.stdout  # fmt: skip
    summary = lines[-1]
    assert summary.startswith("tests/fixtures/core_lines.py::Misaligned [t4 int8]: ")
    assert "MACs" in summary and "params" in summary and "est." in summary and "ms" in summary


def test_json_report_follows_the_contract_and_locates_findings():
    code, document = run_json(f"{LINES}::Misaligned", "--target", "t4", "--precision", "int8")
    assert code == 1
    (result,) = document["results"]
    assert result["status"] == "ok" and result["input_shape"] == [1, 3, 224, 224]
    found = {(f["code"], f["module"], f["line"]) for f in result["findings"]}
    # narrow: 24 out (int8 granule 16); depthwise: 24 in/out, and depthwise on a GPU;
    # wide: 24 in. The stem reads the image (3 ch, exempt); the head is the classifier.
    # depthwise + wide is a 24-channel separable pair a regular 3x3 beats (CL302), which
    # supersedes CL301's finding on the same layer (one layer, one message).
    assert found == {
        ("CL201", "narrow", 11), ("CL201", "depthwise", 12), ("CL201", "wide", 13),
        ("CL302", "depthwise", 12),
    }  # fmt: skip
    narrow = next(f for f in result["findings"] if f["module"] == "narrow")
    assert narrow["metrics"]["padded_out_channels"] == 32 and narrow["fix"] == "use out_channels 16 or 32"


def test_select_ignore_and_fail_on():
    code, document = run_json(f"{LINES}::Misaligned", "-t", "t4", "--precision", "int8",
                              "--select", "CL3")  # fmt: skip
    assert {f["code"] for f in document["results"][0]["findings"]} == {"CL302"}  # supersedes CL301
    _, document = run_json(f"{LINES}::Misaligned", "-t", "t4", "--precision", "int8",
                           "--select", "CL301")  # fmt: skip
    assert {f["code"] for f in document["results"][0]["findings"]} == {"CL301"}  # CL302 is not on
    code, document = run_json(f"{LINES}::Misaligned", "-t", "t4", "--precision", "int8",
                              "--ignore", "depthwise-on-accelerator,CL201,CL302")  # fmt: skip
    assert code == 0 and document["results"][0]["findings"] == []
    code, _ = run_json(f"{LINES}::Misaligned", "-t", "t4", "--fail-on", "error")
    assert code == 0
    proc = run(f"{LINES}::Misaligned", "--select", "CL999")
    assert proc.returncode == 2 and "matches no rule" in proc.stdout + proc.stderr


def test_depthwise_rule_follows_the_target():
    _, on_t4 = run_json("torchvision.models:mobilenet_v2", "-t", "t4", "-t", "x3", "--select", "CL301")
    t4, x3 = on_t4["results"]
    assert (t4["target"], x3["target"]) == ("t4", "x3")
    assert len(t4["findings"]) == 17 and x3["findings"] == []


def test_rules_and_rule_commands():
    proc = run("rules")
    assert proc.returncode == 0
    for code in ("CL201", "CL301"):
        assert code in proc.stdout
    assert "t4" in proc.stdout and "arm-cpu" in proc.stdout
    doc = run("rule", "CL301")
    assert doc.returncode == 0
    for section in ("What it flags", "Why", "Example", "Use instead", "Options", "Targets"):
        assert section in doc.stdout
    assert run("rule", "CL999").returncode == 2


def _error_of(document: dict, model_suffix: str) -> str:
    for result in document["results"]:
        if result["model"].endswith(model_suffix):
            assert result["status"] == "error"
            return result["error"]
    raise AssertionError(f"no result for {model_suffix}: {document}")


def test_models_failing_in_every_stage_are_reported_and_the_rest_still_linted():
    code, document = run_json(
        f"{ERRORS}::Works", f"{ERRORS}::InitRaises", f"{ERRORS}::ShapeMismatch",
        f"{ERRORS}::DataDependent", str(FIXTURES / "syntax_error.py"),
        str(FIXTURES / "import_error.py"), "missing_model.py", f"{LINES}::NeedsArgs",
    )  # fmt: skip
    assert code == 2
    statuses = [r["status"] for r in document["results"]]
    assert statuses[0] == "ok" and statuses.count("error") == 6, [
        (r["model"], r["error"]) for r in document["results"] if r["status"] == "error"]  # fmt: skip
    assert "building the model raised ValueError: cannot build this one (at " in _error_of(
        document, "::InitRaises"
    )
    assert "core_errors.py:18" in _error_of(document, "::InitRaises")
    shape_error = _error_of(document, "::ShapeMismatch")
    assert "forward() failed for input shape [1, 3, 224, 224]" in shape_error
    assert "--input-shape" in shape_error
    # Needs tensor values in the model's own forward: small enough, it runs once on CPU tensors,
    # and CL001 says at the branching line that the graph follows the branch a random input took.
    (data_dependent,) = [r for r in document["results"] if r["model"].endswith("::DataDependent")]
    assert data_dependent["status"] == "ok"
    assert any(f["code"] == "CL001" and f["line"] == 37 for f in data_dependent["findings"])
    assert "syntax_error.py:3: syntax error" in _error_of(document, "syntax_error.py")
    assert "ModuleNotFoundError" in _error_of(document, "import_error.py")
    assert "missing_model.py: no such file" in _error_of(document, "missing_model.py")
    assert "[tool.cnnlint.models." in _error_of(document, "::NeedsArgs")


def test_unknown_target_and_bad_profile_toml(tmp_path):
    code, document = run_json(f"{ERRORS}::Works", "--target", "tpu9000")
    assert code == 2 and "unknown target 'tpu9000'" in document["results"][0]["error"]
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "t4"\n[memory]\nbandwidth_gbps = -1\n')
    code, document = run_json(f"{ERRORS}::Works", "--target", str(bad))
    error = document["results"][0]["error"]
    assert code == 2 and str(bad) in error and "memory.bandwidth_gbps" in error
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    code, document = run_json(f"{ERRORS}::Works", "--target", str(broken))
    assert code == 2 and "invalid TOML" in document["results"][0]["error"]


def test_user_profile_extends_a_builtin(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text('extends = "t4"\nname = "my-t4"\n[rules.CL301]\nenabled = false\n')
    code, document = run_json("torchvision.models:mobilenet_v2", "--target", str(mine),
                              "--select", "CL301")  # fmt: skip
    (result,) = document["results"]
    assert result["target"] == "my-t4" and code == 0
    assert not any(f["code"] == "CL301" for f in result["findings"])


def _project(tmp_path: Path, tool_table: str) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n\n" + tool_table)
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    (models / "net.py").write_text((FIXTURES / "core_lines.py").read_text())
    return models / "net.py"


def test_pyproject_config_is_found_by_walking_up(tmp_path):
    net = _project(tmp_path, (
        "[tool.cnnlint]\ntarget = 't4'\nprecision = 'int8'\nselect = ['CL201']\n"
        "[tool.cnnlint.models.'models/net.py::NeedsArgs']\nkwargs = { width = 20 }\n"
        "input-shape = [1, 3, 64, 64]\n"
    ))  # fmt: skip
    code, document = run_json(f"{net}::NeedsArgs", cwd=tmp_path)
    (result,) = document["results"]
    assert (result["target"], result["precision"], result["input_shape"]) == ("t4", "int8", [1, 3, 64, 64])
    assert [f["code"] for f in result["findings"]] == []  # the 20-channel conv feeds the output
    code, document = run_json(str(net), cwd=tmp_path)
    assert {r["model"].rpartition("::")[2] for r in document["results"]} == {
        "Misaligned", "UsesComponent", "NeedsArgs"
    }


def test_unknown_config_key_and_wrong_types_name_the_key(tmp_path):
    net = _project(tmp_path, "[tool.cnnlint]\ntarget = 't4'\nselct = ['CL201']\n")
    code, document = run_json(str(net), cwd=tmp_path)
    assert code == 2 and "tool.cnnlint.selct" in document["results"][0]["error"]
    net = _project(tmp_path, "[tool.cnnlint]\ninput-shape = 'big'\n")
    proc = run(str(net), cwd=tmp_path)
    assert proc.returncode == 2 and "tool.cnnlint.input-shape" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("shape", ["1,x,3", "1,-3,224,224", ""])
def test_garbage_input_shape_is_a_usage_error(shape):
    proc = run(f"{ERRORS}::Works", "--input-shape", shape)
    assert proc.returncode == 2 and "--input-shape" in proc.stderr and "Traceback" not in proc.stderr


def test_user_prints_do_not_corrupt_json(tmp_path):
    noisy = tmp_path / "noisy.py"
    noisy.write_text(
        "from torch import nn\nprint('hello from import')\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 16, 3)\n"
        "    def forward(self, x):\n"
        "        print('hello from forward')\n"
        "        return self.conv(x)\n"
    )
    proc = run(str(noisy), "--format", "json")
    json.loads(proc.stdout)
    assert "hello from import" in proc.stderr and "hello from forward" in proc.stderr


def test_each_spec_fails_on_its_own_fail_on_and_the_command_line_wins(tmp_path):
    # Two projects: one fails only on errors, the other on the default (warning). Their models
    # have warnings (and infos) but no errors on t4.
    (tmp_path / "lenient").mkdir()
    (tmp_path / "strict").mkdir()
    lenient_file = _project(tmp_path / "lenient", "[tool.cnnlint]\ntarget = 't4'\nfail-on = 'error'\n")
    strict_file = _project(tmp_path / "strict", "[tool.cnnlint]\ntarget = 't4'\n")
    lenient, strict = f"{lenient_file}::Misaligned", f"{strict_file}::Misaligned"
    code, document = run_json(lenient, cwd=tmp_path)
    assert code == 0 and "warning" in {f["severity"] for f in document["results"][0]["findings"]}
    # Whichever comes first, the strict project's warnings fail the run.
    assert run_json(lenient, strict, cwd=tmp_path)[0] == 1
    assert run_json(strict, lenient, cwd=tmp_path)[0] == 1
    assert run_json(lenient, strict, "--fail-on", "never", cwd=tmp_path)[0] == 0
    assert run_json(lenient, "--fail-on", "warning", cwd=tmp_path)[0] == 1


def test_a_malformed_spec_is_its_error_result_and_the_other_specs_are_linted():
    proc = run("pkg.mod", str(LINES), "--no-color")
    assert proc.returncode == 2
    assert "error: pkg.mod: not a model spec" in proc.stdout and "Traceback" not in proc.stderr
    assert "tests/fixtures/core_lines.py::Misaligned [generic" in proc.stdout
