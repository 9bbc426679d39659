"""The state of one track: lifecycle, Kalman mean/covariance, appearance feature, bookkeeping.

A ``Track`` is a plain record that trackers update; the Kalman arithmetic is done batched by the
tracker (``utrack.tracking.kalman``), so a track only stores the results. Ids are handed out by the
tracker that owns the track (``BaseTracker.next_id``), never by a class-level counter.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class TrackState(IntEnum):
    """Lifecycle of a track. ``New``: built but not started (trackers here start tracks at once);
    ``Tracked``: seen this frame (or refound); ``Lost``: kept for re-identification;
    ``Removed``: forgotten by the tracker."""

    New = 0
    Tracked = 1
    Lost = 2
    Removed = 3


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """(K, D) rows divided by their L2 norm (zero rows stay zero)."""
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    return x / np.where(norm > 0, norm, 1)


def smooth_features(smooth: np.ndarray, feats: np.ndarray, momentum: float) -> np.ndarray:
    """Appearance EMA for K tracks at once: ``normalize(m * smooth + (1 - m) * feats)``.

    smooth, feats: (K, D) -> (K, D), same dtype as ``smooth``.
    """
    return normalize_rows(momentum * smooth + (1.0 - momentum) * feats)


class Track:
    """One tracked object.

    mean (8,) / covariance (8, 8): Kalman state ``cx, cy, a, h`` and velocities;
    smooth_feat (D,) or None: EMA of the (L2-normalised) detection embeddings;
    start_frame: frame of creation; end_frame: last frame matched to a detection;
    is_activated: confirmed (matched on two consecutive frames, or created on frame 1);
    frames_lost: consecutive earlier frames without a detection (0 if matched on the previous
    frame; refound frames neither increase nor reset it).
    """

    __slots__ = ("track_id", "state", "mean", "covariance", "smooth_feat", "score",
                 "start_frame", "end_frame", "is_activated", "frames_lost")

    def __init__(self, track_id: int, mean: np.ndarray, covariance: np.ndarray, score: float,
                 frame_id: int, feature: np.ndarray | None = None, activated: bool = False):
        self.track_id = track_id
        self.state = TrackState.Tracked
        self.mean = mean
        self.covariance = covariance
        self.smooth_feat = feature
        self.score = float(score)
        self.start_frame = frame_id
        self.end_frame = frame_id
        self.is_activated = activated
        self.frames_lost = 0

    def predicted_box(self) -> np.ndarray:
        """(4,) ``x1, y1, x2, y2`` of the current Kalman mean (the prediction while lost)."""
        cx, cy, a, h = self.mean[:4]
        w = a * h
        x1 = cx - w / 2
        y1 = cy - h / 2
        return np.array([x1, y1, x1 + w, y1 + h])

    def update_feature(self, feat: np.ndarray, momentum: float) -> None:
        """Fold one (D,) L2-normalised embedding into the EMA (the first one is taken as is).
        Trackers with many tracks use ``smooth_features`` on all of them at once."""
        if self.smooth_feat is None:
            self.smooth_feat = feat
        else:
            self.smooth_feat = smooth_features(self.smooth_feat[None], feat[None], momentum)[0]

    @property
    def history(self) -> int:
        """Frames between creation and the last detection (duplicate removal keeps the longer)."""
        return self.end_frame - self.start_frame

    def mark_detected(self, mean: np.ndarray, covariance: np.ndarray, score: float,
                      frame_id: int) -> None:
        """Matched to a detection on ``frame_id``: new Kalman state, confirmed, Tracked."""
        self.mean = mean
        self.covariance = covariance
        self.score = float(score)
        self.end_frame = frame_id
        self.frames_lost = 0
        self.state = TrackState.Tracked
        self.is_activated = True

    def mark_lost(self) -> None:
        self.state = TrackState.Lost

    def mark_removed(self) -> None:
        self.state = TrackState.Removed

    def __repr__(self) -> str:
        return (f"Track(id={self.track_id}, {self.state.name}, frames {self.start_frame}-"
                f"{self.end_frame}, lost={self.frames_lost}, activated={self.is_activated})")
