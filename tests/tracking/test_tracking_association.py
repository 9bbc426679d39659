"""IoU, cosine distance, motion fusion and the cost-limited assignment, against hand values and
brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from utrack.tracking.association import (
    embedding_distance,
    fuse_motion,
    iou_distance,
    iou_matrix,
    linear_assignment,
)


def test_iou_matrix_by_hand():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], dtype=float)
    b = np.array([
        [5, 0, 15, 10],     # half overlap: 50 / 150
        [20, 20, 30, 30],   # disjoint
        [10, 0, 20, 10],    # touching edge: no area
        [2, 2, 4, 4],       # inside: 4 / 100
        [0, 0, 10, 10],     # identical
    ], dtype=float)
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 5)
    np.testing.assert_allclose(iou[0], [1 / 3, 0, 0, 0.04, 1.0])
    np.testing.assert_array_equal(iou[1], 0.0)  # degenerate box: 0, not NaN
    np.testing.assert_allclose(iou_distance(a, b), 1 - iou)


def test_iou_has_no_plus_one_pixel():
    # with the "+1" convention this would be (6*11) / (11*11 + 6*11 - 66) = 0.545...
    assert iou_matrix([[0, 0, 10, 10]], [[5, 0, 10, 10]])[0, 0] == pytest.approx(0.5)


def test_iou_empty_inputs():
    boxes = np.array([[0, 0, 1, 1]] * 3, dtype=float)
    assert iou_matrix(np.zeros((0, 4)), boxes).shape == (0, 3)
    assert iou_matrix(boxes, np.zeros((0, 4))).shape == (3, 0)
    assert iou_distance(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0, 0)


def test_embedding_distance_by_hand():
    t = np.array([[1, 0], [0, 3]], dtype=np.float32)  # second row not normalised on purpose
    d = np.array([[2, 0], [-1, 0], [1, 1]], dtype=np.float32)
    np.testing.assert_allclose(embedding_distance(t, d),
                               [[0, 2, 1 - 1 / np.sqrt(2)], [1, 1, 1 - 1 / np.sqrt(2)]],
                               atol=1e-7)
    assert embedding_distance(np.zeros((0, 2)), d).shape == (0, 3)
    assert embedding_distance(t, np.zeros((0, 2))).shape == (2, 0)


def test_embedding_distance_never_negative():
    x = np.random.default_rng(0).normal(size=(50, 128)).astype(np.float32)
    dist = embedding_distance(x, x)
    assert dist.min() >= 0.0
    np.testing.assert_allclose(np.diag(dist), 0.0, atol=1e-6)


def test_fuse_motion_blend_and_gate():
    cost = np.array([[0.1, 0.2, 0.3]])
    gating = np.array([[1.0, 9.4877, 9.5]])
    fused = fuse_motion(cost, gating, lambda_=0.98)
    assert fused[0, 0] == pytest.approx(0.98 * 0.1 + 0.02 * 1.0)
    assert fused[0, 1] == pytest.approx(0.98 * 0.2 + 0.02 * 9.4877)  # on the gate: kept
    assert fused[0, 2] == np.inf  # beyond the gate
    np.testing.assert_array_equal(cost, [[0.1, 0.2, 0.3]])  # input untouched
    assert fuse_motion(np.zeros((0, 2)), np.zeros((0, 2))).shape == (0, 2)


def test_linear_assignment_by_hand():
    cost = np.array([[0.1, 0.9, 0.3], [0.2, 0.15, 0.8]])
    matches, ur, uc = linear_assignment(cost, 0.5)
    np.testing.assert_array_equal(matches, [[0, 0], [1, 1]])
    np.testing.assert_array_equal(ur, [])
    np.testing.assert_array_equal(uc, [2])


def test_linear_assignment_cost_limit_changes_the_answer():
    cost = np.array([[0.3, 0.45], [0.35, 0.9]])
    # no limit: the cheapest full matching is the anti-diagonal (0.8 < 1.2)
    matches, _, _ = linear_assignment(cost, 10.0)
    np.testing.assert_array_equal(matches, [[0, 1], [1, 0]])
    # limit 0.4: 0.45 is not allowed, and (0,0) saves more than (1,0)
    matches, ur, uc = linear_assignment(cost, 0.4)
    np.testing.assert_array_equal(matches, [[0, 0]])
    np.testing.assert_array_equal(ur, [1])
    np.testing.assert_array_equal(uc, [1])
    # nothing within the limit
    matches, ur, uc = linear_assignment(cost, 0.2)
    assert matches.shape == (0, 2)
    np.testing.assert_array_equal(ur, [0, 1])
    np.testing.assert_array_equal(uc, [0, 1])


def brute_force(cost: np.ndarray, thresh: float) -> set[tuple[int, int]]:
    """The matching maximising sum(thresh - c) over pairs with c < thresh, by enumeration."""
    rows, cols = cost.shape
    best, best_pairs = 0.0, set()
    for k in range(1, min(rows, cols) + 1):
        for rs in itertools.combinations(range(rows), k):
            for cs in itertools.permutations(range(cols), k):
                pairs = list(zip(rs, cs))
                if all(cost[r, c] < thresh for r, c in pairs):
                    gain = sum(thresh - cost[r, c] for r, c in pairs)
                    if gain > best:
                        best, best_pairs = gain, set(pairs)
    return best_pairs


@pytest.mark.parametrize("shape", [(3, 3), (3, 5), (5, 2), (4, 4)])
def test_linear_assignment_equals_brute_force(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(20):
        cost = rng.uniform(0, 1, shape)
        cost[rng.random(shape) < 0.15] = np.inf  # gated pairs
        matches, ur, uc = linear_assignment(cost, 0.5)
        assert {tuple(m) for m in matches.tolist()} == brute_force(cost, 0.5)
        assert sorted(ur.tolist() + matches[:, 0].tolist()) == list(range(shape[0]))
        assert sorted(uc.tolist() + matches[:, 1].tolist()) == list(range(shape[1]))


def test_linear_assignment_empty():
    matches, ur, uc = linear_assignment(np.zeros((0, 3)), 0.5)
    assert matches.shape == (0, 2)
    np.testing.assert_array_equal(ur, [])
    np.testing.assert_array_equal(uc, [0, 1, 2])
    matches, ur, uc = linear_assignment(np.zeros((2, 0)), 0.5)
    assert matches.shape == (0, 2)
    np.testing.assert_array_equal(ur, [0, 1])
    np.testing.assert_array_equal(uc, [])
