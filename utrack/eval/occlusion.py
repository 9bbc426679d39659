"""How well predicted occlusion centres match the ground-truth occlusions (paper Sec. 3.2.1)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment


def center_precision_recall(predicted: Mapping[int, np.ndarray], truth: Mapping[int, np.ndarray],
                            tolerance: float | Mapping[int, float]) -> dict[str, float]:
    """Precision and recall of predicted centres, frame by frame.

    Args:
        predicted, truth: frame -> (K, 2) centres ``x, y`` (same pixels); frames missing from
            one side count as empty.
        tolerance: a prediction matches a true centre within this distance (one output pixel is
            ``down_ratio / letterbox scale`` original pixels); per frame or one value.

    Matching is one-to-one per frame (Hungarian on distance, pairs beyond the tolerance never
    match). Returns precision, recall, and the counts tp, num_pred, num_true.
    """
    tp = num_pred = num_true = 0
    for frame in set(predicted) | set(truth):
        pred = np.asarray(predicted.get(frame, np.zeros((0, 2))), dtype=np.float64).reshape(-1, 2)
        true = np.asarray(truth.get(frame, np.zeros((0, 2))), dtype=np.float64).reshape(-1, 2)
        num_pred += len(pred)
        num_true += len(true)
        if len(pred) == 0 or len(true) == 0:
            continue
        tol = tolerance[frame] if isinstance(tolerance, Mapping) else tolerance
        dist = np.linalg.norm(pred[:, None] - true[None], axis=2)
        rows, cols = linear_sum_assignment(np.where(dist <= tol, dist, 1e9))
        tp += int(np.sum(dist[rows, cols] <= tol))
    return {"precision": tp / num_pred if num_pred else float("nan"),
            "recall": tp / num_true if num_true else float("nan"),
            "tp": tp, "num_pred": num_pred, "num_true": num_true}
