"""What both baselines share: heads from config and plugins, model building, detections in
original image pixels, and the ``after_decode`` plugin stage."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from utrack.config import Config
from utrack.data.transforms import letterbox_inverse
from utrack.models.centernet import CenterNet, build_model
from utrack.plugin import Plugin, collect_heads, collect_tracker_steps
from utrack.tracking.base import Detections


class Baseline:
    """A tracker family: the model with its heads, its loss, its tracker, and per-frame inference.

    Subclasses define ``name``, ``base_heads``, ``build_criterion``, ``make_tracker``,
    ``forward_train`` and ``detect(model, tracker, image, letterbox) -> Detections``; a frame is
    tracked with ``tracker.update(baseline.detect(...))``.
    """

    name = "baseline"

    def __init__(self, cfg: Config, plugins: list[Plugin]) -> None:
        self.cfg = cfg
        self.plugins = list(plugins)
        self.heads = collect_heads(self.base_heads(cfg), self.plugins)
        self.steps = collect_tracker_steps(self.plugins)

    @staticmethod
    def base_heads(cfg: Config) -> dict[str, int]:
        raise NotImplementedError

    @property
    def needs_pairs(self) -> bool:
        """Training samples come as frame pairs when any plugin asks for them."""
        return any(p.needs_pairs for p in self.plugins)

    def build_model(self, pre_inputs: bool = False) -> CenterNet:
        m = self.cfg.model
        return build_model(m.backbone, self.heads, head_conv=m.head_conv,
                           neck_channels=m.neck_channels, pretrained=m.pretrained,
                           pre_inputs=pre_inputs, input_norm=m.input_norm)

    def build_criterion(self, num_ids: int) -> nn.Module:
        raise NotImplementedError

    def forward_train(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def make_tracker(self, frame_rate: float):
        raise NotImplementedError

    def to_detections(self, boxes: torch.Tensor, scores: torch.Tensor,
                      embeddings: torch.Tensor | None, letterbox: Any,
                      threshold: float) -> Detections:
        """One image's decoded boxes (network-input pixels) -> ``Detections`` in original image
        pixels, keeping scores above ``threshold``."""
        keep = scores > threshold
        boxes_np = letterbox_inverse(boxes[keep].cpu().numpy(), letterbox)
        emb = None if embeddings is None else embeddings[keep].cpu().numpy()
        return Detections(boxes_np, scores[keep].cpu().numpy(), emb)

    def run_after_decode(self, outputs: dict[str, torch.Tensor], detections: Detections,
                         meta: dict[str, Any]) -> None:
        for step in self.steps.get("after_decode", []):
            step(outputs, detections, meta)
