"""The occlusion loss (Eq. 11-14): hand-computed values and normalisation per occlusion."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from utrack.losses.occlusion import occlusion_loss

LOG3 = math.log(1 / 3)  # sigmoid(log(1/3)) = 0.25


def _tiny() -> tuple[torch.Tensor, ...]:
    """A 2 x 2 map with one occlusion at cell (0, 0) and one padded slot."""
    logits = torch.tensor([[[[0.0, 0.0], [LOG3, LOG3]]]])      # p = 0.5, 0.5, 0.25, 0.25
    target = torch.tensor([[[[1.0, 0.5], [0.0, 0.0]]]])
    off_map = torch.zeros(1, 2, 2, 2)
    off_map[0, :, 0, 0] = 0.5
    ind = torch.tensor([[0, 3]])
    off = torch.tensor([[[0.25, 0.75], [9.0, 9.0]]])           # the padded slot holds junk
    mask = torch.tensor([[True, False]])
    return logits, off_map, target, ind, off, mask


# -[(1 - .5)^2 log .5 + (1 - .5)^4 .5^2 log .5 + 2 * (1 - 0)^4 .25^2 log .75]
HM_ONE = -(0.25 * math.log(0.5) + 0.0625 * 0.25 * math.log(0.5) + 2 * 0.0625 * math.log(0.75))
# |0.5 - 0.25| + |0.5 - 0.75|
OFF_ONE = 0.5


def test_hand_computed_value() -> None:
    hm_loss, off_loss = occlusion_loss(*_tiny())
    assert hm_loss.item() == pytest.approx(HM_ONE, rel=1e-5)
    assert off_loss.item() == pytest.approx(OFF_ONE, rel=1e-6)


def test_divided_by_number_of_occlusions_not_peaks() -> None:
    logits, off_map, target, _, _, _ = _tiny()
    # two occlusions whose centres fall in the same cell: one peak, two occlusions
    ind = torch.tensor([[0, 0]])
    off = torch.tensor([[[0.25, 0.75], [0.25, 0.75]]])
    mask = torch.tensor([[True, True]])
    hm_loss, off_loss = occlusion_loss(logits, off_map, target, ind, off, mask)
    assert hm_loss.item() == pytest.approx(HM_ONE / 2, rel=1e-5)
    assert off_loss.item() == pytest.approx(2 * OFF_ONE / 2, rel=1e-6)


def test_doubling_the_batch_keeps_per_occlusion_loss() -> None:
    single = occlusion_loss(*_tiny())
    double = occlusion_loss(*[torch.cat([t, t]) for t in _tiny()])
    assert double[0].item() == pytest.approx(single[0].item(), rel=1e-6)
    assert double[1].item() == pytest.approx(single[1].item(), rel=1e-6)


def test_no_occlusion_is_finite_negative_term_and_zero_offset() -> None:
    logits, off_map, _, ind, off, _ = _tiny()
    logits = logits.clone().requires_grad_(True)
    off_map = off_map.clone().requires_grad_(True)
    target = torch.zeros(1, 1, 2, 2)
    mask = torch.zeros(1, 2, dtype=torch.bool)
    hm_loss, off_loss = occlusion_loss(logits, off_map, target, ind, off, mask)
    # negatives only, divided by 1: 2 * .5^2 log .5 + 2 * .25^2 log .75
    expected = -(2 * 0.25 * math.log(0.5) + 2 * 0.0625 * math.log(0.75))
    assert hm_loss.item() == pytest.approx(expected, rel=1e-5)
    assert off_loss.item() == 0.0
    (hm_loss + off_loss).backward()
    assert torch.isfinite(logits.grad).all() and torch.isfinite(off_map.grad).all()
    assert not off_map.grad.any()
    # an empty batch (P = 0 slots) too
    hm_loss, off_loss = occlusion_loss(logits, off_map, target, torch.zeros(1, 0, dtype=torch.long),
                                       torch.zeros(1, 0, 2), torch.zeros(1, 0, dtype=torch.bool))
    assert torch.isfinite(hm_loss) and off_loss.item() == 0.0


def test_collated_targets_normalised_over_the_batch() -> None:
    """Targets of an image with 3 occlusions and one with none, padded by the data collate: the
    batch loss is the sum of the per-image sums over the 3 occlusions of the batch."""
    from utrack.data.collate import collate_frames
    from utrack.occlusion import encode_occlusion_targets

    boxes_a = np.array([[0, 0, 40, 40], [4, 4, 44, 44], [8, 0, 48, 40]], dtype=np.float32) * 2
    boxes_b = np.array([[0, 0, 40, 40], [60, 60, 100, 100]], dtype=np.float32)
    samples = [encode_occlusion_targets(b, 128, 128) for b in (boxes_a, boxes_b)]
    assert [len(s["occ_ind"]) for s in samples] == [3, 0]
    batch = collate_frames(samples)
    assert batch["occ_mask"].tolist() == [[True] * 3, [False] * 3]
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 32, 32)
    off_map = torch.rand(2, 2, 32, 32)
    keys = ("occ_hm", "occ_ind", "occ_off", "occ_mask")
    hm, off = occlusion_loss(logits, off_map, *(batch[k] for k in keys))
    per_image = [occlusion_loss(logits[i:i + 1], off_map[i:i + 1],
                                *(s[k].unsqueeze(0) for k in keys)) for i, s in enumerate(samples)]
    # image a is normalised by its 3 occlusions, image b by max(0, 1) = 1
    assert hm.item() == pytest.approx((per_image[0][0].item() * 3 + per_image[1][0].item()) / 3,
                                      rel=1e-5)
    assert off.item() == pytest.approx(per_image[0][1].item() * 3 / 3, rel=1e-5)
    assert per_image[1][1].item() == 0.0


def test_normaliser_has_a_floor_per_image() -> None:
    """min_per_image: a batch of 3 images with one occlusion is divided by 3, not by 1; a batch
    with more occlusions than images is divided by its occlusions as in Eq. 14."""
    one = [torch.cat([t, t, t]) for t in _tiny()]
    one[5] = torch.tensor([[True, False], [False, False], [False, False]])  # one valid occlusion
    plain = occlusion_loss(*one)
    floored = occlusion_loss(*one, min_per_image=1.0)
    assert floored[0].item() == pytest.approx(plain[0].item() / 3, rel=1e-6)
    assert floored[1].item() == pytest.approx(plain[1].item() / 3, rel=1e-6)
    # 2 images x 2 valid slots: 4 occlusions >= 2 images, the floor does not bind
    many = [torch.cat([t, t]) for t in _tiny()]
    many[5] = torch.ones(2, 2, dtype=torch.bool)
    for a, b in zip(occlusion_loss(*many), occlusion_loss(*many, min_per_image=1.0)):
        assert a.item() == pytest.approx(b.item(), rel=1e-7)
