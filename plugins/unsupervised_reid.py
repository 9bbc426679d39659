"""Unsupervised re-ID as a plugin: UTrack's matching loss (paper Sec. 3.1) or CycAs.

Replaces the baseline's supervised ``reid`` term and asks for frame pairs: the batch holds the
kB frames of B items of k frames each (slot by slot: all first frames, then all second frames,
...; ``batch["num_pairs"]`` = B, ``batch["pair_frames"]`` = k, 2 for plain pairs) and goes
through the network in one forward pass; embeddings are gathered from the ``id`` head at the
ground-truth centres of each frame and every two frames of an item are matched as a pair. No
identity is read.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from utrack.config import Config
from utrack.losses.cycas import cycas_loss
from utrack.losses.matching import matching_loss
from utrack.losses.regression import gather_at
from utrack.plugin import Plugin


def pair_embeddings(id_map: torch.Tensor, batch: dict[str, Any]
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                               torch.Tensor | None]:
    """The frame pairs of a batch of B items of k frames, with their centre embeddings.

    Args:
        id_map: (kB, D, H, W) embedding head output; batch: ``ind`` (kB, K), ``reg_mask``
            (kB, K), ``num_pairs`` = B, optionally ``pair_frames`` = k (default 2) and
            ``pair_negative`` (B,) bool.

    Returns:
        emb_a (P, K, D), emb_b (P, K, D), mask_a (P, K), mask_b (P, K) and the pairs' negative
        flags (P,) (None without ``pair_negative``), P = B k (k - 1) / 2: for each two frame
        slots s < t (in ``itertools.combinations`` order) the B pairs (slot s, slot t) of the
        items. With k = 2 that is the B pairs themselves.
    """
    b = int(batch["num_pairs"])
    k = int(batch.get("pair_frames", 2))
    emb = gather_at(id_map, batch["ind"]).split(b)
    mask = batch["reg_mask"].bool().split(b)
    slots = list(itertools.combinations(range(k), 2))
    first, second = [s for s, _ in slots], [t for _, t in slots]
    negative = batch.get("pair_negative")
    if negative is not None:
        negative = negative.repeat(len(slots))
    return (torch.cat([emb[s] for s in first]), torch.cat([emb[t] for t in second]),
            torch.cat([mask[s] for s in first]), torch.cat([mask[t] for t in second]), negative)


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
        emb_a, emb_b, mask_a, mask_b, negative = pair_embeddings(outputs["id"], batch)
        loss, terms = matching_loss(emb_a, emb_b, mask_a, mask_b, negative,
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
        emb_a, emb_b, mask_a, mask_b, negative = pair_embeddings(outputs["id"], batch)
        if negative is not None and bool(negative.any()):
            keep = ~negative  # CycAs has no notion of negative pairs: they are left out
            emb_a, emb_b, mask_a, mask_b = emb_a[keep], emb_b[keep], mask_a[keep], mask_b[keep]
        loss, terms = cycas_loss(emb_a, emb_b, mask_a, mask_b, margin=self.margin)
        return {"reid": loss, **{f"reid/{k}": torch.as_tensor(v) for k, v in terms.items()}}


def build_reid_plugin(cfg: Config) -> Plugin:
    return UnsupervisedReIDPlugin(cfg) if cfg.reid.mode == "unsupervised" else CycasReIDPlugin(cfg)
