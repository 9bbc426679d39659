"""CenterTrack's tracker on hand-made scenes: offset matching (size rule, ties, greedy vs
Hungarian), kept and forgotten lost tracks, refinding through the occlusion step, re-attachment
by embeddings, the previous-frame heatmap, and reset()."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.centertrack.tracker import CenterTrackTracker, offset_matching
from utrack.config import TrackerConfig
from utrack.data.transforms import Letterbox
from utrack.occlusion.refind import recover_box, refind_lost_boxes
from utrack.occlusion.step import CENTERS, SCORES, STRIDE, refind_unmatched_tracks
from utrack.tracking.base import Detections


def box_at(cx: float, cy: float, w: float = 10.0, h: float = 10.0) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def dets(boxes, scores=None, offsets=None, embeddings=None, **extras) -> Detections:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.full(len(boxes), 0.9) if scores is None else scores
    d = Detections(boxes, scores, embeddings)
    if offsets is not None:
        d.extras["tracking"] = np.asarray(offsets, dtype=np.float64).reshape(-1, 2)
    d.extras.update(extras)
    return d


def tracker_cfg(**kw) -> TrackerConfig:
    return TrackerConfig(conf_thres=0.4, new_thresh=0.5, pre_thresh=0.5, **kw)


# ----------------------------------------------------------------------------------------------
# offset matching


def test_offsets_move_detections_back_to_their_tracks() -> None:
    tracks = np.array([box_at(50, 50), box_at(80, 50)])
    # both detections moved by +30 px; their offsets point 30 px back
    d = np.array([box_at(80, 50), box_at(110, 50)])
    matches, u_det, u_track = offset_matching(d, np.array([0.9, 0.8]),
                                              np.array([[-30, 0], [-30, 0]]), tracks)
    assert matches.tolist() == [[0, 0], [1, 1]] and len(u_det) == len(u_track) == 0
    # without offsets the first detection sits on the second track
    matches, u_det, u_track = offset_matching(d, np.array([0.9, 0.8]), np.zeros((2, 2)), tracks)
    assert matches.tolist() == [[0, 1]] and u_det.tolist() == [1] and u_track.tolist() == [0]


def test_size_rule_uses_the_smaller_box() -> None:
    """d^2 must not exceed the area of either box: a 10x10 detection 11 px from a 40x40 track
    is invalid (121 > 100) although 121 < 1600 and < sqrt(100 * 1600) = 400."""
    track = np.array(box_at(50, 50, 40, 40))[None]
    for dx, matched in ((9.0, True), (10.0, True), (11.0, False)):
        d = np.array(box_at(50 + dx, 50, 10, 10))[None]
        matches, _, _ = offset_matching(d, np.array([0.9]), np.zeros((1, 2)), track)
        assert (len(matches) == 1) is matched, dx
    # symmetric: a small track and a big detection
    d = np.array(box_at(61, 50, 40, 40))[None]
    assert len(offset_matching(d, np.array([0.9]), np.zeros((1, 2)),
                               np.array(box_at(50, 50, 10, 10))[None])[0]) == 0


def test_greedy_order_and_ties() -> None:
    tracks = np.array([box_at(50, 50)])
    # the higher score picks first, even when the other detection is closer
    d = np.array([box_at(50, 50), box_at(52, 50)])
    matches, u_det, _ = offset_matching(d, np.array([0.5, 0.9]), np.zeros((2, 2)), tracks)
    assert matches.tolist() == [[1, 0]] and u_det.tolist() == [0]
    # equal scores, equal distances: the first detection wins
    d = np.array([box_at(52, 50), box_at(48, 50)])
    matches, _, _ = offset_matching(d, np.array([0.7, 0.7]), np.zeros((2, 2)), tracks)
    assert matches.tolist() == [[0, 0]]
    # one detection between two tracks at equal distance: the first (oldest) track wins
    two = np.array([box_at(48, 50), box_at(52, 50)])
    matches, _, u_track = offset_matching(np.array(box_at(50, 50))[None], np.array([0.9]),
                                          np.zeros((1, 2)), two)
    assert matches.tolist() == [[0, 0]] and u_track.tolist() == [1]


def test_hungarian_differs_from_greedy() -> None:
    """A (0.9) is 0.8 px from T1 and 1.2 px from T2; B (0.8) is 9 px from T1 and 11 px from T2
    (invalid: 121 > 100). Greedy: A-T1 and B is left; Hungarian: A-T2, B-T1."""
    tracks = np.array([box_at(50, 50), box_at(52, 50)])
    d = np.array([box_at(50.8, 50), box_at(41, 50)])
    scores = np.array([0.9, 0.8])
    greedy, u_det, _ = offset_matching(d, scores, np.zeros((2, 2)), tracks)
    assert greedy.tolist() == [[0, 0]] and u_det.tolist() == [1]
    hung, u_det, u_track = offset_matching(d, scores, np.zeros((2, 2)), tracks, hungarian=True)
    assert hung.tolist() == [[0, 1], [1, 0]] and len(u_det) == len(u_track) == 0


# ----------------------------------------------------------------------------------------------
# the tracker


def test_tracks_follow_offsets_and_new_thresh() -> None:
    t = CenterTrackTracker(tracker_cfg())
    out = t.update(dets([box_at(50, 50), box_at(100, 50), box_at(200, 50)],
                        scores=np.array([0.9, 0.45, 0.3])))
    # 0.45 passes conf_thres (0.4) but not new_thresh (0.5); 0.3 is dropped
    assert [r.track_id for r in out] == [1]
    out = t.update(dets([box_at(58, 50), box_at(300, 50)], offsets=[[-8, 0], [0, 0]]))
    assert [(r.track_id, r.box.tolist()) for r in out] == [(1, box_at(58, 50)),
                                                          (2, box_at(300, 50))]
    assert not any(r.refound for r in out)


def test_lost_track_kept_max_age_frames_then_forgotten() -> None:
    """max_age 3: an object missing for 3 frames keeps its id, one missing for 4 gets a new id.
    While missing, the track moves at its constant velocity (+10 px per frame) and
    ``frames_lost`` counts the earlier missing frames."""
    seen: list[list[tuple]] = []

    def step(tracker, ctx):
        seen.append([(tr.track_id, tr.frames_lost, tr.predicted_box().tolist())
                     for tr in tracker.unmatched_tracks()])

    for missing, same_id in ((3, True), (4, False)):
        seen.clear()
        t = CenterTrackTracker(tracker_cfg(max_age=3), steps={"after_association": step})
        t.update(dets([box_at(50, 50)]))
        t.update(dets([box_at(60, 50)], offsets=[[-10, 0]]))
        for _ in range(missing):
            assert t.update(dets([])) == []
        assert seen == [[], []] + [[(1, k, box_at(70 + 10 * k, 50))] for k in range(missing)]
        # the object comes back where the prediction puts it (its offset points 10 px back)
        out = t.update(dets([box_at(70 + 10 * missing, 50)], offsets=[[-10, 0]]))
        assert [r.track_id for r in out] == ([1] if same_id else [2]), missing
        assert len(t.tracks) == 1  # the forgotten track is gone, not kept in a list


def test_frames_lost_and_memory_bound() -> None:
    t = CenterTrackTracker(tracker_cfg(max_age=2))
    t.update(dets([box_at(50, 50)]))
    t.update(dets([]))
    t.update(dets([]))
    assert [tr.frames_lost for tr in t.tracks] == [2]
    t.update(dets([]))
    assert t.tracks == []
    rng = np.random.default_rng(0)
    for _ in range(200):  # a long video of unrelated detections
        centers = rng.uniform(0, 1000, size=(5, 2))
        t.update(dets([box_at(x, y) for x, y in centers]))
        assert len(t.tracks) <= 5 * 3  # at most max_age + 1 frames of tracks


def test_refind_through_the_occlusion_step() -> None:
    """Frame 1: A [100, 100, 140, 200] and its occluder B [120, 100, 160, 200]. Frame 2: only B
    is detected, and an occlusion centre at (131, 150). A is refound (Eq. 15-16): left edge
    2 * 131 - 120 - 40 = 102; top 2 * 150 - 100 - 100 = 100."""
    a, b = [100.0, 100, 140, 200], [120.0, 100, 160, 200]
    counts: list[int] = []

    def step(tracker, ctx):
        counts.append(refind_unmatched_tracks(tracker, ctx, tau_w=30, tau_o=0.7))

    seen: list[tuple] = []

    def record(tracker, ctx):
        seen.extend((x.track_id, x.predicted_box().tolist()) for x in tracker.unmatched_tracks())

    for update in (True, False):
        counts.clear()
        seen.clear()
        t = CenterTrackTracker(tracker_cfg(refind_update_kalman=update),
                               steps={"after_association": step})
        t.update(dets([a, b]))
        occ = {CENTERS: np.array([[131.0, 150.0]]), SCORES: np.array([0.9]), STRIDE: 1.0}
        out = t.update(dets([b], **occ))
        expected = [102.0, 100, 142, 200]
        assert expected == recover_box(np.array(a), np.array(b), np.array([131.0, 150])).tolist()
        assert refind_lost_boxes(np.array([a]), np.array([b]), np.array([[131.0, 150]]),
                                 down_ratio=1)[0] is not None
        assert counts == [0, 1]
        by_id = {r.track_id: r for r in out}
        assert by_id[1].refound and by_id[1].box.tolist() == expected
        assert not by_id[2].refound
        track_a = next(tr for tr in t.tracks if tr.track_id == 1)
        assert track_a.frames_lost == 0  # refound: neither grows nor resets
        # next frame, A unmatched again: its prediction starts from the refound box (and its
        # velocity, +2 px) with the update, from the old prediction without it
        t.steps["after_association"] = [record]
        t.update(dets([b]))
        assert seen == [(1, [104.0, 100, 144, 200] if update else a)]
        # a refound track cannot be refound twice, nor can a matched one
        with pytest.raises(ValueError, match="not an unmatched track"):
            t.refind(next(tr for tr in t.tracks if tr.track_id == 2), np.array(a))


def test_previous_heatmap_from_output_tracks() -> None:
    t = CenterTrackTracker(tracker_cfg())
    letterbox = Letterbox(0.5, 0.0, 16.0)
    first = torch.rand(1, 3, 128, 160)
    pre_image, pre_hm = t.previous_inputs(first, letterbox)
    assert pre_image is first and pre_hm.shape == (1, 1, 128, 160) and pre_hm.sum() == 0
    # a track with score 0.9 is drawn, one with 0.45 (< pre_thresh 0.5) is not
    t.update(dets([[100, 100, 140, 200], [200, 20, 240, 120]], scores=np.array([0.9, 0.45])))
    t.update(dets([[100, 100, 140, 200], [200, 20, 240, 120]], scores=np.array([0.9, 0.45]),
                  offsets=np.zeros((2, 2))))
    assert len(t.tracks) == 1  # 0.45 never started a track
    second = torch.rand(1, 3, 128, 160)
    pre_image, pre_hm = t.previous_inputs(second, letterbox)
    assert pre_image is first
    # [100, 100, 140, 200] -> input [50, 66, 70, 116]: centre (60, 91)
    assert torch.nonzero(pre_hm[0, 0] == 1.0).tolist() == [[91, 60]]
    assert t.previous_inputs(torch.rand(1, 3, 128, 160), letterbox)[0] is second


def test_reattach_by_embedding() -> None:
    """Track 1 goes missing; two frames later a detection far away (no offset match) with its
    appearance re-attaches it; a detection with another appearance starts a track; a track
    missing only since this frame is left to the offsets."""
    e = np.eye(4, dtype=np.float32)
    t = CenterTrackTracker(tracker_cfg(reattach_thresh=0.4), use_embeddings=True)
    t.update(dets([box_at(50, 50), box_at(300, 50)], embeddings=e[:2]))
    t.update(dets([box_at(300, 50)], offsets=[[0, 0]], embeddings=e[1:2]))  # 1 missing
    near_e0 = e[0] * 0.9 + e[2] * 0.1
    out = t.update(dets([box_at(300, 50), box_at(500, 200), box_at(700, 200)],
                        offsets=np.zeros((3, 2)), embeddings=np.stack([e[1], near_e0, e[3]])))
    assert {r.track_id: r.box.tolist() for r in out} == {
        1: box_at(500, 200), 2: box_at(300, 50), 3: box_at(700, 200)}
    # track 2 misses only this frame: a look-alike far away is a new track, not track 2
    out = t.update(dets([box_at(900, 400)], offsets=[[0, 0]], embeddings=e[1:2]))
    assert [r.track_id for r in out] == [4]
    # the feature is an EMA (momentum 0.9) of the matched (L2-normalised) embeddings
    track1 = next(x for x in t.tracks if x.track_id == 1)
    ema = 0.9 * e[0] + 0.1 * near_e0 / np.linalg.norm(near_e0)
    np.testing.assert_allclose(track1.feature, ema / np.linalg.norm(ema), rtol=1e-5)
    # without use_embeddings nothing is re-attached
    t = CenterTrackTracker(tracker_cfg())
    t.update(dets([box_at(50, 50)], embeddings=e[:1]))
    t.update(dets([]))
    assert [r.track_id for r in t.update(dets([box_at(500, 200)], embeddings=e[:1]))] == [2]


def test_reset_forgets_everything() -> None:
    t = CenterTrackTracker(tracker_cfg())
    image = torch.rand(1, 3, 64, 64)
    t.previous_inputs(image, Letterbox(1.0, 0.0, 0.0))
    t.update(dets([box_at(20, 20), box_at(40, 40)]))
    t.update(dets([box_at(20, 20)], offsets=[[0, 0]]))
    t.reset()
    assert t.frame_id == 0 and t.tracks == [] and t.unmatched_tracks() == []
    other = torch.rand(1, 3, 64, 64)
    pre_image, pre_hm = t.previous_inputs(other, Letterbox(1.0, 0.0, 0.0))
    assert pre_image is other and pre_hm.sum() == 0
    assert [r.track_id for r in t.update(dets([box_at(20, 20)]))] == [1]


# ----------------------------------------------------------------------------------------------
# real annotations


def _oracle_run(gt: np.ndarray, frames: range, cfg: TrackerConfig, drop: float,
                seed: int = 0) -> np.ndarray:
    """Track ground-truth pedestrian boxes whose offsets are the true motion (centre in the
    previous frame - centre now; 0 for an object absent there), each box dropped with
    probability ``drop``, scored ``0.6 + 0.39 * visibility`` (a detector is less sure of
    occluded people; with equal scores the greedy pass would follow the file order).
    Returns result rows ``frame, id, x, y, w, h, score``."""
    rng = np.random.default_rng(seed)
    keep = (gt[:, 6] == 1) & (gt[:, 7] == 1)
    gt = gt[keep]
    tracker = CenterTrackTracker(cfg)
    rows, previous = [], {}
    for frame in frames:
        g = gt[gt[:, 0] == frame]
        boxes = np.concatenate([g[:, 2:4], g[:, 2:4] + g[:, 4:6]], axis=1)
        centers = (boxes[:, :2] + boxes[:, 2:]) / 2
        ids = g[:, 1].astype(int).tolist()
        offsets = np.array([previous.get(i, c) - c for i, c in zip(ids, centers)]).reshape(-1, 2)
        previous = dict(zip(ids, centers))
        shown = rng.random(len(g)) >= drop
        scores = 0.6 + 0.39 * g[:, 8]
        out = tracker.update(dets(boxes[shown], scores[shown], offsets=offsets[shown]))
        rows += [[frame, r.track_id, *r.tlwh.tolist(), r.score] for r in out]
    return np.array(rows, dtype=np.float64).reshape(-1, 7)


def test_oracle_tracking_on_mot17_annotations(shared_data) -> None:
    """Frames 1-200 of MOT17-02 with true offsets: Hungarian matching makes no identity switch;
    the greedy pass makes a few (a person appearing next to an occluded one, with a higher
    score and no offset to go by, takes its track: about 10 here). With 10% of the boxes
    missing, keeping lost tracks (max_age 30) with their constant-velocity prediction keeps the
    identities that dropping them at once (the official max_age 0) loses."""
    from utrack.data.motfile import read_mot_txt
    from utrack.eval.mot import evaluate_arrays

    gt = read_mot_txt(shared_data / "mot-annotations" / "MOT17-02-FRCNN" / "gt" / "gt.txt")
    frames = range(1, 201)
    hungarian = evaluate_arrays(gt, _oracle_run(gt, frames, tracker_cfg(hungarian=True), 0.0),
                                frames)
    assert hungarian["IDS"] == 0 and hungarian["MOTA"] > 0.999 and hungarian["IDF1"] > 0.999
    greedy = evaluate_arrays(gt, _oracle_run(gt, frames, tracker_cfg(), 0.0), frames)
    assert 0 < greedy["IDS"] <= 20 and greedy["MOTA"] > 0.99 and greedy["FP"] == 0
    kept = evaluate_arrays(gt, _oracle_run(gt, frames, tracker_cfg(max_age=30), 0.1), frames)
    dropped = evaluate_arrays(gt, _oracle_run(gt, frames, tracker_cfg(max_age=0), 0.1), frames)
    assert kept["IDS"] * 10 < dropped["IDS"] and kept["IDF1"] > dropped["IDF1"] + 0.3
    assert kept["MOTA"] > 0.85
