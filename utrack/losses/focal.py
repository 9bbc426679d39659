"""CenterNet's penalty-reduced focal loss on heatmaps (FairMOT Eq. 1; UTrack Eq. 11-12)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0,
               normalizer: torch.Tensor | float | None = None,
               ignore: torch.Tensor | None = None) -> torch.Tensor:
    """Focal loss between heatmap logits and a gaussian target heatmap.

    Args:
        logits: (B, C, H, W) raw head outputs (the sigmoid is applied here, in float32, with the
            probability clamped to [1e-4, 1 - 1e-4] as CenterNet does).
        target: (B, C, H, W) in [0, 1]; exactly 1 at object centres.
        normalizer: what the sum is divided by; default the number of target peaks (at least 1,
            so an image without objects gives the plain negative term and never NaN).
        ignore: optional bool/0-1 mask broadcastable to ``target`` (e.g. (B, 1, H, W)); True
            removes a pixel from the negative term (ignore regions such as CrowdHuman ``mask``
            boxes or COCO crowds: no penalty, zero gradient). Peaks (target 1) keep their
            positive term. None: every pixel counts (the plain CenterNet loss).

    Returns:
        scalar: ``-(sum_pos (1-p)^a log p + sum_neg (1-y)^b p^a log(1-p)) / normalizer``.
    """
    logits = logits.float()
    target = target.float()
    # log(p) and log(1-p) from logsigmoid, clamped like CenterNet's clamped sigmoid
    log_p = F.logsigmoid(logits).clamp(min=torch.log(torch.tensor(1e-4)).item(),
                                       max=torch.log1p(torch.tensor(-1e-4)).item())
    log_1mp = F.logsigmoid(-logits).clamp(min=torch.log(torch.tensor(1e-4)).item(),
                                          max=torch.log1p(torch.tensor(-1e-4)).item())
    p = log_p.exp()
    pos = target.eq(1).float()
    neg = 1.0 - pos
    if ignore is not None:
        neg = neg * (1.0 - ignore.to(device=neg.device, dtype=neg.dtype))
    pos_term = (log_p * (1 - p) ** alpha * pos).sum()
    neg_term = (log_1mp * p ** alpha * (1 - target) ** beta * neg).sum()
    if normalizer is None:
        normalizer = pos.sum()
    normalizer = torch.as_tensor(normalizer, dtype=torch.float32, device=logits.device)
    return -(pos_term + neg_term) / normalizer.clamp(min=1.0)
