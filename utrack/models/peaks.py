"""Peak picking on CenterNet heatmaps, shared by object and occlusion decoding."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def heatmap_peaks(heat: torch.Tensor, k: int, kernel: int = 3
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k local maxima of a probability heatmap (3x3 max-pool NMS, as CenterNet).

    Args:
        heat: (B, C, H, W) probabilities (already through the sigmoid).
        k: number of peaks per image (capped at C*H*W).

    Returns:
        scores (B, k), flat spatial indices ``y * W + x`` (B, k), classes (B, k), ys (B, k),
        xs (B, k); ys/xs are float grid coordinates of the peaks.
    """
    b, c, h, w = heat.shape
    pad = (kernel - 1) // 2
    hmax = F.max_pool2d(heat, kernel, stride=1, padding=pad)
    heat = heat * (hmax == heat).to(heat.dtype)
    k = min(k, c * h * w)
    scores, flat = torch.topk(heat.reshape(b, -1), k)
    classes = torch.div(flat, h * w, rounding_mode="floor")
    index = flat % (h * w)
    ys = torch.div(index, w, rounding_mode="floor").float()
    xs = (index % w).float()
    return scores, index, classes, ys, xs
