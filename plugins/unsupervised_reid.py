"""Unsupervised re-ID as a plugin: UTrack's matching loss (paper Sec. 3.1) or CycAs.

Replaces the baseline's supervised ``reid`` term and asks for frame pairs: the batch holds the
2B frames of B pairs (all first frames, then all second frames; ``batch["num_pairs"]``) and goes
through the network in one forward pass; embeddings are gathered from the ``id`` head at the
ground-truth centres of each frame and matched across the pair. No identity is read.
"""

from __future__ import annotations

from typing import Any

import torch

from utrack.config import Config
from utrack.losses.cycas import cycas_loss
from utrack.losses.matching import matching_loss
from utrack.losses.regression import gather_at
from utrack.plugin import Plugin


def pair_embeddings(id_map: torch.Tensor, batch: dict[str, Any]
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a pair batch into the two frames' centre embeddings.

    Args:
        id_map: (2B, D, H, W) embedding head output; batch: ``ind`` (2B, K), ``reg_mask``
            (2B, K), ``num_pairs`` = B.

    Returns:
        emb_a (B, K, D), emb_b (B, K, D), mask_a (B, K), mask_b (B, K).
    """
    b = int(batch["num_pairs"])
    emb = gather_at(id_map, batch["ind"])
    mask = batch["reg_mask"].bool()
    return emb[:b], emb[b:2 * b], mask[:b], mask[b:2 * b]


class UnsupervisedReIDPlugin(Plugin):
    """``reid.mode: unsupervised``: the placeholder matching loss (Eq. 3-8)."""

    name = "unsupervised_reid"
    replaces = ("reid",)
    needs_pairs = True

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        m = cfg.reid.matching
        self.options = {"placeholder": m.placeholder, "temperature": m.temperature,
                        "margin": m.margin, "terms": tuple(m.terms)}

    def loss_terms(self, outputs: dict[str, torch.Tensor],
                   batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        emb_a, emb_b, mask_a, mask_b = pair_embeddings(outputs["id"], batch)
        loss, terms = matching_loss(emb_a, emb_b, mask_a, mask_b, batch.get("pair_negative"),
                                    **self.options)
        return {"reid": loss, **{f"reid/{k}": torch.as_tensor(v) for k, v in terms.items()}}


class CycasReIDPlugin(Plugin):
    """``reid.mode: cycas``: the CycAs cycle-consistency loss, the published unsupervised
    baseline the paper compares with (its Tables 1, 7-10)."""

    name = "cycas_reid"
    replaces = ("reid",)
    needs_pairs = True

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.margin = cfg.reid.cycas_margin

    def loss_terms(self, outputs: dict[str, torch.Tensor],
                   batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        emb_a, emb_b, mask_a, mask_b = pair_embeddings(outputs["id"], batch)
        negative = batch.get("pair_negative")
        if negative is not None and bool(negative.any()):
            keep = ~negative  # CycAs has no notion of negative pairs: they are left out
            emb_a, emb_b, mask_a, mask_b = emb_a[keep], emb_b[keep], mask_a[keep], mask_b[keep]
        loss, terms = cycas_loss(emb_a, emb_b, mask_a, mask_b, margin=self.margin)
        return {"reid": loss, **{f"reid/{k}": torch.as_tensor(v) for k, v in terms.items()}}


def build_reid_plugin(cfg: Config) -> Plugin:
    return UnsupervisedReIDPlugin(cfg) if cfg.reid.mode == "unsupervised" else CycasReIDPlugin(cfg)
