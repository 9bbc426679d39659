"""Lost-object refinding from occlusion centres (paper Sec. 3.2.2, Algorithm 1 step 5, Eq. 15-16).

A track that found no detection has a motion-predicted box ``b~``. Every box ``bj`` overlapping
``b~`` and every occlusion centre ``c`` inside ``b~`` form a candidate scored by the heatmap
gaussian of the intersection ``b~ ∩ bj`` evaluated at ``c``; the best candidate, if its score
exceeds ``tau_o``, places the lost box so that its intersection with ``bj`` is centred on ``c``
(Eq. 15-16), keeping the predicted width and height.

The official code computes this box and then outputs the Kalman prediction instead; the result
here is the recovered box, for the tracker to output (DESIGN.md section 5). Gating by how long a
track has been lost (``tau_w``) is the tracker's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from utrack.data.gaussian import gaussian_sigma, gaussian_value, integer_radius
from utrack.occlusion.targets import _like, _to_numpy

__all__ = ["RefindResult", "recover_box", "refind_lost_box", "refind_lost_boxes"]


@dataclass(frozen=True)
class RefindResult:
    """A refound lost object.

    Attributes:
        box: (4,) recovered ``x1, y1, x2, y2`` (Eq. 15), of the predicted box's kind.
        occluder_index: ``j'``, row of the occluding box in ``boxes``.
        center_index: ``k'``, row of the occlusion centre in ``centers``.
        score: ``G(b~ ∩ bj', c_k')`` in (tau_o, 1].
    """

    box: Any
    occluder_index: int
    center_index: int
    score: float


def _edge(a1: np.ndarray, a2: np.ndarray, b1: np.ndarray, b2: np.ndarray,
          z: np.ndarray) -> np.ndarray:
    """Eq. 16, elementwise: the recovered low edge from the predicted extent ``[a1, a2]``, the
    occluder's ``[b1, b2]`` and the occlusion centre coordinate ``z``."""
    width = a2 - a1
    return np.select(
        [(a1 <= b1) & (a2 <= b2),   # sticks out before the occluder: intersection [b1, a2]
         (a1 > b1) & (a2 <= b2),    # inside the occluder: intersection [a1, a2]
         (a1 > b1) & (a2 > b2)],    # sticks out after the occluder: intersection [a1, b2]
        [2 * z - b1 - width, z - width / 2, 2 * z - b2],
        default=a1)                 # covers the occluder: z carries no information


def _recover(pred: np.ndarray, occluder: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Eq. 15 on rows: pred, occluder (L, 4), center (L, 2) -> (L, 4)."""
    x1 = _edge(pred[:, 0], pred[:, 2], occluder[:, 0], occluder[:, 2], center[:, 0])
    y1 = _edge(pred[:, 1], pred[:, 3], occluder[:, 1], occluder[:, 3], center[:, 1])
    return np.stack([x1, y1, x1 + pred[:, 2] - pred[:, 0], y1 + pred[:, 3] - pred[:, 1]], axis=1)


def recover_box(pred_box: Any, occluder_box: Any, center: Any) -> Any:
    """Recovered box of a lost object (Eq. 15-16).

    Keeps the width and height of ``pred_box``; its left edge is
    ``F(pred x1, pred x2, occluder x1, occluder x2, center x)`` and its top edge likewise in y,
    with ``F(a1, a2, b1, b2, z)`` = ``2z - b1 - (a2 - a1)`` if ``a1 <= b1 and a2 <= b2``;
    ``z - (a2 - a1) / 2`` if ``a1 > b1 and a2 <= b2``; ``2z - b2`` if ``a1 > b1 and a2 > b2``;
    ``a1`` otherwise.

    Args:
        pred_box: (4,) motion-predicted ``x1, y1, x2, y2`` of the lost object.
        occluder_box: (4,) the occluding box ``bj'``.
        center: (2,) the occlusion centre ``(x, y)``.

    Returns:
        (4,) recovered box, of ``pred_box``'s kind (float).
    """
    out = _recover(_to_numpy(pred_box, np.float64).reshape(1, 4),
                   _to_numpy(occluder_box, np.float64).reshape(1, 4),
                   _to_numpy(center, np.float64).reshape(1, 2))[0]
    return _like(out, pred_box)


def refind_lost_boxes(pred_boxes: Any, boxes: Any, centers: Any, *, tau_o: float = 0.7,
                      min_overlap: float = 0.7, down_ratio: int = 4
                      ) -> list[RefindResult | None]:
    """Refind several lost tracks at once (Algorithm 1 step 5), without Python loops over
    tracks, boxes or centres: an (L, M) overlap test, then the Q overlapping (track, box) pairs
    are scored against all K centres, (Q, K), so the cost grows with L only through Q.

    For lost track ``l``, box ``j`` with ``area(b~_l ∩ b_j) > 0`` and centre ``k`` inside
    ``b~_l`` (edges included), the score is the rendered heatmap's gaussian (peak 1,
    ``sigma = (2r + 1) / 6``, ``r = integer_radius(h / R, w / R, min_overlap)`` of the
    intersection size) at the distance between ``c_k`` and the intersection's centre, both
    divided by ``down_ratio`` so the score means what it means on the heatmap. The best
    ``(j', k')`` (first in row-major order on ties) is accepted when its score exceeds ``tau_o``.
    Tracks are refound independently: two tracks may pick the same box or centre.

    Args:
        pred_boxes: (L, 4) motion-predicted boxes of the lost tracks.
        boxes: (M, 4) this frame's detected (or tracked) boxes, the candidate occluders.
        centers: (K, 2) occlusion centres ``(x, y)``, same pixels as the boxes.

    Returns:
        L entries, a :class:`RefindResult` (box of ``pred_boxes``' kind) or None.
    """
    pred = _to_numpy(pred_boxes, np.float64).reshape(-1, 4)
    occ = _to_numpy(boxes, np.float64).reshape(-1, 4)
    ctr = _to_numpy(centers, np.float64).reshape(-1, 2)
    n_lost, m, k = pred.shape[0], occ.shape[0], ctr.shape[0]
    if n_lost == 0 or m == 0 or k == 0:
        return [None] * n_lost

    ix1 = np.maximum(pred[:, None, 0], occ[None, :, 0])  # (L, M)
    iy1 = np.maximum(pred[:, None, 1], occ[None, :, 1])
    ix2 = np.minimum(pred[:, None, 2], occ[None, :, 2])
    iy2 = np.minimum(pred[:, None, 3], occ[None, :, 3])
    # Only the few overlapping (track, box) pairs are scored: Q pairs x K centres, not L x M x K.
    lq, jq = np.nonzero((ix2 - ix1 > 0) & (iy2 - iy1 > 0))  # sorted by track, then box
    results: list[RefindResult | None] = [None] * n_lost
    if lq.size == 0:
        return results
    ix1, iy1, ix2, iy2 = ix1[lq, jq], iy1[lq, jq], ix2[lq, jq], iy2[lq, jq]  # (Q,)
    radius = integer_radius((iy2 - iy1) / down_ratio, (ix2 - ix1) / down_ratio, min_overlap)
    sigma = gaussian_sigma(radius)
    inside = ((ctr[None, :, 0] >= pred[:, None, 0]) & (ctr[None, :, 0] <= pred[:, None, 2])
              & (ctr[None, :, 1] >= pred[:, None, 1]) & (ctr[None, :, 1] <= pred[:, None, 3]))
    dx = (ctr[None, :, 0] - ((ix1 + ix2) / 2)[:, None]) / down_ratio  # (Q, K)
    dy = (ctr[None, :, 1] - ((iy1 + iy2) / 2)[:, None]) / down_ratio
    # the gaussian decreases with d^2 / sigma^2: rank on that, take exp for the winners only
    cost = np.where(inside[lq], (dx * dx + dy * dy) / (sigma * sigma)[:, None], np.inf)
    kq = np.argmin(cost, axis=1)  # first best centre per pair
    q = np.arange(lq.size)
    best_cost = cost[q, kq]
    # per track, the pair of least cost; ties go to the lower box index (then centre index)
    order = np.lexsort((q, best_cost, lq))
    first = np.r_[True, lq[order][1:] != lq[order][:-1]]
    best = order[first]
    best = best[np.isfinite(best_cost[best])]
    score = gaussian_value(dx[best, kq[best]], dy[best, kq[best]], radius[best])
    best, score = best[score > tau_o], score[score > tau_o]
    tracks, jj, kk = lq[best], jq[best], kq[best]
    recovered = _recover(pred[tracks], occ[jj], ctr[kk])
    for i, track in enumerate(tracks):
        results[track] = RefindResult(_like(recovered[i], pred_boxes), int(jj[i]), int(kk[i]),
                                      float(score[i]))
    return results


def refind_lost_box(pred_box: Any, boxes: Any, centers: Any, *, tau_o: float = 0.7,
                    min_overlap: float = 0.7, down_ratio: int = 4) -> RefindResult | None:
    """Refind one lost track (Algorithm 1 step 5; Eq. 15-16); see :func:`refind_lost_boxes`.

    Args:
        pred_box: (4,) the track's motion-predicted ``x1, y1, x2, y2``.
        boxes: (M, 4) candidate occluders; centers: (K, 2) occlusion centres.

    Returns:
        a :class:`RefindResult` whose box has ``pred_box``'s kind, or None when no box overlaps
        ``pred_box``, no centre lies inside it, or the best score is not above ``tau_o``.
    """
    pred = pred_box.reshape(1, 4) if hasattr(pred_box, "reshape") else np.reshape(pred_box, (1, 4))
    return refind_lost_boxes(pred, boxes, centers, tau_o=tau_o, min_overlap=min_overlap,
                             down_ratio=down_ratio)[0]
