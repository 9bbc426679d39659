"""Occlusion annotations from boxes (paper Sec. 3.2.1, Eq. 9-10; DESIGN.md section 4).

An occlusion is the intersection box of two objects that overlap enough (Eq. 9); its centre is
a key point rendered into a one-channel CenterNet heatmap at the output stride (Eq. 10), with a
sub-pixel offset target, a flat index and a validity mask per occlusion (Eq. 13).

Boxes are ``(x1, y1, x2, y2)`` in pixels. :func:`occlusion_pairs` accepts numpy arrays or torch
tensors and returns the same kind; :func:`encode_occlusion_targets` is dataset-side code and
always returns CPU torch tensors, like the object targets in ``utrack/data/targets.py`` (whose
collate function pads tensors only).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from utrack.data.gaussian import draw_gaussian, integer_radius

__all__ = ["occlusion_pairs", "encode_occlusion_targets"]


def _to_numpy(x: Any, dtype: type | None = None) -> np.ndarray:
    """A numpy view/copy of an array-like or (any-device) tensor."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _like(value: np.ndarray, reference: Any, float_out: bool = True) -> Any:
    """``value`` as the same kind as ``reference``: a tensor on its device if it is a tensor.

    Floating results take the reference's floating dtype (float32 for an integer tensor;
    float64 for an integer numpy array); integer/bool results keep their own dtype.
    """
    if isinstance(reference, torch.Tensor):
        out = torch.from_numpy(np.ascontiguousarray(value)).to(reference.device)
        if float_out:
            out = out.to(reference.dtype if reference.is_floating_point() else torch.float32)
        return out
    if float_out:
        ref_dtype = np.asarray(reference).dtype
        return value.astype(ref_dtype if np.issubdtype(ref_dtype, np.floating) else np.float64)
    return value


def _pairs_numpy(boxes: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`occlusion_pairs` on a float64 (N, 4) array."""
    n = boxes.shape[0]
    if n < 2:
        return np.zeros((0, 2), np.int64), np.zeros((0, 4), np.float64)
    x1, y1, x2, y2 = boxes.T
    area = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    ix1 = np.maximum(x1[:, None], x1[None, :])
    iy1 = np.maximum(y1[:, None], y1[None, :])
    ix2 = np.minimum(x2[:, None], x2[None, :])
    iy2 = np.minimum(y2[:, None], y2[None, :])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    min_area = np.minimum(area[:, None], area[None, :])
    valid = np.triu(min_area > 0, k=1)
    # the division (not inter > tau * min_area) so a ratio of exactly tau is never a pair
    ratio = np.divide(inter, min_area, out=np.zeros_like(inter), where=valid)
    ii, jj = np.nonzero(valid & (ratio > tau))
    pairs = np.stack([ii, jj], axis=1).astype(np.int64)
    overlaps = np.stack([ix1[ii, jj], iy1[ii, jj], ix2[ii, jj], iy2[ii, jj]], axis=1)
    return pairs, overlaps


def occlusion_pairs(boxes: Any, tau: float = 0.7) -> tuple[Any, Any]:
    """Valid occlusions of one image (Eq. 9): pairs whose overlap covers most of the smaller box.

    A pair ``(i, j)`` is an occlusion when ``area(bi ∩ bj) / min(area(bi), area(bj)) > tau``
    (strictly). Each unordered pair is listed once, as ``i < j``, in row-major order (the
    official code lists each pair twice). Boxes of zero area never pair.

    Args:
        boxes: (N, 4) ``x1, y1, x2, y2``, numpy array or torch tensor.
        tau: the overlap threshold of Eq. 9.

    Returns:
        pairs: (P, 2) int64 indices with ``i < j``;
        overlaps: (P, 4) the intersection boxes ``o_ij``.
        Both of the input's kind (a tensor on the input's device for a tensor input); ``(0, 2)``
        and ``(0, 4)`` with fewer than two boxes or no valid pair.
    """
    arr = _to_numpy(boxes, np.float64).reshape(-1, 4)
    pairs, overlaps = _pairs_numpy(arr, tau)
    return _like(pairs, boxes, float_out=False), _like(overlaps, boxes)


def encode_occlusion_targets(boxes: Any, input_w: int, input_h: int, *, down_ratio: int = 4,
                             tau: float = 0.7, min_overlap: float = 0.7) -> dict[str, torch.Tensor]:
    """Training targets of the occlusion head for one image (Eq. 10 and 13).

    For every valid pair (:func:`occlusion_pairs`), the centre ``p`` of the intersection box,
    at output scale ``p / R``, is a key point: a gaussian of radius
    ``integer_radius(h / R, w / R, min_overlap)`` (``h, w`` the intersection box size) is drawn
    at ``floor(p / R)`` and composed with the others by maximum. Boxes are not clipped to the
    image: an occlusion whose centre falls outside the output map is not drawn and is masked.

    Args:
        boxes: (N, 4) ``x1, y1, x2, y2`` in network-input pixels (numpy array or tensor).
        input_w, input_h: network input size; the output map is ``(input_h // R, input_w // R)``.
        down_ratio: output stride ``R``.
        tau: the occlusion threshold of Eq. 9.
        min_overlap: the gaussian radius rule's IoU (CenterNet's 0.7).

    Returns:
        CPU torch tensors (whatever the input kind), with ``P`` valid pairs:
        ``occ_hm`` (1, H, W) float32 heatmap; ``occ_ind`` (P,) int64 flat index ``y * W + x``
        of ``floor(p / R)`` (0 where masked); ``occ_off`` (P, 2) float32
        ``p / R - floor(p / R)`` as ``(dx, dy)``; ``occ_mask`` (P,) bool, False for centres
        outside the map. The per-occlusion tensors have varying length; the collate function
        pads them with 0 / False.

    Raises:
        ValueError: if the input size is not a multiple of ``down_ratio``.
    """
    if input_w % down_ratio or input_h % down_ratio:
        raise ValueError(f"input size {input_w}x{input_h} is not divisible by "
                         f"down_ratio={down_ratio}")
    out_w, out_h = int(input_w) // down_ratio, int(input_h) // down_ratio
    arr = _to_numpy(boxes, np.float64).reshape(-1, 4)
    _, overlaps = _pairs_numpy(arr, tau)
    heatmap = np.zeros((out_h, out_w), np.float32)
    p = overlaps.shape[0]
    ind = np.zeros(p, np.int64)
    off = np.zeros((p, 2), np.float32)
    mask = np.zeros(p, bool)
    if p:
        o = overlaps / down_ratio
        center = np.stack([(o[:, 0] + o[:, 2]) / 2, (o[:, 1] + o[:, 3]) / 2], axis=1)
        cell = np.floor(center).astype(np.int64)
        radius = integer_radius(o[:, 3] - o[:, 1], o[:, 2] - o[:, 0], min_overlap)
        mask = (cell[:, 0] >= 0) & (cell[:, 0] < out_w) & (cell[:, 1] >= 0) & (cell[:, 1] < out_h)
        for q in np.nonzero(mask)[0]:
            draw_gaussian(heatmap, (int(cell[q, 0]), int(cell[q, 1])), int(radius[q]))
        ind = np.where(mask, cell[:, 1] * out_w + cell[:, 0], 0).astype(np.int64)
        off = np.where(mask[:, None], center - cell, 0.0).astype(np.float32)
    return {"occ_hm": torch.from_numpy(heatmap[None]),
            "occ_ind": torch.from_numpy(np.ascontiguousarray(ind, dtype=np.int64)),
            "occ_off": torch.from_numpy(np.ascontiguousarray(off, dtype=np.float32)),
            "occ_mask": torch.from_numpy(np.ascontiguousarray(mask, dtype=bool))}
