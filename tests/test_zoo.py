"""Every real-world CNN lints: one timm model per family (every family plain torch.fx cannot trace
among them), and torchvision detection/segmentation backbones. (Every torchvision classifier is
linted, and checked to need no trace fallback, by the golden test, tests/test_golden.py.)

Slow (CI runs it): each model is built and traced once, through conftest's cached helpers.
"""

from __future__ import annotations

import pytest
import timm
from conftest import FIXTURES, lint_specs

pytestmark = pytest.mark.slow

# One model per timm family (timm module). Plain torch.fx symbolic tracing fails on the families
# marked with the fallback that now traces them (surveyed with timm 1.0.31: one model per
# family from timm.list_models(), built with pretrained=False):
#   "leaf"    - a submodule branches on shapes (or calls int()/len() on them): leaf retrace
#   "capture" - the model's own forward branches, or leaf graphs could not be inlined: capture
#   "fx"      - plain fx (timm ViTs' attn_mask=None/is_causal=False are fixed at their defaults)
TIMM = {
    "convit": ("convit_tiny", "leaf"),
    "cpubone": ("cpubone_nano", "leaf"),
    "crossvit": ("crossvit_tiny_240", "capture"),
    "efficientvit_mit": ("efficientvit_b0", "leaf"),
    "efficientvit_msra": ("efficientvit_m0", "leaf"),
    "gemma4_vit": ("gemma4_vit_167m", "leaf"),
    "mobilenetv5": ("mobilenetv5_base", "capture"),
    "mobilevit": ("mobilevit_xxs", "leaf"),
    "mvitv2": ("mvitv2_tiny", "capture"),
    "naflexvit": ("naflexvit_base_patch16_siglip", "leaf"),
    "nasnet": ("nasnetalarge", "leaf"),
    "nest": ("nest_tiny", "leaf"),
    "nfnet": ("dm_nfnet_f0", "leaf"),  # its ScaledStdConv2d branches on shapes (nfnet_l0 does not)
    "pnasnet": ("pnasnet5large", "leaf"),
    "qwen3_vit": ("qwen3_vit_88m", "leaf"),
    "tiny_vit": ("tiny_vit_11m_224", "leaf"),
    "twins": ("twins_svt_small", "capture"),
    "vgg": ("vgg11", "leaf"),
    "vision_transformer_hybrid": ("vit_tiny_r_s16_p8_224", "leaf"),
    "vision_transformer_sam": ("samvit_base_patch16", "capture"),
    # Plain fx once defaulted forward() arguments are fixed (they failed the input count before).
    "vision_transformer": ("vit_tiny_patch16_224", "fx"),
    "deit": ("deit_tiny_patch16_224", "fx"),
    "eva": ("eva02_tiny_patch14_224", "fx"),
    "hiera": ("hiera_tiny_224", "fx"),
    # Plain fx all along.
    "resnet": ("resnet18", "fx"),
    "convnext": ("convnext_atto", "fx"),
    "efficientnet": ("efficientnet_b0", "fx"),
    "regnet": ("regnetx_002", "fx"),
    "repvit": ("repvit_m0_9", "fx"),
}
NOTE = {"leaf": "trace: leaf retrace", "capture": "trace: runtime capture"}

BACKBONES = [
    "fasterrcnn_resnet50_fpn_backbone",
    "fasterrcnn_mobilenet_v3_fpn_backbone",
    "retinanet_resnet50_fpn_backbone",
    "deeplabv3_resnet50_backbone",
    "lraspp_mobilenet_v3_backbone",
]


def _ok(spec: str, input_shapes=None):
    (result,) = lint_specs(spec, input_shapes=input_shapes, select=["CL"])
    assert result.status == "ok", result.error
    assert result.summary.macs > 0
    return result


@pytest.mark.parametrize("family", sorted(TIMM))
def test_timm_family(family: str) -> None:
    name, path = TIMM[family]
    assert name in timm.list_models(module=family)
    input_size = timm.models.get_pretrained_cfg(name).input_size
    result = _ok(f"timm.models.{family}:{name}", [(1, *input_size)])
    fallback_notes = [n for n in result.notes if n.startswith("trace:")]
    if path == "fx":
        assert fallback_notes == []
    else:
        assert len(fallback_notes) == 1 and fallback_notes[0].startswith(NOTE[path]), fallback_notes
        assert "torch.fx could not trace" in fallback_notes[0]


@pytest.mark.parametrize("factory", BACKBONES)
def test_detection_and_segmentation_backbones(factory: str) -> None:
    (result,) = lint_specs(f"{FIXTURES / 'trace_backbones.py'}::{factory}")
    assert result.status == "ok", result.error
    assert result.summary.macs > 0
