"""Decoding occlusion centres from heatmaps (rendered targets used as predictions)."""

from __future__ import annotations

import numpy as np
import torch

from utrack.occlusion import (decode_occlusion_centers, encode_occlusion_targets,
                              oracle_occlusion_centers)

# Three well separated occlusions in a 256 x 256 input (64 x 64 output map):
# (0, 1): intersection (20.6, 20.2, 60.6, 110.2), ratio 3600 / 5000 = 0.72, centre (40.6, 65.2);
# (2, 3): intersection (150, 40, 190, 130), ratio 3600 / 4000 = 0.9, centre (170, 85);
# (4, 5): box 4 inside box 5, centre (95.3, 190.9).
BOXES = np.array([[10.6, 10.2, 60.6, 110.2], [20.6, 20.2, 70.6, 120.2],
                  [150, 30, 190, 130], [145, 40, 195, 140],
                  [60.3, 150.9, 130.3, 230.9], [50, 140, 140, 250]])
TRUE_CENTRES = np.array([[40.6, 65.2], [170.0, 85.0], [95.3, 190.9]])


def _predictions(boxes_per_image: list[np.ndarray], size: int = 256
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Target heatmaps as logits and target offsets written at their cells, batched."""
    hms, offs = [], []
    for boxes in boxes_per_image:
        t = {key: v.numpy() for key, v in encode_occlusion_targets(boxes, size, size).items()}
        off = np.zeros((2, size // 4, size // 4), np.float32)
        ys, xs = np.divmod(t["occ_ind"][t["occ_mask"]], size // 4)
        off[:, ys, xs] = t["occ_off"][t["occ_mask"]].T
        hms.append(torch.from_numpy(t["occ_hm"]))
        offs.append(torch.from_numpy(off))
    return torch.logit(torch.stack(hms), eps=1e-6), torch.stack(offs)


def _sorted(points: np.ndarray) -> np.ndarray:
    return points[np.lexsort((points[:, 1], points[:, 0]))]


def test_oracle_centres() -> None:
    np.testing.assert_allclose(oracle_occlusion_centers(BOXES), TRUE_CENTRES)


def test_decode_rendered_targets_exact_with_offsets() -> None:
    logits, off = _predictions([BOXES, BOXES[:1]])  # the second image has one box: no occlusion
    out = decode_occlusion_centers(logits, off)
    assert len(out) == 2
    centres, scores = out[0]
    assert centres.dtype == torch.float32 and centres.shape == (3, 2) and scores.shape == (3,)
    np.testing.assert_allclose(_sorted(centres.numpy()), _sorted(TRUE_CENTRES), atol=1e-4)
    assert (scores > 0.99).all()
    assert out[1][0].shape == (0, 2) and out[1][1].shape == (0,)


def test_decode_without_offsets_within_one_output_pixel() -> None:
    logits, off = _predictions([BOXES])
    centres, _ = decode_occlusion_centers(logits, torch.zeros_like(off))[0]
    got = _sorted(centres.numpy())
    want = _sorted(TRUE_CENTRES)
    # the peak cell is floor(c / 4): decoded (cell * 4) is within [c - 4, c]
    np.testing.assert_allclose(got, np.floor(want / 4) * 4, atol=1e-4)
    assert (np.abs(got - want) < 4).all()


def test_decode_threshold_k_and_down_ratio() -> None:
    logits = torch.full((1, 1, 8, 8), -10.0)
    logits[0, 0, 2, 3] = 2.0                                    # p = 0.88
    logits[0, 0, 6, 6] = float(torch.logit(torch.tensor(0.3)))  # p = 0.3
    logits[0, 0, 5, 1] = float(torch.logit(torch.tensor(0.05)))  # below 0.1
    off = torch.zeros(1, 2, 8, 8)
    off[0, :, 2, 3] = torch.tensor([0.5, 0.25])
    centres, scores = decode_occlusion_centers(logits, off, down_ratio=2)[0]
    # (3 + 0.5, 2 + 0.25) * 2 and (6, 6) * 2, best first
    np.testing.assert_allclose(centres.numpy(), [[7.0, 4.5], [12.0, 12.0]])
    np.testing.assert_allclose(scores.numpy(), [torch.sigmoid(torch.tensor(2.0)).item(), 0.3],
                               rtol=1e-6)
    centres, _ = decode_occlusion_centers(logits, off, down_ratio=2, score_thresh=0.01)[0]
    assert centres.shape == (3, 2)
    centres, _ = decode_occlusion_centers(logits, off, down_ratio=2, k=1)[0]
    np.testing.assert_allclose(centres.numpy(), [[7.0, 4.5]])
