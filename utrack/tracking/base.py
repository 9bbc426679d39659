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

Trackers derive from ``BaseTracker`` and implement ``update()``, ``unmatched_tracks()`` and
``refind()``, so that a step written against this interface (the occlusion plugin's refinding)
works for FairMOT and CenterTrack alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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
            emb = np.asarray(self.embeddings, dtype=np.float32)
            if len(self.boxes) == 0:  # reshape(0, -1) is ambiguous: keep D when known
                self.embeddings = emb.reshape(0, emb.shape[-1] if emb.ndim == 2 else 0)
            else:
                self.embeddings = emb.reshape(len(self.boxes), -1)

    def __len__(self) -> int:
        return len(self.boxes)

    def select(self, keep: np.ndarray) -> Detections:
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
    def frames_lost(self) -> int:
        # consecutive EARLIER frames without a detection: 0 for a track that was matched on the
        # previous frame and lost on this one; refound frames neither increase nor reset it
        ...


StepFn = Callable[..., None]


class BaseTracker(ABC):
    """What every tracker shares: config, frame counter, id counter, plugin steps, refinding API.

    steps: stage name (one of ``TRACKER_STAGES``) -> list of callables, run in order by
    ``run_steps``; ``"after_decode"`` steps are held here for the detector wrapper to run.
    Subclasses extend ``reset()`` (calling ``super().reset()``) to clear their own state; it is
    called once at construction.
    """

    frame_id: int  # frames seen since the last reset (the current frame's 1-based number)
    _last_id: int

    def __init__(self, cfg: Any, steps: Mapping[str, Sequence[StepFn] | StepFn] | None = None):
        self.cfg = cfg
        self.steps: dict[str, list[StepFn]] = {}
        for stage, fns in (steps or {}).items():
            if stage not in TRACKER_STAGES:
                raise ValueError(f"unknown tracker stage {stage!r}; stages are {TRACKER_STAGES}")
            self.steps[stage] = [fns] if callable(fns) else list(fns)
        self.reset()

    def reset(self) -> None:
        """Forget every track; the frame counter restarts at 0 and ids at 1."""
        self.frame_id = 0
        self._last_id = 0
        self._refound: dict[int, np.ndarray] = {}  # track id -> box recovered this frame

    def _begin_frame(self) -> None:
        """Start of ``update``: count the frame, forget last frame's refound boxes."""
        self.frame_id += 1
        self._refound = {}

    def next_id(self) -> int:
        """A fresh track id: 1, 2, 3, ... since construction or the last ``reset()``."""
        self._last_id += 1
        return self._last_id

    def run_steps(self, stage: str, *args: Any) -> None:
        """Call every step registered for ``stage`` with ``args``."""
        for fn in self.steps.get(stage, ()):
            fn(*args)

    @abstractmethod
    def update(self, dets: Detections) -> list[TrackResult]:
        """Consume one frame's detections; return what to output for that frame."""

    @abstractmethod
    def unmatched_tracks(self) -> list[TrackLike]:
        """Confirmed tracks that found no detection in the current update (lost this frame or
        earlier, not removed, not already refound this frame)."""

    def refind(self, track: TrackLike, box: np.ndarray) -> None:
        """Recover ``track`` (from ``unmatched_tracks()``) at ``box`` (4,) ``x1, y1, x2, y2``.

        The track is output this frame with ``box`` and ``refound=True`` and becomes tracked
        again; if ``cfg.refind_update_kalman`` its motion state is corrected with ``box``. Its
        ``frames_lost`` neither grows this frame nor resets; its appearance is not updated.
        """
        if not any(t is track for t in self.unmatched_tracks()):
            raise ValueError(f"refind: track {track.track_id} is not an unmatched track of this "
                             "tracker (or was already refound this frame)")
        box = np.asarray(box, dtype=np.float64).reshape(4).copy()
        self._revive(track, box)
        self._refound[track.track_id] = box

    @abstractmethod
    def _revive(self, track: TrackLike, box: np.ndarray) -> None:
        """Make an unmatched ``track`` tracked again at ``box`` (motion update when
        ``cfg.refind_update_kalman``); ``refind`` has checked it and records the box."""


def filter_results(results: list[TrackResult], min_box_area: float,
                   max_aspect: float) -> list[TrackResult]:
    """FairMOT's output filter: drop boxes with ``w * h <= min_box_area`` or ``w / h > max_aspect``
    (and degenerate boxes with ``h <= 0``)."""
    kept = []
    for r in results:
        w = r.box[2] - r.box[0]
        h = r.box[3] - r.box[1]
        if h > 0 and w * h > min_box_area and not w / h > max_aspect:
            kept.append(r)
    return kept
