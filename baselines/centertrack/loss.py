"""CenterTrack's loss composer: detection terms, the tracking offset, plugin terms; a plain
weighted sum (CenterTrack has no uncertainty weighting)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from baselines.base import REID_TERM, add_plugin_terms, weighted_groups
from utrack.config import Config
from utrack.losses.focal import focal_loss
from utrack.losses.regression import masked_l1_loss
from utrack.plugin import Plugin, replaced_terms


class CenterTrackLoss(nn.Module):
    """``(outputs, batch) -> (total, terms)``.

    Terms: ``hm`` (focal), ``wh`` (L1 on the box width and height at output scale, weight
    ``loss.wh_weight`` = 0.1), ``ltrb_amodal`` (L1 on the left/top/right/bottom distances, same
    weight; only with ``model.ltrb_amodal``), ``reg`` (L1 on the centre offset), ``tracking``
    (L1 on the offset to the previous centre, over ``tracking_mask``, ``loss.tracking_weight``),
    then the plugins' terms as FairMOT's composer treats them (``add_plugin_terms``: weights
    from ``plugin.term_weights``, a ``reid`` term with ``reid.weight``, ``/`` names logged
    only). Total: the weighted sum of everything but the diagnostics.

    Batch keys used: ``hm`` (B,1,H,W), ``ind`` (B,K), ``reg_mask`` (B,K), ``wh`` (B,K,4) (the
    encoder's ltrb; the 2-channel target is ``l + r, t + b``), ``reg`` (B,K,2), ``tracking``
    (B,K,2), ``tracking_mask`` (B,K).
    """

    def __init__(self, cfg: Config, plugins: list[Plugin]) -> None:
        super().__init__()
        unknown = replaced_terms(plugins) - {REID_TERM}
        if unknown:
            raise ValueError(f"plugins replace unknown CenterTrack loss terms: {sorted(unknown)}")
        loss = cfg.loss
        self.weights = {"hm": loss.hm_weight, "wh": loss.wh_weight, "reg": loss.reg_weight,
                        "tracking": loss.tracking_weight, REID_TERM: cfg.reid.weight}
        self.amodal = cfg.model.ltrb_amodal
        if self.amodal:
            self.weights["ltrb_amodal"] = loss.wh_weight
        self.plugins = nn.ModuleList(plugins)

    def forward(self, outputs: dict[str, torch.Tensor],
                batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ind, mask, ltrb = batch["ind"], batch["reg_mask"], batch["wh"]
        size = ltrb[..., :2] + ltrb[..., 2:]  # (B, K, 2) width, height
        terms: dict[str, torch.Tensor] = {
            "hm": focal_loss(outputs["hm"], batch["hm"]),
            "wh": masked_l1_loss(outputs["wh"], ind, mask, size),
            "reg": masked_l1_loss(outputs["reg"], ind, mask, batch["reg"]),
            "tracking": masked_l1_loss(outputs["tracking"], ind, batch["tracking_mask"],
                                       batch["tracking"]),
        }
        if self.amodal:
            terms["ltrb_amodal"] = masked_l1_loss(outputs["ltrb_amodal"], ind, mask, ltrb)
        weights = dict(self.weights)
        add_plugin_terms(list(self.plugins), outputs, batch, terms, weights)
        det, reid = weighted_groups(terms, weights)
        total = det if reid is None else det + reid
        logged = {name: value.detach() for name, value in terms.items()}
        logged["det"] = det.detach()
        return total, logged
