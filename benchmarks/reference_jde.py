"""A deliberately straightforward JDE/FairMOT tracker, used only as the benchmark baseline.

It follows the structure of the official release (one object per detection and per track, a
Kalman filter called track by track, Python lists as track pools joined and subtracted by id,
a removed-track list that is kept forever) and the same association as
``baselines.fairmot.tracker.JDETracker``, so the two must give the same ids and boxes.
Deliberate simplicity is the point: nothing here is batched or optimised (IoU is computed pair by
pair in Python, where the official code calls a compiled helper). Not part of the package.
"""

from __future__ import annotations

import lap
import numpy as np
import scipy.linalg
from scipy.spatial.distance import cdist

GATE_4DOF = 9.4877

TRACKED, LOST, REMOVED = 1, 2, 3


class RefKalman:
    """Single-track constant-velocity Kalman filter on (cx, cy, a, h)."""

    def __init__(self) -> None:
        self.F = np.eye(8)
        for i in range(4):
            self.F[i, 4 + i] = 1.0
        self.H = np.eye(4, 8)
        self.wp = 1.0 / 20
        self.wv = 1.0 / 160

    def initiate(self, z):
        mean = np.r_[z, np.zeros(4)]
        h = z[3]
        std = [2 * self.wp * h, 2 * self.wp * h, 1e-2, 2 * self.wp * h,
               10 * self.wv * h, 10 * self.wv * h, 1e-5, 10 * self.wv * h]
        return mean, np.diag(np.square(std))

    def predict(self, mean, cov):
        h = mean[3]
        std = [self.wp * h, self.wp * h, 1e-2, self.wp * h,
               self.wv * h, self.wv * h, 1e-5, self.wv * h]
        Q = np.diag(np.square(std))
        return self.F.dot(mean), self.F.dot(cov).dot(self.F.T) + Q

    def project(self, mean, cov):
        h = mean[3]
        R = np.diag(np.square([self.wp * h, self.wp * h, 1e-1, self.wp * h]))
        return self.H.dot(mean), self.H.dot(cov).dot(self.H.T) + R

    def update(self, mean, cov, z):
        pmean, pcov = self.project(mean, cov)
        factor = scipy.linalg.cho_factor(pcov, lower=True, check_finite=False)
        gain = scipy.linalg.cho_solve(factor, cov.dot(self.H.T).T, check_finite=False).T
        new_mean = mean + (z - pmean).dot(gain.T)
        new_cov = cov - gain.dot(pcov).dot(gain.T)
        return new_mean, new_cov

    def gating_distance(self, mean, cov, zs):
        pmean, pcov = self.project(mean, cov)
        L = np.linalg.cholesky(pcov)
        d = zs - pmean
        y = scipy.linalg.solve_triangular(L, d.T, lower=True, check_finite=False)
        return np.sum(y * y, axis=0)


class RefTrack:
    """A track, or a detection waiting to become one."""

    def __init__(self, tlbr, score, feat):
        tlbr = np.asarray(tlbr, dtype=np.float64)
        self.det_tlwh = np.r_[tlbr[:2], tlbr[2:] - tlbr[:2]]
        self.score = float(score)
        self.feat = None
        self.smooth = None
        if feat is not None:
            self.set_feature(feat, 0.9)
        self.mean = None
        self.cov = None
        self.track_id = 0
        self.state = 0
        self.is_activated = False
        self.start_frame = 0
        self.frame_id = 0

    def set_feature(self, feat, momentum):
        feat = feat / np.linalg.norm(feat)
        self.feat = feat
        if self.smooth is None:
            self.smooth = feat
        else:
            self.smooth = momentum * self.smooth + (1 - momentum) * feat
        self.smooth = self.smooth / np.linalg.norm(self.smooth)

    def xyah(self):
        t = self.det_tlwh.copy()
        t[:2] += t[2:] / 2
        t[2] /= t[3]
        return t

    def tlbr(self):
        if self.mean is None:
            t = self.det_tlwh.copy()
        else:
            t = self.mean[:4].copy()
            t[2] *= t[3]
            t[:2] -= t[2:] / 2
        t[2:] += t[:2]
        return t

    def start(self, kf, frame_id, track_id):
        self.track_id = track_id
        self.mean, self.cov = kf.initiate(self.xyah())
        self.state = TRACKED
        self.is_activated = frame_id == 1
        self.start_frame = frame_id
        self.frame_id = frame_id

    def take(self, kf, det, frame_id, momentum, use_feat):
        self.mean, self.cov = kf.update(self.mean, self.cov, det.xyah())
        self.state = TRACKED
        self.is_activated = True
        self.score = det.score
        self.frame_id = frame_id
        if use_feat:
            if det.feat is not None:
                self.set_feature(det.feat, momentum)


def pair_iou(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def iou_cost(tracks_a, tracks_b):
    cost = np.ones((len(tracks_a), len(tracks_b)))
    boxes_b = [t.tlbr() for t in tracks_b]
    for i, ta in enumerate(tracks_a):
        box_a = ta.tlbr()
        for j, box_b in enumerate(boxes_b):
            cost[i, j] = 1.0 - pair_iou(box_a, box_b)
    return cost


def assign(cost, limit):
    if cost.size == 0:
        return [], list(range(cost.shape[0])), list(range(cost.shape[1]))
    _, x, y = lap.lapjv(cost, extend_cost=True, cost_limit=limit)
    matches = [(i, int(j)) for i, j in enumerate(x) if j >= 0]
    return matches, [i for i, j in enumerate(x) if j < 0], [j for j, i in enumerate(y) if i < 0]


def joined(a, b):
    seen = {t.track_id for t in a}
    out = list(a)
    for t in b:
        if t.track_id not in seen:
            seen.add(t.track_id)
            out.append(t)
    return out


def without(a, b):
    gone = {t.track_id for t in b}
    return [t for t in a if t.track_id not in gone]


class ReferenceJDETracker:
    """The reference tracker: ``update(boxes (N,4) x1y1x2y2, scores (N,), feats (N,D) or None)``
    returns a list of ``(track_id, box (4,), score)``."""

    def __init__(self, conf_thres=0.4, frame_rate=30.0, track_buffer=30, emb_thresh=0.4,
                 iou_thresh=0.5, unconfirmed_thresh=0.7, iou_only_thresh=0.8, motion_lambda=0.98,
                 feat_momentum=0.9, use_embeddings=True):
        self.conf_thres = conf_thres
        self.max_time_lost = int(frame_rate / 30.0 * track_buffer)
        self.emb_thresh = emb_thresh
        self.iou_thresh = iou_thresh
        self.unconfirmed_thresh = unconfirmed_thresh
        self.iou_only_thresh = iou_only_thresh
        self.motion_lambda = motion_lambda
        self.momentum = feat_momentum
        self.use_embeddings = use_embeddings
        self.kf = RefKalman()
        self.tracked = []
        self.lost = []
        self.removed = []
        self.frame_id = 0
        self.last_id = 0

    def update(self, boxes, scores, feats=None):
        self.frame_id += 1
        use_feat = self.use_embeddings and feats is not None
        dets = []
        for k in range(len(boxes)):
            if scores[k] > self.conf_thres:
                dets.append(RefTrack(boxes[k], scores[k], feats[k] if use_feat else None))

        activated, refound, newly_lost, removed = [], [], [], []
        unconfirmed = [t for t in self.tracked if not t.is_activated]
        confirmed = [t for t in self.tracked if t.is_activated]
        pool = joined(confirmed, self.lost)
        for t in pool:
            mean = t.mean.copy()
            if t.state != TRACKED:
                mean[7] = 0
            t.mean, t.cov = self.kf.predict(mean, t.cov)

        if use_feat:
            cost = np.zeros((len(pool), len(dets)))
            if cost.size:
                track_f = np.asarray([t.smooth for t in pool])
                det_f = np.asarray([d.feat for d in dets])
                cost = np.maximum(0.0, cdist(track_f, det_f, "cosine"))
                zs = np.asarray([d.xyah() for d in dets])
                for i, t in enumerate(pool):
                    g = self.kf.gating_distance(t.mean, t.cov, zs)
                    cost[i, g > GATE_4DOF] = np.inf
                    cost[i] = self.motion_lambda * cost[i] + (1 - self.motion_lambda) * g
            matches, u_track, u_det = assign(cost, self.emb_thresh)
        else:
            matches, u_track, u_det = assign(iou_cost(pool, dets), self.iou_only_thresh)
        for i, j in matches:
            t = pool[i]
            was_tracked = t.state == TRACKED
            t.take(self.kf, dets[j], self.frame_id, self.momentum, use_feat)
            (activated if was_tracked else refound).append(t)

        dets = [dets[j] for j in u_det]
        remaining = [pool[i] for i in u_track if pool[i].state == TRACKED]
        matches, u_track, u_det = assign(iou_cost(remaining, dets), self.iou_thresh)
        for i, j in matches:
            remaining[i].take(self.kf, dets[j], self.frame_id, self.momentum, use_feat)
            activated.append(remaining[i])
        for i in u_track:
            t = remaining[i]
            t.state = LOST
            newly_lost.append(t)

        dets = [dets[j] for j in u_det]
        matches, u_unconf, u_det = assign(iou_cost(unconfirmed, dets), self.unconfirmed_thresh)
        for i, j in matches:
            unconfirmed[i].take(self.kf, dets[j], self.frame_id, self.momentum, use_feat)
            activated.append(unconfirmed[i])
        for i in u_unconf:
            unconfirmed[i].state = REMOVED
            removed.append(unconfirmed[i])

        for j in u_det:
            d = dets[j]
            if d.score < self.conf_thres:
                continue
            self.last_id += 1
            d.start(self.kf, self.frame_id, self.last_id)
            activated.append(d)

        for t in self.lost:
            if self.frame_id - t.frame_id > self.max_time_lost:
                t.state = REMOVED
                removed.append(t)

        self.tracked = [t for t in self.tracked if t.state == TRACKED]
        self.tracked = joined(self.tracked, activated)
        self.tracked = joined(self.tracked, refound)
        self.lost = without(self.lost, self.tracked)
        self.lost.extend(newly_lost)
        self.lost = without(self.lost, self.removed + removed)
        self.removed.extend(removed)
        self.tracked, self.lost = self._drop_duplicates(self.tracked, self.lost)
        return [(t.track_id, t.tlbr(), t.score) for t in self.tracked if t.is_activated]

    @staticmethod
    def _drop_duplicates(a, b):
        cost = iou_cost(a, b)
        drop_a, drop_b = set(), set()
        for p, q in zip(*np.where(cost < 0.15)):
            if a[p].frame_id - a[p].start_frame > b[q].frame_id - b[q].start_frame:
                drop_b.add(q)
            else:
                drop_a.add(p)
        return ([t for i, t in enumerate(a) if i not in drop_a],
                [t for i, t in enumerate(b) if i not in drop_b])
