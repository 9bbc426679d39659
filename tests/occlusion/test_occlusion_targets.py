"""Occlusion pairs (Eq. 9) and heatmap targets (Eq. 10, 13) on hand-made boxes and against a
naive double loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from utrack.data.gaussian import integer_radius
from utrack.occlusion import encode_occlusion_targets, occlusion_pairs, oracle_occlusion_centers

# Fig. 3 of the paper, drawn in a 480 x 320 input (output map 120 x 80 at R = 4):
# left, box 1 partly behind box 0: intersection (90, 60, 140, 200) = 50 x 140 = 7000,
#   min area = area(b1) = 60 x 140 = 8400, ratio 0.833 > 0.7 -> an occlusion;
# right, boxes 2 and 3 overlap: intersection (340, 60, 380, 240) = 40 x 180 = 7200,
#   both areas 80 x 200 = 16000, ratio 0.45 -> not an occlusion.
FIG3 = np.array([[40, 20, 140, 260],
                 [90, 60, 150, 200],
                 [300, 40, 380, 240],
                 [340, 60, 420, 260]], dtype=np.float32)


def naive_pairs(boxes: np.ndarray, tau: float) -> tuple[list[tuple[int, int]], list[list[float]]]:
    pairs, overlaps = [], []
    b = boxes.astype(float).tolist()
    for i in range(len(b)):
        for j in range(i + 1, len(b)):
            x1, y1 = max(b[i][0], b[j][0]), max(b[i][1], b[j][1])
            x2, y2 = min(b[i][2], b[j][2]), min(b[i][3], b[j][3])
            inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
            area_i = max(0.0, b[i][2] - b[i][0]) * max(0.0, b[i][3] - b[i][1])
            area_j = max(0.0, b[j][2] - b[j][0]) * max(0.0, b[j][3] - b[j][1])
            smaller = min(area_i, area_j)
            if smaller > 0 and inter / smaller > tau:
                pairs.append((i, j))
                overlaps.append([x1, y1, x2, y2])
    return pairs, overlaps


def naive_heatmap(overlaps: np.ndarray, out_w: int, out_h: int, r_ratio: int = 4) -> np.ndarray:
    """Max of explicit gaussians exp(-d^2 / (2 sigma^2)), sigma = (2r+1)/6, on the (2r+1)^2
    window around floor(centre / R)."""
    hm = np.zeros((out_h, out_w))
    ys, xs = np.mgrid[0:out_h, 0:out_w]
    for o in np.asarray(overlaps, float).reshape(-1, 4) / r_ratio:
        cx, cy = math.floor((o[0] + o[2]) / 2), math.floor((o[1] + o[3]) / 2)
        if not (0 <= cx < out_w and 0 <= cy < out_h):
            continue
        r = int(integer_radius(o[3] - o[1], o[2] - o[0], 0.7))
        sigma = (2 * r + 1) / 6
        g = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2))
        g[(abs(xs - cx) > r) | (abs(ys - cy) > r)] = 0
        hm = np.maximum(hm, g)
    return hm


def encode_np(boxes: np.ndarray, input_w: int, input_h: int) -> dict[str, np.ndarray]:
    """encode_occlusion_targets, checking it returns CPU tensors of the documented dtypes."""
    t = encode_occlusion_targets(boxes, input_w, input_h)
    dtypes = {"occ_hm": torch.float32, "occ_ind": torch.int64, "occ_off": torch.float32,
              "occ_mask": torch.bool}
    assert {k: v.dtype for k, v in t.items()} == dtypes
    return {k: v.numpy() for k, v in t.items()}


def random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(0, 400, size=(n, 2))
    wh = rng.uniform([5, 10], [80, 160], size=(n, 2))
    wh[rng.random(n) < 0.05, 0] = 0.0  # some zero-area boxes
    return np.concatenate([xy, xy + wh], axis=1)


def test_fig3_pairs_and_intersection() -> None:
    pairs, overlaps = occlusion_pairs(FIG3)
    assert isinstance(pairs, np.ndarray) and pairs.dtype == np.int64
    np.testing.assert_array_equal(pairs, [[0, 1]])
    np.testing.assert_array_equal(overlaps, [[90, 60, 140, 200]])
    np.testing.assert_array_equal(oracle_occlusion_centers(FIG3), [[115, 130]])


def test_fig3_targets() -> None:
    t = encode_np(FIG3, 480, 320)
    hm = t["occ_hm"]
    assert hm.shape == (1, 80, 120)
    # centre (115, 130) / 4 = (28.75, 32.5): peak cell (28, 32), offset (0.75, 0.5)
    np.testing.assert_array_equal(t["occ_ind"], [32 * 120 + 28])
    np.testing.assert_array_equal(t["occ_off"], np.array([[0.75, 0.5]], np.float32))
    np.testing.assert_array_equal(t["occ_mask"], [True])
    # intersection at output scale: w = 12.5, h = 35. The three roots of the radius rule are
    # ~45.8, ~89.1 and (-1.4 * 47.5 + sqrt(66.5^2 + 4 * 2.8 * 131.25)) / 2 = 5.13 -> r = 5,
    # sigma = 11 / 6
    r, sigma = 5, 11 / 6
    assert hm[0, 32, 28] == 1.0
    assert np.unravel_index(hm[0].argmax(), hm[0].shape) == (32, 28)
    assert hm[0, 32, 29] == pytest.approx(math.exp(-1 / (2 * sigma ** 2)), rel=1e-6)
    assert hm[0, 34, 25] == pytest.approx(math.exp(-(9 + 4) / (2 * sigma ** 2)), rel=1e-6)
    rows, cols = np.nonzero(hm[0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (32 - r, 32 + r, 28 - r, 28 + r)
    assert len(rows) == (2 * r + 1) ** 2  # only the one occlusion is drawn


def test_ratio_exactly_tau_is_not_a_pair() -> None:
    # intersection 7 x 10 = 70 over the smaller area 100: exactly 0.7
    boxes = np.array([[0, 0, 10, 10], [3, 0, 13, 10], [3, -5, 30, 20]], dtype=np.float64)
    pairs, overlaps = occlusion_pairs(boxes)
    # (0, 1): 70 / 100; (0, 2): 70 / min(100, 675); (1, 2): 100 / 100 -> only (1, 2)
    np.testing.assert_array_equal(pairs, [[1, 2]])
    np.testing.assert_array_equal(overlaps, [[3, 0, 13, 10]])
    pairs, _ = occlusion_pairs(np.array([[0, 0, 10, 10], [2.5, 0, 12.5, 10]]))  # 0.75
    np.testing.assert_array_equal(pairs, [[0, 1]])


def test_three_mutually_overlapping_boxes_each_pair_once() -> None:
    # (0,1): 9 x 9 = 81 / 100; (0,2): 8 x 10 = 80 / 100; (1,2): 9 x 9 = 81 / 100
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [2, 0, 12, 10]], dtype=np.float32)
    pairs, overlaps = occlusion_pairs(boxes)
    np.testing.assert_array_equal(pairs, [[0, 1], [0, 2], [1, 2]])
    np.testing.assert_array_equal(overlaps, [[1, 1, 10, 10], [2, 0, 10, 10], [2, 1, 11, 10]])
    t = encode_np(boxes * 8, 128, 128)
    assert t["occ_mask"].tolist() == [True, True, True]
    # centres x8 / 4 = x2: (11, 11), (12, 10), (13, 11): composed by max
    np.testing.assert_allclose(t["occ_hm"][0], naive_heatmap(overlaps * 8, 32, 32), atol=1e-6)
    assert t["occ_hm"][0, 11, 11] == t["occ_hm"][0, 10, 12] == t["occ_hm"][0, 11, 13] == 1.0


@pytest.mark.parametrize("n", [0, 1, 300])
def test_vectorised_equals_naive_loop(n: int) -> None:
    boxes = random_boxes(np.random.default_rng(n), n)
    pairs, overlaps = occlusion_pairs(boxes)
    expected_pairs, expected_overlaps = naive_pairs(boxes, 0.7)
    assert pairs.shape == (len(expected_pairs), 2) and overlaps.shape == (len(expected_pairs), 4)
    np.testing.assert_array_equal(pairs, np.array(expected_pairs, np.int64).reshape(-1, 2))
    np.testing.assert_allclose(overlaps, np.array(expected_overlaps).reshape(-1, 4))
    if n == 300:
        assert len(expected_pairs) > 20  # the random scene is crowded enough to mean something

    t = encode_np(boxes, 416, 416)
    centres = (np.array(expected_overlaps).reshape(-1, 4) / 4)
    centres = np.stack([centres[:, [0, 2]].mean(1), centres[:, [1, 3]].mean(1)], 1)
    cells = np.floor(centres)
    inside = (cells >= 0).all(1) & (cells[:, 0] < 104) & (cells[:, 1] < 104)
    np.testing.assert_array_equal(t["occ_mask"], inside)
    np.testing.assert_array_equal(t["occ_ind"][inside], (cells[:, 1] * 104 + cells[:, 0])[inside])
    np.testing.assert_allclose(t["occ_off"][inside], (centres - cells)[inside], atol=1e-5)
    np.testing.assert_allclose(t["occ_hm"][0], naive_heatmap(np.array(expected_overlaps), 104, 104),
                               atol=1e-6)


def test_zero_area_boxes_never_pair() -> None:
    boxes = np.array([[5, 5, 5, 20], [0, 0, 10, 30], [5, 5, 5, 20]], dtype=np.float64)
    pairs, overlaps = occlusion_pairs(boxes)
    assert pairs.shape == (0, 2) and overlaps.shape == (0, 4)


def test_no_pairs_gives_empty_targets() -> None:
    t = encode_np(np.zeros((0, 4), np.float32), 64, 32)
    assert t["occ_hm"].shape == (1, 8, 16) and not t["occ_hm"].any()
    assert t["occ_ind"].shape == (0,) and t["occ_off"].shape == (0, 2)
    assert t["occ_mask"].shape == (0,)
    with pytest.raises(ValueError, match="divisible"):
        encode_occlusion_targets(np.zeros((0, 4)), 66, 32)


def test_centre_outside_map_is_masked_and_not_drawn() -> None:
    # pair (0, 1): intersection (470, 0, 520, 40), centre x 495 / 4 = 123.75, past the 120 columns
    # pair (2, 3): intersection (12, 10, 50, 50), centre (31, 30) / 4 = (7.75, 7.5)
    boxes = np.array([[470, 0, 520, 40], [460, 0, 520, 40], [10, 10, 50, 50], [12, 10, 52, 50]])
    pairs, _ = occlusion_pairs(boxes)
    np.testing.assert_array_equal(pairs, [[0, 1], [2, 3]])
    t = encode_np(boxes, 480, 320)
    assert t["occ_mask"].tolist() == [False, True]
    assert t["occ_ind"].tolist() == [0, 7 * 120 + 7]
    assert not t["occ_hm"][0, :, 60:].any()  # nothing drawn near the right border
    assert t["occ_hm"][0, 7, 7] == 1.0


def test_torch_in_torch_out() -> None:
    boxes = torch.tensor(FIG3)
    pairs, overlaps = occlusion_pairs(boxes)
    assert isinstance(pairs, torch.Tensor) and pairs.dtype == torch.int64
    assert isinstance(overlaps, torch.Tensor) and overlaps.dtype == torch.float32
    assert pairs.tolist() == [[0, 1]] and overlaps.tolist() == [[90, 60, 140, 200]]
    centres = oracle_occlusion_centers(boxes)
    assert isinstance(centres, torch.Tensor) and centres.tolist() == [[115.0, 130.0]]
    t = encode_occlusion_targets(boxes, 480, 320)
    assert isinstance(t["occ_hm"], torch.Tensor) and t["occ_ind"].tolist() == [32 * 120 + 28]
