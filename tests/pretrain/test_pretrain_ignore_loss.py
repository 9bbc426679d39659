"""Ignore regions cost nothing: the focal loss's ``ignore`` mask and FairMOT's ``hm_ignore``."""

from __future__ import annotations

import math

import pytest
import torch

from baselines import build_baseline
from utrack.config import load_config
from utrack.losses.focal import focal_loss


def naive_focal(logits: list[float], target: list[float], ignore: list[bool]) -> float:
    """CenterNet's focal loss written out per pixel (clamped sigmoid, alpha 2, beta 4)."""
    pos_sum, neg_sum, peaks = 0.0, 0.0, 0
    for x, y, skip in zip(logits, target, ignore):
        p = min(max(1 / (1 + math.exp(-x)), 1e-4), 1 - 1e-4)
        if y == 1:
            pos_sum += math.log(p) * (1 - p) ** 2
            peaks += 1
        elif not skip:
            neg_sum += math.log(1 - p) * p ** 2 * (1 - y) ** 4
    return -(pos_sum + neg_sum) / max(peaks, 1)


def test_focal_ignore_matches_a_per_pixel_computation() -> None:
    logits = [0.3, -1.2, 2.0, 0.0, -0.5, 1.5]
    target = [1.0, 0.5, 0.0, 0.0, 0.8, 0.0]
    ignore = [True, False, True, False, True, False]  # the peak stays positive though ignored
    x = torch.tensor(logits).view(1, 1, 2, 3)
    y = torch.tensor(target).view(1, 1, 2, 3)
    m = torch.tensor(ignore).view(1, 1, 2, 3)
    assert float(focal_loss(x, y, ignore=m)) == \
        pytest.approx(naive_focal(logits, target, ignore), rel=1e-5)
    no_ignore = naive_focal(logits, target, [False] * 6)
    assert float(focal_loss(x, y)) == pytest.approx(no_ignore, rel=1e-5)
    # backward compatible: no mask and an all-False mask give the plain loss exactly
    assert torch.equal(focal_loss(x, y), focal_loss(x, y, ignore=None))
    assert torch.equal(focal_loss(x, y), focal_loss(x, y, ignore=torch.zeros_like(m)))


def test_gradient_is_zero_inside_an_ignore_region() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 12, 16, requires_grad=True)
    target = torch.zeros(2, 1, 12, 16)
    target[0, 0, 3, 3] = 1.0
    target[1, 0, 8, 12] = 1.0
    target[1, 0, 8, 11] = 0.6
    ignore = torch.zeros(2, 1, 12, 16, dtype=torch.bool)
    ignore[0, 0, 5:10, 6:14] = True
    ignore[1, 0, 6:11, 9:15] = True  # holds a peak and part of its gaussian
    focal_loss(logits, target, ignore=ignore).backward()
    grad = logits.grad
    inside = ignore & (target < 1)
    assert torch.all(grad[inside] == 0)
    assert torch.all(grad[~ignore] != 0)  # every other pixel is penalised
    assert grad[1, 0, 8, 12] != 0  # the peak inside the region keeps its positive term


def test_fairmot_loss_reads_hm_ignore_from_the_batch() -> None:
    cfg = load_config([], ["model.backbone=resnet18", "reid.mode=none", "loss.uncertainty=false"])
    criterion = build_baseline(cfg, []).build_criterion(0)
    torch.manual_seed(1)
    outputs = {"hm": torch.randn(1, 1, 8, 8, requires_grad=True),
               "wh": torch.randn(1, 4, 8, 8), "reg": torch.randn(1, 2, 8, 8)}
    batch = {"hm": torch.zeros(1, 1, 8, 8), "ind": torch.tensor([[9]]),
             "reg_mask": torch.tensor([[True]]), "wh": torch.ones(1, 1, 4),
             "reg": torch.zeros(1, 1, 2)}
    batch["hm"][0, 0, 1, 1] = 1.0
    _, plain = criterion(outputs, batch)
    ignore = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    ignore[0, 0, 4:, 4:] = True
    total, terms = criterion(outputs, {**batch, "hm_ignore": ignore})
    total.backward()
    assert torch.all(outputs["hm"].grad[0, 0, 4:, 4:] == 0)
    assert torch.all(outputs["hm"].grad[0, 0, :4] != 0)
    assert float(terms["hm"]) < float(plain["hm"])  # the ignored pixels no longer count
    assert float(terms["hm"]) == float(focal_loss(outputs["hm"].detach(), batch["hm"], ignore=ignore))
