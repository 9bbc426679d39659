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

from utrack.config import Config, check_ratio
from utrack.losses.cycas import cycas_loss
from utrack.losses.matching import matching_loss
from utrack.losses.regression import gather_at
from utrack.plugin import Plugin


def frame_scenes(batch: dict[str, Any]) -> list[str] | None:
    """The scene of each frame of a batch (its sequence for video, ``meta["scene"]`` for
    images), or None when the samples carry no ``meta``."""
    metas = batch.get("meta")
    if not metas:
        return None
    return [str(m.get("sequence", m.get("scene"))) for m in metas]


def cross_item_negatives(scenes: list[str], items: int, frames: int, count: int
                         ) -> list[tuple[int, int]]:
    """Up to ``count`` negative pairs (frame rows of the slot-ordered batch) between frames of
    different items whose scenes differ, slot-aligned first: (item i slot s, item j slot s) for
    s = 0, 1, ... and i < j, then the other slots (s, t), s != t. Row of item i slot s:
    ``s * items + i``."""
    slots = [(s, s) for s in range(frames)]
    slots += [(s, t) for s in range(frames) for t in range(frames) if s != t]
    pairs: list[tuple[int, int]] = []
    for s, t in slots:
        for i, j in itertools.combinations(range(items), 2):
            if len(pairs) == count:
                return pairs
            a, b = s * items + i, t * items + j
            if scenes[a] != scenes[b]:
                pairs.append((a, b))
    return pairs


def pair_embeddings(id_map: torch.Tensor, batch: dict[str, Any], batch_neg_ratio: float = 0.0
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                               torch.Tensor | None]:
    """The frame pairs of a batch of B items of k frames, with their centre embeddings.

    Args:
        id_map: (kB, D, H, W) embedding head output; batch: ``ind`` (kB, K), ``reg_mask``
            (kB, K), ``num_pairs`` = B, optionally ``pair_frames`` = k (default 2),
            ``pair_negative`` (B,) bool and ``meta`` (the scenes, for ``batch_neg_ratio``).
        batch_neg_ratio: also match frames of *different items whose scenes differ* as
            negative pairs (Eq. 7), ``round(batch_neg_ratio * B k (k - 1) / 2)`` of them (see
            :func:`cross_item_negatives`; fewer when the batch has fewer such frame pairs).
            0: only the items' own pairs (the paper trains on video with positives only).

    Returns:
        emb_a (P, K, D), emb_b (P, K, D), mask_a (P, K), mask_b (P, K) and the pairs' negative
        flags (P,) (None without ``pair_negative`` and without batch negatives). The first
        B k (k - 1) / 2 pairs are the items' own: for each two frame slots s < t (in
        ``itertools.combinations`` order) the B pairs (slot s, slot t) of the items; with
        k = 2 that is the B pairs themselves. The batch negatives follow.
    """
    b = int(batch["num_pairs"])
    k = int(batch.get("pair_frames", 2))
    slots = list(itertools.combinations(range(k), 2))
    first = [s * b + i for s, _ in slots for i in range(b)]
    second = [t * b + i for _, t in slots for i in range(b)]
    negative = batch.get("pair_negative")
    if negative is not None:
        negative = negative.repeat(len(slots))
    scenes = frame_scenes(batch) if batch_neg_ratio > 0 else None
    extra = (cross_item_negatives(scenes, b, k, round(batch_neg_ratio * len(first)))
             if scenes is not None else [])
    if extra:
        first += [a for a, _ in extra]
        second += [c for _, c in extra]
        own = negative if negative is not None else torch.zeros(
            len(slots) * b, dtype=torch.bool, device=id_map.device)
        negative = torch.cat([own, own.new_ones(len(extra))])
    emb = gather_at(id_map, batch["ind"])
    mask = batch["reg_mask"].bool()
    index = torch.tensor(first + second, device=emb.device)
    emb_a, emb_b = emb[index].split(len(first))
    mask_a, mask_b = mask[index].split(len(first))
    return emb_a, emb_b, mask_a, mask_b, negative


class UnsupervisedReIDPlugin(Plugin):
    """``reid.mode: unsupervised``: the placeholder matching loss (Eq. 3-8), with
    ``reid.batch_neg_ratio`` negative pairs across the batch's scenes."""

    name = "unsupervised_reid"
    replaces = ("reid",)
    needs_pairs = True

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        m = cfg.reid.matching
        self.options = {"placeholder": m.placeholder, "temperature": m.temperature,
                        "margin": m.margin, "terms": tuple(m.terms)}
        self.batch_neg_ratio = check_ratio(cfg.reid.batch_neg_ratio, "reid.batch_neg_ratio")

    def loss_terms(self, outputs: dict[str, torch.Tensor],
                   batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        emb_a, emb_b, mask_a, mask_b, negative = pair_embeddings(outputs["id"], batch,
                                                                 self.batch_neg_ratio)
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
