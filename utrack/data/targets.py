"""CenterNet training targets of one image (FairMOT's detection targets with ltrb boxes)."""

from __future__ import annotations

import numpy as np
import torch

from utrack.data.gaussian import draw_gaussian, integer_radius


def encode_centernet_targets(boxes: np.ndarray, ids: np.ndarray | None, input_w: int, input_h: int,
                             down_ratio: int = 4) -> dict[str, torch.Tensor]:
    """Targets of N boxes on the ``(input_h / R, input_w / R)`` output grid (R = down_ratio).

    Args:
        boxes: (N, 4) ``x1, y1, x2, y2`` in input pixels.
        ids: (N,) identity indices (-1 when unknown) or None (all -1); carried along as is.

    Returns torch tensors (h, w = the output grid):
        hm: (1, h, w) float32, a gaussian peak of height 1 per box at its integer centre, the
            radius from the CenterNet rule on the box size at output scale rounded up (as
            FairMOT), composed by max;
        ind: (N,) int64 flat index ``y * w + x`` of the integer centre;
        wh: (N, 4) float32 distances left, top, right, bottom from the (sub-pixel) centre to the
            box edges at output scale;
        reg: (N, 2) float32 ``centre - floor(centre)``;
        reg_mask: (N,) bool, False for a box with no area once clipped to the output grid (its
            other entries are 0 and it draws nothing);
        ids: (N,) int64.
    The centre, size and radius come from the box clipped to the grid; ``wh`` measures to the
    unclipped edges (FairMOT's amodal ltrb), which are the same for boxes inside the image.
    """
    if input_w % down_ratio or input_h % down_ratio:
        raise ValueError(f"input size {input_w}x{input_h} is not divisible by down_ratio={down_ratio}")
    out_w, out_h = input_w // down_ratio, input_h // down_ratio
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / down_ratio
    n = len(boxes)
    ids = np.full(n, -1, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64).reshape(-1)
    if len(ids) != n:
        raise ValueError(f"encode_centernet_targets: {n} boxes but {len(ids)} ids")

    hm = np.zeros((1, out_h, out_w), dtype=np.float32)
    ind = np.zeros(n, dtype=np.int64)
    wh = np.zeros((n, 4), dtype=np.float32)
    reg = np.zeros((n, 2), dtype=np.float32)
    mask = np.zeros(n, dtype=bool)
    if n:
        clipped = boxes.copy()
        clipped[:, 0::2] = clipped[:, 0::2].clip(0, out_w)
        clipped[:, 1::2] = clipped[:, 1::2].clip(0, out_h)
        w = clipped[:, 2] - clipped[:, 0]
        h = clipped[:, 3] - clipped[:, 1]
        mask = (w > 0) & (h > 0)
        cx = (clipped[:, 0] + clipped[:, 2]) / 2
        cy = (clipped[:, 1] + clipped[:, 3]) / 2
        # a centre can only reach out_w when w = 0; the min keeps the index on the grid regardless
        ix = np.minimum(np.floor(cx), out_w - 1).astype(np.int64)
        iy = np.minimum(np.floor(cy), out_h - 1).astype(np.int64)
        radius = integer_radius(np.ceil(h), np.ceil(w))  # FairMOT rounds the size up
        for k in np.flatnonzero(mask):
            draw_gaussian(hm[0], (int(ix[k]), int(iy[k])), int(radius[k]))
        ind = np.where(mask, iy * out_w + ix, 0)
        ltrb = np.stack([cx - boxes[:, 0], cy - boxes[:, 1], boxes[:, 2] - cx, boxes[:, 3] - cy], 1)
        wh = np.where(mask[:, None], ltrb, 0).astype(np.float32)
        reg = np.where(mask[:, None], np.stack([cx - ix, cy - iy], 1), 0).astype(np.float32)
    return {
        "hm": torch.from_numpy(hm),
        "ind": torch.from_numpy(np.ascontiguousarray(ind, dtype=np.int64)),
        "wh": torch.from_numpy(np.ascontiguousarray(wh)),
        "reg": torch.from_numpy(np.ascontiguousarray(reg)),
        "reg_mask": torch.from_numpy(np.ascontiguousarray(mask)),
        "ids": torch.from_numpy(np.ascontiguousarray(ids)),
    }
