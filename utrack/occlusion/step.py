"""Lost-object refinding as a tracker step (Algorithm 1 step 5), for any tracker that implements
``unmatched_tracks()`` and ``refind()`` (``utrack.tracking.base``).

Occlusion centres reach the tracker in ``Detections.extras`` under the keys below, whether they
were decoded from the network (the occlusion plugin), read from a file or built from the ground
truth (tracker-only replay).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from utrack.occlusion.refind import refind_lost_boxes
from utrack.tracking.base import FrameContext

CENTERS = "occlusion_centers"  # (K, 2) x, y in original image pixels
SCORES = "occlusion_scores"  # (K,)
HEATMAP = "occlusion_heatmap"  # (h, w) probabilities at output stride, for pictures
STRIDE = "occlusion_stride"  # the heatmap's output stride in original image pixels
LETTERBOX = "letterbox"  # how the frame was letterboxed into the network input (for pictures)


def refind_unmatched_tracks(tracker: Any, context: FrameContext, *, tau_w: int, tau_o: float,
                            default_stride: float = 4.0) -> int:
    """For each track unmatched this frame and lost for fewer than ``tau_w`` earlier frames,
    search this frame's boxes and occlusion centres and hand recovered boxes (Eq. 15-16) to
    ``tracker.refind``. Returns the number of refound tracks; ``tau_w = 0`` refinds nothing."""
    extras = context.detections.extras
    centers = extras.get(CENTERS)
    if centers is None or len(centers) == 0 or tau_w <= 0:
        return 0
    lost = [t for t in tracker.unmatched_tracks() if t.frames_lost < tau_w]
    if not lost:
        return 0
    predicted = np.stack([t.predicted_box() for t in lost])
    found = refind_lost_boxes(predicted, context.detections.boxes, centers, tau_o=tau_o,
                              down_ratio=extras.get(STRIDE, default_stride))
    count = 0
    for track, result in zip(lost, found):
        if result is not None:
            tracker.refind(track, np.asarray(result.box, dtype=np.float64))
            count += 1
    return count
