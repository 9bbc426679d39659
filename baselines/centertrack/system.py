"""CenterTrack assembled: a CenterNet with previous-image and previous-heatmap stems, heads
hm/reg/wh/tracking (+ ltrb_amodal, + id for unsupervised re-ID), its loss, its training data and
its tracker (DESIGN.md section 6)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from baselines.base import Baseline
from baselines.centertrack.data import CenterTrackTargets
from baselines.centertrack.decode import decode_centertrack
from baselines.centertrack.loss import CenterTrackLoss
from baselines.centertrack.tracker import TRACKING, CenterTrackTracker
from utrack.config import Config
from utrack.errors import ConfigError
from utrack.models.centernet import CenterNet
from utrack.tracking.base import Detections

#: re-ID modes that give CenterTrack an ``id`` head (their plugins bring the loss)
EMBEDDING_MODES = ("unsupervised", "cycas")


class CenterTrack(Baseline):
    """CenterTrack (Zhou et al., "Tracking Objects as Points") on utrack's parts.

    Training items are a frame with its previous frame (``MOTTrainDataset`` mode
    ``"previous"``): the batch carries ``pre_image`` (B, 3, H, W) and ``pre_hm`` (B, 1, H, W).
    With a plugin that needs frame pairs (unsupervised re-ID) the mode is ``"previous_pair"``:
    the batch holds the B current frames, then their B previous frames as first frames (their
    own image as ``pre_image``, an empty ``pre_hm``), so one forward pass covers both and the
    detection losses cover both.
    """

    name = "centertrack"

    @staticmethod
    def base_heads(cfg: Config) -> dict[str, int]:
        """``hm`` 1, ``reg`` 2, ``wh`` 2, ``tracking`` 2, plus ``ltrb_amodal`` 4 with
        ``model.ltrb_amodal`` (the official MOT models have both box heads), plus ``id``
        (``reid.dim``) for ``reid.mode`` unsupervised or cycas."""
        mode = cfg.reid.mode
        if mode not in ("none", *EMBEDDING_MODES):
            raise ConfigError(f"reid.mode={mode!r} is not available for CenterTrack (it has no "
                              f"identity classifier); use none, unsupervised or cycas")
        heads = {"hm": 1, "reg": 2, "wh": 2, "tracking": 2}
        if cfg.model.ltrb_amodal:
            heads["ltrb_amodal"] = 4
        if mode in EMBEDDING_MODES:
            heads["id"] = cfg.reid.dim
        return heads

    def build_model(self, pre_inputs: bool = True) -> CenterNet:
        return super().build_model(pre_inputs=pre_inputs)

    def build_criterion(self, num_ids: int = 0) -> nn.Module:
        """CenterTrack's loss; ``num_ids`` is unused (no identity classifier)."""
        return CenterTrackLoss(self.cfg, self.plugins)

    def dataset_options(self) -> dict[str, Any]:
        return {"mode": "previous_pair" if self.needs_pairs else "previous",
                "previous_builder": CenterTrackTargets(self.cfg.data.centertrack,
                                                       self.cfg.model.down_ratio)}

    def forward_train(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return model(batch["image"], batch["pre_image"], batch["pre_hm"])

    def make_tracker(self, frame_rate: float) -> CenterTrackTracker:
        return CenterTrackTracker(self.cfg.tracker, frame_rate=frame_rate,
                                  use_embeddings="id" in self.heads, steps=self.steps)

    @torch.no_grad()
    def detect(self, model: nn.Module, tracker: CenterTrackTracker, image: torch.Tensor,
               letterbox: Any) -> Detections:
        """One frame: image (1, 3, H, W) in [0, 1] on the model's device -> ``Detections`` in
        original pixels (scores above ``tracker.conf_thres``) with ``extras["tracking"]``
        (N, 2), the offsets to the previous centres in original pixels, after the plugins'
        decode steps. The tracker supplies the previous image and heatmap
        (``CenterTrackTracker.previous_inputs``) and keeps this image for the next frame."""
        pre_image, pre_hm = tracker.previous_inputs(image, letterbox)
        outputs = model(image, pre_image, pre_hm)
        cfg = self.cfg
        boxes, scores, tracking, embeddings = decode_centertrack(outputs, cfg.tracker.top_k,
                                                                 cfg.model.down_ratio)
        dets = self.to_detections(boxes[0], scores[0],
                                  None if embeddings is None else embeddings[0], letterbox,
                                  cfg.tracker.conf_thres)
        keep = scores[0] > cfg.tracker.conf_thres  # the rows to_detections kept
        dets.extras[TRACKING] = tracking[0][keep].cpu().double().numpy() / letterbox.scale
        self.run_after_decode(outputs, dets, {"letterbox": letterbox,
                                              "down_ratio": cfg.model.down_ratio})
        return dets
