"""Track state helpers, the feature EMA, BaseTracker's counters and steps, the output filter."""

from __future__ import annotations

import numpy as np
import pytest

from utrack.tracking.base import BaseTracker, Detections, TrackResult, filter_results
from utrack.tracking.track import Track, TrackState, smooth_features


def test_smooth_features_by_hand():
    out = smooth_features(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), 0.9)
    np.testing.assert_allclose(out, [[0.9, 0.1]] / np.hypot(0.9, 0.1))
    # several tracks at once, each row normalised on its own
    out = smooth_features(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 0.0]]),
                          0.5)
    np.testing.assert_allclose(out, [[1.0, 0.0], [np.sqrt(0.5), np.sqrt(0.5)]])


def test_track_feature_ema_starts_with_the_first_feature():
    track = Track(1, np.zeros(8), np.eye(8), 0.9, frame_id=1)
    track.update_feature(np.array([0.6, 0.8]), momentum=0.9)
    np.testing.assert_array_equal(track.smooth_feat, [0.6, 0.8])  # taken as is
    track.update_feature(np.array([1.0, 0.0]), momentum=0.9)
    expected = np.array([0.9 * 0.6 + 0.1, 0.9 * 0.8])
    np.testing.assert_allclose(track.smooth_feat, expected / np.linalg.norm(expected))


def test_track_box_and_lifecycle():
    mean = np.array([50.0, 100.0, 0.5, 40.0, 1, 1, 0, 0])
    track = Track(7, mean, np.eye(8), 0.8, frame_id=3)
    np.testing.assert_allclose(track.predicted_box(), [40, 80, 60, 120])  # w = 0.5 * 40
    assert (track.track_id, track.state, track.is_activated, track.frames_lost) == \
        (7, TrackState.Tracked, False, 0)
    track.mark_lost()
    track.frames_lost = 4
    track.mark_detected(mean + 1, np.eye(8), 0.6, frame_id=9)
    assert track.state == TrackState.Tracked and track.is_activated
    assert (track.frames_lost, track.end_frame, track.history, track.score) == (0, 9, 6, 0.6)


class CountingTracker(BaseTracker):
    """Minimal concrete tracker: one new track per detection, nothing kept."""

    def update(self, dets):
        self.frame_id += 1
        return [TrackResult(self.next_id(), b, s) for b, s in zip(dets.boxes, dets.scores)]

    def unmatched_tracks(self):
        return []

    def _revive(self, track, box):
        raise AssertionError("refind must reject tracks that are not unmatched")


def test_base_tracker_is_abstract():
    with pytest.raises(TypeError):
        BaseTracker(None)  # type: ignore[abstract]


def test_ids_and_frames_restart_after_reset():
    tracker = CountingTracker(None)
    dets = Detections(np.array([[0, 0, 10, 20], [5, 5, 15, 30]]), np.array([0.9, 0.8]))
    assert [r.track_id for r in tracker.update(dets)] == [1, 2]
    assert [r.track_id for r in tracker.update(dets)] == [3, 4]
    assert tracker.frame_id == 2
    tracker.reset()
    assert tracker.frame_id == 0
    assert [r.track_id for r in tracker.update(dets)] == [1, 2]


def test_steps_run_in_order_and_stage_names_are_checked():
    calls = []
    tracker = CountingTracker(None, steps={
        "after_association": [lambda *a: calls.append(("first", a)),
                              lambda *a: calls.append(("second", a))],
        "after_decode": lambda *a: calls.append(("decode", a)),  # a single callable is fine
    })
    tracker.run_steps("after_association", 1, "x")
    tracker.run_steps("after_decode", 2)
    assert calls == [("first", (1, "x")), ("second", (1, "x")), ("decode", (2,))]
    with pytest.raises(ValueError, match="unknown tracker stage"):
        CountingTracker(None, steps={"after_assoc": [print]})


def test_filter_results_area_and_aspect():
    def result(w: float, h: float) -> TrackResult:
        return TrackResult(1, np.array([10.0, 10.0, 10.0 + w, 10.0 + h]), 1.0)

    kept = filter_results([result(10, 10), result(10, 10.1), result(16, 10), result(17, 10),
                           result(5, 0)], min_box_area=100, max_aspect=1.6)
    # area 100 is dropped (<=), 101 kept; w/h 1.6 kept, 1.7 dropped; h=0 dropped
    np.testing.assert_allclose([r.box[2:] - r.box[:2] for r in kept], [[10, 10.1], [16, 10]])


def test_detections_empty_with_embeddings_keep_dimension():
    dets = Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 128)))
    assert dets.embeddings.shape == (0, 128)
    full = Detections(np.ones((3, 4)), np.ones(3), np.ones((3, 16)))
    assert full.select(np.zeros(3, dtype=bool)).embeddings.shape == (0, 16)
