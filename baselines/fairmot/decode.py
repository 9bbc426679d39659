"""FairMOT decoding: heatmap peaks -> boxes, scores and embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from utrack.losses.regression import gather_at
from utrack.models.peaks import heatmap_peaks


def decode_detections(outputs: dict[str, torch.Tensor], k: int = 500, down_ratio: int = 4
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Top-k detections per image in network-input pixels.

    Args:
        outputs: ``hm`` (B,1,H,W) logits, ``wh`` (B,4,H,W) left/top/right/bottom distances,
            ``reg`` (B,2,H,W) sub-pixel offsets, optional ``id`` (B,D,H,W) embeddings.

    Returns:
        boxes (B, k, 4) ``x1, y1, x2, y2``, scores (B, k), embeddings (B, k, D) L2-normalised
        (or None without an ``id`` head).
    """
    heat = outputs["hm"].float().sigmoid()
    scores, index, _, ys, xs = heatmap_peaks(heat, k)
    offset = gather_at(outputs["reg"].float(), index)
    ltrb = gather_at(outputs["wh"].float(), index)
    cx = xs + offset[..., 0]
    cy = ys + offset[..., 1]
    boxes = torch.stack([cx - ltrb[..., 0], cy - ltrb[..., 1],
                         cx + ltrb[..., 2], cy + ltrb[..., 3]], dim=-1) * down_ratio
    embeddings = None
    if "id" in outputs:
        embeddings = gather_at(F.normalize(outputs["id"].float(), dim=1), index)
    return boxes, scores, embeddings
