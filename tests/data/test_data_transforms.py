"""Transforms: boxes follow the pixels, flips, letterbox and its inverse, colour jitter."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from utrack.config import AugmentConfig
from utrack.data.transforms import (AffineParams, Letterbox, hflip_boxes, hsv_jitter, jitter_affine,
                                    letterbox, letterbox_boxes, letterbox_inverse, letterbox_params,
                                    sample_affine, to_tensor, transform_boxes, transform_frame)

COLOURS = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 0), (255, 0, 255), (0, 255, 255)]
BOXES = np.array([[10, 20, 60, 120], [100, 30, 130, 200], [200, 150, 290, 230],
                  [250, 10, 310, 60], [0, 200, 40, 240], [150, 100, 180, 130]], np.float32)


def scene() -> np.ndarray:
    """320x240 black image with one filled rectangle per box; a box covers pixels x1..x2-1."""
    image = np.zeros((240, 320, 3), np.uint8)
    for (x1, y1, x2, y2), colour in zip(BOXES.astype(int), COLOURS):
        image[y1:y2, x1:x2] = colour
    return image


def to_bgr(tensor: torch.Tensor) -> np.ndarray:
    return (tensor.permute(1, 2, 0).numpy()[:, :, ::-1] * 255).round().astype(np.uint8)


def pixel_box(image: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray | None:
    """Enclosing box of the pixels that are mostly ``colour`` (interpolated edges count half)."""
    diff = np.abs(image.astype(int) - np.array(colour)).max(-1)
    ys, xs = np.nonzero(diff < 128)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


@pytest.mark.parametrize("seed", range(6))
def test_boxes_enclose_transformed_rectangles(seed: int) -> None:
    cfg = AugmentConfig(degrees=10, translate=0.1, scale=[0.6, 1.3], shear=3, flip=0.5)
    rng = np.random.default_rng(seed)
    params = sample_affine(rng, cfg)
    out = transform_frame(scene(), BOXES, 416, 256, affine=params)
    image = to_bgr(out.image)
    assert out.image.shape == (3, 256, 416) and out.image.dtype == torch.float32
    assert len(out.kept) >= 3
    for box, k in zip(out.boxes, out.kept):
        seen = pixel_box(image, COLOURS[k])
        assert seen is not None, (seed, k)
        # the box encloses the pixels ...
        assert np.all(seen[:2] >= box[:2] - 2) and np.all(seen[2:] <= box[2:] + 2), (seed, k)
        # ... tightly, unless a corner left the image (then the clip is looser than the pixels)
        x1, y1, x2, y2 = BOXES[k]
        corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]) @ out.matrix[:, :2].T
        corners += out.matrix[:, 2]
        if np.all((corners >= 0) & (corners <= [416, 256])):
            np.testing.assert_allclose(seen, box, atol=2.0, err_msg=f"seed {seed} box {k}")
    for k in set(range(len(BOXES))) - set(out.kept.tolist()):
        seen = pixel_box(image, COLOURS[k])  # dropped: (almost) nothing of it is left
        assert seen is None or (seen[2] - seen[0]) * (seen[3] - seen[1]) < 0.15 * (
            (BOXES[k, 2] - BOXES[k, 0]) * (BOXES[k, 3] - BOXES[k, 1])) * params.scale ** 2 * 4


def test_letterbox_only_is_exact() -> None:
    out = transform_frame(scene(), BOXES, 416, 256)  # 320x240 -> 341x256, pad_x 37
    assert out.letterbox == Letterbox(256 / 240, 37.0, 0.0)
    image = to_bgr(out.image)
    assert np.all(image[:, :37] == 128) and np.all(image[:, 37 + 341:] == 128)
    for box, k in zip(out.boxes, out.kept):
        np.testing.assert_allclose(pixel_box(image, COLOURS[k]), box, atol=1.0)


def test_flip_maps_x_to_width_minus_x() -> None:
    boxes = np.array([[10, 5, 30, 50], [0, 0, 320, 240]], np.float32)
    np.testing.assert_array_equal(hflip_boxes(boxes, 320), [[290, 5, 310, 50], [0, 0, 320, 240]])
    # letterbox 320x240 -> 320x240 is the identity; the flip then mirrors pixels exactly
    plain = transform_frame(scene(), BOXES, 320, 240)
    flipped = transform_frame(scene(), BOXES, 320, 240, affine=AffineParams(flip=True))
    np.testing.assert_array_equal(flipped.image.numpy(), plain.image.flip(2).numpy())
    np.testing.assert_allclose(flipped.boxes, hflip_boxes(plain.boxes, 320), atol=1e-4)
    np.testing.assert_allclose(flipped.boxes[0], [320 - 60, 20, 320 - 10, 120], atol=1e-4)


def test_letterbox_and_inverse() -> None:
    image = np.zeros((576, 768, 3), np.uint8)
    image[100:200, 300:340] = (0, 0, 255)
    padded, record = letterbox(image, 1088, 608)
    scale = 608 / 576
    assert record == Letterbox(scale, float((1088 - round(768 * scale)) // 2), 0.0)
    assert padded.shape == (608, 1088, 3) and padded[0, 0, 0] == 128 and padded[0, -1, 0] == 128
    boxes = np.array([[300, 100, 340, 200], [0, 0, 768, 576]], np.float32)
    mapped = letterbox_boxes(boxes, record)
    np.testing.assert_allclose(mapped[1], [record.pad_x, 0, record.pad_x + 768 * scale, 608], atol=1e-3)
    seen = pixel_box(padded, (0, 0, 255))
    np.testing.assert_allclose(seen, mapped[0], atol=1.0)
    np.testing.assert_allclose(letterbox_inverse(mapped, record), boxes, atol=1e-3)
    # a tall image is padded top and bottom
    rec, new_w, new_h = letterbox_params(100, 400, 200, 200)
    assert (rec.scale, rec.pad_x, rec.pad_y, new_w, new_h) == (0.5, 75.0, 0.0, 50, 200)


def test_transform_boxes_drops_and_keeps_indices() -> None:
    boxes = np.array([[10, 10, 20, 20], [-50, 0, -10, 10], [95, 0, 140, 10], [50, 50, 50.5, 70]],
                     np.float32)
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    out, kept = transform_boxes(boxes, identity, 100, 100)
    assert kept.tolist() == [0, 2]  # outside and too thin are dropped; box 2 is clipped
    np.testing.assert_array_equal(out, [[10, 10, 20, 20], [95, 0, 100, 10]])
    out, kept = transform_boxes(np.zeros((0, 4)), identity, 100, 100)
    assert out.shape == (0, 4) and kept.shape == (0,)


def test_affine_sampling_ranges_and_pair_jitter() -> None:
    cfg = AugmentConfig(degrees=5, translate=0.1, scale=[0.5, 1.2], shear=2, flip=0.5)
    draws = [sample_affine(np.random.default_rng(s), cfg) for s in range(200)]
    assert all(abs(p.angle) <= 5 and 0.5 <= p.scale <= 1.2 and abs(p.shear_x) <= 2 and
               abs(p.translate_y) <= 0.1 for p in draws)
    assert 60 < sum(p.flip for p in draws) < 140
    assert sample_affine(np.random.default_rng(3), cfg) == draws[3]
    for p in draws[:20]:
        q = jitter_affine(p, np.random.default_rng(0), 0.05)
        assert q.flip == p.flip and q != p
        assert abs(q.scale / p.scale - 1) < 0.052 and abs(q.translate_x - p.translate_x) <= 0.05
        assert abs(q.angle - p.angle) <= np.degrees(0.05) + 1e-9
    assert jitter_affine(draws[0], np.random.default_rng(0), 0.0) == draws[0]


def test_hsv_jitter_scales_saturation_and_value() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    image[:] = (40, 80, 200)  # BGR
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)[0, 0].astype(float)
    out = cv2.cvtColor(hsv_jitter(image, 0.5, 0.6), cv2.COLOR_BGR2HSV)[0, 0].astype(float)
    assert abs(out[1] - hsv[1] * 0.5) <= 3 and abs(out[2] - hsv[2] * 0.6) <= 3
    assert abs(out[0] - hsv[0]) <= 2
    assert np.array_equal(hsv_jitter(image, 1.0, 1.0), image)


def test_to_tensor_is_rgb_unit_range() -> None:
    image = np.zeros((2, 3, 3), np.uint8)
    image[1, 2] = (10, 20, 255)
    t = to_tensor(image)
    assert t.shape == (3, 2, 3) and t.dtype == torch.float32
    assert torch.allclose(t[:, 1, 2], torch.tensor([1.0, 20 / 255, 10 / 255]))
