"""Regression losses gathered at object centres (FairMOT's RegL1Loss)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gather_at(feature_map: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Values of a (B, C, H, W) map at flat positions ``index`` (B, K) -> (B, K, C)."""
    b, c, h, w = feature_map.shape
    flat = feature_map.reshape(b, c, h * w)
    idx = index.long().clamp(0, h * w - 1).unsqueeze(1).expand(b, c, index.shape[1])
    return flat.gather(2, idx).permute(0, 2, 1)


def masked_l1_loss(pred_map: torch.Tensor, index: torch.Tensor, mask: torch.Tensor,
                   target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error at the masked centres.

    Args:
        pred_map: (B, C, H, W) head output.
        index: (B, K) flat indices ``y * W + x`` of the centres on the output grid.
        mask: (B, K) bool, which of the K slots hold an object.
        target: (B, K, C).

    Returns:
        scalar: ``sum |pred - target| over masked slots and channels / (num masked * C + 1e-4)``
        (FairMOT's normalisation); 0 with no object, never NaN.
    """
    pred = gather_at(pred_map, index).float()
    m = mask.unsqueeze(2).expand_as(pred).float()
    loss = F.l1_loss(pred * m, target.float() * m, reduction="sum")
    return loss / (m.sum() + 1e-4)
