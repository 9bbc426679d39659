"""Backbones (DLA-34 with deformable upsampling, ResNet-18/34, MobileNetV2), CenterNet heads,
model assembly and checkpoint io."""

from utrack.models.centernet import BACKBONES, INPUT_NORMS, CenterNet, build_model
from utrack.models.checkpoint import (LoadReport, extract_state_dict, load_backbone_weights,
                                      load_checkpoint, load_matching_weights, load_model_weights,
                                      save_checkpoint)
from utrack.models.dcn import ModulatedDeformConv2d
from utrack.models.heads import init_head, make_head

__all__ = [
    "BACKBONES", "INPUT_NORMS", "CenterNet", "LoadReport", "ModulatedDeformConv2d",
    "build_model", "extract_state_dict", "init_head", "load_backbone_weights",
    "load_checkpoint", "load_matching_weights", "load_model_weights", "make_head",
    "save_checkpoint",
]
