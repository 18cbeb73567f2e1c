"""Lint every model of one model zoo in one cnnlint run, and check its MACs and parameter counts.

    python benchmarks/zoo_sweep.py --zoo torchvision                 # the whole zoo, --jobs = CPUs
    python benchmarks/zoo_sweep.py --zoo timm --every 150 --jobs 2   # every 150th model (CI sample)
    python benchmarks/zoo_sweep.py --zoo smp --limit 20 --json smp.json
    python benchmarks/zoo_sweep.py --zoo monai --no-count            # lint only, no independent count

Zoos (--zoo): torchvision (every name in ``torchvision.models.list_models()``, quantized ones
included), timm (every ``timm.list_models()`` name, by its entry point as timm_sweep.py did),
pytorchcv (every name in ``pytorchcv.model_provider._models``), ultralytics (every model YAML the
package ships, at scale "n" where it has scales, as the task model ``YOLO(yaml).model`` is), smp
(every segmentation_models_pytorch architecture crossed with :data:`SMP_ENCODERS`) and monai (the
networks of ``monai.networks.nets`` in :data:`MONAI_TABLE`; the others are listed as having "no
documented arguments in the sweep table").

How: models that need constructor arguments get a zero-argument factory function each in a
generated ``zoo_models.py`` in a temporary folder, with a ``pyproject.toml`` beside it holding the
input shapes the sweep states (``[tool.cnnlint.models."zoo_models.py::name"] input-shape``), and
are linted as ``zoo_models.py::name``, as a user lints a wrapper file of their own. Everything is
linted in ONE ``cnnlint SPEC... -t generic --format json --jobs N --timeout T --fail-on never``
process. Errors are sorted into causes by what their message says (:data:`CAUSES`).

Independent count (unless --no-count): every model that linted ok is built again the same way in
a pool of worker processes and run once under ``torch.utils.flop_counter.FlopCounterMode`` at the
input shapes cnnlint reports (eval mode, no_grad, no parameter requiring grad): on the meta device
first, else on CPU with a seeded random input and the model's own initialisation, under
``sdpa_kernel(SDPBackend.MATH)`` with nn.MultiheadAttention's fast path off (CPU FlopCounterMode
counts neither the flash kernel nor the fused fast path; the math forms are counted bmm/addmm, as
on meta), and a second time with another seed: a count that changes with the seed marks a
data-dependent forward (detections, proposals), where no single count is right. Oracle MACs =
FLOPs / 2; oracle params = ``sum(p.numel() for p in model.parameters())``, compared with cnnlint's
``params + params_unused`` (``params`` alone counts only what forward uses; both are in the rows).
A MACs difference over 2% or any params difference is a mismatch, listed with both numbers and a
cause found automatically where it can be: the submodule (or the same submodule of every block)
whose oracle MACs are exactly the ones ours lacks, the parameter whose size is the params
difference, "oracle failed" (with the error), "attention on CPU", else "ours larger / smaller".
:func:`unexplained` says which causes are not the count's own limits.

    python benchmarks/zoo_sweep.py --zoo torchvision --match 'rcnn|swin3d'   # some models by name
    python benchmarks/zoo_sweep.py --zoo monai --workdir /tmp/monai   # keep zoo_models.py there

``run_sweep(zoo, every, limit, jobs, timeout, count=True)`` does the same and returns the report
dict (tests/test_zoo_sweep.py runs it on a sample of each zoo); ``--json`` writes that dict.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import contextlib
import functools
import importlib
import importlib.util
import inspect
import json
import math
import multiprocessing
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # spawned oracle workers import this file by its module name
    sys.path.insert(0, str(HERE))

ZOOS = ("torchvision", "timm", "pytorchcv", "ultralytics", "smp", "monai")
PACKAGES = {"torchvision": "torchvision", "timm": "timm", "pytorchcv": "pytorchcv",
            "ultralytics": "ultralytics", "smp": "segmentation_models_pytorch", "monai": "monai"}  # fmt: skip
FACTORY_FILE = "zoo_models.py"
MACS_TOLERANCE = 0.02  # |ours - oracle| / oracle above this is a mismatch; params must be exact
# The CPU fallback of the count allocates the weights; past this size it is not tried.
ORACLE_CPU_MAX_PARAMS = 300_000_000

# The first pattern an error message matches names its cause (from timm_sweep.py).
CAUSES: list[tuple[str, re.Pattern[str]]] = [
    ("worker crashed", re.compile(r"the process linting it (was killed|exited)")),
    ("time limit", re.compile(r"did not finish within")),
    ("cnnlint bug", re.compile(r"cnnlint failed while")),
    ("input shape", re.compile(r"forward\(\) failed for input shape|forward\(\) takes \d+ input")),
    ("needs tensor values (over the real-run budget)", re.compile(r"run once on CPU instead")),
    ("cannot trace", re.compile(r"cannot trace this model")),
    ("needs arguments", re.compile(r"needs arguments")),
    ("zoo dependency missing", re.compile(r"ModuleNotFoundError: No module named")),
    ("build failed", re.compile(r"building the model raised")),
    ("import failed", re.compile(r"cannot import|importing it raised")),
    ("no input shape", re.compile(r"cannot infer an input shape")),
]
# Skipped models (not linted, not errors): their cause is the text before the first ":".
UNSUPPORTED = "unsupported combination"
# An error whose model fails in eager PyTorch too, at the inputs the sweep states (run_sweep).
EAGER_FAILS = "cannot run in eager PyTorch"
# How a meta run says it lacks values or a device (then it proves nothing about eager PyTorch).
_META_ONLY = re.compile(r"meta tensor|data-independent|data-dependent|expected device|same device|device meta")
NOT_IN_TABLE = "no documented arguments in the sweep table"
# Mismatch causes that are the independent count's own limitation, not a cnnlint result to fix.
DATA_DEPENDENT = "data-dependent forward: the oracle's count changes with the seed"
ORACLE_LIMITS = frozenset({"oracle failed", "attention on CPU", DATA_DEPENDENT})


def cause_of(message: str) -> str:
    return next((cause for cause, pattern in CAUSES if pattern.search(message)), "other")


def detail_of(message: str) -> str:
    """The last exception an error message names, with its text: what finally failed."""
    found = list(re.finditer(r"\b([A-Z]\w*(?:Error|Exception))\b:? ?", message))
    if not found:
        return ""
    rest = re.split(r" \(at |\. |; ", message[found[-1].end():])[0]
    return f"{found[-1].group(1)}: {rest[:160]}".rstrip(":. ")


@dataclass
class Entry:
    """One model of a zoo: linted as ``spec``, or as a generated factory returning ``expr``."""

    name: str
    expr: str | None = None  # the factory's return expression (in the generated file)
    spec: str | None = None  # a spec cnnlint takes as is (timm's entry points)
    input_shape: list | None = None  # written to pyproject.toml; None: cnnlint decides
    input_dtype: list | None = None  # written to pyproject.toml (input-dtype); None: float32
    shape_note: str = ""  # where the stated shape comes from
    skip: str | None = None  # why it is not linted ("cause: detail")
    note: str = ""  # how the sweep builds it differently from the zoo's default

    @property
    def lint_spec(self) -> str:
        return self.spec or f"{FACTORY_FILE}::{self.name}"


def _ident(text: str) -> str:
    name = re.sub(r"\W", "_", text)
    return name if name[:1].isalpha() or name[:1] == "_" else f"m_{name}"


# ----------------------------------------------------------------------------------- zoos
def _torchvision() -> tuple[str, list[Entry]]:
    import torchvision.models as tvm

    entries = []
    for name in tvm.list_models():
        params = inspect.signature(tvm.get_model_builder(name)).parameters
        extra = "".join([", weights_backbone=None" if "weights_backbone" in params else "",
                         ", quantize=False" if "quantize" in params else ""])  # fmt: skip
        entry = Entry(_ident(name), expr=f"torchvision.models.get_model({name!r}, weights=None{extra})")
        if tvm.get_model_builder(name).__module__.startswith("torchvision.models.optical_flow"):
            # RAFT.forward(image1, image2); torchvision's docs: H and W divisible by 8.
            entry.input_shape = [[1, 3, 224, 224], [1, 3, 224, 224]]
            entry.shape_note = "two images, H and W divisible by 8 (torchvision RAFT docs)"
        entries.append(entry)
    return "import torchvision\n", entries


def _timm() -> tuple[str, list[Entry]]:
    import timm

    return "", [Entry(name, spec=f"{timm.models.model_entrypoint(name).__module__}:{name}")
                for name in timm.list_models()]  # fmt: skip


# pytorchcv models whose forward takes several tensors: the shapes and types their own
# ``_test()`` runs them with (batch 1, except visemenet, whose batch is its time axis and must
# exceed its 16-step window: _test uses 34). Speaker or identity indices (nvpattexp, visemenet,
# voca) and the speech models' audio lengths (Jasper, QuartzNet: audio of 150-250 x 640 samples in
# _test) are int64. ProPainter's forward also takes a plain int (num_local_frames), which no
# input-shape or input-dtype describes: it stays an error that says what to set.
_AUDIO_AND_LENGTHS = ([[1, 128000], [1]], ["float32", "int64"])
PYTORCHCV_INPUTS: dict[str, tuple[list, list | None]] = {
    "raft_small": ([[1, 3, 240, 432], [1, 3, 240, 432]], None),
    "raft_things": ([[1, 3, 240, 432], [1, 3, 240, 432]], None),
    "propainter_rfc": ([[1, 5, 2, 240, 432], [1, 5, 1, 240, 432]], None),
    "propainter_ip": ([[5, 3, 240, 432], [5, 1, 240, 432], [4, 4, 240, 432]], None),
    "visemenet20": ([[34, 8, 195], [34, 76]], ["float32", "int64"]),
    "voca8flame": ([[1, 1, 16, 29], [1]], ["float32", "int64"]),
    "nvpattexp116bazel76": ([[1, 8, 16, 29], [1]], ["float32", "int64"]),
}
_SPEECH = re.compile(r"^(jasper|quartznet)")


def _pytorchcv() -> tuple[str, list[Entry]]:
    from pytorchcv import model_provider

    entries = []
    for name in sorted(model_provider._models):
        entry = Entry(_ident(name), expr=f"model_provider.get_model({name!r}, pretrained=False)")
        stated = PYTORCHCV_INPUTS.get(name) or (_AUDIO_AND_LENGTHS if _SPEECH.match(name) else None)
        if stated is not None:
            entry.input_shape, entry.input_dtype = stated
            entry.shape_note = "the inputs the model's own _test() uses"
        entries.append(entry)
    return "from pytorchcv import model_provider\n", entries


ULTRALYTICS_HEADER = '''\
from pathlib import Path

import ultralytics
from ultralytics.nn import tasks

_CFG = Path(ultralytics.__file__).parent / "cfg" / "models"
_TASK_MODELS = {"classify": tasks.ClassificationModel, "detect": tasks.DetectionModel,
                "segment": tasks.SegmentationModel, "pose": tasks.PoseModel, "obb": tasks.OBBModel,
                "semantic": tasks.SemanticSegmentationModel, "depth": tasks.DepthModel}


def _yolo(yaml, scale):
    """The task model ultralytics.YOLO(yaml) builds (YOLO(yaml).model), at one scale."""
    cfg = tasks.yaml_model_load(_CFG / yaml)
    if scale:
        cfg["scale"] = scale
    for layer in cfg["backbone"] + cfg["head"]:  # [from, repeats, module, args]
        if layer[2] == "TorchVision" and len(layer[3]) > 2:
            layer[3][2] = None  # its weights argument: random weights, no download
    stem = Path(yaml).stem
    if "-world" in stem:
        cls = tasks.WorldModel
    elif "yoloe" in stem:
        cls = tasks.YOLOESegModel if "-seg" in stem else tasks.YOLOEModel
    elif "RTDETR" in cfg["head"][-1][-2]:
        cls = tasks.RTDETRDetectionModel
    else:
        cls = _TASK_MODELS[tasks.guess_model_task(cfg)]
    return cls(cfg, verbose=False)
'''


def _ultralytics() -> tuple[str, list[Entry]]:
    import ultralytics
    import yaml

    root = Path(ultralytics.__file__).parent / "cfg" / "models"
    entries = []
    for path in sorted(root.rglob("*.yaml")):
        cfg = yaml.safe_load(path.read_text())
        scales = list(cfg.get("scales") or {})
        scale = ("n" if "n" in scales else scales[0]) if scales else ""
        stem = path.stem
        if len(scales) > 1:  # yolov8-seg.yaml at scale n is yolov8n-seg
            stem = re.sub(r"(\d+)", rf"\g<1>{scale}", stem, count=1)
        classify = cfg["head"][-1][-2].lower() in {"classify", "classifier", "cls", "fc"}
        size = 224 if classify else 640
        torchvision_layer = any(layer[2] == "TorchVision" for layer in cfg["backbone"] + cfg["head"])
        entries.append(Entry(_ident(stem), expr=f"_yolo({path.relative_to(root).as_posix()!r}, {scale!r})",
                             input_shape=[1, 3, size, size],
                             shape_note=f"{size} px, ultralytics' default imgsz for this task",
                             note="TorchVision layer built with weights=None" if torchvision_layer else ""))  # fmt: skip
    return ULTRALYTICS_HEADER, entries


# A spread of encoders: plain and grouped ResNets, depthwise (MobileNet, EfficientNet), a timm
# universal encoder, a hierarchical transformer (mit_b0), and a plain ViT (the only kind DPT takes).
SMP_ENCODERS = ["resnet34", "resnext50_32x4d", "mobilenet_v2", "efficientnet-b0", "tu-regnety_004",
                "mit_b0", "tu-vit_tiny_patch16_224"]  # fmt: skip


def _smp() -> tuple[str, list[Entry]]:
    import segmentation_models_pytorch as smp

    entries = []
    for cls in dict.fromkeys(smp.MODEL_ARCHITECTURES_MAPPING.values()):
        for encoder in SMP_ENCODERS:
            expr = f"smp.{cls.__name__}(encoder_name={encoder!r}, encoder_weights=None)"
            entries.append(Entry(_ident(f"{cls.__name__}_{encoder}".lower()), expr=expr))
    return "import segmentation_models_pytorch as smp\n", entries


def _smp_check(entries: list[Entry]) -> None:
    """Mark the architecture x encoder pairs the library refuses to build (on meta, else CPU)."""
    import segmentation_models_pytorch as smp  # noqa: F401 (the expressions use it)
    import torch

    for entry in entries:
        try:
            with torch.device("meta"):
                eval(entry.expr)  # noqa: S307 (our own expression)
        except Exception:
            try:
                eval(entry.expr)  # noqa: S307
            except Exception as exc:
                entry.skip = f"{UNSUPPORTED}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"


def _m(call: str, shape: list, note: str = "") -> tuple[str, list, str]:
    return call, shape, note


# name -> (constructor call under monai.networks.nets, input shape(s), where the shape comes from).
# 2-D and 3-D variants where a network takes spatial_dims. Sizes: what the class docstring or
# MONAI's tutorials use (96^3 patches for UNETR / SwinUNETR / UNet, 224 for ImageNet classifiers),
# else the smallest size the documented downsampling allows.
# fmt: off
MONAI_TABLE: dict[str, tuple[str, list, str]] = {
    "UNet_2d": _m("UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2)", [1, 1, 256, 256], "divisible by 16"),
    "UNet_3d": _m("UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2)", [1, 1, 96, 96, 96], "MONAI spleen tutorial 96^3 patches"),
    "AttentionUnet_2d": _m("AttentionUnet(spatial_dims=2, in_channels=1, out_channels=2, channels=(16, 32, 64, 128), strides=(2, 2, 2))", [1, 1, 128, 128], "divisible by 8"),
    "AttentionUnet_3d": _m("AttentionUnet(spatial_dims=3, in_channels=1, out_channels=2, channels=(16, 32, 64, 128), strides=(2, 2, 2))", [1, 1, 64, 64, 64], "divisible by 8"),
    "BasicUNet_2d": _m("BasicUNet(spatial_dims=2, in_channels=1, out_channels=2)", [1, 1, 128, 128], "divisible by 16"),
    "BasicUNet_3d": _m("BasicUNet(spatial_dims=3, in_channels=1, out_channels=2)", [1, 1, 64, 64, 64], "divisible by 16"),
    "BasicUNetPlusPlus_2d": _m("BasicUNetPlusPlus(spatial_dims=2, in_channels=1, out_channels=2)", [1, 1, 128, 128], "divisible by 16"),
    "BasicUNetPlusPlus_3d": _m("BasicUNetPlusPlus(spatial_dims=3, in_channels=1, out_channels=2)", [1, 1, 64, 64, 64], "divisible by 16"),
    "DynUNet_2d": _m("DynUNet(spatial_dims=2, in_channels=1, out_channels=2, kernel_size=[3, 3, 3, 3], strides=[1, 2, 2, 2], upsample_kernel_size=[2, 2, 2])", [1, 1, 128, 128], "divisible by the strides' product 8"),
    "DynUNet_3d": _m("DynUNet(spatial_dims=3, in_channels=1, out_channels=2, kernel_size=[3, 3, 3, 3], strides=[1, 2, 2, 2], upsample_kernel_size=[2, 2, 2])", [1, 1, 64, 64, 64], "divisible by the strides' product 8"),
    "SegResNet_2d": _m("SegResNet(spatial_dims=2, in_channels=1, out_channels=2)", [1, 1, 128, 128], "divisible by 8"),
    "SegResNet_3d": _m("SegResNet(spatial_dims=3, in_channels=1, out_channels=2)", [1, 1, 96, 96, 96], "divisible by 8; BraTS tutorial crops"),
    "SegResNetDS_3d": _m("SegResNetDS(spatial_dims=3, in_channels=1, out_channels=2)", [1, 1, 64, 64, 64], "divisible by 2^(len(blocks_down)-1)"),
    "SegResNetDS2_3d": _m("SegResNetDS2(spatial_dims=3, in_channels=1, out_channels=2)", [1, 1, 64, 64, 64], "divisible by 2^(len(blocks_down)-1)"),
    "SegResNetVAE_3d": _m("SegResNetVAE(input_image_size=(64, 64, 64), spatial_dims=3, in_channels=1, out_channels=2)", [1, 1, 64, 64, 64], "input_image_size"),
    "UNETR_3d": _m("UNETR(in_channels=1, out_channels=2, img_size=(96, 96, 96))", [1, 1, 96, 96, 96], "img_size"),
    "UNETR_2d": _m("UNETR(in_channels=1, out_channels=2, img_size=(96, 96), spatial_dims=2)", [1, 1, 96, 96], "img_size"),
    "SwinUNETR_3d": _m("SwinUNETR(in_channels=1, out_channels=2, feature_size=24)", [1, 1, 96, 96, 96], "divisible by 32; docs example 96^3"),
    "SwinUNETR_2d": _m("SwinUNETR(in_channels=1, out_channels=2, feature_size=24, spatial_dims=2)", [1, 1, 96, 96], "divisible by 32"),
    "VNet_3d": _m("VNet(spatial_dims=3, in_channels=1, out_channels=2)", [1, 1, 64, 64, 64], "divisible by 16"),
    "VNet_2d": _m("VNet(spatial_dims=2, in_channels=1, out_channels=2)", [1, 1, 128, 128], "divisible by 16"),
    "HighResNet_3d": _m("HighResNet(spatial_dims=3, in_channels=1, out_channels=2)", [1, 1, 64, 64, 64], "any size"),
    "HighResNet_2d": _m("HighResNet(spatial_dims=2, in_channels=1, out_channels=2)", [1, 1, 128, 128], "any size"),
    "DenseNet_2d": _m("DenseNet(spatial_dims=2, in_channels=3, out_channels=2)", [1, 3, 224, 224], "ImageNet size"),
    "DenseNet121_2d": _m("DenseNet121(spatial_dims=2, in_channels=3, out_channels=2)", [1, 3, 224, 224], "ImageNet size"),
    "DenseNet121_3d": _m("DenseNet121(spatial_dims=3, in_channels=1, out_channels=2)", [1, 1, 96, 96, 96], "96^3 (MONAI 3-D classification tutorial)"),
    "DenseNet169_2d": _m("DenseNet169(spatial_dims=2, in_channels=3, out_channels=2)", [1, 3, 224, 224], "ImageNet size"),
    "DenseNet201_2d": _m("DenseNet201(spatial_dims=2, in_channels=3, out_channels=2)", [1, 3, 224, 224], "ImageNet size"),
    "DenseNet264_2d": _m("DenseNet264(spatial_dims=2, in_channels=3, out_channels=2)", [1, 3, 224, 224], "ImageNet size"),
    "EfficientNetBN_2d": _m("EfficientNetBN('efficientnet-b0', pretrained=False, spatial_dims=2, in_channels=3, num_classes=2)", [1, 3, 224, 224], "efficientnet-b0 image size 224"),
    "EfficientNetBN_3d": _m("EfficientNetBN('efficientnet-b0', pretrained=False, spatial_dims=3, in_channels=1, num_classes=2)", [1, 1, 64, 64, 64], "divisible by 32"),
    "EfficientNetBNFeatures_2d": _m("EfficientNetBNFeatures('efficientnet-b0', pretrained=False, spatial_dims=2, in_channels=3)", [1, 3, 224, 224], "efficientnet-b0 image size 224"),
    "FlexibleUNet_2d": _m("FlexibleUNet(in_channels=3, out_channels=2, backbone='efficientnet-b0', pretrained=False)", [1, 3, 224, 224], "divisible by 32"),
    "ResNet_3d": _m("ResNet(block='basic', layers=[2, 2, 2, 2], block_inplanes=[64, 128, 256, 512], spatial_dims=3, n_input_channels=1, num_classes=2)", [1, 1, 64, 64, 64], "any size"),
    "ResNet_2d": _m("ResNet(block='bottleneck', layers=[3, 4, 6, 3], block_inplanes=[64, 128, 256, 512], spatial_dims=2, n_input_channels=3, num_classes=2)", [1, 3, 224, 224], "ImageNet size"),
    "ResNetFeatures_3d": _m("ResNetFeatures('resnet18', pretrained=False, spatial_dims=3, in_channels=1)", [1, 1, 64, 64, 64], "any size"),
    "SEResNet50_2d": _m("SEResNet50(spatial_dims=2, in_channels=3, num_classes=2)", [1, 3, 224, 224], "ImageNet size"),
    "SEResNet50_3d": _m("SEResNet50(spatial_dims=3, in_channels=1, num_classes=2)", [1, 1, 64, 64, 64], "divisible by 32"),
    "SEResNet101_2d": _m("SEResNet101(spatial_dims=2, in_channels=3, num_classes=2)", [1, 3, 224, 224], "ImageNet size"),
    "SEResNet152_2d": _m("SEResNet152(spatial_dims=2, in_channels=3, num_classes=2)", [1, 3, 224, 224], "ImageNet size"),
    "SEResNext50_2d": _m("SEResNext50(spatial_dims=2, in_channels=3, num_classes=2)", [1, 3, 224, 224], "ImageNet size"),
    "SEResNext101_2d": _m("SEResNext101(spatial_dims=2, in_channels=3, num_classes=2)", [1, 3, 224, 224], "ImageNet size"),
    "SENet154_2d": _m("SENet154(spatial_dims=2, in_channels=3, num_classes=2)", [1, 3, 224, 224], "ImageNet size"),
    "AHNet_3d": _m("AHNet(spatial_dims=3, in_channels=1, out_channels=2)", [1, 1, 128, 128, 64], "H, W of at least 128 for the PSP pooling (32 x 32 at 1/4 scale); depth divisible by 32"),
    "AHNet_2d": _m("AHNet(spatial_dims=2, in_channels=1, out_channels=2)", [1, 1, 128, 128], "divisible by 32"),
    "AutoEncoder_2d": _m("AutoEncoder(spatial_dims=2, in_channels=1, out_channels=1, channels=(4, 8, 16), strides=(2, 2, 2))", [1, 1, 64, 64], "divisible by 8 (docstring example)"),
    "VarAutoEncoder_2d": _m("VarAutoEncoder(spatial_dims=2, in_shape=(1, 64, 64), out_channels=1, latent_size=2, channels=(4, 8, 16), strides=(2, 2, 2))", [1, 1, 64, 64], "in_shape"),
    "AutoencoderKL_2d": _m("AutoencoderKL(spatial_dims=2, in_channels=1, out_channels=1, channels=(32, 64, 64), attention_levels=(False, False, True), num_res_blocks=1)", [1, 1, 64, 64], "divisible by 2^(levels-1)"),
    "VQVAE_2d": _m("VQVAE(spatial_dims=2, in_channels=1, out_channels=1)", [1, 1, 64, 64], "divisible by 8"),
    "Classifier_2d": _m("Classifier(in_shape=(1, 64, 64), classes=2, channels=(8, 16, 32), strides=(2, 2, 2))", [1, 1, 64, 64], "in_shape"),
    "Discriminator_2d": _m("Discriminator(in_shape=(1, 64, 64), channels=(8, 16, 32), strides=(2, 2, 2))", [1, 1, 64, 64], "in_shape"),
    "Critic_2d": _m("Critic(in_shape=(1, 64, 64), channels=(8, 16, 32), strides=(2, 2, 2))", [1, 1, 64, 64], "in_shape"),
    "Regressor_2d": _m("Regressor(in_shape=(1, 64, 64), out_shape=(2,), channels=(8, 16, 32), strides=(2, 2, 2))", [1, 1, 64, 64], "in_shape"),
    "Generator_2d": _m("Generator(latent_shape=(64,), start_shape=(64, 8, 8), channels=(32, 16, 1), strides=(2, 2, 2))", [1, 64], "latent_shape"),
    "PatchDiscriminator_2d": _m("PatchDiscriminator(spatial_dims=2, channels=8, in_channels=1)", [1, 1, 64, 64], "any size"),
    "MultiScalePatchDiscriminator_2d": _m("MultiScalePatchDiscriminator(num_d=2, num_layers_d=3, spatial_dims=2, channels=8, in_channels=1)", [1, 1, 128, 128], "large enough for num_d x num_layers_d halvings"),
    "FullyConnectedNet": _m("FullyConnectedNet(in_channels=10, out_channels=2, hidden_channels=(16, 32))", [1, 10], "in_channels"),
    "VarFullyConnectedNet": _m("VarFullyConnectedNet(in_channels=10, out_channels=2, latent_size=4, encode_channels=(16,), decode_channels=(16,))", [1, 10], "in_channels"),
    "GlobalNet_2d": _m("GlobalNet(image_size=[64, 64], spatial_dims=2, in_channels=2, num_channel_initial=16, depth=3)", [1, 2, 64, 64], "image_size"),
    "LocalNet_2d": _m("LocalNet(spatial_dims=2, in_channels=2, num_channel_initial=16, extract_levels=(0, 1, 2))", [1, 2, 64, 64], "divisible by 2^max(extract_levels)"),
    "RegUNet_2d": _m("RegUNet(spatial_dims=2, in_channels=2, num_channel_initial=16, depth=3)", [1, 2, 64, 64], "divisible by 2^depth"),
    "HoVerNet_2d": _m("HoVerNet(mode='fast', in_channels=3, out_classes=5)", [1, 3, 256, 256], "256 x 256 patches in fast mode (docstring)"),
    "MedNeXt_3d": _m("MedNeXt(spatial_dims=3, in_channels=1, out_channels=2)", [1, 1, 64, 64, 64], "divisible by 16"),
    "MedNeXt_2d": _m("MedNeXt(spatial_dims=2, in_channels=1, out_channels=2)", [1, 1, 128, 128], "divisible by 16"),
    "MILModel_2d": _m("MILModel(num_classes=2, pretrained=False)", [1, 4, 3, 224, 224], "x: (batch, instances, channels, H, W) (docstring)"),
    "TorchVisionFCModel_2d": _m("TorchVisionFCModel(model_name='resnet18', num_classes=2, pretrained=False)", [1, 3, 224, 224], "ImageNet size"),
    "Quicknat_2d": _m("Quicknat(num_classes=2, num_channels=1)", [1, 1, 256, 256], "256 x 256 slices"),
    "ViT_3d": _m("ViT(in_channels=1, img_size=(96, 96, 96), patch_size=(16, 16, 16))", [1, 1, 96, 96, 96], "img_size"),
    "ViT_2d": _m("ViT(in_channels=3, img_size=(224, 224), patch_size=(16, 16), spatial_dims=2, classification=True, num_classes=2)", [1, 3, 224, 224], "img_size"),
    "ViTAutoEnc_3d": _m("ViTAutoEnc(in_channels=1, img_size=(96, 96, 96), patch_size=(16, 16, 16))", [1, 1, 96, 96, 96], "img_size"),
    "MaskedAutoEncoderViT_3d": _m("MaskedAutoEncoderViT(in_channels=1, img_size=(96, 96, 96), patch_size=(16, 16, 16))", [1, 1, 96, 96, 96], "img_size"),
    "DAF3D_3d": _m("DAF3D(in_channels=1, out_channels=2)", [1, 1, 64, 64, 64], "divisible by 16"),
    "VoxelMorph_3d": _m("VoxelMorph()", [[1, 1, 64, 64, 64], [1, 1, 64, 64, 64]], "forward(moving, fixed), divisible by 16"),
    "DiffusionModelUNet_2d": _m("DiffusionModelUNet(spatial_dims=2, in_channels=1, out_channels=1, channels=(32, 64, 64), attention_levels=(False, True, True), num_res_blocks=1, num_head_channels=64)", [[1, 1, 64, 64], [1]], "forward(x, timesteps)"),
}
# fmt: on


def _monai() -> tuple[str, list[Entry]]:
    import monai.networks.nets as nets
    import torch

    table = {call.split("(", 1)[0] for call, _, _ in MONAI_TABLE.values()}
    entries = [Entry(_ident(name), expr=f"nets.{call}", input_shape=shape, shape_note=note)
               for name, (call, shape, note) in MONAI_TABLE.items()]  # fmt: skip
    seen: set[type] = set()
    for attr in sorted(dir(nets)):
        cls = getattr(nets, attr)
        if not (inspect.isclass(cls) and issubclass(cls, torch.nn.Module)) or cls in seen:
            continue
        seen.add(cls)
        aliases = {a for a in dir(nets) if getattr(nets, a) is cls}
        if not aliases & table:
            entries.append(Entry(cls.__name__, skip=f"{NOT_IN_TABLE}: {cls.__module__}.{cls.__name__}"))
    return "import monai.networks.nets as nets\n", entries


ZOO_ENTRIES = {"torchvision": _torchvision, "timm": _timm, "pytorchcv": _pytorchcv,
               "ultralytics": _ultralytics, "smp": _smp, "monai": _monai}  # fmt: skip


def zoo_entries(zoo: str, every: int = 1, limit: int | None = None,
                match: str | None = None) -> tuple[str, list[Entry], list[Entry]]:  # fmt: skip
    """The generated file's header, the chosen entries (names matching ``match``, then every Nth,
    at most ``limit``) and the zoo's entries skipped whatever the sample (monai's not in the table)."""
    header, entries = ZOO_ENTRIES[zoo]()
    fixed_skips = [e for e in entries if e.skip]
    chosen = [e for e in entries if not e.skip and (not match or re.search(match, e.name))][::every]
    if limit is not None:
        chosen = chosen[:limit]
    if zoo == "smp":
        _smp_check(chosen)
    return header, chosen, fixed_skips


def _toml_shape(shape: list) -> str:
    return json.dumps(shape)


def write_workspace(folder: Path, header: str, entries: list[Entry]) -> None:
    """The generated factories and the pyproject.toml with the shapes the sweep states."""
    lines = ['"""Generated by benchmarks/zoo_sweep.py: one zero-argument factory per model."""', "",
             header.rstrip("\n"), ""]  # fmt: skip
    config = ["[tool.cnnlint]", ""]
    names = collections.Counter(entry.name for entry in entries if entry.expr is not None)
    if names and names.most_common(1)[0][1] > 1:
        raise ValueError(f"two factories would share a name: {names.most_common(1)[0][0]}")
    for entry in entries:
        if entry.expr is not None and not entry.skip:
            lines += ["", f"def {entry.name}():", f"    return {entry.expr}", ""]
        if entry.input_shape is not None and not entry.skip:
            config += [f'[tool.cnnlint.models."{entry.lint_spec}"]  # {entry.shape_note}',
                       f"input-shape = {_toml_shape(entry.input_shape)}"]  # fmt: skip
            if entry.input_dtype:
                config.append(f"input-dtype = {json.dumps(entry.input_dtype)}")
            config.append("")
    (folder / FACTORY_FILE).write_text("\n".join(lines))
    (folder / "pyproject.toml").write_text("\n".join(config))


def run_cnnlint(folder: Path, specs: list[str], jobs: int, timeout: float) -> tuple[list[dict], float, str]:
    cnnlint = str(Path(sys.executable).with_name("cnnlint"))
    command = [cnnlint, *specs, "-t", "generic", "--format", "json", "--jobs", str(jobs),
               "--timeout", str(timeout), "--fail-on", "never", "--no-cache"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=folder)
    wall = time.perf_counter() - start
    try:
        return json.loads(proc.stdout)["results"], wall, proc.stderr
    except (json.JSONDecodeError, KeyError):
        raise RuntimeError(f"cnnlint exited {proc.returncode} without a report:\n{proc.stderr[-3000:]}") from None


# ------------------------------------------------------------------------ independent count
_LOADED: dict[str, Any] = {}


def _factory(spec: str, folder: str):
    if "::" in spec:
        file, attr = spec.rsplit("::", 1)
        path = str(Path(folder) / file)
        if path not in _LOADED:
            module_spec = importlib.util.spec_from_file_location(f"_zoo_models_{len(_LOADED)}", path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
            _LOADED[path] = module
        return getattr(_LOADED[path], attr)
    module, attr = spec.split(":")
    return getattr(importlib.import_module(module), attr)


def _sees_attention():
    """A TorchFunctionMode that notes calls of scaled_dot_product_attention / multi-head attention."""
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    class SeesAttention(TorchFunctionMode):
        seen = False

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func in (F.scaled_dot_product_attention, F.multi_head_attention_forward):
                type(self).seen = True
            return func(*args, **(kwargs or {}))

    return SeesAttention()


def _count(factory, shapes: list[list[int]], device: str, seed: int = 0, dtypes: list[str] | None = None) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with contextlib.ExitStack() as stack:
        # The inputs cnnlint traces with (the same types, and on CPU the same value convention:
        # integers 1, booleans False); floats from torch's global generator, seeded below.
        from cnnlint.trace.fx_trace import example_inputs

        if device == "meta":
            stack.enter_context(torch.device("meta"))
            model = factory()
            inputs = example_inputs(shapes, dtypes)
        else:
            torch.manual_seed(seed)  # the model's own initialisation and the input
            model = factory()
            inputs = example_inputs(shapes, dtypes, torch.default_generator)
        params = sum(p.numel() for p in model.parameters())
        # Sizes that explain a params difference: a parameter's or a submodule's count -> its name.
        sizes = {sum(p.numel() for p in sub.parameters()): name or "(root)" for name, sub in model.named_modules()}
        sizes.update({p.numel(): name for name, p in model.named_parameters()})
        if device == "cpu" and params > ORACLE_CPU_MAX_PARAMS:
            raise MemoryError(f"{params:,} parameters: over the CPU count's limit of {ORACLE_CPU_MAX_PARAMS:,}")
        # No tensor requires grad: FlopCounterMode's module tracker hooks the grads of a forward
        # input that does, and asserts under no_grad on one without a grad_fn (cait, pit, siglip).
        model.eval().requires_grad_(False)
        stack.enter_context(torch.no_grad())
        attention = None
        if device == "cpu":
            # CPU FlopCounterMode counts neither the flash kernel F.scaled_dot_product_attention
            # dispatches to nor nn.MultiheadAttention's fused fast path; the math kernel and the
            # slow path are plain bmm/addmm, which it counts (as on meta).
            from torch.nn.attention import SDPBackend, sdpa_kernel

            stack.enter_context(sdpa_kernel(SDPBackend.MATH))
            fastpath = torch.backends.mha.get_fastpath_enabled()
            torch.backends.mha.set_fastpath_enabled(False)
            stack.callback(torch.backends.mha.set_fastpath_enabled, fastpath)
            attention = stack.enter_context(_sees_attention())
        counter = FlopCounterMode(display=False)
        with counter:
            model(*inputs)
        counts = counter.get_flop_counts()
        ops = {str(op): n for op, n in counts.get("Global", {}).items()}
        # MACs per submodule (FlopCounterMode names them "Root.child.grandchild"), six levels deep
        modules = {path.split(".", 1)[1]: sum(per_op.values()) // 2 for path, per_op in counts.items()
                   if 1 <= path.count(".") <= 6}  # fmt: skip
    return {"macs": counter.get_total_flops() // 2, "params": params, "ops": ops, "modules": modules, "sizes": sizes,
            "attention": bool(attention and type(attention).seen)}  # fmt: skip


class _OracleTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise _OracleTimeout


def _oracle_init() -> None:
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("YOLO_VERBOSE", "False")
    with contextlib.suppress(Exception):
        import warnings

        warnings.filterwarnings("ignore")


def oracle(spec: str, folder: str, shapes: list[list[int]], timeout: float, dtypes: list[str] | None = None) -> dict:
    """The independent count of one model: meta first, else CPU; never raises."""
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(max(1, math.ceil(timeout)))
    row: dict[str, Any] = {"device": None, "error": None, "meta_error": None}
    try:
        factory = _factory(spec, folder)
        try:
            row.update(_count(factory, shapes, "meta", dtypes=dtypes), device="meta")
        except _OracleTimeout:
            raise
        except Exception as exc:
            row["meta_error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
            row.update(_count(factory, shapes, "cpu", dtypes=dtypes), device="cpu")
            # On CPU the forward sees values: a second seed (weights and input) shows whether
            # the count depends on them (detections, proposals), so no single count is right.
            row["macs_seed1"] = _count(factory, shapes, "cpu", seed=1, dtypes=dtypes)["macs"]
    except _OracleTimeout:
        row["error"] = f"did not finish within {timeout:g} s"
    except BaseException as exc:  # noqa: BLE001 (a model may raise anything; SystemExit too)
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        row["error"] = f"{type(exc).__name__}: {text}"
    finally:
        signal.alarm(0)
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row


def eager_failure(row: dict) -> str | None:
    """Why the model's own forward fails in eager PyTorch, from an oracle row: the CPU run's
    error; or, where the CPU run was not tried (over its size limit), the meta run's, unless that
    is about missing values or devices. None when the forward ran, or nothing proves it fails."""
    error, meta = row.get("error"), row.get("meta_error")
    if not error or error.startswith(("did not finish", "oracle")):
        return None
    if "over the CPU count's limit" in error:
        return meta if meta and not _META_ONLY.search(meta) else None
    return error


ORACLE_BATCH_PER_WORKER = 20  # models a pool counts before it is replaced by a fresh one


def _failed(error: str) -> dict:
    return {"device": None, "error": error, "meta_error": None, "seconds": None}


def _stop(pool: cf.ProcessPoolExecutor, hung: bool) -> None:
    """Shut a pool down; one that hangs without waiting for its stuck workers."""
    if not hung:
        pool.shutdown(wait=True, cancel_futures=True)
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.kill()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(5)


def _by_name():
    """This module as spawned workers can import it: itself, or when it was loaded from its path
    under a name not in sys.modules (a test), the copy ``import zoo_sweep`` gives."""
    module = sys.modules.get(__name__)
    if module is not None and getattr(module, "oracle", None) is oracle:
        return module
    return importlib.import_module(Path(__file__).stem)


def run_oracles(tasks: dict[str, tuple[str, list, list | None]], folder: str, jobs: int, timeout: float,
                progress: bool = False) -> dict[str, dict]:  # fmt: skip
    """{name: oracle row} for {name: (spec, shapes, dtypes)}, in pools of ``jobs`` spawned worker
    processes, a fresh pool every ``jobs * ORACLE_BATCH_PER_WORKER`` models (a worker's memory
    does not pile up over a whole zoo). Each model has ``timeout`` seconds (SIGALRM in the
    worker). A worker that dies breaks its pool, and a pool from which nothing comes back for
    2 x timeout + 60 s is stopped: the models such a pool did not finish are counted again one at
    a time in a one-worker pool, so that "oracle worker crashed" or "oracle hung" is pinned on
    the model that did it and not on the ones queued beside it."""
    results: dict[str, dict] = {}
    module = _by_name()
    context = multiprocessing.get_context("spawn")
    patience = 2 * timeout + 60

    def new_pool(workers: int) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=module._oracle_init)

    def submit(pool: cf.ProcessPoolExecutor, name: str) -> cf.Future:
        spec, shapes, dtypes = tasks[name]
        return pool.submit(module.oracle, spec, folder, shapes, timeout, dtypes)

    def record(name: str, row: dict) -> None:
        results[name] = row
        if progress:
            print(f"  counted {len(results)}/{len(tasks)} {name}", file=sys.stderr)

    names, suspects = list(tasks), []
    step = jobs * ORACLE_BATCH_PER_WORKER
    for first in range(0, len(names), step):
        pool, hung = new_pool(jobs), True
        futures = {submit(pool, name): name for name in names[first : first + step]}
        waiting = set(futures)
        try:
            while waiting:
                finished, waiting = cf.wait(waiting, timeout=patience, return_when=cf.FIRST_COMPLETED)
                if not finished:  # the pool stopped answering
                    suspects += [futures[future] for future in waiting]
                    break
                for future in finished:
                    try:
                        record(futures[future], future.result())
                    except BrokenProcessPool:
                        suspects.append(futures[future])
                    except Exception as exc:  # noqa: BLE001 (e.g. a result that does not pickle)
                        record(futures[future], _failed(f"{type(exc).__name__}: {exc}"[:300]))
            else:
                hung = False
        finally:
            _stop(pool, hung)

    pool = None
    for name in suspects:  # one at a time
        pool = pool or new_pool(1)
        try:
            record(name, submit(pool, name).result(timeout=patience))
            continue
        except BrokenProcessPool:
            record(name, _failed("oracle worker crashed (killed, out of memory?)"))
        except cf.TimeoutError:
            record(name, _failed(f"oracle hung (nothing back within {patience:g} s)"))
        except Exception as exc:  # noqa: BLE001
            record(name, _failed(f"{type(exc).__name__}: {exc}"[:300]))
            continue
        _stop(pool, True)
        pool = None
    if pool is not None:
        _stop(pool, False)
    return results


# ------------------------------------------------------------------------------- the sweep
def _missing_module(missing: int, modules: dict[str, int]) -> str | None:
    """The outermost submodule whose oracle MACs are the ones ours lacks (within 0.1%), else the
    submodules of one kind in every block (``features.*.*.attn``) whose MACs together are."""
    if missing <= 0:
        return None
    fits = [path for path, macs in modules.items() if macs and abs(macs - missing) <= 0.001 * missing]
    if fits:
        return min(fits, key=lambda path: path.count("."))
    kinds: collections.Counter[str] = collections.Counter()
    for path, macs in modules.items():
        kinds[re.sub(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.)", "*", path)] += macs
    fits = [kind for kind, macs in kinds.items() if "*" in kind and macs and abs(macs - missing) <= 0.001 * missing]
    return min(fits, key=lambda kind: kind.count("."), default=None)


def _mismatches(row: dict, summary: dict, counted: dict) -> list[str]:
    if counted.get("error"):
        return ["oracle failed"]
    causes = []
    ours, truth = row["macs_ours"], row["macs_oracle"]
    rel = (ours - truth) / truth if truth else (0.0 if ours == truth else math.inf)
    row["macs_rel_diff"] = None if math.isinf(rel) else round(rel, 5)
    if abs(rel) > MACS_TOLERANCE:
        row["oracle_modules"] = {path: macs for path, macs in (counted.get("modules") or {}).items() if "." not in path}
        missing = _missing_module(truth - ours, counted.get("modules") or {})
        if counted.get("device") == "cpu" and counted.get("attention") and "aten.bmm" not in counted.get("ops", {}):
            causes.append("attention on CPU")
        elif rel < 0 and summary.get("not_counted"):
            causes.append("MACs: ours smaller, submodules not counted (summary.not_counted)")
        elif missing:
            causes.append(f"MACs: ours leaves out {missing}")
        else:
            causes.append(f"MACs: ours {'larger' if rel > 0 else 'smaller'}")
        if counted.get("macs_seed1") not in (None, truth):
            causes.append(DATA_DEPENDENT)
    diff = row["params_ours_total"] - row["params_oracle"]
    if diff:
        named = (counted.get("sizes") or {}).get(abs(diff))
        what = f" by {named}'s {abs(diff):,} ({'counted twice?' if diff > 0 else 'not counted?'})" if named else ""
        causes.append(f"params: ours {'larger' if diff > 0 else 'smaller'}{what}")
    return causes


def unexplained(row: dict) -> list[str]:
    """A row's mismatch causes that the independent count's own limits do not explain: a MACs
    difference on a model whose cost changes with its values is explained; params never are."""
    causes = row.get("mismatch") or []
    data_dependent = DATA_DEPENDENT in causes
    return [c for c in causes if c not in ORACLE_LIMITS and not (data_dependent and c.startswith("MACs"))]


def _versions(zoo: str) -> dict:
    import torch

    package = importlib.import_module(PACKAGES[zoo])
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")  # fmt: skip
    revision = subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()  # fmt: skip
    if revision and subprocess.run(["git", "-C", str(HERE.parent), "status", "--porcelain", "cnnlint", "rules"],
                                   capture_output=True, text=True).stdout.strip():  # fmt: skip
        revision += " (with uncommitted changes in cnnlint/ or rules/)"
    return {"cnnlint_revision": revision or None,
            "zoo_package": PACKAGES[zoo], "zoo_version": getattr(package, "__version__", "?"),
            "torch": torch.__version__, "python": platform.python_version(), "cpu": cpu or platform.processor(),
            "cpus": os.cpu_count()}  # fmt: skip


def run_sweep(zoo: str, every: int = 1, limit: int | None = None, jobs: int = 1, timeout: float = 120.0,
              count: bool = True, progress: bool = False, match: str | None = None,
              workdir: str | Path | None = None) -> dict:  # fmt: skip
    """Lint a zoo's models (every Nth, at most ``limit``) and count them independently; the report.
    ``workdir``: write the generated zoo_models.py and pyproject.toml there and keep them."""
    if zoo not in ZOOS:
        raise ValueError(f"unknown zoo {zoo!r}: one of {', '.join(ZOOS)}")
    start = time.perf_counter()
    header, chosen, fixed_skips = zoo_entries(zoo, every, limit, match)
    linted = [e for e in chosen if not e.skip]
    report: dict[str, Any] = {"zoo": zoo, **_versions(zoo), "every": every, "limit": limit, "jobs": jobs,
                              "timeout_s": timeout, "count": count, "match": match}  # fmt: skip
    rows: list[dict] = []
    with contextlib.ExitStack() as stack:
        if workdir is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"zoo_sweep_{zoo}_"))
        else:
            tmp = str(Path(workdir).resolve())
            Path(tmp).mkdir(parents=True, exist_ok=True)
        folder = Path(tmp)
        write_workspace(folder, header, linted)
        results, lint_wall, stderr = run_cnnlint(folder, [e.lint_spec for e in linted], jobs, timeout) if linted else ([], 0.0, "")
        by_spec = {r["model"]: r for r in results}
        stated = {entry.name: entry for entry in linted}
        for entry in chosen + fixed_skips:
            row: dict[str, Any] = {"model": entry.name, "spec": entry.lint_spec if not entry.skip else None}
            if entry.skip:
                cause, _, detail = entry.skip.partition(": ")
                row.update(status="skipped", cause=cause, error=detail[:500])
                rows.append(row)
                continue
            result = by_spec.get(entry.lint_spec)
            if result is None:
                row.update(status="error", cause="no result", error="cnnlint reported nothing for this spec")
                rows.append(row)
                continue
            row.update(status=result["status"], input_shapes=result.get("input_shapes"),
                       input_shape_source=result.get("input_shape_source"),
                       stated_shape_note=entry.shape_note or None, sweep_note=entry.note or None)  # fmt: skip
            if result["status"] != "ok":
                row.update(cause=cause_of(result["error"] or ""), detail=detail_of(result["error"] or ""),
                           error=clip(result["error"] or ""))  # fmt: skip
            else:
                summary = result["summary"]
                row.update(macs_ours=summary["macs"], params_ours=summary["params"],
                           params_unused_ours=summary.get("params_unused", 0),
                           params_ours_total=summary["params"] + summary.get("params_unused", 0),
                           not_counted=summary.get("not_counted") or None,
                           notes=[clip(note, 300) for note in result.get("notes") or []] or None)  # fmt: skip
            rows.append(row)
        oracle_wall = 0.0
        if count:
            ok_rows = {row["model"]: row for row in rows if row["status"] == "ok"}
            tasks = {name: (row["spec"], row["input_shapes"], stated[name].input_dtype)
                     for name, row in ok_rows.items()}  # fmt: skip
            # A model cnnlint could not lint at inputs the sweep states is run the same way: if
            # the forward fails in eager PyTorch too, the model cannot run at those inputs.
            failed = {row["model"]: (row["spec"], stated[row["model"]].input_shape, stated[row["model"]].input_dtype)
                      for row in rows if row["status"] == "error" and row["model"] in stated
                      and stated[row["model"]].input_shape is not None}  # fmt: skip
            oracle_start = time.perf_counter()
            counted = run_oracles({**tasks, **failed}, tmp, jobs, timeout, progress) if tasks or failed else {}
            for name in failed:
                eager = eager_failure(counted.get(name, {}))
                row = next(row for row in rows if row["model"] == name)
                if eager:
                    row.update(cause=EAGER_FAILS, detail=eager, eager_error=eager)
            oracle_wall = time.perf_counter() - oracle_start
            summaries = {r["model"]: r["summary"] for r in results if r["status"] == "ok"}
            for name, row in ok_rows.items():
                c = counted.get(name, {"error": "not counted"})
                row.update(macs_oracle=c.get("macs"), params_oracle=c.get("params"), oracle_device=c.get("device"),
                           oracle_error=c.get("error"), oracle_meta_error=c.get("meta_error"),
                           oracle_attention=c.get("attention"), macs_oracle_seed1=c.get("macs_seed1"),
                           seconds=c.get("seconds"))  # fmt: skip
                row["mismatch"] = _mismatches(row, summaries[row["spec"]], c) or None
    statuses = collections.Counter(row["status"] for row in rows)
    errors = [row for row in rows if row["status"] == "error"]
    eager_fails = sum(1 for row in errors if row["cause"] == EAGER_FAILS)
    mismatched = [row for row in rows if row.get("mismatch")]
    total = statuses["ok"] + statuses["error"]
    report.update(
        models=len(chosen), total=total, ok=statuses["ok"], errors=len(errors), skipped=statuses["skipped"],
        ok_percent=round(100 * statuses["ok"] / total, 1) if total else None,
        eager_fails=eager_fails,  # errors whose forward fails in eager PyTorch at the stated inputs
        ok_percent_of_runnable=round(100 * statuses["ok"] / (total - eager_fails), 2) if total > eager_fails else None,
        errors_by_cause=dict(collections.Counter(row["cause"] for row in errors).most_common()),
        errors_by_detail=dict(collections.Counter(f"{row['cause']}: {row['detail']}" for row in errors).most_common()),
        skipped_by_cause=dict(collections.Counter(row["cause"] for row in rows if row["status"] == "skipped").most_common()),
        counted=sum(1 for row in rows if row.get("oracle_device")),
        mismatches=len(mismatched), unexplained=sum(1 for row in mismatched if unexplained(row)),
        mismatches_by_cause=dict(collections.Counter(c for row in mismatched for c in row["mismatch"]).most_common()),
        lint_wall_s=round(lint_wall, 1), count_wall_s=round(oracle_wall, 1),
        wall_s=round(time.perf_counter() - start, 1), rows=rows,
    )  # fmt: skip
    return json.loads(portable(json.dumps(report)))  # every message, without this machine's folders


@functools.cache
def _machine_prefixes() -> list[tuple[str, str]]:
    """Folders of this machine a message may name, longest first, and what results say instead."""
    import site

    found = [(folder.rstrip("/") + "/", "site-packages/") for folder in site.getsitepackages()]
    found += [(sys.prefix.rstrip("/") + "/", "<venv>/"), (str(HERE.parent) + "/", ""),
              (tempfile.gettempdir().rstrip("/") + "/", "<tmp>/")]  # fmt: skip
    return sorted(found, key=lambda pair: -len(pair[0]))


def portable(text: str) -> str:
    """``text`` without this machine's folders: results are committed and compared elsewhere."""
    for folder, name in _machine_prefixes():
        text = text.replace(folder, name)
    return text


def clip(text: str, size: int = 700) -> str:
    """A long message's start and its end (where cnnlint says what failed last), without this
    machine's folders."""
    text = portable(" ".join(text.split()))
    return text if len(text) <= size else f"{text[: size * 2 // 5]} [...] {text[-(size * 3 // 5):]}"


def _fmt(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def print_report(report: dict) -> None:
    r = report
    sample = (f"matching {r['match']!r}, " if r["match"] else "") + f"every {r['every']}" + (
        f", at most {r['limit']}" if r["limit"] else "")
    print(f"{r['zoo']} ({r['zoo_package']} {r['zoo_version']}, torch {r['torch']}, {r['cpu']}): "
          f"{r['models']} models ({sample}), --jobs {r['jobs']}, --timeout {r['timeout_s']:g}")  # fmt: skip
    print(f"ok: {r['ok']} of {r['total']} ({r['ok_percent']}%); errors: {r['errors']}; skipped: {r['skipped']}")
    if r.get("eager_fails"):
        print(f"of the errors, {r['eager_fails']} fail in eager PyTorch too at the stated inputs: ok "
              f"{r['ok']} of {r['total'] - r['eager_fails']} models that run ({r['ok_percent_of_runnable']}%)")
    counting = f"independent count {r['count_wall_s']} s" if r["count"] else "no independent count"
    print(f"wall: {r['wall_s']} s (cnnlint {r['lint_wall_s']} s, {counting})")
    for title, table in (("errors by cause", r["errors_by_cause"]),
                         ("errors by cause and the exception that finally failed", r["errors_by_detail"]),
                         ("skipped", r["skipped_by_cause"]),
                         ("mismatches by cause", r["mismatches_by_cause"])):  # fmt: skip
        if table:
            print(f"{title}:")
            for cause, n in table.items():
                print(f"  {cause}: {n}")
    if r["count"]:
        print(f"independently counted: {r['counted']} of {r['ok']} ok "
              f"({sum(1 for x in r['rows'] if x.get('oracle_device') == 'cpu')} on CPU); mismatches: {r['mismatches']}, "
              f"{r['unexplained']} not explained by the count's own limits")  # fmt: skip
    errors = [x for x in r["rows"] if x["status"] == "error"]
    if errors:
        print("errors:")
        for x in errors:
            print(f"- [{x['cause']}] {x['model']}: {clip(x['error'], 500)}")
    mismatched = [x for x in r["rows"] if x.get("mismatch")]
    if mismatched:
        print("mismatches (ours / oracle):")
        for x in mismatched:
            rel = f" ({100 * x['macs_rel_diff']:+.2f}%)" if x.get("macs_rel_diff") is not None else ""
            extra = f"; oracle: {x['oracle_error']}" if x.get("oracle_error") else ""
            where = f", oracle on {x['oracle_device']}" if x.get("oracle_device") else ""
            print(f"- [{', '.join(x['mismatch'])}] {x['model']} {x['input_shapes']}: MACs {_fmt(x['macs_ours'])} / "
                  f"{_fmt(x.get('macs_oracle'))}{rel}; params {_fmt(x['params_ours'])} + unused "
                  f"{_fmt(x['params_unused_ours'])} / {_fmt(x.get('params_oracle'))}{where}{extra}")  # fmt: skip
    skipped = [x for x in r["rows"] if x["status"] == "skipped"]
    if skipped:
        print("skipped models:")
        for x in skipped:
            print(f"- [{x['cause']}] {x['model']}: {x['error'][:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True, choices=ZOOS)
    parser.add_argument("--every", type=int, default=1, help="take every Nth model of the zoo's list")
    parser.add_argument("--limit", type=int, default=None, help="at most this many models")
    parser.add_argument("--match", help="only models whose name matches this regular expression")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="cnnlint --jobs and count workers")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per model (lint, and count)")
    parser.add_argument("--json", type=Path, help="also write the whole report here")
    parser.add_argument("--no-count", dest="count", action="store_false", help="skip the independent count")
    parser.add_argument("--progress", action="store_true", help="name each model counted, on stderr")
    parser.add_argument("--workdir", type=Path, help="write the generated files here and keep them "
                        "(cd there and run cnnlint zoo_models.py::NAME to see one model's report)")
    args = parser.parse_args()
    if args.every < 1 or (args.limit is not None and args.limit < 1) or args.jobs < 1:
        parser.error("--every, --limit and --jobs must be positive")
    report = run_sweep(args.zoo, args.every, args.limit, args.jobs, args.timeout, args.count, args.progress,
                       args.match, args.workdir)
    print_report(report)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
