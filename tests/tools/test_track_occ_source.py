"""tools/track.py --occ-source with a network: ``none`` turns refinding off, ``oracle`` or a
file replace the head's centres (and give a model trained without --occ the refinding step)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from baselines import build_baseline
from plugins import build_plugins
from utrack.config import load_config
from utrack.errors import ConfigError
from utrack.occlusion import recover_box
from utrack.occlusion.step import CENTERS, STRIDE
from utrack.tracking.base import Detections

REPO = Path(__file__).resolve().parents[2]
TINY = ["model.backbone=resnet18", "model.head_conv=16", "reid.mode=none"]


def load_track_tool():
    spec = importlib.util.spec_from_file_location("utrack_tools_track", REPO / "tools" / "track.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def walk_behind_occluder(tracker) -> list:
    """A walks right at 5 px/frame next to a standing B for 5 frames, then only B is detected;
    on frame 6 a centre sits at the centre of B and A's expected box. Returns frame 6's output."""
    occluder = np.array([150.0, 100.0, 190.0, 200.0])
    for f in range(5):
        a = np.array([100.0 + 5 * f, 100.0, 140.0 + 5 * f, 200.0])
        tracker.update(Detections(np.stack([a, occluder]), np.array([0.9, 0.9])))
    expected = np.array([125.0, 100.0, 165.0, 200.0])
    center = np.array([[(150.0 + 165.0) / 2, 150.0]])
    dets = Detections(occluder[None], np.array([0.9]))
    dets.extras[CENTERS] = center
    dets.extras[STRIDE] = 4.0
    return tracker.update(dets), occluder, center[0], expected


def test_oracle_centres_give_a_plain_model_the_refinding_step():
    track_tool = load_track_tool()
    cfg = load_config([], TINY)
    assert not cfg.occlusion.enabled
    baseline = build_baseline(cfg, build_plugins(cfg))
    out, *_ = walk_behind_occluder(baseline.make_tracker(30.0))
    assert [r.track_id for r in out] == [2]  # A is lost: no step refinds it

    track_tool.use_external_centers(baseline, cfg, "oracle", num_inputs=3)
    tracker = baseline.make_tracker(30.0)
    out, occluder, center, expected = walk_behind_occluder(tracker)
    refound = {r.track_id: r for r in out}[1]
    assert refound.refound
    np.testing.assert_allclose(refound.box, expected, atol=1.5)  # where A walked to


def test_refinding_uses_the_recovered_box_of_the_prediction():
    """The output box is Eq. 15-16 applied to the Kalman prediction, not the prediction."""
    track_tool = load_track_tool()
    cfg = load_config([], [*TINY, "tracker.refind_update_kalman=false"])
    baseline = build_baseline(cfg, build_plugins(cfg))
    track_tool.use_external_centers(baseline, cfg, "oracle", num_inputs=1)
    tracker = baseline.make_tracker(30.0)
    out, occluder, center, _ = walk_behind_occluder(tracker)
    track = next(t for t in tracker.tracks if t.track_id == 1)
    refound = {r.track_id: r for r in out}[1]
    np.testing.assert_allclose(refound.box, recover_box(track.predicted_box(), occluder, center))


def test_a_centre_file_needs_a_single_sequence():
    track_tool = load_track_tool()
    cfg = load_config([], TINY)
    baseline = build_baseline(cfg, build_plugins(cfg))
    with pytest.raises(ConfigError, match="one sequence"):
        track_tool.use_external_centers(baseline, cfg, "centres.txt", num_inputs=2)
