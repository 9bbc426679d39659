"""Image and box transforms: letterbox, random affine, HSV jitter, horizontal flip.

Coordinates are continuous pixels: pixel ``i`` covers ``[i, i + 1)``, so a box ``x1, y1, x2, y2``
covers the pixels ``x1 .. x2 - 1``, a horizontal flip maps ``x -> W - x``, and a resize by ``s``
maps ``x -> s * x`` (which is what ``cv2.resize`` does). Every geometric step is a 2x3 matrix in
these coordinates; ``cv_matrix`` converts one to OpenCV's pixel-centre convention for
``cv2.warpAffine``. Training frames go through one resize (``INTER_AREA``, the letterbox size)
and one warp (augmentation + padding), and their boxes through the same matrix.

Randomness is always an explicit ``numpy.random.Generator``. Affine parameters are sampled into
an ``AffineParams`` record so that the two frames of a pair can share them (``jitter_affine``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch

from utrack.config import AugmentConfig

#: FairMOT's padding grey (127.5; it saturates to 128 in uint8 images, as in FairMOT)
PAD_VALUE = 127.5


@dataclass(frozen=True)
class Letterbox:
    """How an image was letterboxed: ``input = original * scale + (pad_x, pad_y)``."""

    scale: float
    pad_x: float
    pad_y: float


def letterbox_params(width: int, height: int, input_w: int, input_h: int) -> tuple[Letterbox, int, int]:
    """The letterbox of a ``width x height`` image in ``input_w x input_h``: the record and the
    resized size ``(new_w, new_h)`` (aspect kept, integer padding centred)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"letterbox: image size must be positive, got {width}x{height}")
    scale = min(input_w / width, input_h / height)
    new_w = min(input_w, max(1, round(width * scale)))
    new_h = min(input_h, max(1, round(height * scale)))
    return Letterbox(scale, float((input_w - new_w) // 2), float((input_h - new_h) // 2)), new_w, new_h


def letterbox(image: np.ndarray, input_w: int, input_h: int) -> tuple[np.ndarray, Letterbox]:
    """Resize ``image`` (H, W, 3) uint8 to fit ``input_w x input_h`` keeping its aspect and pad
    with grey; returns the (input_h, input_w, 3) uint8 image and its ``Letterbox``."""
    height, width = image.shape[:2]
    record, new_w, new_h = letterbox_params(width, height, input_w, input_h)
    resized = image if (new_w, new_h) == (width, height) else cv2.resize(
        image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    out = np.full((input_h, input_w, 3), round(PAD_VALUE), dtype=np.uint8)
    x0, y0 = int(record.pad_x), int(record.pad_y)
    out[y0:y0 + new_h, x0:x0 + new_w] = resized
    return out, record


def letterbox_boxes(boxes: np.ndarray, record: Letterbox) -> np.ndarray:
    """(N, 4) ``x1, y1, x2, y2`` original pixels -> input pixels (float32, not clipped)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = boxes * record.scale
    out[:, 0::2] += record.pad_x
    out[:, 1::2] += record.pad_y
    return out.astype(np.float32)


def letterbox_inverse(boxes: np.ndarray, record: Letterbox) -> np.ndarray:
    """(N, 4) ``x1, y1, x2, y2`` in input pixels -> original image pixels (float32)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    boxes[:, 0::2] -= record.pad_x
    boxes[:, 1::2] -= record.pad_y
    return (boxes / record.scale).astype(np.float32)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 BGR -> (3, H, W) float32 RGB tensor in [0, 1]."""
    out = np.empty((3, *image.shape[:2]), np.float32)
    # one OpenCV pass per plane: several times faster than a strided torch copy + divide
    for k, plane in enumerate(cv2.split(image)[::-1]):
        cv2.multiply(plane, 1.0 / 255.0, dst=out[k], dtype=cv2.CV_32F)
    return torch.from_numpy(out)


# ----------------------------------------------------------------------------------------------
# Affine maps


@dataclass(frozen=True)
class AffineParams:
    """One random affine: rotation (degrees), isotropic scale, shears (degrees), translation
    (fractions of the input width / height), and a horizontal flip applied last. The defaults
    are the identity."""

    angle: float = 0.0
    scale: float = 1.0
    shear_x: float = 0.0
    shear_y: float = 0.0
    translate_x: float = 0.0
    translate_y: float = 0.0
    flip: bool = False


def sample_affine(rng: np.random.Generator, cfg: AugmentConfig) -> AffineParams:
    """Draw ``AffineParams`` from the ranges of ``cfg`` (uniform; flip with probability cfg.flip)."""
    lo, hi = (float(v) for v in cfg.scale)
    u = rng.uniform(-1.0, 1.0, size=5)
    return AffineParams(
        angle=float(u[0] * cfg.degrees),
        scale=float(rng.uniform(lo, hi)),
        shear_x=float(u[1] * cfg.shear),
        shear_y=float(u[2] * cfg.shear),
        translate_x=float(u[3] * cfg.translate),
        translate_y=float(u[4] * cfg.translate),
        flip=bool(rng.random() < cfg.flip),
    )


def jitter_affine(params: AffineParams, rng: np.random.Generator, amount: float) -> AffineParams:
    """A small perturbation of ``params`` for the second frame of a pair, with the same flip:
    scale times ``exp(U(-a, a))``, translations ``+ U(-a, a)``, angle and shears ``+ U(-a, a)``
    radians (``a = amount``)."""
    u = rng.uniform(-amount, amount, size=6)
    deg = math.degrees(1.0)
    return replace(params,
                   angle=params.angle + float(u[0] * deg),
                   scale=params.scale * float(math.exp(u[1])),
                   shear_x=params.shear_x + float(u[2] * deg),
                   shear_y=params.shear_y + float(u[3] * deg),
                   translate_x=params.translate_x + float(u[4]),
                   translate_y=params.translate_y + float(u[5]))


def affine_matrix(params: AffineParams, width: int, height: int) -> np.ndarray:
    """(2, 3) float64 map of ``params`` on a ``width x height`` canvas (continuous coordinates):
    rotate/scale/shear about the centre, translate, then flip ``x -> W - x`` if asked."""
    cx, cy = width / 2.0, height / 2.0
    a = math.radians(params.angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) * params.scale
    shear = np.array([[1.0, math.tan(math.radians(params.shear_x))],
                      [math.tan(math.radians(params.shear_y)), 1.0]])
    lin = shear @ rot
    centre = np.array([cx, cy])
    shift = centre + np.array([params.translate_x * width, params.translate_y * height])
    m = np.hstack([lin, (shift - lin @ centre)[:, None]])
    if params.flip:
        m = compose(np.array([[-1.0, 0.0, float(width)], [0.0, 1.0, 0.0]]), m)
    return m


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 map ``outer(inner(p))``."""
    o = np.vstack([outer, [0.0, 0.0, 1.0]])
    i = np.vstack([inner, [0.0, 0.0, 1.0]])
    return (o @ i)[:2]


def cv_matrix(matrix: np.ndarray) -> np.ndarray:
    """A continuous-coordinate 2x3 map -> the matrix ``cv2.warpAffine`` expects (OpenCV puts
    pixel centres at integer coordinates: ``p_cv = p - 0.5``)."""
    lin, t = matrix[:, :2], matrix[:, 2]
    return np.hstack([lin, (t + lin @ np.array([0.5, 0.5]) - 0.5)[:, None]])


def transform_boxes(boxes: np.ndarray, matrix: np.ndarray, width: int, height: int, *,
                    min_size: float = 2.0, min_area_frac: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Map (N, 4) ``x1, y1, x2, y2`` boxes through ``matrix`` (2, 3) via their four corners, clip
    them to the ``width x height`` image and drop those narrower or lower than ``min_size`` or
    with less than ``min_area_frac`` of their mapped area inside the image.

    Returns the kept boxes (K, 4) float32 and their indices (K,) int64 into the input, so that
    ids and other per-box arrays stay aligned (``ids[kept]``).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros((0, 4), dtype=np.float32), np.zeros((0,), dtype=np.int64)
    xs = boxes[:, [0, 2, 2, 0]]
    ys = boxes[:, [1, 1, 3, 3]]
    mx = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]
    my = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]
    mapped = np.stack([mx.min(1), my.min(1), mx.max(1), my.max(1)], axis=1)
    area = (mapped[:, 2] - mapped[:, 0]) * (mapped[:, 3] - mapped[:, 1])
    clipped = mapped.copy()
    clipped[:, 0::2] = clipped[:, 0::2].clip(0, width)
    clipped[:, 1::2] = clipped[:, 1::2].clip(0, height)
    w = clipped[:, 2] - clipped[:, 0]
    h = clipped[:, 3] - clipped[:, 1]
    keep = (w >= min_size) & (h >= min_size) & (w * h >= min_area_frac * np.maximum(area, 1e-9))
    kept = np.flatnonzero(keep).astype(np.int64)
    return clipped[kept].astype(np.float32), kept


def hflip_boxes(boxes: np.ndarray, width: int) -> np.ndarray:
    """(N, 4) ``x1, y1, x2, y2`` -> boxes of the mirrored image (``x -> width - x``)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    out = boxes.copy()
    out[:, 0] = width - boxes[:, 2]
    out[:, 2] = width - boxes[:, 0]
    return out


# ----------------------------------------------------------------------------------------------
# Colour


def sample_hsv(rng: np.random.Generator, fraction: float) -> tuple[float, float]:
    """Saturation and value gains ``1 + U(-fraction, fraction)``."""
    s, v = rng.uniform(-fraction, fraction, size=2)
    return 1.0 + float(s), 1.0 + float(v)


def hsv_jitter(image: np.ndarray, saturation_gain: float, value_gain: float) -> np.ndarray:
    """(H, W, 3) uint8 BGR with saturation and value scaled (clipped to 255); a new image."""
    if saturation_gain == 1.0 and value_gain == 1.0:
        return image.copy()  # the HSV round trip is not lossless
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    ramp = np.arange(256, dtype=np.float32)
    lut_s = np.clip(ramp * saturation_gain, 0, 255).astype(np.uint8)
    lut_v = np.clip(ramp * value_gain, 0, 255).astype(np.uint8)
    h, s, v = cv2.split(hsv)
    hsv = cv2.merge([h, cv2.LUT(s, lut_s), cv2.LUT(v, lut_v)])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


# ----------------------------------------------------------------------------------------------
# The training pipeline for one frame


@dataclass
class TransformedFrame:
    """A frame ready for the network.

    image: (3, input_h, input_w) float32 RGB in [0, 1]; boxes: (K, 4) float32 input pixels;
    kept: (K,) int64 indices of the kept input boxes; letterbox: the letterbox alone (what
    inference uses); matrix: (2, 3) float64 full map original -> input pixels (letterbox and
    augmentation).
    """

    image: torch.Tensor
    boxes: np.ndarray
    kept: np.ndarray
    letterbox: Letterbox
    matrix: np.ndarray


def transform_frame(image: np.ndarray, boxes: np.ndarray, input_w: int, input_h: int, *,
                    affine: AffineParams | None = None,
                    hsv: tuple[float, float] | None = None,
                    min_size: float = 2.0) -> TransformedFrame:
    """HSV jitter (optional) on the original, letterbox to ``input_w x input_h``, then the affine
    (optional) in the input canvas; the boxes (N, 4) original pixels follow the same map."""
    if hsv is not None:
        image = hsv_jitter(image, *hsv)
    height, width = image.shape[:2]
    record, new_w, new_h = letterbox_params(width, height, input_w, input_h)
    resized = image if (new_w, new_h) == (width, height) else cv2.resize(
        image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    place = np.array([[1.0, 0.0, record.pad_x], [0.0, 1.0, record.pad_y]])
    if affine is None or affine == AffineParams():
        canvas = np.full((input_h, input_w, 3), round(PAD_VALUE), dtype=np.uint8)
        x0, y0 = int(record.pad_x), int(record.pad_y)
        canvas[y0:y0 + new_h, x0:x0 + new_w] = resized
        warp = place
    else:
        warp = compose(affine_matrix(affine, input_w, input_h), place)
        canvas = cv2.warpAffine(resized, cv_matrix(warp), (input_w, input_h),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                borderValue=(PAD_VALUE, PAD_VALUE, PAD_VALUE))
    # boxes use the exact per-axis resize factors, so they match the pixels to the sub-pixel
    resize = np.array([[new_w / width, 0.0, 0.0], [0.0, new_h / height, 0.0]])
    matrix = compose(warp, resize)
    out_boxes, kept = transform_boxes(boxes, matrix, input_w, input_h, min_size=min_size)
    return TransformedFrame(to_tensor(canvas), out_boxes, kept, record, matrix)
