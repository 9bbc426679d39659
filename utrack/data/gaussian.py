"""CenterNet gaussians: the radius rule, rendering peaks into a heatmap, and the peak value.

Shared by the detection targets (object centres), the occlusion targets (intersection centres)
and the occlusion refinding score (DESIGN.md sections 4 and 5).
"""

from __future__ import annotations

import numpy as np


def gaussian_radius(height: np.ndarray | float, width: np.ndarray | float,
                    min_overlap: float = 0.7) -> np.ndarray:
    """CenterNet's radius rule: the smallest of three quadratic roots (vectorised).

    A box of size ``height x width`` shifted by the radius still overlaps its ground truth with
    IoU >= ``min_overlap`` (in CenterNet's approximation, which FairMOT and UTrack use as is).
    Returns float radii with the input's shape; callers take ``max(0, int(r))``.
    """
    h = np.asarray(height, dtype=np.float64)
    w = np.asarray(width, dtype=np.float64)
    b1 = h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(np.maximum(b1 ** 2 - 4 * c1, 0))) / 2
    b2 = 2 * (h + w)
    c2 = (1 - min_overlap) * w * h
    r2 = (b2 + np.sqrt(np.maximum(b2 ** 2 - 16 * c2, 0))) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (h + w)
    c3 = (min_overlap - 1) * w * h
    r3 = (b3 + np.sqrt(np.maximum(b3 ** 2 - 4 * a3 * c3, 0))) / 2
    return np.minimum(np.minimum(r1, r2), r3)


def integer_radius(height: np.ndarray | float, width: np.ndarray | float,
                   min_overlap: float = 0.7) -> np.ndarray:
    """``max(0, int(gaussian_radius(...)))`` as int64, the radius actually rendered."""
    return np.maximum(0, gaussian_radius(height, width, min_overlap).astype(np.int64))


def gaussian_sigma(radius: np.ndarray | float) -> np.ndarray:
    """Standard deviation of the rendered gaussian: diameter / 6 with diameter = 2r + 1."""
    return (2 * np.asarray(radius, dtype=np.float64) + 1) / 6


def gaussian_kernel(radius: int) -> np.ndarray:
    """(2r+1, 2r+1) float32 gaussian with peak 1 and sigma = (2r+1)/6."""
    sigma = gaussian_sigma(radius)
    y, x = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    g = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    g[g < np.finfo(g.dtype).eps * g.max()] = 0
    return g.astype(np.float32)


def draw_gaussian(heatmap: np.ndarray, center: tuple[int, int], radius: int) -> np.ndarray:
    """Render a peak of height 1 at integer ``center = (x, y)`` into ``heatmap`` (H, W), in place,
    composing with what is there by maximum; the window is clipped at the borders."""
    radius = int(radius)
    kernel = gaussian_kernel(radius)
    x, y = int(center[0]), int(center[1])
    height, width = heatmap.shape
    left, right = min(x, radius), min(width - x, radius + 1)
    top, bottom = min(y, radius), min(height - y, radius + 1)
    if left + right <= 0 or top + bottom <= 0:
        return heatmap
    window = heatmap[y - top:y + bottom, x - left:x + right]
    patch = kernel[radius - top:radius + bottom, radius - left:radius + right]
    np.maximum(window, patch, out=window)
    return heatmap


def gaussian_value(dx: np.ndarray | float, dy: np.ndarray | float,
                   radius: np.ndarray | float) -> np.ndarray:
    """Value of the rendered gaussian (peak 1) at offset ``(dx, dy)`` from its centre."""
    sigma = gaussian_sigma(radius)
    return np.exp(-(np.asarray(dx) ** 2 + np.asarray(dy) ** 2) / (2 * sigma * sigma))
