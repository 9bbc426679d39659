"""What every tracker shares: the per-frame input, the typed output, and the plugin stages.

A tracker consumes one ``Detections`` per frame and returns the ``TrackResult``s to output for
that frame. It owns its id counter (ids start at 1 after ``reset()``), keeps memory bounded on
long videos (removed tracks are forgotten), and runs plugin steps at named stages:

- ``"after_decode"``: ``step(outputs, detections, meta) -> None``, run by the baseline's
  detector wrapper (network outputs -> ``Detections``) before the tracker sees the frame; may add
  entries to ``detections.extras`` (for example decoded occlusion centres).
- ``"after_association"``: ``step(tracker, context) -> None`` with a ``FrameContext``, run by the
  tracker after its association stages; may call ``tracker.refind(track, box)`` for tracks
  returned by ``tracker.unmatched_tracks()``.

Trackers implement ``unmatched_tracks()`` and ``refind()`` so that a step written
against this interface (the occlusion plugin's refinding) works for FairMOT and CenterTrack alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

TRACKER_STAGES = ("after_decode", "after_association")


@dataclass
class Detections:
    """One frame's detector output in image pixels.

    boxes: (N, 4) float ``x1, y1, x2, y2``; scores: (N,); embeddings: (N, D) L2-normalised or
    None (``--reid none``); extras: anything a plugin or baseline adds (for example
    ``"occlusion_centers"`` (K, 2) and ``"occlusion_scores"`` (K,), or CenterTrack's
    ``"tracking"`` (N, 2) offsets).
    """

    boxes: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if len(self.scores) != len(self.boxes):
            raise ValueError(f"Detections: {len(self.boxes)} boxes but {len(self.scores)} scores")
        if self.embeddings is not None:
            self.embeddings = np.asarray(self.embeddings, dtype=np.float32).reshape(len(self.boxes), -1)

    def __len__(self) -> int:
        return len(self.boxes)

    def select(self, keep: np.ndarray) -> "Detections":
        """The detections where ``keep`` (bool mask or indices) holds; extras are kept as is."""
        emb = None if self.embeddings is None else self.embeddings[keep]
        return Detections(self.boxes[keep], self.scores[keep], emb, dict(self.extras))


@dataclass
class TrackResult:
    """One output box: ``box`` is ``x1, y1, x2, y2`` in pixels; ``refound`` marks a box that the
    occlusion refinding recovered this frame (not a detection)."""

    track_id: int
    box: np.ndarray
    score: float
    refound: bool = False

    @property
    def tlwh(self) -> np.ndarray:
        x1, y1, x2, y2 = self.box
        return np.array([x1, y1, x2 - x1, y2 - y1])


@dataclass
class FrameContext:
    """What ``after_association`` steps see for the current frame.

    frame_id: 1-based frame number; detections: this frame's ``Detections`` (after the score
    threshold); matched_boxes: (M, 4) boxes of the tracks matched to a detection this frame.
    """

    frame_id: int
    detections: Detections
    matched_boxes: np.ndarray


class TrackLike(Protocol):
    """What a refinding step needs of a lost track."""

    track_id: int

    def predicted_box(self) -> np.ndarray:  # (4,) x1, y1, x2, y2 of the motion prediction
        ...

    @property
    def frames_lost(self) -> int:  # consecutive frames without a detection, >= 1 when lost
        ...


StepFn = Callable[..., None]
