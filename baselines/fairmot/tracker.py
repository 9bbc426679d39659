"""FairMOT's online tracker (the JDE association), on utrack's batched Kalman filter and costs.

One ``update`` per frame (DESIGN.md section 6):

1. keep detections with ``score > cfg.conf_thres``;
2. the pool (confirmed Tracked tracks + Lost tracks) is predicted one frame ahead, all at once;
3. stage 1: appearance (cosine distance of the track's feature EMA to the detection embedding)
   fused with Kalman gating, assignment limit ``cfg.emb_thresh``; without embeddings
   (``use_embeddings=False`` or detections with no embeddings) IoU with ``cfg.iou_only_thresh``;
   matched Lost tracks are re-activated with their id;
4. stage 2: IoU of the remaining Tracked pool tracks, limit ``cfg.iou_thresh``; unmatched ones
   become Lost. Lost tracks only come back through stage 1 or refinding (FairMOT), unless
   ``cfg.lost_iou_frames`` > 0: then Lost tracks lost for at most that many frames also take
   part (without it, a track missed for one frame whose embedding drifted past
   ``cfg.emb_thresh`` is duplicated by a new track on the same person);
5. stage 3: unconfirmed tracks (created on the previous frame) by IoU, ``cfg.unconfirmed_thresh``;
   matched ones are confirmed, the others removed;
6. new (unconfirmed, except on frame 1) tracks from the remaining detections;
7. ``after_association`` plugin steps (``FrameContext``), which may ``refind`` lost tracks;
8. Lost tracks lost for more than ``int(frame_rate / 30 * cfg.track_buffer)`` frames are
   forgotten; Tracked/Lost duplicates (IoU > 0.85) keep the track with the longer history;
9. output: confirmed Tracked tracks with their Kalman box; refound tracks with their recovered box.

Like FairMOT: unconfirmed tracks are not Kalman-predicted before stage 3, a Lost track's height
velocity is zeroed before each prediction, and a track id is taken when a track is created (so
ids of unconfirmed tracks that die leave gaps). Unlike FairMOT: IoU has no "+1 pixel", removed
tracks are forgotten (FairMOT keeps a list that grows for the whole video), and all Kalman and
feature updates are batched over tracks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from utrack.config import TrackerConfig
from utrack.tracking.association import (
    embedding_distance,
    fuse_motion,
    iou_distance,
    linear_assignment,
)
from utrack.tracking.base import (
    BaseTracker,
    Detections,
    FrameContext,
    StepFn,
    TrackLike,
    TrackResult,
)
from utrack.tracking.kalman import CHI2_95, KalmanFilter, boxes_to_xyah, xyah_to_boxes
from utrack.tracking.track import Track, TrackState, normalize_rows, smooth_features

DUPLICATE_IOU_DISTANCE = 0.15
_NO_BOXES = np.zeros((0, 4))


class JDETracker(BaseTracker):
    """FairMOT / JDE multi-object tracker.

    cfg: ``TrackerConfig`` (conf_thres, emb_thresh, iou_thresh, unconfirmed_thresh,
    iou_only_thresh, motion_lambda, feat_momentum, track_buffer, refind_update_kalman);
    frame_rate: of the video (scales the lost-track buffer); use_embeddings: False for the
    ``--reid none`` ablation (IoU in stage 1); steps: plugin steps by stage name.
    """

    def __init__(self, cfg: TrackerConfig, frame_rate: float = 30.0, use_embeddings: bool = True,
                 steps: Mapping[str, Sequence[StepFn] | StepFn] | None = None):
        self.frame_rate = frame_rate
        self.use_embeddings = use_embeddings
        self.max_time_lost = int(frame_rate / 30.0 * cfg.track_buffer)
        self.kf = KalmanFilter()
        super().__init__(cfg, steps)

    def reset(self) -> None:
        super().reset()
        self._tracked: list[Track] = []  # state Tracked: confirmed and unconfirmed
        self._lost: list[Track] = []  # state Lost, all confirmed

    @property
    def tracks(self) -> list[Track]:
        """Every track the tracker remembers (Tracked, then Lost)."""
        return self._tracked + self._lost

    # ------------------------------------------------------------------------------------------
    # one frame

    def update(self, dets: Detections) -> list[TrackResult]:
        """Track one frame (see the module docstring for the stages); returns the confirmed
        tracks to output, with refound ones marked."""
        self._begin_frame()
        cfg = self.cfg
        dets = dets.select(dets.scores > cfg.conf_thres)
        boxes = dets.boxes
        meas = boxes_to_xyah(boxes)
        use_emb = self.use_embeddings and dets.embeddings is not None
        feats = normalize_rows(dets.embeddings) if use_emb else None

        unconfirmed = [t for t in self._tracked if not t.is_activated]
        pool = [t for t in self._tracked if t.is_activated]
        num_tracked = len(pool)  # pool[:num_tracked] are Tracked, the rest Lost
        pool += self._lost
        pool_means, pool_covs = self._predict(pool, num_tracked)
        pool_boxes = xyah_to_boxes(pool_means)
        pool_feats = self._features(pool, feats.shape[1]) if use_emb else None

        # Stage 1: appearance + motion gate (or IoU without embeddings), Tracked and Lost tracks.
        if use_emb:
            cost = embedding_distance(pool_feats, feats)
            if cost.size:
                gating = self.kf.gating_distance(pool_means, pool_covs, meas)
                cost = fuse_motion(cost, gating, cfg.motion_lambda, CHI2_95[4])
            matches, u_pool, u_det = linear_assignment(cost, cfg.emb_thresh)
        else:
            matches, u_pool, u_det = linear_assignment(iou_distance(pool_boxes, boxes),
                                                       cfg.iou_only_thresh)
        rows, row_dets = matches[:, 0].tolist(), matches[:, 1].tolist()
        reactivated = [pool[r] for r in rows if r >= num_tracked]

        # Stage 2: IoU, remaining Tracked tracks (and recently Lost ones, cfg.lost_iou_frames).
        cand = u_pool[u_pool < num_tracked]
        if cfg.lost_iou_frames > 0:
            recent = [i for i in u_pool[u_pool >= num_tracked].tolist()
                      if pool[i].frames_lost <= cfg.lost_iou_frames]
            cand = np.concatenate([cand, np.asarray(recent, dtype=cand.dtype)])
        matches, u_cand, u_det2 = linear_assignment(
            iou_distance(pool_boxes[cand], boxes[u_det]), cfg.iou_thresh)
        matched_pool = cand[matches[:, 0]].tolist()
        rows += matched_pool
        row_dets += u_det[matches[:, 1]].tolist()
        reactivated += [pool[i] for i in matched_pool if i >= num_tracked]
        newly_lost = [pool[i] for i in cand[u_cand].tolist() if i < num_tracked]
        for track in newly_lost:
            track.mark_lost()
        det_left = u_det[u_det2]

        # Stage 3: unconfirmed tracks (not predicted, as in FairMOT) by IoU.
        unconf_boxes = (xyah_to_boxes(np.array([t.mean for t in unconfirmed]))
                        if unconfirmed else _NO_BOXES)
        matches, u_unconf, u_det3 = linear_assignment(
            iou_distance(unconf_boxes, boxes[det_left]), cfg.unconfirmed_thresh)
        for i in u_unconf.tolist():
            unconfirmed[i].mark_removed()
        unconf_matched = [unconfirmed[i] for i in matches[:, 0].tolist()]
        unconf_dets = det_left[matches[:, 1]].tolist()
        det_left = det_left[u_det3]

        # Kalman update, score and appearance of every matched track, in one batch.
        matched = [pool[r] for r in rows] + unconf_matched
        det_idx = np.asarray(row_dets + unconf_dets, dtype=np.int64)
        means, covs = pool_means[rows], pool_covs[rows]
        old_feats = None if pool_feats is None else pool_feats[rows]
        if unconf_matched:
            means = np.concatenate([means, np.array([t.mean for t in unconf_matched])])
            covs = np.concatenate([covs, np.array([t.covariance for t in unconf_matched])])
            if old_feats is not None:
                old_feats = np.concatenate([old_feats, self._features(unconf_matched,
                                                                      feats.shape[1])])
        matched_boxes = self._apply_detections(matched, means, covs, old_feats, det_idx,
                                               dets.scores, meas, feats)

        # New tracks from what is left.
        new_idx = det_left[dets.scores[det_left] >= cfg.conf_thres]
        new_tracks = self._start_tracks(new_idx, dets.scores, meas, feats)

        self._tracked = ([t for t in self._tracked if t.state == TrackState.Tracked]
                         + new_tracks + reactivated)
        self._lost = [t for t in self._lost if t.state == TrackState.Lost] + newly_lost

        if self.steps.get("after_association"):
            self.run_steps("after_association", self,
                           FrameContext(self.frame_id, dets, matched_boxes))

        self._age_lost_tracks()
        return self._finish_frame()

    # ------------------------------------------------------------------------------------------
    # refinding interface

    def unmatched_tracks(self) -> list[TrackLike]:
        return list(self._lost)

    def _revive(self, track: TrackLike, box: np.ndarray) -> None:
        if self.cfg.refind_update_kalman:
            mean, cov = self.kf.update(track.mean[None], track.covariance[None],
                                       boxes_to_xyah(box[None]))
            track.mean, track.covariance = mean[0], cov[0]
        track.state = TrackState.Tracked
        self._lost = [t for t in self._lost if t is not track]
        self._tracked.append(track)

    # ------------------------------------------------------------------------------------------
    # helpers

    def _predict(self, pool: list[Track], num_tracked: int) -> tuple[np.ndarray, np.ndarray]:
        """Predict ``pool`` in place (batched); returns the new means (P, 8) and covs (P, 8, 8)."""
        if not pool:
            return np.zeros((0, 8)), np.zeros((0, 8, 8))
        means = np.array([t.mean for t in pool])
        covs = np.array([t.covariance for t in pool])
        means[num_tracked:, 7] = 0  # Lost tracks: no height velocity (FairMOT)
        means, covs = self.kf.predict(means, covs)
        for track, mean, cov in zip(pool, means, covs):
            track.mean = mean
            track.covariance = cov
        return means, covs

    @staticmethod
    def _features(tracks: list[Track], dim: int) -> np.ndarray:
        """(T, D) smoothed features; zeros (cosine distance 1) for a track that has none."""
        if not tracks:
            return np.zeros((0, dim), dtype=np.float32)
        zero = np.zeros(dim, dtype=np.float32)
        return np.array([zero if t.smooth_feat is None else t.smooth_feat for t in tracks])

    def _apply_detections(self, tracks: list[Track], means: np.ndarray, covs: np.ndarray,
                          old_feats: np.ndarray | None, det_idx: np.ndarray, scores: np.ndarray,
                          meas: np.ndarray, feats: np.ndarray | None) -> np.ndarray:
        """Matched ``tracks`` (M) with Kalman states ``means`` (M, 8), ``covs`` (M, 8, 8) and
        smoothed features ``old_feats`` (M, D) take detections ``det_idx`` (M,): batched Kalman
        update, score, feature EMA. Returns their new boxes (M, 4)."""
        if not tracks:
            return _NO_BOXES
        means, covs = self.kf.update(means, covs, meas[det_idx])
        frame_id = self.frame_id
        for track, mean, cov, score in zip(tracks, means, covs, scores[det_idx].tolist()):
            track.mark_detected(mean, cov, score, frame_id)
        if feats is not None:
            new = feats[det_idx]
            smooth = smooth_features(old_feats, new, self.cfg.feat_momentum)
            for track, feat, first in zip(tracks, smooth, new):
                track.smooth_feat = first if track.smooth_feat is None else feat
        return xyah_to_boxes(means)

    def _start_tracks(self, idx: np.ndarray, scores: np.ndarray, meas: np.ndarray,
                      feats: np.ndarray | None) -> list[Track]:
        if len(idx) == 0:
            return []
        means, covs = self.kf.initiate(meas[idx])
        activated = self.frame_id == 1
        frame_id = self.frame_id
        new_feats = [None] * len(idx) if feats is None else feats[idx]
        return [Track(self.next_id(), mean, cov, score, frame_id, feat, activated)
                for mean, cov, score, feat in zip(means, covs, scores[idx].tolist(), new_feats)]

    def _age_lost_tracks(self) -> None:
        """Lost (not refound) tracks lose one more frame; forget those past the buffer.

        A track is kept at least one frame in Lost (FairMOT checks only tracks lost before
        this frame), hence ``max(max_time_lost, 1)``.
        """
        limit = max(self.max_time_lost, 1)
        kept = []
        for track in self._lost:
            track.frames_lost += 1
            if track.frames_lost > limit:
                track.mark_removed()
            else:
                kept.append(track)
        self._lost = kept

    def _finish_frame(self) -> list[TrackResult]:
        """Remove Tracked/Lost duplicates, then build this frame's results."""
        tracked, lost = self._tracked, self._lost
        if not tracked:
            return []
        tracked_boxes = xyah_to_boxes(np.array([t.mean for t in tracked]))
        if lost:
            lost_boxes = xyah_to_boxes(np.array([t.mean for t in lost]))
            close = np.argwhere(iou_distance(tracked_boxes, lost_boxes) < DUPLICATE_IOU_DISTANCE)
            if len(close):
                drop_tracked, drop_lost = set(), set()
                for p, q in close.tolist():
                    if tracked[p].history > lost[q].history:
                        drop_lost.add(q)
                    else:
                        drop_tracked.add(p)
                for i in drop_tracked:
                    tracked[i].mark_removed()
                for i in drop_lost:
                    lost[i].mark_removed()
                self._lost = [t for i, t in enumerate(lost) if i not in drop_lost]
                keep = [i for i in range(len(tracked)) if i not in drop_tracked]
                self._tracked = tracked = [tracked[i] for i in keep]
                tracked_boxes = tracked_boxes[keep]
        refound = self._refound
        results = []
        for track, box in zip(tracked, tracked_boxes):
            if not track.is_activated:
                continue
            if refound and track.track_id in refound:
                results.append(TrackResult(track.track_id, refound[track.track_id], track.score,
                                           True))
            else:
                results.append(TrackResult(track.track_id, box, track.score))
        return results
