"""The occlusion plugin: exactly its heads and terms, and a refinding step that works through
the tracker interface."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines import build_baseline
from plugins import build_plugins
from plugins.occlusion import OcclusionPlugin
from utrack.data.collate import collate_frames
from utrack.data.datasets import MOTTrainDataset
from utrack.data.mot import IdentityIndex, MOTSequence
from utrack.engine.setup import refinding_disabled
from utrack.occlusion.step import CENTERS, refind_unmatched_tracks
from utrack.tracking.base import Detections


def test_plugin_adds_exactly_its_heads_and_terms(tiny_cfg, tiny_sequences):
    plain = build_baseline(tiny_cfg, [])
    tiny_cfg.occlusion.enabled = True
    plugins = build_plugins(tiny_cfg)
    assert [type(p) for p in plugins] == [OcclusionPlugin]
    with_occ = build_baseline(tiny_cfg, plugins)
    assert set(with_occ.heads) - set(plain.heads) == {"occ_hm", "occ_off"}
    assert with_occ.heads["occ_hm"] == 1 and with_occ.heads["occ_off"] == 2
    model = with_occ.build_model()
    assert model.occ_hm[2].bias.item() == pytest.approx(-2.19) and model.occ_off[2].bias.abs().max() == 0

    seqs = [MOTSequence(d) for d in tiny_sequences]
    ids = IdentityIndex(seqs)
    dataset = MOTTrainDataset(seqs, tiny_cfg.data, identity_index=ids,
                              target_builders=[p.build_targets for p in plugins])
    batch = collate_frames([dataset[i] for i in range(3)])
    outputs = model(batch["image"])
    _, terms = with_occ.build_criterion(ids.num_ids)(outputs, batch)
    _, plain_terms = plain.build_criterion(ids.num_ids)(
        {k: v for k, v in outputs.items() if not k.startswith("occ_")}, batch)
    assert set(terms) - set(plain_terms) == {"occ_hm", "occ_off"}
    # weight 0.5 on both inside the detection group
    expected = plain_terms["det"] + 0.5 * terms["occ_hm"] + 0.5 * terms["occ_off"]
    assert torch.isclose(terms["det"], expected, rtol=1e-5)
    # the normaliser: at least occlusion.norm_min_per_image per image (0 = Eq. 14's count)
    num_occ = int(batch["occ_mask"].sum())
    tiny_cfg.occlusion.norm_min_per_image = 0.0
    paper = OcclusionPlugin(tiny_cfg).loss_terms(outputs, batch)["occ_hm"]
    tiny_cfg.occlusion.norm_min_per_image = 2.0
    floored = OcclusionPlugin(tiny_cfg).loss_terms(outputs, batch)["occ_hm"]
    floor = 2.0 * batch["occ_mask"].shape[0]  # per image x images
    assert num_occ < floor
    assert floored.item() == pytest.approx(paper.item() * max(num_occ, 1) / floor, rel=1e-5)


class FakeTrack:
    def __init__(self, track_id, box, frames_lost):
        self.track_id, self._box, self.frames_lost = track_id, np.asarray(box, float), frames_lost

    def predicted_box(self):
        return self._box


class FakeTracker:
    """Only what the refinding step may use: the tracker interface."""

    def __init__(self, tracks):
        self.tracks, self.refound = tracks, []

    def unmatched_tracks(self):
        return self.tracks

    def refind(self, track, box):
        self.refound.append((track.track_id, box))


def occluded_scene():
    # the lost person (predicted box) stands behind an occluder detected this frame
    predicted = [100, 50, 140, 150]
    occluder = [110, 40, 170, 160]
    inter = np.array([110, 50, 140, 150], float)
    center = [(inter[0] + inter[2]) / 2, (inter[1] + inter[3]) / 2]
    from utrack.tracking.base import FrameContext

    dets = Detections(np.array([occluder], float), np.array([0.9]))
    dets.extras[CENTERS] = np.array([center])
    return predicted, FrameContext(7, dets, np.zeros((0, 4)))


def test_step_refinds_through_the_interface_and_tau_w_zero_changes_nothing():
    predicted, ctx = occluded_scene()
    tracker = FakeTracker([FakeTrack(3, predicted, frames_lost=2)])
    assert refind_unmatched_tracks(tracker, ctx, tau_w=30, tau_o=0.7) == 1
    (track_id, box), = tracker.refound
    assert track_id == 3 and box.shape == (4,)
    assert np.isclose(box[2] - box[0], 40) and np.isclose(box[3] - box[1], 100)  # size kept

    for tau_w in (0, 2):  # tau_w = 0 never refinds; frames_lost 2 is not < 2
        tracker = FakeTracker([FakeTrack(3, predicted, frames_lost=2)])
        assert refind_unmatched_tracks(tracker, ctx, tau_w=tau_w, tau_o=0.7) == 0
        assert tracker.refound == []


def crossing_frames() -> list[Detections]:
    """Two boxes crossing, each missed in ~30% of 30 frames, one occlusion centre per frame."""
    rng = np.random.default_rng(0)
    frames = []
    for t in range(30):
        boxes = np.array([[10 + 3 * t, 20, 50 + 3 * t, 120], [200 - 3 * t, 30, 240 - 3 * t, 130]], float)
        keep = rng.random(2) > 0.3
        dets = Detections(boxes[keep], np.full(keep.sum(), 0.9))
        dets.extras[CENTERS] = np.array([[120.0, 70.0]])
        frames.append(dets)
    return frames


def track_outputs(tracker, frames: list[Detections]) -> list:
    return [[(r.track_id, tuple(np.round(r.box, 6)), r.refound) for r in tracker.update(d)]
            for d in frames]


def test_plugin_step_on_the_jde_tracker_with_tau_w_zero_is_a_no_op(tiny_cfg):
    """Same detections through JDE with and without the occlusion step at tau_w = 0."""
    frames = crossing_frames()
    tiny_cfg.reid.mode = "none"
    outputs = []
    for occ in (False, True):
        tiny_cfg.occlusion.enabled = occ
        tiny_cfg.occlusion.tau_w = 0
        tracker = build_baseline(tiny_cfg, build_plugins(tiny_cfg)).make_tracker(10)
        outputs.append(track_outputs(tracker, frames))
    assert outputs[0] == outputs[1]


def test_refinding_disabled_turns_off_a_built_plugin_and_restores(tiny_cfg):
    """evaluate_after_training's second pass: the same baseline, refinding off in the block."""
    frames = []
    for t in range(20):  # A stands still, B walks over it; A is missed while B covers it
        a, b = [100, 20, 140, 120], [40 + 4 * t, 25, 80 + 4 * t, 125]
        boxes = np.array([b] if 11 <= t <= 13 else [a, b], float)
        dets = Detections(boxes, np.full(len(boxes), 0.9))
        x1, x2 = max(a[0], b[0]), min(a[2], b[2])
        dets.extras[CENTERS] = np.array([[(x1 + x2) / 2, 72.5]]) if x2 > x1 else np.zeros((0, 2))
        frames.append(dets)
    tiny_cfg.reid.mode = "none"
    tiny_cfg.occlusion.enabled = False
    plain = track_outputs(build_baseline(tiny_cfg, []).make_tracker(10), frames)
    tiny_cfg.occlusion.enabled = True
    tiny_cfg.occlusion.tau_w = 30
    baseline = build_baseline(tiny_cfg, build_plugins(tiny_cfg))
    refinding = track_outputs(baseline.make_tracker(10), frames)
    assert any(refound for frame in refinding for *_, refound in frame)
    with refinding_disabled(tiny_cfg):
        assert track_outputs(baseline.make_tracker(10), frames) == plain
    assert tiny_cfg.occlusion.tau_w == 30
    with pytest.raises(RuntimeError), refinding_disabled(tiny_cfg):
        raise RuntimeError
    assert tiny_cfg.occlusion.tau_w == 30
