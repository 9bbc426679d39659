"""JDETracker on hand-made sequences whose outcome can be reasoned out frame by frame."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from baselines.fairmot.tracker import JDETracker
from utrack.config import TrackerConfig
from utrack.tracking.base import Detections, FrameContext, TrackResult
from utrack.tracking.kalman import KalmanFilter, boxes_to_xyah
from utrack.tracking.track import TrackState

DIM = 8


def box(cx: float, cy: float = 300.0, w: float = 40.0, h: float = 100.0) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def emb(i: int) -> np.ndarray:
    """Identity ``i``'s embedding: a one-hot vector (orthogonal identities: cosine distance 1)."""
    return np.eye(DIM, dtype=np.float32)[i]


def frame(*objects: tuple[list[float], np.ndarray], score: float = 0.9) -> Detections:
    if not objects:
        return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, DIM)))
    boxes, embs = zip(*objects)
    return Detections(np.array(boxes), np.full(len(boxes), score), np.array(embs))


def centers(results: list[TrackResult]) -> dict[int, float]:
    """track id -> box centre x."""
    return {r.track_id: float(r.box[0] + r.box[2]) / 2 for r in results}


def test_new_tracks_are_output_from_their_second_frame_except_on_frame_one():
    tracker = JDETracker(TrackerConfig())
    a, b = (box(100), emb(0)), (box(300), emb(1))
    assert sorted(centers(tracker.update(frame(a)))) == [1]  # frame 1: activated at once
    assert sorted(centers(tracker.update(frame(a, b)))) == [1]  # b: unconfirmed id 2
    assert sorted(centers(tracker.update(frame(a, b)))) == [1, 2]
    assert tracker.frame_id == 3


def test_a_one_frame_detection_is_forgotten_and_leaves_an_id_gap():
    tracker = JDETracker(TrackerConfig())
    a = (box(100), emb(0))
    tracker.update(frame(a))
    tracker.update(frame(a, (box(400), emb(1))))  # unconfirmed id 2
    tracker.update(frame(a))  # id 2 not matched: removed
    assert [t.track_id for t in tracker.tracks] == [1]
    tracker.update(frame(a, (box(700), emb(2))))
    assert sorted(centers(tracker.update(frame(a, (box(700), emb(2)))))) == [1, 3]


def test_score_threshold_is_strict():
    at_threshold = JDETracker(TrackerConfig(conf_thres=0.4))
    assert at_threshold.update(frame((box(100), emb(0)), score=0.4)) == []
    assert at_threshold.tracks == []
    above = JDETracker(TrackerConfig(conf_thres=0.4))
    assert len(above.update(frame((box(100), emb(0)), score=0.41))) == 1


def bounce_sequence(speed: float = 3.0, turn: int = 15, frames: int = 30):
    """Two boxes on one line approach each other, nearly meet (centres 2 px apart) on frame
    ``turn`` and go back the way they came: A stays on the left, B on the right."""
    seq = []
    for f in range(1, frames + 1):
        k = abs(turn - f)
        seq.append(frame((box(399 - speed * k), emb(0)), (box(401 + speed * k), emb(1))))
    return seq


def test_bounce_embeddings_keep_ids_iou_only_swaps():
    """Right after the turn the Kalman filter predicts each box still moving inward: A's
    prediction sits 2 px from B's detection and 6 px from its own (w = 40), so IoU alone
    prefers the swapped pairs (IoU distances 0.10 + 0.10 < 0.26 + 0.26), and the swap persists
    because each track then follows the other box's motion. With orthogonal embeddings the
    wrong pairs cost ~1 > 0.4 and the right ones pass the motion gate, so ids are kept."""
    seq = bounce_sequence()
    for use_embeddings, swapped in ((True, False), (False, True)):
        tracker = JDETracker(TrackerConfig(), use_embeddings=use_embeddings)
        out = [centers(tracker.update(d)) for d in seq]
        left_first = min(out[0], key=out[0].get)
        left_last = min(out[-1], key=out[-1].get)
        assert sorted(out[-1]) == [1, 2]
        assert (left_first != left_last) == swapped, (use_embeddings, out[-1])
        assert all(len(o) == 2 for o in out)  # no track was lost on the way


def missing_sequence(gap: range, total: int, returning_identity: int = 0):
    """A (identity 0) moves right 2 px per frame and is not detected on the frames in ``gap``;
    B (identity 1) stands still far away."""
    seq = []
    for f in range(1, total + 1):
        b = (box(700), emb(1))
        if f in gap:
            seq.append(frame(b))
        else:
            identity = returning_identity if f > gap.start else 0
            seq.append(frame((box(100 + 2 * f), emb(identity)), b))
    return seq


def test_track_missing_three_frames_is_reactivated_by_embedding():
    tracker = JDETracker(TrackerConfig())
    lost_counts = []
    for f, dets in enumerate(missing_sequence(range(11, 14), 20), start=1):
        out = centers(tracker.update(dets))
        track = next(t for t in tracker.tracks if t.track_id == 1)
        lost_counts.append(track.frames_lost)
        if f in range(11, 14):
            assert 1 not in out and track.state == TrackState.Lost
        else:
            assert out[1] == pytest.approx(100 + 2 * f, abs=1.0)
    assert lost_counts[9:14] == [0, 1, 2, 3, 0]
    assert max(t.track_id for t in tracker.tracks) == 2  # no new track was started


def test_lost_track_does_not_come_back_with_another_identity():
    """Lost tracks return only through appearance (stage 1), never through IoU (stage 2)."""
    tracker = JDETracker(TrackerConfig())
    outs = [centers(tracker.update(d)) for d in missing_sequence(range(11, 14), 20, 2)]
    assert all(1 not in o for o in outs[10:])


@pytest.mark.parametrize("missing, back", [(1, True), (2, True), (3, False)])
def test_lost_iou_frames_lets_a_recently_lost_track_back_through_iou(missing, back):
    """With ``lost_iou_frames = 2`` a track missed for 1-2 frames whose embedding changed
    (cosine distance 1 > emb_thresh) returns in stage 2 with its id; after 3 it does not."""
    tracker = JDETracker(replace(TrackerConfig(), lost_iou_frames=2))
    seq = missing_sequence(range(11, 11 + missing), 25, returning_identity=2)
    outs = [centers(tracker.update(d)) for d in seq]
    back_at = 11 + missing  # the first frame with a detection again (1-based)
    if back:
        assert all(o[1] == pytest.approx(100 + 2 * f, abs=1.5)
                   for f, o in enumerate(outs[back_at - 1:], start=back_at))
        assert max(t.track_id for t in tracker.tracks) == 2
    else:
        assert all(1 not in o for o in outs[back_at - 1:])


@pytest.mark.parametrize("missing, same_id", [(5, True), (6, False)])
def test_track_lost_longer_than_the_buffer_is_forgotten(missing, same_id):
    tracker = JDETracker(replace(TrackerConfig(), track_buffer=5), frame_rate=30.0)
    assert tracker.max_time_lost == 5
    a = (box(200), emb(0))
    for _ in range(5):
        tracker.update(frame(a))
    for _ in range(missing):
        tracker.update(frame())
    assert [t.track_id for t in tracker.tracks] == ([1] if same_id else [])
    tracker.update(frame(a))
    out = tracker.update(frame(a))
    assert sorted(centers(out)) == ([1] if same_id else [2])


def test_buffer_scales_with_frame_rate():
    cfg = replace(TrackerConfig(), track_buffer=30)
    assert JDETracker(cfg, frame_rate=30.0).max_time_lost == 30
    assert JDETracker(cfg, frame_rate=15.0).max_time_lost == 15
    assert JDETracker(cfg, frame_rate=25.0).max_time_lost == 25


def test_lost_duplicate_with_shorter_history_is_dropped():
    """B follows A 1 px apart for 3 frames then vanishes: lost B's prediction overlaps tracked
    A (IoU > 0.85) and A's history (3 frames) is longer than B's (2), so B is forgotten at
    once instead of being kept as Lost. Far from A, B would be kept."""
    for offset, kept in ((1.0, False), (300.0, True)):
        tracker = JDETracker(TrackerConfig())
        for _ in range(3):
            tracker.update(frame((box(200), emb(0)), (box(200 + offset), emb(1))))
        tracker.update(frame((box(200), emb(0))))
        assert (2 in [t.track_id for t in tracker.tracks]) == kept


def test_new_track_on_a_lost_track_with_longer_history_is_dropped():
    """A (10 frames) vanishes for a frame (Lost), then an unknown identity appears where A is
    predicted: the new track duplicates lost A, whose history is longer, so it is dropped on
    every frame (FairMOT's rule)."""
    tracker = JDETracker(TrackerConfig())
    for _ in range(10):
        tracker.update(frame((box(200), emb(0))))
    tracker.update(frame())
    for _ in range(5):
        assert tracker.update(frame((box(200), emb(3)))) == []
        assert [(t.track_id, t.state) for t in tracker.tracks] == [(1, TrackState.Lost)]


def test_detections_without_embeddings_use_iou():
    seq = bounce_sequence()
    plain = [Detections(d.boxes, d.scores) for d in seq]
    a = JDETracker(TrackerConfig(), use_embeddings=True)
    b = JDETracker(TrackerConfig(), use_embeddings=False)
    for d_plain, d_emb in zip(plain, seq):
        assert centers(a.update(d_plain)) == centers(b.update(d_emb))


def random_world_frames(rng: np.random.Generator, num_frames: int):
    """Objects appear at random, move, are detected 90% of the time and vanish after 1-60
    frames; plus one-frame false positives."""
    boxes = np.zeros((0, 4))  # x1, y1, x2, y2 of the living objects
    velocity = np.zeros((0, 2))
    identity = np.zeros((0, DIM))
    frames_left = np.zeros(0, dtype=int)
    for _ in range(num_frames):
        born = rng.poisson(0.3)
        if born:
            xy = rng.uniform(0, 1800, (born, 2))
            wh = np.c_[rng.uniform(20, 60, born), rng.uniform(40, 180, born)]
            boxes = np.r_[boxes, np.c_[xy, xy + wh]]
            velocity = np.r_[velocity, rng.normal(0, 2, (born, 2))]
            identity = np.r_[identity, rng.normal(size=(born, DIM))]
            frames_left = np.r_[frames_left, rng.integers(1, 60, born)]
        boxes = boxes + np.tile(velocity, 2)
        frames_left -= 1
        seen = rng.random(len(boxes)) < 0.9
        det_boxes, det_embs = boxes[seen], identity[seen] + rng.normal(0, 0.05, (seen.sum(), DIM))
        if rng.random() < 0.5:
            x, y = rng.uniform(0, 1800, 2)
            det_boxes = np.r_[det_boxes, [[x, y, x + 30, y + 80]]]
            det_embs = np.r_[det_embs, rng.normal(size=(1, DIM))]
        alive = frames_left > 0
        boxes, velocity, identity, frames_left = (boxes[alive], velocity[alive], identity[alive],
                                                  frames_left[alive])
        yield Detections(det_boxes, rng.uniform(0.5, 1, len(det_boxes)), det_embs)


def test_memory_stays_bounded_over_5000_frames():
    tracker = JDETracker(TrackerConfig())
    last_output: dict[int, int] = {}  # track id -> last frame it was output
    largest_id = most_stored = 0
    for f, dets in enumerate(random_world_frames(np.random.default_rng(0), 5000), start=1):
        out = tracker.update(dets)
        for r in out:
            last_output[r.track_id] = f
        stored = tracker.tracks
        # every remembered confirmed track was output within the last max_time_lost frames,
        # and unconfirmed tracks are at most this frame's detections
        for t in stored:
            if t.is_activated:
                assert last_output[t.track_id] >= f - tracker.max_time_lost
            assert t.frames_lost <= tracker.max_time_lost
        assert sum(not t.is_activated for t in stored) <= len(dets)
        most_stored = max(most_stored, len(stored))
        largest_id = max([largest_id] + [r.track_id for r in out])
    assert largest_id > 1000  # many tracks came and went...
    assert most_stored < 100  # ...while memory stayed small


def test_reset_restarts_ids_and_reproduces_outputs():
    seq = missing_sequence(range(11, 14), 20)
    tracker = JDETracker(TrackerConfig())
    first = [centers(tracker.update(d)) for d in seq]
    tracker.reset()
    assert tracker.frame_id == 0 and tracker.tracks == []
    second = [centers(tracker.update(d)) for d in seq]
    assert second == first
    assert sorted(second[0]) == [1, 2]


class RefindStep:
    """An ``after_association`` step that refinds every unmatched track on chosen frames at
    ``box_for(frame)``, recording what it saw."""

    def __init__(self, frames: set[int], box_for):
        self.frames = frames
        self.box_for = box_for
        self.seen: dict[int, list[tuple[int, int]]] = {}
        self.before: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.contexts: list[FrameContext] = []

    def __call__(self, tracker: JDETracker, ctx: FrameContext) -> None:
        self.contexts.append(ctx)
        unmatched = tracker.unmatched_tracks()
        self.seen[ctx.frame_id] = [(t.track_id, t.frames_lost) for t in unmatched]
        if ctx.frame_id in self.frames:
            for track in unmatched:
                self.before[ctx.frame_id] = (track.mean.copy(), track.covariance.copy(),
                                             track.smooth_feat.copy())
                tracker.refind(track, self.box_for(ctx.frame_id))
                assert track.state == TrackState.Tracked


@pytest.mark.parametrize("update_kalman", [True, False])
def test_refind_outputs_the_recovered_box(update_kalman):
    """A is missing on frames 11-14 and refound by the step on 11 and 12."""
    recovered = {11: np.array(box(125.0)), 12: np.array(box(128.0))}
    step = RefindStep({11, 12}, recovered.get)
    cfg = replace(TrackerConfig(), refind_update_kalman=update_kalman)
    tracker = JDETracker(cfg, steps={"after_association": [step]})
    kf = KalmanFilter()
    for f, dets in enumerate(missing_sequence(range(11, 15), 18), start=1):
        out = {r.track_id: r for r in tracker.update(dets)}
        assert not out[2].refound  # B is matched every frame
        track_a = next(t for t in tracker.tracks if t.track_id == 1)
        if f in recovered:
            assert out[1].refound
            np.testing.assert_array_equal(out[1].box, recovered[f])
            mean, cov, feat = step.before[f]
            if update_kalman:
                expected, _ = kf.update(mean[None], cov[None], boxes_to_xyah(recovered[f][None]))
                np.testing.assert_allclose(track_a.mean, expected[0])
            else:
                np.testing.assert_array_equal(track_a.mean, mean)
            np.testing.assert_array_equal(track_a.smooth_feat, feat)  # appearance untouched
        elif f in (13, 14):
            assert 1 not in out
        else:
            assert not out[1].refound
    # refound frames neither grow nor reset frames_lost; the others grow it
    assert [step.seen[f] for f in (11, 12, 13, 14, 15)] == [[(1, 0)], [(1, 0)], [(1, 0)],
                                                           [(1, 1)], []]
    assert max(t.track_id for t in tracker.tracks) == 2  # A came back with its id


def test_refind_moves_the_kalman_state_only_when_asked():
    """The prediction after a refind follows the recovered box only with the Kalman update."""
    final = {}
    for update_kalman in (True, False):
        step = RefindStep({11}, lambda f: np.array(box(160.0)))  # far right of the prediction
        tracker = JDETracker(replace(TrackerConfig(), refind_update_kalman=update_kalman),
                             steps={"after_association": [step]})
        for dets in missing_sequence(range(11, 13), 11):
            tracker.update(dets)
        final[update_kalman] = next(t for t in tracker.tracks if t.track_id == 1).mean[0]
    assert final[False] == pytest.approx(100 + 2 * 11, abs=1.5)  # the plain prediction
    assert final[True] > final[False] + 10


def test_refind_rejects_a_track_that_is_not_lost():
    tracker = JDETracker(TrackerConfig())
    tracker.update(frame((box(100), emb(0))))
    with pytest.raises(ValueError, match="not an unmatched track"):
        tracker.refind(tracker.tracks[0], np.array(box(100)))


def test_noop_step_changes_nothing_and_sees_the_frame():
    seq = missing_sequence(range(11, 14), 20)
    seq[4] = Detections(np.r_[seq[4].boxes, [box(900)]], np.r_[seq[4].scores, 0.3],
                        np.r_[seq[4].embeddings, emb(5)[None]])  # below the threshold
    step = RefindStep(set(), None)
    with_step = JDETracker(TrackerConfig(), steps={"after_association": [step]})
    without = JDETracker(TrackerConfig())
    for dets in seq:
        a, b = with_step.update(dets), without.update(dets)
        assert [(r.track_id, r.refound) for r in a] == [(r.track_id, r.refound) for r in b]
        np.testing.assert_array_equal([r.box for r in a], [r.box for r in b])
    assert [c.frame_id for c in step.contexts] == list(range(1, 21))
    assert len(step.contexts[4].detections) == 2  # the 0.3 detection was dropped
    # frame 3: both tracks matched; their boxes are the ones output
    ctx = step.contexts[2]
    assert ctx.matched_boxes.shape == (2, 4)
    expected = [box(106), box(700)]
    np.testing.assert_allclose(ctx.matched_boxes[np.argsort(ctx.matched_boxes[:, 0])], expected,
                               atol=1.0)
