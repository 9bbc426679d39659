"""CenterNet targets against values computed by hand (64x64 input, output stride 4 -> 16x16)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from utrack.data.targets import encode_centernet_targets


def naive_peak(shape: tuple[int, int], cx: int, cy: int, radius: int) -> np.ndarray:
    """A gaussian of peak 1, sigma (2r+1)/6, zero outside the (2r+1)^2 window, pixel by pixel."""
    out = np.zeros(shape, np.float64)
    sigma = (2 * radius + 1) / 6
    for y in range(shape[0]):
        for x in range(shape[1]):
            if abs(x - cx) <= radius and abs(y - cy) <= radius:
                out[y, x] = math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2))
    return out


def test_one_box_hand_computed() -> None:
    # output-scale box (2, 3, 6, 11): w 4, h 8, centre (4, 7) on the grid
    t = encode_centernet_targets(np.array([[8, 12, 24, 44]]), np.array([5]), 64, 64)
    assert t["hm"].shape == (1, 16, 16) and t["hm"].dtype == torch.float32
    # radius rule for h=8, w=4, overlap 0.7: roots 11.51, 22.28, (-16.8 + sqrt(389.76)) / 2 = 1.47
    hm = t["hm"][0].numpy()
    assert hm[7, 4] == 1.0 and hm.max() == 1.0
    assert hm[7, 5] == pytest.approx(math.exp(-2), rel=1e-5)  # radius 1: sigma 0.5
    assert hm[8, 5] == pytest.approx(math.exp(-4), rel=1e-4)
    assert hm[7, 6] == 0 and hm[9, 4] == 0  # outside the 3x3 window
    assert np.count_nonzero(hm) == 9
    assert t["ind"].tolist() == [7 * 16 + 4]
    assert t["wh"].tolist() == [[2.0, 4.0, 2.0, 4.0]]
    assert t["reg"].tolist() == [[0.0, 0.0]]
    assert t["reg_mask"].tolist() == [True] and t["ids"].tolist() == [5]
    assert t["ind"].dtype == torch.int64 and t["reg_mask"].dtype == torch.bool


def test_sub_pixel_centre() -> None:
    # output-scale box (2.25, 3.25, 6.75, 10.25): centre (4.5, 6.75)
    t = encode_centernet_targets(np.array([[9, 13, 27, 41]], np.float32), None, 64, 64)
    assert t["ind"].tolist() == [6 * 16 + 4]
    np.testing.assert_allclose(t["reg"].numpy(), [[0.5, 0.75]])
    np.testing.assert_allclose(t["wh"].numpy(), [[2.25, 3.5, 2.25, 3.5]])
    assert t["ids"].tolist() == [-1]
    assert t["hm"][0, 6, 4] == 1.0


def test_two_boxes_compose_by_max() -> None:
    # box A: output (0, 0, 16, 40) in a 128x192 input -> 32x48 grid: w 16, h 40, radius 6
    # (sqrt((1.4*56)^2 + 4*2.8*192) = 91.088 -> (-78.4 + 91.088) / 2 = 6.34); box B small nearby
    boxes = np.array([[0, 0, 64, 160], [40, 60, 56, 92]], np.float32)
    t = encode_centernet_targets(boxes, np.array([3, 9]), 128, 192)
    hm = t["hm"][0].numpy()
    assert hm.shape == (48, 32)
    want = np.maximum(naive_peak((48, 32), 8, 20, 6), naive_peak((48, 32), 12, 19, 1))
    # box B: output (10, 15, 14, 23): w 4, h 8 -> radius 1, centre (12, 19)
    np.testing.assert_allclose(hm, want, atol=1e-6)
    assert t["ind"].tolist() == [20 * 32 + 8, 19 * 32 + 12]
    np.testing.assert_allclose(t["wh"].numpy(), [[8, 20, 8, 20], [2, 4, 2, 4]])
    assert t["ids"].tolist() == [3, 9]


def test_zero_boxes() -> None:
    t = encode_centernet_targets(np.zeros((0, 4)), np.zeros((0,), np.int64), 64, 32)
    assert t["hm"].shape == (1, 8, 16) and t["hm"].abs().sum() == 0
    assert t["ind"].shape == (0,) and t["wh"].shape == (0, 4) and t["reg"].shape == (0, 2)
    assert t["reg_mask"].shape == (0,) and t["ids"].shape == (0,)


def test_boxes_outside_or_clipped() -> None:
    boxes = np.array([[70, 10, 90, 30], [-8, 8, 8, 24]], np.float32)  # outside; half outside
    t = encode_centernet_targets(boxes, np.array([1, 2]), 64, 64)
    assert t["reg_mask"].tolist() == [False, True]
    assert t["ind"][0] == 0 and t["wh"][0].abs().sum() == 0 and t["reg"][0].abs().sum() == 0
    # clipped to output (0, 2, 2, 6): centre (1, 4); ltrb to the unclipped edges (-2 .. 2)
    assert t["ind"][1] == 4 * 16 + 1
    np.testing.assert_allclose(t["wh"][1].numpy(), [3, 2, 1, 2])
    assert t["hm"][0, 4, 1] == 1.0 and int((t["hm"] == 1).sum()) == 1


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="divisible"):
        encode_centernet_targets(np.zeros((0, 4)), None, 66, 64)
    with pytest.raises(ValueError, match="ids"):
        encode_centernet_targets(np.zeros((2, 4)), np.zeros(3), 64, 64)


def test_radius_uses_the_box_size_rounded_up() -> None:
    # at output scale the box is 7.25 wide and 20.25 high: FairMOT takes the radius of
    # ceil(h) x ceil(w) = 21 x 8 -> gaussian_radius 3.22 -> 3 (20.25 x 7.25 would give 2.97 -> 2)
    from utrack.data.gaussian import gaussian_radius

    assert int(gaussian_radius(21, 8)) == 3 and int(gaussian_radius(20.25, 7.25)) == 2
    t = encode_centernet_targets(np.array([[40.0, 20.0, 69.0, 101.0]]), None, 256, 256)
    hm = t["hm"][0].numpy()
    cy, cx = divmod(int(t["ind"][0]), hm.shape[1])
    row = hm[cy]
    assert row[cx + 3] > 0 and row[cx + 4] == 0  # the peak spans exactly radius 3
