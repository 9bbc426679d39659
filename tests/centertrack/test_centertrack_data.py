"""CenterTrack's training data: the previous-frame heatmap, its perturbation, the tracking
targets, and the dataset's previous-frame modes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines import build_baseline
from baselines.centertrack.data import (
    CenterTrackTargets,
    centers_and_sizes,
    perturb_objects,
    render_heatmap,
    tracking_targets,
)
from plugins import build_plugins
from utrack.config import CenterTrackDataConfig
from utrack.data.datasets import MOTTrainDataset, previous_offset
from utrack.data.gaussian import gaussian_value, integer_radius
from utrack.data.mot import IdentityIndex, MOTSequence
from utrack.data.synthetic import generate_sequence
from utrack.data.transforms import transform_boxes


@pytest.fixture(scope="module")
def syn(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("ct_syn")
    return [generate_sequence(root / f"CT-{k}", seed=(21, k), frames=16, width=256, height=160,
                              max_people=5) for k in range(2)]


# ----------------------------------------------------------------------------------------------
# heatmap rendering


def test_render_heatmap_peaks_at_the_objects() -> None:
    centers = np.array([[10.6, 12.2], [40.0, 30.9]])
    sizes = np.array([[12.0, 30.0], [20.0, 40.0]])
    hm = render_heatmap(centers, sizes, 48, 64)
    assert hm.shape == (1, 48, 64) and hm.dtype == np.float32
    peaks = np.argwhere(hm[0] == 1.0)
    assert sorted(map(tuple, peaks.tolist())) == [(12, 10), (30, 40)]  # (y, x) floored
    # each blob is CenterNet's gaussian with the radius rule on the box size
    r = int(integer_radius(30.0, 12.0))
    assert r >= 2
    assert np.isclose(hm[0, 12, 10 + r], gaussian_value(r, 0, r), rtol=1e-5)
    assert hm[0, 12, 10 + r + 1] == 0.0 and hm[0, 12 + r + 1, 10] == 0.0
    # an object centred off the map draws only what falls inside
    off = render_heatmap(np.array([[-2.5, 20.0]]), np.array([[20.0, 40.0]]), 48, 64)
    assert off.max() < 1.0 and off[0, 20, 0] > 0
    assert render_heatmap(np.zeros((0, 2)), np.zeros((0, 2)), 8, 8).sum() == 0


# ----------------------------------------------------------------------------------------------
# perturbation


def test_perturbation_statistics() -> None:
    """Over 4000 samples of 5 objects: drop rate 0.4, false-blob rate 0.1, centre jitter with
    standard deviation 0.05 of the box size, within 4 standard errors."""
    rng = np.random.default_rng(3)
    centers = np.array([[50.0, 60.0], [120.0, 40.0], [200.0, 90.0], [20.0, 20.0], [90, 100.0]])
    sizes = np.array([[20.0, 50.0], [10.0, 30.0], [40.0, 80.0], [6.0, 14.0], [16.0, 40.0]])
    dropped, false, jitter = [], [], []
    blob_offsets = []
    for _ in range(4000):
        p = perturb_objects(centers, sizes, rng, hm_disturb=0.05, lost_disturb=0.4,
                            fp_disturb=0.1)
        kept = ~p.dropped
        n_kept = int(kept.sum())
        assert len(p.centers) == n_kept + int(p.false.sum()) == len(p.sizes)
        # kept blobs: the true centre moved by jitter * size; false blobs: near their object
        np.testing.assert_allclose(p.centers[:n_kept],
                                   centers[kept] + p.jitter[kept] * sizes[kept])
        np.testing.assert_array_equal(p.sizes[:n_kept], sizes[kept])
        blob_offsets.append((p.centers[n_kept:] - centers[p.false]) / sizes[p.false])
        dropped.append(p.dropped)
        false.append(p.false)
        jitter.append(p.jitter)
    dropped, false = np.concatenate(dropped), np.concatenate(false)
    jitter, blob_offsets = np.concatenate(jitter), np.concatenate(blob_offsets)
    n = len(dropped)  # 20000 objects
    assert abs(dropped.mean() - 0.4) < 4 * np.sqrt(0.4 * 0.6 / n)
    assert abs(false.mean() - 0.1) < 4 * np.sqrt(0.1 * 0.9 / n)
    # dropping and false blobs are independent draws
    assert abs(false[dropped].mean() - 0.1) < 4 * np.sqrt(0.1 * 0.9 / dropped.sum())
    assert abs(jitter.std() - 0.05) < 4 * 0.05 / np.sqrt(2 * jitter.size)
    assert abs(jitter.mean()) < 4 * 0.05 / np.sqrt(jitter.size)
    m = blob_offsets.size
    assert abs(blob_offsets.std() - 0.05) < 4 * 0.05 / np.sqrt(2 * m)


def test_no_perturbation_reproduces_the_objects() -> None:
    centers = np.array([[10.0, 10.0], [30.0, 20.0]])
    sizes = np.array([[8.0, 16.0], [8.0, 16.0]])
    p = perturb_objects(centers, sizes, np.random.default_rng(0), 0.0, 0.0, 0.0)
    np.testing.assert_array_equal(p.centers, centers)
    assert not p.dropped.any() and not p.false.any()


# ----------------------------------------------------------------------------------------------
# tracking targets


def test_tracking_target_by_hand() -> None:
    # R = 4. id 5: centre (16, 24) -> (20, 24): offset (1, 0) at output scale.
    # id 7: (48, 8) -> (44, 12): (-1, 1). id 9 is not in the previous frame; id 3 left;
    # id 4's box is invalid (reg_mask False); id -1 never links, even to a -1.
    boxes = np.array([[8, 8, 24, 40], [40, 0, 56, 16], [0, 0, 4, 4], [0, 0, 4, 4],
                      [60, 60, 64, 64]], dtype=np.float32)
    ids = np.array([5, 7, 9, 4, -1])
    valid = np.array([True, True, True, False, True])
    pre_boxes = np.array([[60, 0, 64, 8], [36, 4, 52, 20], [12, 8, 28, 40], [0, 0, 8, 8],
                          [0, 0, 4, 4]], dtype=np.float32)
    pre_ids = np.array([3, 7, 5, 4, -1])
    tracking, mask = tracking_targets(boxes, ids, valid, pre_boxes, pre_ids, down_ratio=4)
    assert mask.tolist() == [True, True, False, False, False]
    np.testing.assert_allclose(tracking, [[1, 0], [-1, 1], [0, 0], [0, 0], [0, 0]])
    empty, none = tracking_targets(boxes, ids, valid, np.zeros((0, 4)), np.zeros(0), 4)
    assert not none.any() and empty.shape == (5, 2)


# ----------------------------------------------------------------------------------------------
# the dataset's previous-frame modes


def test_previous_offset_covers_the_window_inside_the_split() -> None:
    rng = np.random.default_rng(0)
    counts = Counter(previous_offset(rng, 5, range(1, 11), 3) for _ in range(7000))
    assert sorted(counts) == [-3, -2, -1, 0, 1, 2, 3]
    assert all(abs(c - 1000) < 4 * np.sqrt(1000) for c in counts.values())
    assert {previous_offset(rng, 1, range(1, 11), 3) for _ in range(300)} == {0, 1, 2, 3}
    assert previous_offset(rng, 4, range(4, 5), 3) == 0


def test_previous_mode_sample(make_cfg, syn: list[Path]) -> None:
    cfg = make_cfg("data.input_size=[256, 160]", "data.split=all")
    baseline = build_baseline(cfg, [])
    seqs = [MOTSequence(d) for d in syn]
    ds = MOTTrainDataset(seqs, cfg.data, identity_index=IdentityIndex(seqs),
                         **baseline.dataset_options())
    assert ds.mode == "previous" and len(ds) == 32
    distances = Counter()
    linked = 0
    for i in range(0, 32, 3):
        s = ds[i]
        meta = s["meta"]
        d = meta["pre_frame"] - meta["frame"]
        assert abs(d) <= 3 and 1 <= meta["pre_frame"] <= 16
        distances[d] += 1
        assert s["pre_image"].shape == (3, 160, 256) and s["pre_hm"].shape == (1, 160, 256)
        n = len(s["boxes"])
        assert s["tracking"].shape == (n, 2) and s["tracking_mask"].shape == (n,)
        # the expected tracking target from the ground truth of both frames, both mapped by
        # this sample's matrix (the previous frame must have had the same augmentation)
        seq = seqs[0 if meta["sequence"] == "CT-0" else 1]
        cur, cur_ids = seq.annotations(meta["frame"])
        pre, pre_ids = seq.annotations(meta["pre_frame"])
        cur_b, cur_k = transform_boxes(cur, meta["matrix"], 256, 160)
        pre_b, pre_k = transform_boxes(pre, meta["matrix"], 256, 160)
        np.testing.assert_allclose(s["boxes"].numpy(), cur_b, atol=1e-4)
        pre_by_id = dict(zip(pre_ids[pre_k].tolist(), centers_and_sizes(pre_b)[0]))
        cur_c = centers_and_sizes(cur_b)[0]
        for k, gt_id in enumerate(cur_ids[cur_k].tolist()):
            if gt_id in pre_by_id:
                np.testing.assert_allclose(s["tracking"][k].numpy(),
                                           (pre_by_id[gt_id] - cur_c[k]) / 4, atol=1e-4)
                assert s["tracking_mask"][k]
                linked += 1
            else:
                assert not s["tracking_mask"][k]
        # every peak of the previous heatmap lies near a previous object (jitter 0.05 * size)
        _, pre_sizes = centers_and_sizes(pre_b)
        pre_centers = centers_and_sizes(pre_b)[0]
        for y, x in np.argwhere(s["pre_hm"][0].numpy() == 1.0).tolist():
            err = np.abs(pre_centers - (x + 0.5, y + 0.5)) / np.maximum(pre_sizes, 1)
            assert (err.max(1) < 0.3).any(), (x, y)
    assert linked > 10 and len(distances) >= 4
    assert torch.equal(ds[4]["pre_hm"], ds[4]["pre_hm"])  # deterministic per index
    a = ds[4]
    ds.set_epoch(1)
    assert not torch.equal(a["image"], ds[4]["image"])
    ds.set_epoch(0)
    b = ds[4]
    assert all(torch.equal(a[k], b[k]) for k in ("image", "pre_image", "pre_hm", "tracking"))


def test_previous_pair_mode_and_batch(make_cfg, syn: list[Path]) -> None:
    cfg = make_cfg("data.input_size=[256, 160]", "reid.mode=unsupervised",
                   "occlusion.enabled=true")
    plugins = build_plugins(cfg)
    baseline = build_baseline(cfg, plugins)
    seqs = [MOTSequence(d) for d in syn]
    ds = MOTTrainDataset(seqs, cfg.data, identity_index=IdentityIndex(seqs),
                         target_builders=[p.build_targets for p in plugins],
                         **baseline.dataset_options())
    assert ds.mode == "previous_pair"
    cur, prev, negative = ds[3]
    assert negative is False and prev["meta"]["frame"] == cur["meta"]["pre_frame"]
    assert torch.equal(cur["pre_image"], prev["image"])
    assert torch.equal(prev["pre_image"], prev["image"])  # a first frame
    assert prev["pre_hm"].sum() == 0 and not prev["tracking_mask"].any()
    assert "occ_hm" in prev and "occ_hm" in cur
    batch = baseline.collate_fn()([ds[i] for i in range(3)])
    assert batch["num_pairs"] == 3 and batch["image"].shape[0] == 6
    assert torch.equal(batch["pre_image"][3:], batch["image"][3:])
    assert batch["pre_hm"][3:].sum() == 0 and not batch["tracking_mask"][3:].any()


def test_builder_is_the_perturbation_of_the_previous_boxes() -> None:
    """The dataset builder draws ``perturb_objects`` from the item's generator and renders
    it: the same generator state gives the same heatmap by the two routes."""
    cfg = CenterTrackDataConfig(hm_disturb=0.05, lost_disturb=0.4, fp_disturb=0.1)
    prev_boxes = torch.tensor([[10.0, 10, 30, 60], [70, 20, 90, 70], [40, 5, 60, 50]])
    sample = {"image": torch.zeros(3, 96, 128), "boxes": prev_boxes[:2] + 2,
              "ids": torch.tensor([1, 2]), "reg_mask": torch.tensor([True, True])}
    previous = {"boxes": prev_boxes, "ids": torch.tensor([2, 1, 3])}
    out = CenterTrackTargets(cfg, 4)(sample, previous, np.random.default_rng(9))
    centers, sizes = centers_and_sizes(prev_boxes.numpy())
    p = perturb_objects(centers, sizes, np.random.default_rng(9), 0.05, 0.4, 0.1)
    np.testing.assert_array_equal(out["pre_hm"], render_heatmap(p.centers, p.sizes, 96, 128))
    # current id 1 at (22, 37) was at (80, 45) (previous box 1); id 2 at (82, 47) was at (20, 35)
    np.testing.assert_allclose(out["tracking"], [[(80 - 22) / 4, (45 - 37) / 4],
                                                 [(20 - 82) / 4, (35 - 47) / 4]])
    assert out["tracking_mask"].tolist() == [True, True]
