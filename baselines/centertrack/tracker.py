"""CenterTrack's online tracker: detections carry an offset to where they were in the previous
frame, and are matched to the tracks' positions there (DESIGN.md section 6).

One ``update`` per frame:

1. keep detections with ``score > cfg.conf_thres`` (CenterTrack's ``track_thresh``); each has
   ``extras["tracking"]`` (N, 2), the offset from its centre to its centre in the previous
   frame, in original pixels (zeros when absent, e.g. detections replayed from a file);
2. match ``detection centre + offset`` to every kept track's centre in the previous frame
   (``offset_matching``): greedy by detection score, or Hungarian with ``cfg.hungarian``;
   a pair is invalid when the squared distance exceeds the area ``w * h`` of the track's box or
   of the detection's box (CenterTrack's rule: the distance must stay within both boxes'
   "size"; DESIGN.md: "invalid beyond the box area"); ties go to the higher-scored detection
   (then the lower index) and to the older track (lower id);
3. with embeddings (an ``id`` head, ``use_embeddings``): re-attach (see ``reattach``) tracks
   that were already unmatched on the previous frame (``frames_lost >= 1``) to the detections
   left, by the cosine distance of the track's feature EMA to the detection embedding, with
   ``linear_assignment`` limited to ``cfg.reattach_thresh``; a tracked object that the offsets
   lost for one frame is left to the offsets (it is still near its last position), one that
   was missing for longer has only its appearance to go by;
4. unmatched detections with ``score >= cfg.new_thresh`` start tracks (ids from 1 after
   ``reset()``), output at once (CenterTrack has no confirmation step);
5. unmatched tracks move by their constant-velocity prediction (the per-frame box change
   between their last two observations, spread over the frames between them); this predicted
   box is what refinding starts from (``unmatched_tracks()``, ``predicted_box()``);
6. ``after_association`` plugin steps (``FrameContext``) may ``refind`` them;
7. unmatched, not refound tracks lose one more frame and are forgotten once unmatched for more
   than ``cfg.max_age`` consecutive frames (default 30; the official CenterTrack drops them at
   once, ``max_age = 0``). ``max_age`` counts frames, whatever the frame rate;
8. output: tracks matched, re-attached, started or refound this frame (refound ones with the
   recovered box and ``refound=True``), in id order. Their boxes with score ``>= cfg.pre_thresh``
   become the next frame's previous-frame heatmap (``previous_inputs``).

Memory stays bounded: forgotten tracks are dropped, a track keeps one box, one velocity and one
feature, and the tracker keeps one previous input image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from baselines.centertrack.data import centers_and_sizes, render_heatmap
from utrack.config import TrackerConfig
from utrack.data.transforms import Letterbox, letterbox_boxes
from utrack.tracking.association import embedding_distance, linear_assignment
from utrack.tracking.base import (
    BaseTracker,
    Detections,
    FrameContext,
    StepFn,
    TrackLike,
    TrackResult,
)
from utrack.tracking.track import normalize_rows, smooth_features

TRACKING = "tracking"  # Detections.extras key: (N, 2) offsets to the previous centre, pixels
_NO_MATCH = np.zeros((0, 2), dtype=np.int64)


@dataclass(eq=False)
class CenterTrackTrack:
    """One track.

    box (4,): ``x1, y1, x2, y2`` in the last processed frame (the detection, the refound box
    with ``refind_update_kalman``, or the prediction while unmatched); velocity (4,): box change
    per frame; last_box (4,) / last_frame: the last observation (a detection, or a refound box
    that updated the motion); feature (D,) or None: EMA of the detection embeddings;
    frames_lost: consecutive earlier frames without a detection (refound frames neither
    increase nor reset it).
    """

    track_id: int
    box: np.ndarray
    score: float
    start_frame: int
    last_box: np.ndarray
    last_frame: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    feature: np.ndarray | None = None
    frames_lost: int = 0

    def predicted_box(self) -> np.ndarray:
        """(4,) the box of the current frame's prediction (the current box once matched)."""
        return self.box.copy()

    def observe(self, box: np.ndarray, frame_id: int) -> None:
        """A new observation: velocity from the last one, spread over the frames between."""
        gap = max(frame_id - self.last_frame, 1)
        self.velocity = (box - self.last_box) / gap
        self.box = box.copy()
        self.last_box = box.copy()
        self.last_frame = frame_id


def offset_matching(det_boxes: np.ndarray, det_scores: np.ndarray, offsets: np.ndarray,
                    track_boxes: np.ndarray, hungarian: bool = False
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match detections, moved back by their tracking offsets, to the tracks' previous centres.

    Args:
        det_boxes: (N, 4) this frame's boxes; det_scores: (N,); offsets: (N, 2) from each
            detection's centre to its centre in the previous frame; track_boxes: (M, 4) the
            tracks' boxes in the previous frame, oldest track first. One pixel unit throughout.
        hungarian: minimum total squared distance with as many valid pairs as possible
            (``linear_assignment``) instead of the greedy pass.

    A pair (i, j) is valid when ``d^2 <= min(w_i h_i, w_j h_j)``, with ``d`` the distance
    between ``centre_i + offset_i`` and ``centre_j`` (CenterTrack's rule). Greedy: detections in
    decreasing score order (stable: equal scores keep their index order) each take the nearest
    valid track still free (equal distances: the lowest index, i.e. the oldest track).

    Returns:
        matches (K, 2) ``[detection, track]`` sorted by detection, unmatched detections (N - K,)
        and unmatched tracks (M - K,), both sorted.
    """
    n, m = len(det_boxes), len(track_boxes)
    if n == 0 or m == 0:
        return _NO_MATCH, np.arange(n), np.arange(m)
    det_centers, det_sizes = centers_and_sizes(det_boxes)
    track_centers, track_sizes = centers_and_sizes(track_boxes)
    moved = det_centers + np.asarray(offsets, dtype=np.float64).reshape(n, 2)
    dist2 = ((moved[:, None, :] - track_centers[None, :, :]) ** 2).sum(-1)  # (N, M)
    det_area = det_sizes.prod(1)
    track_area = track_sizes.prod(1)
    valid = (dist2 <= det_area[:, None]) & (dist2 <= track_area[None, :])
    if hungarian:
        if not valid.any():
            return _NO_MATCH, np.arange(n), np.arange(m)
        # every valid pair is cheaper than leaving its two ends unmatched (limit = 2 * total):
        # the solver first maximises the number of valid matches, then minimises the distances
        limit = 2.0 * (dist2[valid].sum() + 1.0)
        cost = np.where(valid, dist2, 2.0 * limit)
        return linear_assignment(cost, limit)
    cost = np.where(valid, dist2, np.inf)
    free = np.ones(m, dtype=bool)
    pairs = []
    for i in np.argsort(-np.asarray(det_scores, dtype=np.float64), kind="stable").tolist():
        row = np.where(free, cost[i], np.inf)
        j = int(np.argmin(row))  # first minimum: the oldest track on ties
        if np.isfinite(row[j]):
            pairs.append((i, j))
            free[j] = False
    matches = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    u_det = np.setdiff1d(np.arange(n), matches[:, 0])
    return matches, u_det, np.flatnonzero(free)


class CenterTrackTracker(BaseTracker):
    """CenterTrack's tracker with kept lost tracks, refinding and optional re-attachment.

    cfg: ``TrackerConfig`` (conf_thres, new_thresh, pre_thresh, max_age, hungarian,
    reattach_thresh, feat_momentum, refind_update_kalman); frame_rate: kept for reference
    (``max_age`` counts frames); use_embeddings: fold detection embeddings into track features
    and re-attach by appearance; steps: plugin steps by stage name.
    """

    def __init__(self, cfg: TrackerConfig, frame_rate: float = 30.0,
                 use_embeddings: bool = False,
                 steps: Mapping[str, Sequence[StepFn] | StepFn] | None = None) -> None:
        self.frame_rate = frame_rate
        self.use_embeddings = use_embeddings
        super().__init__(cfg, steps)

    def reset(self) -> None:
        super().reset()
        self._tracks: list[CenterTrackTrack] = []  # every kept track, in id order
        self._unmatched: list[CenterTrackTrack] = []  # this frame's unmatched, not yet refound
        self._active: list[CenterTrackTrack] = []  # output this frame
        self._pre_image: torch.Tensor | None = None

    @property
    def tracks(self) -> list[CenterTrackTrack]:
        """Every track the tracker remembers, oldest first."""
        return list(self._tracks)

    # ------------------------------------------------------------------------------------------
    # the previous frame's inputs

    def previous_inputs(self, image: torch.Tensor, letterbox: Letterbox
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's previous-frame inputs for the frame ``image`` (1, 3, H, W), then
        ``image`` is kept as the next frame's previous image.

        Returns ``pre_image`` (1, 3, H, W), the previous frame's input (on the first frame after
        ``reset()``, or when the input size changes, ``image`` itself) and ``pre_hm``
        (1, 1, H, W), the tracks output on the previous frame with score ``>= pre_thresh``
        drawn at input resolution (their boxes mapped through ``letterbox``; empty on a first
        frame), on ``image``'s device.
        """
        _, _, height, width = image.shape
        previous = self._pre_image
        self._pre_image = image
        if previous is None or previous.shape != image.shape:
            return image, torch.zeros((1, 1, height, width), dtype=image.dtype,
                                      device=image.device)
        heatmap = self.pre_heatmap(letterbox, height, width)
        return previous, torch.from_numpy(heatmap[None]).to(device=image.device,
                                                              dtype=image.dtype)

    def pre_heatmap(self, letterbox: Letterbox, height: int, width: int) -> np.ndarray:
        """(1, height, width) float32: this frame's output tracks with score >= pre_thresh,
        one blob each at input resolution (``render_heatmap``, as in training)."""
        shown = [(t, self._refound.get(t.track_id, t.box)) for t in self._active
                 if t.score >= self.cfg.pre_thresh]
        if not shown:
            return np.zeros((1, height, width), dtype=np.float32)
        boxes = letterbox_boxes(np.stack([box for _, box in shown]), letterbox)
        centers, sizes = centers_and_sizes(boxes)
        return render_heatmap(centers, sizes, height, width)

    # ------------------------------------------------------------------------------------------
    # one frame

    def update(self, dets: Detections) -> list[TrackResult]:
        """Track one frame (see the module docstring); returns the tracks to output."""
        self._begin_frame()
        cfg = self.cfg
        keep = dets.scores > cfg.conf_thres
        offsets = dets.extras.get(TRACKING)
        offsets = (np.zeros((len(dets), 2)) if offsets is None
                   else np.asarray(offsets, dtype=np.float64).reshape(len(dets), 2))[keep]
        dets = dets.select(keep)
        dets.extras[TRACKING] = offsets  # select() keeps extras as they are: realign this one
        feats = (normalize_rows(dets.embeddings)
                 if self.use_embeddings and dets.embeddings is not None else None)

        tracks = self._tracks
        track_boxes = np.array([t.box for t in tracks]).reshape(-1, 4)
        matches, u_det, u_track = offset_matching(dets.boxes, dets.scores, offsets,
                                                  track_boxes, cfg.hungarian)
        pairs = [(tracks[j], i) for i, j in matches.tolist()]
        unmatched = [tracks[j] for j in u_track.tolist()]
        if feats is not None:
            reattached, u_det, unmatched = self.reattach(unmatched, u_det, feats)
            pairs += reattached
        matched_boxes = self._apply_detections(pairs, dets, feats)

        new_idx = u_det[dets.scores[u_det] >= cfg.new_thresh]
        new_tracks = [self._start_track(dets, int(i), feats) for i in new_idx.tolist()]

        for track in unmatched:
            track.box = track.box + track.velocity
        self._unmatched = unmatched
        self._active = [t for t, _ in pairs] + new_tracks
        self._tracks = tracks + new_tracks  # new ids are the largest: still in id order

        if self.steps.get("after_association"):
            self.run_steps("after_association", self,
                           FrameContext(self.frame_id, dets, matched_boxes))

        self._age_unmatched()
        self._active.sort(key=lambda t: t.track_id)
        return [TrackResult(t.track_id, self._refound[t.track_id].copy(), t.score, True)
                if t.track_id in self._refound else TrackResult(t.track_id, t.box.copy(), t.score)
                for t in self._active]

    def reattach(self, unmatched: list[CenterTrackTrack], u_det: np.ndarray, feats: np.ndarray
                 ) -> tuple[list[tuple[CenterTrackTrack, int]], np.ndarray,
                            list[CenterTrackTrack]]:
        """Re-attach tracks unmatched since an earlier frame (``frames_lost >= 1``, with a
        feature) to detections ``u_det`` by cosine distance (limit ``cfg.reattach_thresh``).

        feats: (N, D) this frame's L2-normalised embeddings. Returns the (track, detection)
        pairs, the detections left and the tracks left unmatched.
        """
        cand = [t for t in unmatched if t.frames_lost >= 1 and t.feature is not None]
        if not cand or len(u_det) == 0:
            return [], u_det, unmatched
        cost = embedding_distance(np.stack([t.feature for t in cand]), feats[u_det])
        matches, _, u_cols = linear_assignment(cost, self.cfg.reattach_thresh)
        pairs = [(cand[r], int(u_det[c])) for r, c in matches.tolist()]
        taken = {id(t) for t, _ in pairs}
        return pairs, u_det[u_cols], [t for t in unmatched if id(t) not in taken]

    # ------------------------------------------------------------------------------------------
    # refinding interface

    def unmatched_tracks(self) -> list[TrackLike]:
        return list(self._unmatched)

    def _revive(self, track: TrackLike, box: np.ndarray) -> None:
        if self.cfg.refind_update_kalman:
            track.observe(box, self.frame_id)
        self._unmatched = [t for t in self._unmatched if t is not track]
        self._active.append(track)

    # ------------------------------------------------------------------------------------------
    # helpers

    def _apply_detections(self, pairs: list[tuple[CenterTrackTrack, int]], dets: Detections,
                          feats: np.ndarray | None) -> np.ndarray:
        """Matched tracks take their detection's box and score (and fold in its embedding);
        returns their new boxes (M, 4)."""
        if not pairs:
            return np.zeros((0, 4))
        for track, i in pairs:
            track.observe(dets.boxes[i], self.frame_id)
            track.score = float(dets.scores[i])
            track.frames_lost = 0
        if feats is not None:
            with_feat = [(t, i) for t, i in pairs if t.feature is not None]
            if with_feat:
                old = np.stack([t.feature for t, _ in with_feat])
                new = feats[[i for _, i in with_feat]]
                for (track, _), smooth in zip(with_feat, smooth_features(
                        old, new, self.cfg.feat_momentum)):
                    track.feature = smooth
            for track, i in pairs:
                if track.feature is None:
                    track.feature = feats[i].copy()
        return np.stack([t.box for t, _ in pairs])

    def _start_track(self, dets: Detections, i: int, feats: np.ndarray | None
                     ) -> CenterTrackTrack:
        box = dets.boxes[i].copy()
        return CenterTrackTrack(self.next_id(), box, float(dets.scores[i]), self.frame_id,
                                last_box=box.copy(), last_frame=self.frame_id,
                                feature=None if feats is None else feats[i].copy())

    def _age_unmatched(self) -> None:
        """Unmatched, not refound tracks lose one more frame; forget those unmatched for more
        than ``max_age`` consecutive frames."""
        gone = set()
        for track in self._unmatched:
            track.frames_lost += 1
            if track.frames_lost > self.cfg.max_age:
                gone.add(id(track))
        if gone:
            self._tracks = [t for t in self._tracks if id(t) not in gone]
        self._unmatched = [t for t in self._unmatched if id(t) not in gone]
