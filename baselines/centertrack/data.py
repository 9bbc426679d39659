"""CenterTrack's training inputs from a frame and its "previous" frame: the perturbed heatmap of
the previous frame's objects (``pre_hm``) and the tracking-offset targets.

Used by ``MOTTrainDataset`` in its ``"previous"`` / ``"previous_pair"`` modes through
``CenterTrackTargets`` (the dataset's ``previous_builder``); ``render_heatmap`` is also what the
tracker uses to draw the heatmap of its tracks at inference, so both sides draw blobs alike.

Identities are read only to link a box of the current frame with the same object's box in the
previous frame, for the ``tracking`` target; that is what CenterTrack does, and it is the only
supervision of the offsets (no identity reaches any loss otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from utrack.config import CenterTrackDataConfig
from utrack.data.gaussian import draw_gaussian, integer_radius


def centers_and_sizes(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) ``x1, y1, x2, y2`` -> centres (N, 2) ``x, y`` and sizes (N, 2) ``w, h`` (float64)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]


def render_heatmap(centers: np.ndarray, sizes: np.ndarray, height: int, width: int
                   ) -> np.ndarray:
    """A (1, height, width) float32 heatmap with a peak of 1 per object, composed by max.

    Args:
        centers: (N, 2) ``x, y`` in the heatmap's pixels (a peak sits at the floored centre; a
            centre off the map draws the part of its blob that falls inside, or nothing).
        sizes: (N, 2) ``w, h`` in the same pixels; the radius is CenterNet's rule on that size,
            at the resolution the map is drawn at (the input resolution for ``pre_hm``).
    """
    heatmap = np.zeros((1, height, width), dtype=np.float32)
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    if len(centers) == 0:
        return heatmap
    radius = integer_radius(sizes[:, 1], sizes[:, 0])
    cells = np.floor(centers)
    far = 2 ** 30  # keeps the int conversion finite for absurd centres; they draw nothing
    cells = np.clip(cells, -far, far).astype(np.int64)
    for (x, y), r in zip(cells.tolist(), radius.tolist()):
        draw_gaussian(heatmap[0], (x, y), r)
    return heatmap


@dataclass
class PerturbedObjects:
    """The blobs of a perturbed previous-frame heatmap and how they were drawn.

    centers (M, 2), sizes (M, 2): the blobs to render (kept objects, then false blobs);
    dropped (N,) bool: object left out; false (N,) bool: a false blob was added near object i;
    jitter (N, 2): the kept centre's shift in units of the object's ``w, h``.
    """

    centers: np.ndarray
    sizes: np.ndarray
    dropped: np.ndarray
    false: np.ndarray
    jitter: np.ndarray


def perturb_objects(centers: np.ndarray, sizes: np.ndarray, rng: np.random.Generator,
                    hm_disturb: float, lost_disturb: float, fp_disturb: float
                    ) -> PerturbedObjects:
    """CenterTrack's simulation of an imperfect previous frame (DESIGN.md section 6).

    For each of the N objects (centres (N, 2), sizes (N, 2) ``w, h``), independently: the centre
    moves by ``N(0, 1) * hm_disturb * (w, h)``; the object is dropped with probability
    ``lost_disturb``; with probability ``fp_disturb`` a false blob of the same size is added
    near it, at its true centre plus its own ``N(0, 1) * hm_disturb * (w, h)`` (CenterTrack
    places false positives with the same spread), whether or not the object was dropped.
    """
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    n = len(centers)
    jitter = rng.standard_normal((n, 2)) * hm_disturb
    dropped = rng.random(n) < lost_disturb
    false = rng.random(n) < fp_disturb
    false_jitter = rng.standard_normal((n, 2)) * hm_disturb
    kept = ~dropped
    blob_centers = np.concatenate([centers[kept] + jitter[kept] * sizes[kept],
                                   centers[false] + false_jitter[false] * sizes[false]])
    blob_sizes = np.concatenate([sizes[kept], sizes[false]])
    return PerturbedObjects(blob_centers, blob_sizes, dropped, false, jitter)


def tracking_targets(boxes: np.ndarray, ids: np.ndarray, valid: np.ndarray,
                     pre_boxes: np.ndarray, pre_ids: np.ndarray, down_ratio: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Offsets from each current centre to the same object's centre in the previous frame.

    Args:
        boxes: (N, 4) current boxes in input pixels (clipped, as the dataset gives them);
            ids: (N,) identities (-1 unknown); valid: (N,) the encoder's ``reg_mask``.
        pre_boxes: (P, 4) previous-frame boxes, same pixels; pre_ids: (P,).

    Returns:
        tracking (N, 2) float32 ``previous centre - current centre`` at output scale (centres
        of the boxes divided by ``down_ratio``, sub-pixel, the centres the decoder adds the
        offset to) and tracking_mask (N,) bool: a valid box whose identity (>= 0) is in the
        previous frame. CenterTrack measures from the integer centre cell; we measure from the
        sub-pixel centre because decoding adds the offset to the sub-pixel centre.
    """
    centers, _ = centers_and_sizes(boxes)
    pre_centers, _ = centers_and_sizes(pre_boxes)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    pre_ids = np.asarray(pre_ids, dtype=np.int64).reshape(-1)
    n = len(centers)
    tracking = np.zeros((n, 2), dtype=np.float32)
    mask = np.zeros(n, dtype=bool)
    if n == 0 or len(pre_ids) == 0:
        return tracking, mask
    order = np.argsort(pre_ids, kind="stable")
    pos = np.searchsorted(pre_ids[order], ids).clip(0, len(pre_ids) - 1)
    match = order[pos]
    mask = np.asarray(valid, dtype=bool) & (ids >= 0) & (pre_ids[match] == ids)
    delta = (pre_centers[match] - centers) / down_ratio
    tracking[mask] = delta[mask]
    return tracking, mask


class CenterTrackTargets:
    """The dataset's ``previous_builder``: ``(sample, previous, rng) -> {pre_hm, tracking,
    tracking_mask}``.

    ``pre_hm`` (1, H, W) float32 at input resolution from the previous frame's boxes, perturbed
    by ``perturb_objects``; ``tracking`` (N, 2) and ``tracking_mask`` (N,) from
    ``tracking_targets``. With ``previous=None`` (a frame used as its own previous frame, as a
    first frame at inference): an empty ``pre_hm`` and no tracking target.
    """

    def __init__(self, cfg: CenterTrackDataConfig, down_ratio: int = 4) -> None:
        self.cfg = cfg
        self.down_ratio = down_ratio

    def __call__(self, sample: dict[str, Any], previous: dict[str, Any] | None,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
        _, height, width = sample["image"].shape
        n = len(sample["boxes"])
        if previous is None:
            return {"pre_hm": np.zeros((1, height, width), dtype=np.float32),
                    "tracking": np.zeros((n, 2), dtype=np.float32),
                    "tracking_mask": np.zeros(n, dtype=bool)}
        pre_boxes = previous["boxes"].numpy()
        centers, sizes = centers_and_sizes(pre_boxes)
        c = self.cfg
        blobs = perturb_objects(centers, sizes, rng, c.hm_disturb, c.lost_disturb, c.fp_disturb)
        tracking, mask = tracking_targets(sample["boxes"].numpy(), sample["ids"].numpy(),
                                          sample["reg_mask"].numpy(), pre_boxes,
                                          previous["ids"].numpy(), self.down_ratio)
        return {"pre_hm": render_heatmap(blobs.centers, blobs.sizes, height, width),
                "tracking": tracking, "tracking_mask": mask}

    def __repr__(self) -> str:
        return f"CenterTrackTargets({self.cfg}, down_ratio={self.down_ratio})"
