"""CenterTrack's loss composer against a naive recomputation, and plugin terms treated as in
FairMOT's composer (the shared ``add_plugin_terms``)."""

from __future__ import annotations

import pytest
import torch

from baselines import build_baseline
from baselines.base import add_plugin_terms, weighted_groups
from utrack.losses.focal import focal_loss
from utrack.plugin import Plugin


class TermPlugin(Plugin):
    """Returns fixed terms: ``extra`` (weight 3), a diagnostic, and optionally ``reid``."""

    name = "terms"
    term_weights = {"extra": 3.0}

    def __init__(self, reid: bool = False) -> None:
        super().__init__()
        self.reid = reid

    def loss_terms(self, outputs, batch):
        terms = {"extra": outputs["hm"].sum() * 0 + 2.0, "extra/diag": torch.tensor(100.0)}
        if self.reid:
            terms["reid"] = torch.tensor(4.0)
        return terms


def naive_l1(pred_map: torch.Tensor, ind: torch.Tensor, mask: torch.Tensor,
             target: torch.Tensor) -> torch.Tensor:
    """Mean |pred - target| over masked slots and channels, one slot at a time."""
    b, c, _, w = pred_map.shape
    total, count = 0.0, 0
    for i in range(b):
        for k in range(ind.shape[1]):
            if mask[i, k]:
                y, x = divmod(int(ind[i, k]), w)
                total += (pred_map[i, :, y, x] - target[i, k]).abs().sum().item()
                count += c
    return torch.tensor(total / (count + 1e-4))


def make_batch_and_outputs(amodal: bool = True, b: int = 2, k: int = 3, h: int = 4, w: int = 6
                           ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Random head outputs (B=2, 4x6 grid, K=3 slots) and a batch with hand-placed centres."""
    g = torch.Generator().manual_seed(0)
    outputs = {"hm": torch.randn(b, 1, h, w, generator=g), "reg": torch.rand(b, 2, h, w, generator=g),
               "wh": 5 * torch.rand(b, 2, h, w, generator=g),
               "tracking": torch.randn(b, 2, h, w, generator=g)}
    if amodal:
        outputs["ltrb_amodal"] = 3 * torch.rand(b, 4, h, w, generator=g)
    hm = torch.zeros(b, 1, h, w)
    hm[0, 0, 1, 2] = 1.0
    hm[0, 0, 1, 3] = 0.5
    hm[1, 0, 3, 5] = 1.0
    batch = {"hm": hm, "ind": torch.tensor([[8, 20, 0], [23, 0, 0]]),
             "reg_mask": torch.tensor([[True, True, False], [True, False, False]]),
             "wh": 3 * torch.rand(b, k, 4, generator=g), "reg": torch.rand(b, k, 2, generator=g),
             "tracking": torch.randn(b, k, 2, generator=g),
             "tracking_mask": torch.tensor([[True, False, False], [True, False, False]])}
    return outputs, batch


def test_terms_and_plain_weighted_sum(make_cfg) -> None:
    cfg = make_cfg("loss.tracking_weight=2.0")
    criterion = build_baseline(cfg, []).build_criterion(0)
    assert not any(True for _ in criterion.parameters())  # no uncertainty weights
    outputs, batch = make_batch_and_outputs()
    total, terms = criterion(outputs, batch)
    ind, mask = batch["ind"], batch["reg_mask"]
    size = torch.stack([batch["wh"][..., 0] + batch["wh"][..., 2],
                        batch["wh"][..., 1] + batch["wh"][..., 3]], -1)
    expected = {
        "hm": focal_loss(outputs["hm"], batch["hm"]),
        "wh": naive_l1(outputs["wh"], ind, mask, size),
        "reg": naive_l1(outputs["reg"], ind, mask, batch["reg"]),
        "tracking": naive_l1(outputs["tracking"], ind, batch["tracking_mask"], batch["tracking"]),
        "ltrb_amodal": naive_l1(outputs["ltrb_amodal"], ind, mask, batch["wh"]),
    }
    assert set(terms) == set(expected) | {"det"}
    for name, value in expected.items():
        assert torch.isclose(terms[name], value, rtol=1e-5), name
    want = (expected["hm"] + 0.1 * expected["wh"] + expected["reg"]
            + 2.0 * expected["tracking"] + 0.1 * expected["ltrb_amodal"])
    assert torch.isclose(total, want, rtol=1e-5) and torch.isclose(terms["det"], want, rtol=1e-5)

    plain = build_baseline(make_cfg("model.ltrb_amodal=false"), []).build_criterion(0)
    outputs, batch = make_batch_and_outputs(amodal=False)
    _, terms = plain(outputs, batch)
    assert "ltrb_amodal" not in terms


def test_plugin_terms_as_in_fairmot(make_cfg) -> None:
    cfg = make_cfg("reid.weight=0.5")
    outputs, batch = make_batch_and_outputs()
    base_total, base_terms = build_baseline(cfg, []).build_criterion(0)(outputs, batch)
    total, terms = build_baseline(cfg, [TermPlugin(reid=True)]).build_criterion(0)(outputs, batch)
    # extra: weight 3; reid: cfg.reid.weight; the diagnostic is logged only
    assert torch.isclose(total, base_total + 3.0 * 2.0 + 0.5 * 4.0)
    assert terms["extra/diag"] == 100.0 and terms["reid"] == 4.0
    assert torch.isclose(terms["det"], base_terms["det"] + 6.0)

    class Clash(Plugin):
        name = "clash"

        def loss_terms(self, outputs, batch):
            return {"tracking": torch.tensor(1.0)}

    with pytest.raises(ValueError, match="tracking"):
        build_baseline(cfg, [Clash()]).build_criterion(0)(outputs, batch)

    class ReplacesWh(Plugin):
        name = "replaces_wh"
        replaces = ("wh",)

    with pytest.raises(ValueError, match="wh"):
        build_baseline(cfg, [ReplacesWh()]).build_criterion(0)


def test_shared_helpers_by_hand() -> None:
    terms = {"hm": torch.tensor(1.0)}
    weights = {"hm": 1.0, "reid": 0.25}
    add_plugin_terms([TermPlugin(reid=True)], {"hm": torch.zeros(1)}, {}, terms, weights)
    assert weights == {"hm": 1.0, "reid": 0.25, "extra": 3.0}
    det, reid = weighted_groups(terms, weights)
    assert det == 1.0 + 3.0 * 2.0 and reid == 0.25 * 4.0
    det, reid = weighted_groups({"hm": torch.tensor(2.0), "x/y": torch.tensor(9.0)},
                                {"hm": 1.0, "reid": 1.0})
    assert det == 2.0 and reid is None
