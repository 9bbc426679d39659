"""FairMOT's loss composer: detection terms, the re-ID term, plugin terms, task weighting."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from baselines.base import REID_TERM, add_plugin_terms, weighted_groups
from utrack.config import Config
from utrack.losses.classifier import ClassifierReIDLoss
from utrack.losses.focal import focal_loss
from utrack.losses.regression import masked_l1_loss
from utrack.losses.uncertainty import UncertaintyWeighting
from utrack.plugin import Plugin, replaced_terms


class FairMOTLoss(nn.Module):
    """``(outputs, batch) -> (total, terms)``.

    Detection group: ``hm`` (focal), ``wh`` (L1 on left/top/right/bottom, weight 0.1), ``reg``
    (L1 on the centre offset) and every plugin term except ``reid``, each times its weight.
    Identity group: the ``reid`` term, FairMOT's classifier unless a plugin replaces it.
    Total: FairMOT's uncertainty weighting ``0.5 (e^-s_det L_det + e^-s_id L_id + s_det + s_id)``
    (or the plain sum with ``loss.uncertainty: false``).

    Batch keys used (from utrack.data.targets): ``hm`` (B,1,H,W), ``ind`` (B,K), ``reg_mask``
    (B,K), ``wh`` (B,K,4), ``reg`` (B,K,2), ``ids`` (B,K); optional ``hm_ignore`` (B,1,H,W) bool,
    ignore regions left out of the heatmap's negative term (image data, utrack.data.images).
    """

    def __init__(self, cfg: Config, plugins: list[Plugin], num_ids: int = 0) -> None:
        super().__init__()
        self.weights = {"hm": cfg.loss.hm_weight, "wh": cfg.loss.wh_weight,
                        "reg": cfg.loss.reg_weight, REID_TERM: cfg.reid.weight}
        replaced = replaced_terms(plugins)
        unknown = replaced - {REID_TERM}
        if unknown:
            raise ValueError(f"plugins replace unknown FairMOT loss terms: {sorted(unknown)}")
        self.reid: ClassifierReIDLoss | None = None
        if cfg.reid.mode == "supervised" and REID_TERM not in replaced:
            self.reid = ClassifierReIDLoss(num_ids, cfg.reid.dim)
        self.plugins = nn.ModuleList(plugins)
        self.uncertainty = (UncertaintyWeighting(cfg.loss.s_det, cfg.loss.s_id)
                            if cfg.loss.uncertainty else None)

    def forward(self, outputs: dict[str, torch.Tensor],
                batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms: dict[str, torch.Tensor] = {
            "hm": focal_loss(outputs["hm"], batch["hm"], ignore=batch.get("hm_ignore")),
            "wh": masked_l1_loss(outputs["wh"], batch["ind"], batch["reg_mask"], batch["wh"]),
            "reg": masked_l1_loss(outputs["reg"], batch["ind"], batch["reg_mask"], batch["reg"]),
        }
        weights = dict(self.weights)
        if self.reid is not None:
            terms[REID_TERM] = self.reid(outputs["id"], batch["ind"], batch["reg_mask"], batch["ids"])
        add_plugin_terms(list(self.plugins), outputs, batch, terms, weights)
        det, reid = weighted_groups(terms, weights)
        if self.uncertainty is not None:
            total = self.uncertainty(det, reid)
        else:
            total = det if reid is None else det + reid
        logged = {name: value.detach() for name, value in terms.items()}
        logged["det"] = det.detach()
        return total, logged
