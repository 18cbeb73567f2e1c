"""The labelled set of published architectures (tests/labelled/architectures.toml).

The table holds, per architecture and target, the rule codes an expert expects to warn and those
that should stay quiet, with the paper or vendor document behind each label.
benchmarks/labelled_rules.py lints all of them and scores every rule's precision and recall;
benchmarks/results/labelled/after.json is that run for the current rules, and its README lists
where the labels and cnnlint disagree.

Here: the table is well formed (at least 40 architectures from torchvision, timm, pytorchcv,
segmentation_models_pytorch and detection models, every label sourced, every code one that can
warn on its target, every spec names a model that exists), and a sample of the cheapest models
keeps every agreement the committed run recorded: a label that held there and no longer holds is
a regression in a rule (or a stale after.json: rerun the benchmark and review the README's diff).
Disagreements already recorded are allowed; fixing one is progress, not a failure.

Slow (CI runs it): the sample of 20 is linted on three targets, about 15 s on two cores.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "labelled_rules.py"
AFTER = REPO / "benchmarks" / "results" / "labelled" / "after.json"

# Cheap to trace, and together they label every rule both ways on every target: plain and
# residual convnets, depthwise mobile nets, channel shuffle, dense concat vs one-shot aggregation,
# group convs, Inception branches, re-parameterisable and deployed RepVGG, ESPNetv2's HFF, ghost
# widths, a U-Net and ASPP, a detection backbone.
SAMPLE = [
    "resnet18", "resnext50_32x4d", "googlenet", "densenet121", "mobilenet_v1", "mobilenet_v2",
    "mnasnet1_0", "efficientnet_v2_s", "shufflenet_v2_x1_0", "repvgg_a0", "repvgg_a0_deploy",
    "ghostnet_100", "rexnet_100", "peleenet", "condensenet74_c4_g4", "vovnet27s", "espnetv2",
    "unet_resnet34", "deeplabv3plus_resnet34", "fasterrcnn_resnet50_fpn_backbone",
]  # fmt: skip

pytestmark = pytest.mark.slow


def _labelled():
    """benchmarks/ is no package: the script by its path, under its own name."""
    if "labelled_rules" in sys.modules:
        return sys.modules["labelled_rules"]
    spec = importlib.util.spec_from_file_location("labelled_rules", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["labelled_rules"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def table():
    return _labelled().load_table()


def test_table_is_well_formed(table) -> None:
    lab = _labelled()
    assert len(table) >= 40
    assert lab.table_problems(table, lab.codes_that_can_warn()) == []
    every_code = {code for arch in table for label in arch.labels.values() for code in label.warn + label.quiet}
    warned = {code for arch in table for label in arch.labels.values() for code in label.warn}
    assert every_code == warned, f"codes never labelled warn: {sorted(every_code - warned)}"
    zoos = {(arch.spec or arch.build or arch.fixture).split(".")[0].split(":")[0].split("(")[0] for arch in table}
    assert {"torchvision", "timm", "pytorchcv", "smp", "yolo", "trace_backbones"} <= zoos, zoos


def test_a_table_with_a_mistake_is_reported(table) -> None:
    lab = _labelled()
    arch = table[0]
    broken = lab.Architecture(arch.name, "", arch.spec, None, None, None,
                              {"t4": lab.Label(["CL301"], ["CL301", "CL303"], "")})  # fmt: skip
    problems = lab.table_problems([broken, broken], lab.codes_that_can_warn())
    for expected in ("listed twice", "no paper", "no [hi3519] labels", "[t4]: no why",
                     "['CL301'] in warn and quiet", "CL303 cannot warn on t4"):  # fmt: skip
        assert any(expected in p for p in problems), (expected, problems)


def _resolve(dotted: str):
    """``package.module.attr.attr``: import the longest module prefix, then the attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part)
        return obj
    raise ModuleNotFoundError(dotted)


def _build_problems(expr: str) -> list[str]:
    """What in a build expression names nothing: callables, timm model names, smp encoders and
    ultralytics YAMLs are checked without building anything."""
    lab = _labelled()
    aliases = {"smp": "segmentation_models_pytorch", "model_provider": "pytorchcv.model_provider"}
    problems = []
    for node in ast.walk(ast.parse(expr, mode="eval")):
        if not isinstance(node, ast.Call):
            continue
        func = ast.unparse(node.func)
        head = func.split(".")[0]
        if head not in lab.BUILD_IMPORTS:
            problems.append(f"{func}: not one of {sorted(lab.BUILD_IMPORTS)}")
            continue
        literal = [a.value for a in node.args if isinstance(a, ast.Constant)]
        if func == "yolo":
            import ultralytics

            yaml = Path(ultralytics.__file__).parent / "cfg" / "models" / literal[0]
            if not yaml.is_file():
                problems.append(f"yolo: no {literal[0]}")
            continue
        try:
            _resolve(aliases.get(head, head) + func[len(head):])
        except (ImportError, AttributeError) as exc:
            problems.append(f"{func}: {exc}")
        if func == "timm.create_model":
            import timm

            if literal[0] not in timm.list_models():
                problems.append(f"timm has no model {literal[0]!r}")
        if head == "smp" and literal:
            import segmentation_models_pytorch as smp

            if literal[0] not in smp.encoders.get_encoder_names():
                problems.append(f"smp has no encoder {literal[0]!r}")
    return problems


def test_every_spec_names_a_model(table) -> None:
    problems = []
    for arch in table:
        if arch.spec:
            module, _, attr = arch.spec.partition(":")
            if not callable(getattr(importlib.import_module(module), attr, None)):
                problems.append(f"{arch.name}: {arch.spec} is not a callable")
        elif arch.fixture:
            file, _, attr = arch.fixture.partition("::")
            path = REPO / "tests" / "fixtures" / file
            if not path.is_file() or f"def {attr}(" not in path.read_text(encoding="utf-8"):
                problems.append(f"{arch.name}: no {attr}() in tests/fixtures/{file}")
        else:
            problems += [f"{arch.name}: {p}" for p in _build_problems(arch.build)]
    assert problems == []


def test_committed_results_cover_the_table(table) -> None:
    after = json.loads(AFTER.read_text(encoding="utf-8"))
    assert set(after["models"]) == {arch.name for arch in table}
    not_ok = [(name, t) for name, per in after["models"].items() for t, r in per.items() if r["status"] != "ok"]
    assert not_ok == []


@pytest.fixture(scope="module")
def sample_now(table, tmp_path_factory):
    """The sample, linted now through the public API on t4, arm-cpu and hi3519."""
    lab = _labelled()
    chosen = [arch for arch in table if arch.name in SAMPLE]
    assert len(chosen) == len(SAMPLE)
    folder = tmp_path_factory.mktemp("labelled")
    lab.write_factories(chosen, folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNNLINT_NO_CACHE", "1")  # lint afresh, as conftest has every test do
        return {"models": {arch.name: lab.lint_architecture(arch, folder) for arch in chosen}}, chosen


def test_sample_keeps_every_recorded_agreement(sample_now) -> None:
    lab = _labelled()
    now, chosen = sample_now
    committed = json.loads(AFTER.read_text(encoding="utf-8"))
    committed = {"models": {arch.name: committed["models"][arch.name] for arch in chosen}}
    key = lambda d: (d["kind"], d["code"], d["model"], d["target"])  # noqa: E731
    recorded = {key(d) for d in lab.score(chosen, committed).disagreements}
    scored = lab.score(chosen, now)
    assert scored.errors == []
    new = sorted(key(d) for d in scored.disagreements if key(d) not in recorded)
    assert new == [], "labels that held in benchmarks/results/labelled/after.json no longer hold"
    # The sample is not trivially agreed with: it scores warnings both ways on every target.
    assert scored.overall.tp >= 20 and scored.overall.tn >= 200


def test_strongly_sourced_labels_hold(sample_now) -> None:
    """A few labels the sources settle outright, whatever after.json says."""
    now, _ = sample_now
    reported = {(name, t): set(r["reported"]) for name, per in now["models"].items() for t, r in per.items()}
    # HiSilicon's NNIE list has no channel shuffle and no ReLU6; MnasNet uses plain ReLU.
    assert "CL304" in reported["shufflenet_v2_x1_0", "hi3519"]
    assert "CL304" in reported["mobilenet_v2", "hi3519"]
    assert "CL304" not in reported["mnasnet1_0", "hi3519"]
    # RepVGG's training-time block is re-parameterisable on every target; its deployed form is not.
    for target in ("t4", "arm-cpu", "hi3519"):
        assert "CL402" in reported["repvgg_a0", target]
        assert reported["repvgg_a0_deploy", target] == set()
    # DenseNet re-concatenates, one-shot aggregation does not (VoVNet).
    assert "CL401" in reported["densenet121", "t4"] and "CL401" not in reported["vovnet27s", "t4"]
    # ESPNetv2's hierarchical feature fusion is not a re-parameterisable sum (issue 17).
    assert not {"CL402"} & set().union(*(reported["espnetv2", t] for t in ("t4", "arm-cpu", "hi3519")))
    # A U-Net's one-class head is the class count, not a misaligned width (issue 17).
    assert "CL201" not in set().union(*(reported["unet_resnet34", t] for t in ("t4", "arm-cpu", "hi3519")))
