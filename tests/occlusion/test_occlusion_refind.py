"""Box recovery (Eq. 15-16) and lost-object refinding (Algorithm 1 step 5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from utrack.data.gaussian import integer_radius
from utrack.occlusion import RefindResult, recover_box, refind_lost_box, refind_lost_boxes

# Predicted box: x in [10, 50] (w 40), y in [20, 100] (h 80). In the x cases the occluder's y
# extent [30, 90] lies inside [20, 100]: the y branch is "covers the occluder" and y stays.
# In the y cases the occluder's x extent [20, 40] does the same for x.
PRED = np.array([10.0, 20.0, 50.0, 100.0])
F_CASES = [
    # occluder, centre, expected recovered box
    # x, a1 <= b1 and a2 <= b2: 2z - b1 - w = 2*42 - 30 - 40 = 14
    ([30, 30, 90, 90], [42, 60], [14, 20, 54, 100]),
    # x, a1 > b1 and a2 <= b2: z - w/2 = 33 - 20 = 13
    ([0, 30, 60, 90], [33, 60], [13, 20, 53, 100]),
    # x, a1 > b1 and a2 > b2: 2z - b2 = 2*27 - 40 = 14
    ([0, 30, 40, 90], [27, 60], [14, 20, 54, 100]),
    # x, a1 <= b1 and a2 > b2: unchanged 10
    ([20, 30, 40, 90], [33, 60], [10, 20, 50, 100]),
    # y, a1 <= b1 and a2 <= b2: 2z - b1 - h = 2*75 - 40 - 80 = 30
    ([20, 40, 40, 150], [30, 75], [10, 30, 50, 110]),
    # y, a1 > b1 and a2 <= b2: z - h/2 = 64 - 40 = 24
    ([20, 0, 40, 120], [30, 64], [10, 24, 50, 104]),
    # y, a1 > b1 and a2 > b2: 2z - b2 = 2*52 - 90 = 14
    ([20, 10, 40, 90], [30, 52], [10, 14, 50, 94]),
    # y, a1 <= b1 and a2 > b2: unchanged 20
    ([20, 30, 40, 90], [30, 64], [10, 20, 50, 100]),
    # both axes at once: x 2z - b2 = 2*27 - 40 = 14; y z - h/2 = 64 - 40 = 24
    ([0, 0, 40, 120], [27, 64], [14, 24, 54, 104]),
    # equal edges go to the a1 <= b1 / a2 <= b2 branch: x 2*30 - 10 - 40 = 10
    ([10, 30, 50, 90], [30, 60], [10, 20, 50, 100]),
]


@pytest.mark.parametrize("occluder, centre, expected", F_CASES)
def test_recover_box_every_branch(occluder: list, centre: list, expected: list) -> None:
    out = recover_box(PRED, np.array(occluder, float), np.array(centre, float))
    assert isinstance(out, np.ndarray) and out.shape == (4,)
    np.testing.assert_allclose(out, expected)


def test_recover_box_torch_in_torch_out() -> None:
    out = recover_box(torch.tensor(PRED, dtype=torch.float32), torch.tensor([0.0, 30, 60, 90]),
                      torch.tensor([33.0, 60]))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert out.tolist() == [13, 20, 53, 100]


def _axis_case(rng: np.random.Generator, case: int, margin: float
               ) -> tuple[float, float, float, float]:
    """True object extent [a1, a2] and occluder extent [b1, b2] in one axis, in branch ``case``
    of F with every inequality holding by more than ``margin``; the intersection is >= 52 px."""
    b1 = rng.uniform(0, 100)
    b2 = b1 + rng.uniform(150, 250)
    if case == 1:    # sticks out before: a1 < b1, b1 < a2 < b2
        a1 = b1 - rng.uniform(margin, 60)
        a2 = rng.uniform(b1 + 52, b2 - margin)
    elif case == 2:  # inside the occluder
        a1 = rng.uniform(b1 + margin, b1 + 60)
        a2 = rng.uniform(a1 + 52, b2 - margin)
    elif case == 3:  # sticks out after: b1 < a1 < b2, a2 > b2
        a1 = rng.uniform(b1 + margin, b2 - 52)
        a2 = b2 + rng.uniform(margin, 60)
    else:            # covers the occluder
        a1 = b1 - rng.uniform(margin, 60)
        a2 = b2 + rng.uniform(margin, 60)
    return a1, a2, b1, b2


def test_refind_recovers_true_edges_property() -> None:
    """A true box partly covered by an occluder, the true intersection centre, and a prediction
    of the same size shifted by up to 2 px per axis.

    Per axis, with the prediction in the same branch of F as the true box (the inequalities hold
    by a margin larger than the shift), the true centre ``z`` determines the true low edge ``A1``:
    - sticks out before (intersection [b1, A2]): z = (b1 + A2) / 2 so 2z - b1 - w = A2 - w = A1;
    - inside (intersection [A1, A2]: the occluder covers the object in this axis): z is the
      object's own centre, so z - w/2 = A1;
    - sticks out after (intersection [A1, b2]): z = (A1 + b2) / 2 so 2z - b2 = A1;
    - covers the occluder (intersection [b1, b2]): z is the occluder's centre and says nothing
      about the object, so the predicted (shifted) edge is kept.
    The score: the prediction's intersection centre moves by at most the shift (inside) or half
    of it, so its distance to z is <= sqrt(2 * 2^2) = 2.83 px = 0.71 output px; the
    intersection is >= 52 px = 13 output px so r >= 3, sigma >= 7/6, G >= exp(-0.5/(2*1.36))
    = 0.83 > 0.7.
    """
    rng = np.random.default_rng(0)
    shift_max = 2.0
    counts = np.zeros((4, 4), int)
    for _ in range(1000):
        cx, cy = rng.integers(1, 5, size=2)
        ax1, ax2, bx1, bx2 = _axis_case(rng, cx, shift_max + 1)
        ay1, ay2, by1, by2 = _axis_case(rng, cy, shift_max + 1)
        true_box = np.array([ax1, ay1, ax2, ay2])
        occluder = np.array([bx1, by1, bx2, by2])
        centre = np.array([(max(ax1, bx1) + min(ax2, bx2)) / 2,
                           (max(ay1, by1) + min(ay2, by2)) / 2])
        shift = rng.uniform(-shift_max, shift_max, size=2)
        pred = true_box + np.array([shift[0], shift[1], shift[0], shift[1]])
        far = np.array([2000.0, 2000, 2100, 2200])  # a distractor that overlaps nothing
        result = refind_lost_box(pred, np.stack([far, occluder]), centre[None])
        assert result is not None, (cx, cy, true_box, occluder, shift)
        assert (result.occluder_index, result.center_index) == (1, 0)
        assert 0.7 < result.score <= 1.0
        box = result.box
        np.testing.assert_allclose(box[2:] - box[:2], true_box[2:] - true_box[:2], atol=1e-9)
        for axis, case in ((0, cx), (1, cy)):
            expected = pred[axis] if case == 4 else true_box[axis]
            assert box[axis] == pytest.approx(expected, abs=1e-9), (axis, case)
        counts[cx - 1, cy - 1] += 1
    assert (counts > 30).all()  # every combination of branches was exercised


def naive_refind(pred: np.ndarray, boxes: np.ndarray, centres: np.ndarray, tau_o: float = 0.7,
                 r_ratio: int = 4) -> tuple[int, int, float] | None:
    best = None
    for j, b in enumerate(boxes):
        x1, y1 = max(pred[0], b[0]), max(pred[1], b[1])
        x2, y2 = min(pred[2], b[2]), min(pred[3], b[3])
        if x2 <= x1 or y2 <= y1:
            continue
        r = int(integer_radius((y2 - y1) / r_ratio, (x2 - x1) / r_ratio, 0.7))
        sigma = (2 * r + 1) / 6
        for k, c in enumerate(centres):
            if not (pred[0] <= c[0] <= pred[2] and pred[1] <= c[1] <= pred[3]):
                continue
            d2 = ((c[0] - (x1 + x2) / 2) ** 2 + (c[1] - (y1 + y2) / 2) ** 2) / r_ratio ** 2
            g = math.exp(-d2 / (2 * sigma ** 2))
            if best is None or g > best[2]:
                best = (j, k, g)
    return best if best is not None and best[2] > tau_o else None


def test_refind_hand_computed_score() -> None:
    pred = np.array([100.0, 100, 140, 200])
    occluder = np.array([120.0, 80, 220, 260])
    # intersection (120, 100, 140, 200): 20 x 100 px = 5 x 25 at output scale, centre (130, 150)
    r = int(integer_radius(25, 5, 0.7))
    assert r == 2  # r3 = (-1.4 * 30 + sqrt(42^2 + 4 * 2.8 * 0.3 * 125)) / 2 = 2.37
    sigma = 5 / 6
    centre = np.array([[131.0, 152.0]])  # (0.25, 0.5) output px away
    result = refind_lost_box(pred, occluder[None], centre)
    assert result is not None
    assert result.score == pytest.approx(math.exp(-(0.0625 + 0.25) / (2 * sigma ** 2)))
    # a1 = 100 <= 120, a2 = 140 <= 220: x1 = 2 * 131 - 120 - 40 = 102;
    # y: 100 > 80, 200 <= 260: y1 = 152 - 50 = 102
    np.testing.assert_allclose(result.box, [102, 102, 142, 202])
    # 2 output px away: exp(-4 / (2 * 25/36)) = 0.056 < 0.7
    assert refind_lost_box(pred, occluder[None], np.array([[138.0, 150.0]])) is None
    assert refind_lost_box(pred, occluder[None], np.array([[138.0, 150.0]]), tau_o=0.05) is not None


def test_refind_none_cases() -> None:
    pred = np.array([100.0, 100, 140, 200])
    inside_centre = np.array([[120.0, 150.0]])
    # no box overlaps (one touches the edge only: zero intersection area, even with a centre
    # right on the degenerate intersection's centre (140, 150))
    assert refind_lost_box(pred, np.array([[140.0, 100, 200, 200], [0, 0, 50, 50]]),
                           np.array([[120.0, 150.0], [140.0, 150.0]])) is None
    # boxes overlap, but no centre inside the predicted box
    occ = np.array([[110.0, 90, 200, 210]])
    assert refind_lost_box(pred, occ, np.array([[150.0, 150.0], [120.0, 99.0]])) is None
    # empty inputs
    assert refind_lost_box(pred, np.zeros((0, 4)), inside_centre) is None
    assert refind_lost_box(pred, occ, np.zeros((0, 2))) is None
    assert refind_lost_boxes(np.zeros((0, 4)), occ, inside_centre) == []
    # the intersection (110, 100, 140, 200) is centred at (125, 150): found there
    assert refind_lost_box(pred, occ, np.array([[125.0, 150.0]])) is not None
    # the predicted box's edges count as inside: intersection (30, 0, 40, 100) centred at
    # (35, 50), a centre on the right edge (40, 50); r = 1 (2.5 x 25 output px), sigma = 1/2,
    # G = exp(-(5/4)^2 / (2/4)) = 0.044
    narrow = np.array([0.0, 0, 40, 100])
    right = refind_lost_box(narrow, np.array([[30.0, 0, 80, 100]]), np.array([[40.0, 50.0]]),
                            tau_o=0.01)
    assert right is not None and right.score == pytest.approx(math.exp(-1.5625 * 2))
    bottom = refind_lost_box(narrow, np.array([[0.0, 90, 40, 150]]), np.array([[20.0, 100.0]]),
                             tau_o=0.01)
    assert bottom is not None and bottom.score == pytest.approx(math.exp(-1.5625 * 2))
    assert refind_lost_box(narrow, np.array([[30.0, 0, 80, 100]]), np.array([[40.5, 50.0]]),
                           tau_o=0.0) is None


def test_refind_picks_best_among_distractors() -> None:
    pred = np.array([100.0, 100, 140, 200])
    # box 0 overlaps nothing; the intersections of boxes 1-3 with pred and their centres:
    # (130, 100, 140, 200) at (135, 150); (100, 100, 140, 180) at (120, 140);
    # (100, 150, 120, 200) at (110, 175)
    boxes = np.array([[0.0, 0, 30, 30], [130.0, 100, 200, 200], [90.0, 60, 160, 180],
                      [60.0, 150, 120, 300]])
    centres = np.array([[300.0, 300],   # outside the predicted box
                        [134.0, 152],   # near box 1's intersection centre
                        [121.0, 141],   # next to box 2's intersection centre: the best
                        [110.0, 169]])  # 6 px from box 3's
    result = refind_lost_box(pred, boxes, centres)
    expected = naive_refind(pred, boxes, centres)
    assert expected is not None and expected[:2] == (2, 2)
    assert (result.occluder_index, result.center_index) == (2, 2)
    assert result.score == pytest.approx(expected[2])
    np.testing.assert_allclose(result.box, recover_box(pred, boxes[2], centres[2]))


def test_refind_ties_go_to_the_first_box_and_centre() -> None:
    pred = np.array([100.0, 100, 140, 200])
    occ = [120.0, 80, 220, 260]
    boxes = np.array([[0.0, 0, 10, 10], occ, occ])
    centres = np.array([[500.0, 500], [131.0, 152.0], [131.0, 152.0]])
    result = refind_lost_box(pred, boxes, centres)
    assert (result.occluder_index, result.center_index) == (1, 1)


def test_batched_equals_per_track_and_naive() -> None:
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 300, size=(40, 2))
    boxes = np.concatenate([xy, xy + rng.uniform([30, 60], [80, 160], size=(40, 2))], 1)
    pxy = rng.uniform(0, 300, size=(60, 2))
    preds = np.concatenate([pxy, pxy + rng.uniform([30, 60], [80, 160], size=(60, 2))], 1)
    # centres near true intersection centres, plus noise centres
    centres = np.concatenate([rng.uniform(0, 400, size=(30, 2)),
                              (boxes[:30, :2] + boxes[:30, 2:]) / 2 + rng.normal(0, 3, (30, 2))])
    batched = refind_lost_boxes(preds, boxes, centres, tau_o=0.3)
    found = 0
    for pred, res in zip(preds, batched):
        single = refind_lost_box(pred, boxes, centres, tau_o=0.3)
        naive = naive_refind(pred, boxes, centres, tau_o=0.3)
        assert (res is None) == (single is None) == (naive is None)
        if res is None:
            continue
        found += 1
        assert isinstance(res, RefindResult)
        assert (res.occluder_index, res.center_index) == (single.occluder_index,
                                                          single.center_index) == naive[:2]
        assert res.score == pytest.approx(naive[2]) and res.score == single.score
        np.testing.assert_allclose(res.box, single.box)
        np.testing.assert_allclose(res.box, recover_box(pred, boxes[naive[0]], centres[naive[1]]))
    assert 5 < found < len(preds)  # both outcomes occur


def test_refind_torch_in_torch_out() -> None:
    pred = torch.tensor([[100.0, 100, 140, 200]])
    res = refind_lost_boxes(pred, torch.tensor([[120.0, 80, 220, 260]]),
                            torch.tensor([[131.0, 152.0]]))[0]
    assert isinstance(res.box, torch.Tensor) and res.box.tolist() == [102, 102, 142, 202]
