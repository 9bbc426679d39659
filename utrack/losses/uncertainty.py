"""Learnable task weighting (Kendall et al.), as FairMOT balances detection and re-ID."""

from __future__ import annotations

import torch
from torch import nn


class UncertaintyWeighting(nn.Module):
    """``0.5 * sum_g (exp(-s_g) * L_g + s_g)`` over the groups present (FairMOT's total loss).

    ``s_det`` starts at -1.85 and ``s_id`` at -1.05 (FairMOT). A group whose loss is None (for
    example no re-ID with ``--reid none``) is left out, including its ``s``.
    """

    def __init__(self, s_det: float = -1.85, s_id: float = -1.05) -> None:
        super().__init__()
        self.s_det = nn.Parameter(torch.tensor(float(s_det)))
        self.s_id = nn.Parameter(torch.tensor(float(s_id)))

    def forward(self, det_loss: torch.Tensor, id_loss: torch.Tensor | None) -> torch.Tensor:
        total = torch.exp(-self.s_det) * det_loss + self.s_det
        if id_loss is not None:
            total = total + torch.exp(-self.s_id) * id_loss + self.s_id
        return 0.5 * total
