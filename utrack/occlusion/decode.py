"""Occlusion centres from the head's outputs, or from ground-truth boxes (paper Sec. 3.2.1)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from utrack.models.peaks import heatmap_peaks
from utrack.occlusion.targets import _like, _pairs_numpy, _to_numpy

__all__ = ["decode_occlusion_centers", "oracle_occlusion_centers"]


@torch.no_grad()
def decode_occlusion_centers(occ_hm_logits: torch.Tensor, occ_off: torch.Tensor, *, k: int = 100,
                             score_thresh: float = 0.1, down_ratio: int = 4
                             ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Predicted occlusion centres per image, in network-input pixels.

    Sigmoid, 3x3 max-pool peak picking and top-``k`` (:func:`heatmap_peaks`), plus the
    predicted sub-pixel offset at each peak, times ``down_ratio``; peaks scoring below
    ``score_thresh`` are dropped (0.1 is the official code's value). Mapping input pixels back to
    the original image (the letterbox inverse) is the caller's job.

    Args:
        occ_hm_logits: (B, 1, H, W) raw heatmap head output.
        occ_off: (B, 2, H, W) offset head output, channels ``(dx, dy)`` (Eq. 13).

    Returns:
        one ``(centers, scores)`` per image: centers (K_b, 2) float32 ``(x, y)``, scores (K_b,),
        best first, on the inputs' device.
    """
    b, _, h, w = occ_hm_logits.shape
    scores, index, _, ys, xs = heatmap_peaks(occ_hm_logits.float().sigmoid(), k)
    offset = occ_off.float().reshape(b, 2, h * w).gather(
        2, index.unsqueeze(1).expand(b, 2, index.shape[1]))  # (B, 2, k)
    centers = torch.stack([xs + offset[:, 0], ys + offset[:, 1]], dim=2) * down_ratio
    keep = scores >= score_thresh
    return [(centers[i][keep[i]], scores[i][keep[i]]) for i in range(b)]


def oracle_occlusion_centers(boxes: Any, tau: float = 0.7) -> Any:
    """Centres of the ground-truth occlusions (Eq. 9) of one image's boxes.

    For the tracker-only replay with ``--occ-source oracle``: the same centres the heatmap
    targets are rendered from, in the boxes' pixels.

    Args:
        boxes: (N, 4) ``x1, y1, x2, y2`` (numpy array or tensor).

    Returns:
        (P, 2) ``(x, y)`` centres of the intersection boxes of :func:`occlusion_pairs`, in its
        order; the input's kind.
    """
    _, overlaps = _pairs_numpy(_to_numpy(boxes, np.float64).reshape(-1, 4), tau)
    centers = np.stack([(overlaps[:, 0] + overlaps[:, 2]) / 2,
                        (overlaps[:, 1] + overlaps[:, 3]) / 2], axis=1)
    return _like(centers, boxes)
