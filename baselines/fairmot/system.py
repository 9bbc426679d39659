"""FairMOT assembled: DLA-34 (or another backbone) with hm/wh/reg/id heads, its loss and the
JDE tracker (DESIGN.md section 6)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from baselines.base import Baseline
from baselines.fairmot.decode import decode_detections
from baselines.fairmot.loss import FairMOTLoss
from baselines.fairmot.tracker import JDETracker
from utrack.config import Config
from utrack.tracking.base import Detections


class FairMOT(Baseline):
    name = "fairmot"

    @staticmethod
    def base_heads(cfg: Config) -> dict[str, int]:
        """``hm`` 1, ``wh`` 4 (ltrb), ``reg`` 2, and ``id`` (embedding) unless ``--reid none``."""
        heads = {"hm": 1, "wh": 4, "reg": 2}
        if cfg.reid.mode != "none":
            heads["id"] = cfg.reid.dim
        return heads

    def build_criterion(self, num_ids: int) -> nn.Module:
        return FairMOTLoss(self.cfg, self.plugins, num_ids)

    def forward_train(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return model(batch["image"])

    def make_tracker(self, frame_rate: float) -> JDETracker:
        return JDETracker(self.cfg.tracker, frame_rate=frame_rate,
                          use_embeddings="id" in self.heads, steps=self.steps)

    @torch.no_grad()
    def detect(self, model: nn.Module, tracker: JDETracker, image: torch.Tensor,
               letterbox: Any) -> Detections:
        """One frame: image (1, 3, H, W) in [0, 1] on the model's device -> ``Detections`` in
        original pixels (scores above ``tracker.conf_thres``), after the plugins' decode steps.
        (``tracker`` is unused here; CenterTrack's detection depends on its tracks.)"""
        outputs = model(image)
        boxes, scores, embeddings = decode_detections(outputs, self.cfg.tracker.top_k,
                                                      self.cfg.model.down_ratio)
        dets = self.to_detections(boxes[0], scores[0],
                                  None if embeddings is None else embeddings[0], letterbox,
                                  self.cfg.tracker.conf_thres)
        self.run_after_decode(outputs, dets, {"letterbox": letterbox,
                                              "down_ratio": self.cfg.model.down_ratio})
        return dets
