"""CenterTrack decoding: heatmap peaks -> boxes, scores, tracking offsets (and embeddings)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from utrack.losses.regression import gather_at
from utrack.models.peaks import heatmap_peaks


def decode_centertrack(outputs: dict[str, torch.Tensor], k: int = 100, down_ratio: int = 4
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Top-k detections per image in network-input pixels.

    Args:
        outputs: ``hm`` (B,1,H,W) logits, ``reg`` (B,2,H,W), ``wh`` (B,2,H,W) width/height,
            optional ``ltrb_amodal`` (B,4,H,W) (boxes come from it when present, as CenterTrack
            does for MOT), ``tracking`` (B,2,H,W), optional ``id`` (B,D,H,W).

    Returns:
        boxes (B, k, 4) ``x1, y1, x2, y2``; scores (B, k); tracking (B, k, 2) offsets from each
        detection's centre to its centre in the previous frame; embeddings (B, k, D)
        L2-normalised, or None without an ``id`` head. Pixels of the network input.
    """
    heat = outputs["hm"].float().sigmoid()
    scores, index, _, ys, xs = heatmap_peaks(heat, k)
    offset = gather_at(outputs["reg"].float(), index)
    cx = xs + offset[..., 0]
    cy = ys + offset[..., 1]
    if "ltrb_amodal" in outputs:
        ltrb = gather_at(outputs["ltrb_amodal"].float(), index)
        boxes = torch.stack([cx - ltrb[..., 0], cy - ltrb[..., 1],
                             cx + ltrb[..., 2], cy + ltrb[..., 3]], dim=-1)
    else:
        wh = gather_at(outputs["wh"].float(), index)
        boxes = torch.stack([cx - wh[..., 0] / 2, cy - wh[..., 1] / 2,
                             cx + wh[..., 0] / 2, cy + wh[..., 1] / 2], dim=-1)
    tracking = gather_at(outputs["tracking"].float(), index) * down_ratio
    embeddings = None
    if "id" in outputs:
        embeddings = gather_at(F.normalize(outputs["id"].float(), dim=1), index)
    return boxes * down_ratio, scores, tracking, embeddings
