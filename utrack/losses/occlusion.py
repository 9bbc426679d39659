"""The occlusion-centre loss (UTrack paper Sec. 3.2.1, Eq. 11-14; DESIGN.md section 4)."""

from __future__ import annotations

import torch

from utrack.losses.focal import focal_loss
from utrack.losses.regression import gather_at

__all__ = ["occlusion_loss"]


def occlusion_loss(occ_hm_logits: torch.Tensor, occ_off_map: torch.Tensor, occ_hm: torch.Tensor,
                   occ_ind: torch.Tensor, occ_off: torch.Tensor, occ_mask: torch.Tensor,
                   alpha: float = 2.0, beta: float = 4.0,
                   min_per_image: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Focal loss on the occlusion heatmap and L1 on its offsets, per valid occlusion (Eq. 14).

    Both terms are divided by the number of valid occlusions in the batch, ``sum(occ_mask)``,
    but by at least ``min_per_image * B`` and at least 1 (a batch without occlusion gives the
    negative focal term and a zero offset loss, never NaN). ``min_per_image = 0`` is Eq. 14 as
    written. Occlusions are sparse in thin crowds: the negative term sums over every pixel of
    the batch, so dividing it by the 0-4 occlusions of a batch of 8 PETS09 or synthetic images
    makes it dwarf the detection loss it is added to; ``min_per_image = 1`` (the occlusion
    plugin's default, ``occlusion.norm_min_per_image``) bounds that and leaves batches with more
    than one occlusion per image as in the paper. The offset term is Eq. 13's L1 norm of the
    2-vector error summed over the occlusions, so it is ``sum |pred - target| / num`` over both
    channels; FairMOT's RegL1Loss would divide by ``2 * num`` instead.

    Args:
        occ_hm_logits: (B, 1, H, W) raw heatmap head output (sigmoid applied inside).
        occ_off_map: (B, 2, H, W) offset head output, channels ``(dx, dy)``.
        occ_hm: (B, 1, H, W) target heatmap (Eq. 10).
        occ_ind: (B, P) flat indices ``y * W + x`` of the occlusion centres (padded).
        occ_off: (B, P, 2) target offsets ``p / R - floor(p / R)``.
        occ_mask: (B, P) bool, which slots hold a valid occlusion.
        alpha, beta: the focal loss exponents of Eq. 12.
        min_per_image: the smallest normaliser per image of the batch (see above).

    Returns:
        ``(hm_loss, off_loss)``: Eq. 11 and Eq. 13, each divided as in Eq. 14; scalars.
    """
    mask = occ_mask.to(device=occ_off_map.device, dtype=torch.float32)
    num = mask.sum().clamp(min=max(1.0, min_per_image * occ_hm.shape[0]))
    hm_loss = focal_loss(occ_hm_logits, occ_hm, alpha=alpha, beta=beta, normalizer=num)
    pred = gather_at(occ_off_map, occ_ind).float()  # (B, P, 2)
    err = torch.where(mask.bool().unsqueeze(2), (pred - occ_off.float()).abs(), 0.0)
    off_loss = err.sum() / num
    return hm_loss, off_loss
