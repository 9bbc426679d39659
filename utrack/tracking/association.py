"""Association costs and assignment: IoU, appearance (cosine) distance, motion gating, LAP.

Boxes are ``x1, y1, x2, y2`` in pixels with no "+1 pixel" convention (a box of width 0 has area 0).
Every function accepts empty inputs and returns correctly shaped empty outputs.
"""

from __future__ import annotations

import lap
import numpy as np

from utrack.tracking.kalman import CHI2_95


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) boxes -> (N, M); 0 where the union is empty."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.maximum(rb - lt, 0.0)  # (N, M, 2) intersection sizes
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``1 - iou_matrix(a, b)``: (N, M) in [0, 1]."""
    return 1.0 - iou_matrix(a, b)


def embedding_distance(track_feats: np.ndarray, det_feats: np.ndarray) -> np.ndarray:
    """Cosine distance (T, N) between (T, D) track and (N, D) detection features, clipped at 0.

    Rows are L2-normalised here (in float64), so unnormalised inputs are fine; an all-zero row
    has distance 1 to everything.
    """
    t = np.asarray(track_feats, dtype=np.float64)
    d = np.asarray(det_feats, dtype=np.float64)
    if t.size == 0 or d.size == 0:
        return np.zeros((len(t), len(d)))
    t_norm = np.sqrt(np.einsum("ij,ij->i", t, t))
    d_norm = np.sqrt(np.einsum("ij,ij->i", d, d))
    sim = (t @ d.T) / np.maximum(np.outer(t_norm, d_norm), 1e-24)
    return np.maximum(0.0, 1.0 - sim)


def fuse_motion(cost: np.ndarray, gating: np.ndarray, lambda_: float = 0.98,
                gate: float = CHI2_95[4]) -> np.ndarray:
    """Blend an appearance cost (T, N) with squared Mahalanobis distances (T, N) (FairMOT/JDE):
    ``lambda_ * cost + (1 - lambda_) * gating``, and ``inf`` where ``gating > gate``."""
    fused = lambda_ * np.asarray(cost, dtype=np.float64) + (1.0 - lambda_) * gating
    fused[gating > gate] = np.inf
    return fused


def linear_assignment(cost: np.ndarray,
                      thresh: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost matching where no pair may cost more than ``thresh`` (Jonker-Volgenant).

    cost: (R, C). Returns ``matches`` (K, 2) int ``[row, col]`` in increasing row order,
    ``unmatched_rows`` (R - K,) and ``unmatched_cols`` (C - K,), both sorted.
    """
    cost = np.asarray(cost, dtype=np.float64)
    rows, cols = cost.shape
    # A pair costing more than the limit is never chosen (two unmatched ends are cheaper), so
    # without any pair within the limit there is nothing to solve.
    if cost.size == 0 or not (cost <= thresh).any():
        return np.zeros((0, 2), dtype=np.int64), np.arange(rows), np.arange(cols)
    _, x, y = lap.lapjv(cost, extend_cost=True, cost_limit=thresh)
    matched = np.flatnonzero(x >= 0)
    matches = np.empty((len(matched), 2), dtype=np.int64)
    matches[:, 0] = matched
    matches[:, 1] = x[matched]
    return matches, np.flatnonzero(x < 0), np.flatnonzero(y < 0)
