"""UTrack's occlusion estimation as a plugin (paper Sec. 3.2; DESIGN.md sections 4 and 5).

- heads: ``occ_hm`` (1 channel, sigmoid, bias -2.19) and ``occ_off`` (2 channels), each
  conv3x3(C -> head_conv) + ReLU + conv1x1;
- targets: the occlusion heatmap/offsets of every pair with overlap / min-area > tau;
- loss: focal + offset L1 normalised by the number of occlusions (Eq. 11-14), but by at least
  ``occlusion.norm_min_per_image`` per image (default 1; 0 is the paper), weight 0.5 each
  inside the detection loss;
- tracker: ``after_decode`` decodes the occlusion centres into ``detections.extras``;
  ``after_association`` refinds tracks lost for fewer than ``tau_w`` frames (Algorithm 1 step 5)
  and outputs them with the recovered box of Eq. 15-16. The official code computes that box and
  then outputs the Kalman prediction instead; we output the recovered box.

Written against the tracker interface of ``utrack.tracking.base`` (``unmatched_tracks()``,
``refind()``), so the same step serves FairMOT and CenterTrack.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from utrack.config import Config
from utrack.data.transforms import letterbox_inverse
from utrack.losses.occlusion import occlusion_loss
from utrack.occlusion import decode_occlusion_centers, encode_occlusion_targets
from utrack.occlusion.step import (CENTERS, HEATMAP, LETTERBOX, SCORES, STRIDE,
                                   refind_unmatched_tracks)
from utrack.plugin import Plugin
from utrack.tracking.base import Detections, FrameContext


class OcclusionPlugin(Plugin):
    name = "occlusion"

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg.occlusion
        self.down_ratio = cfg.model.down_ratio
        self.term_weights = {"occ_hm": self.cfg.weight,
                             "occ_off": self.cfg.weight * self.cfg.offset_weight}

    def extra_heads(self) -> dict[str, int]:
        return {"occ_hm": 1, "occ_off": 2}

    def build_targets(self, sample: dict[str, Any]) -> dict[str, Any]:
        _, height, width = sample["image"].shape
        return encode_occlusion_targets(sample["boxes"], width, height,
                                        down_ratio=self.down_ratio, tau=self.cfg.tau)

    def loss_terms(self, outputs: dict[str, torch.Tensor],
                   batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        hm_loss, off_loss = occlusion_loss(outputs["occ_hm"], outputs["occ_off"], batch["occ_hm"],
                                           batch["occ_ind"], batch["occ_off"], batch["occ_mask"],
                                           min_per_image=self.cfg.norm_min_per_image)
        return {"occ_hm": hm_loss, "occ_off": off_loss}

    def tracker_steps(self) -> dict[str, Callable[..., Any]]:
        return {"after_decode": self.decode_step, "after_association": self.refind_step}

    # ------------------------------------------------------------------------------------------
    def decode_step(self, outputs: dict[str, torch.Tensor], detections: Detections,
                    meta: dict[str, Any]) -> None:
        """Occlusion centres of the (single) image in original pixels -> ``detections.extras``."""
        centers, scores = decode_occlusion_centers(
            outputs["occ_hm"][:1], outputs["occ_off"][:1], k=self.cfg.top_k,
            score_thresh=self.cfg.score_thresh, down_ratio=self.down_ratio)[0]
        letterbox = meta["letterbox"]
        points = centers.cpu().numpy().astype(np.float64)
        points = letterbox_inverse(np.concatenate([points, points], axis=1), letterbox)[:, :2]
        detections.extras[CENTERS] = points
        detections.extras[SCORES] = scores.cpu().numpy()
        detections.extras[HEATMAP] = outputs["occ_hm"][0, 0].float().sigmoid().cpu().numpy()
        detections.extras[STRIDE] = self.down_ratio / letterbox.scale
        detections.extras[LETTERBOX] = letterbox

    def refind_step(self, tracker: Any, context: FrameContext) -> None:
        refind_unmatched_tracks(tracker, context, tau_w=self.cfg.tau_w, tau_o=self.cfg.tau_o,
                                default_stride=self.down_ratio)
