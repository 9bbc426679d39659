"""FairMOT's supervised re-ID loss: a linear classifier over every training identity."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from utrack.losses.regression import gather_at


def embedding_scale(num_ids: int) -> float:
    """FairMOT's scale of the normalised embedding before the classifier: sqrt(2) log(nID - 1).

    Defined for nID > 2; with fewer identities (toy data) the scale is 1.
    """
    return math.sqrt(2) * math.log(num_ids - 1) if num_ids > 2 else 1.0


class ClassifierReIDLoss(nn.Module):
    """Cross-entropy of a linear classifier on scaled, L2-normalised embeddings (FairMOT).

    The classifier's parameters belong to this loss (not to the model) and are saved with the
    loss in every checkpoint: FairMOT's own code forgets them, so its resumed runs jump.
    """

    def __init__(self, num_ids: int, emb_dim: int = 128) -> None:
        super().__init__()
        if num_ids < 1:
            raise ValueError("supervised re-ID needs at least one identity in the training data "
                             "(use --reid none or an unsupervised mode for data without ids)")
        self.num_ids = num_ids
        self.scale = embedding_scale(num_ids)
        self.classifier = nn.Linear(emb_dim, num_ids)

    def forward(self, id_map: torch.Tensor, index: torch.Tensor, mask: torch.Tensor,
                ids: torch.Tensor) -> torch.Tensor:
        """
        Args:
            id_map: (B, D, H, W) embedding head output.
            index: (B, K) flat centre indices; mask: (B, K) bool; ids: (B, K) int64 in
                [0, nID) or -1 (unknown identity: ignored).

        Returns:
            scalar mean cross-entropy over objects with a known identity; a zero that keeps the
            graph when there is none.
        """
        emb = gather_at(id_map, index).float()  # (B, K, D)
        valid = mask & (ids >= 0)
        if not bool(valid.any()):
            return id_map.sum() * 0.0 + self.classifier.weight.sum() * 0.0
        emb = self.scale * F.normalize(emb[valid], dim=1)
        logits = self.classifier(emb)
        return F.cross_entropy(logits, ids[valid].long())
