"""The image dataset: positive pairs (two augmentations of one image), negative pairs (images of
different scenes) at the configured ratio, supervised pseudo-identities, ignore regions."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from utrack.config import AugmentConfig, DataConfig, load_config
from utrack.data.collate import collate_pairs
from utrack.data.crowdhuman import read_odgt
from utrack.data.images import ImageRecord, ImageTrainDataset, ignore_mask
from utrack.data.transforms import letterbox_params, transform_boxes
from utrack.engine.setup import build_image_training_data
from utrack.errors import ConfigError

SMALL = [128, 96]  # input size that keeps loading cheap


def data_cfg(neg_ratio: float = 0.25, augment: bool = True, **kw) -> DataConfig:
    return DataConfig(input_size=list(kw.pop("input_size", SMALL)), neg_ratio=neg_ratio,
                      augment=AugmentConfig(enabled=augment), **kw)


@pytest.fixture(scope="module")
def records(shared_data: Path) -> list[ImageRecord]:
    return read_odgt(shared_data / "crowdhuman-mini").records


def test_negative_pairs_come_from_different_scenes(records: list[ImageRecord]) -> None:
    ds = ImageTrainDataset(records, data_cfg(), mode="pair")
    assert ds.frames_per_item == 2
    assert ImageTrainDataset(records, data_cfg(), mode="single").frames_per_item == 1
    negatives = 0
    for epoch in range(20):
        ds.set_epoch(epoch)
        for index in range(len(ds)):
            a, b, negative = ds.plan(index)
            assert a == ds.anchor(index)
            if negative:
                negatives += 1
                assert records[a].scene != records[b].scene, (records[a].image_id, records[b].image_id)
            else:
                assert a == b
    assert negatives > 100
    # loaded items agree with the plan
    ds.set_epoch(0)
    index = int(np.flatnonzero(ds.negative_items())[0])
    sample_a, sample_b, negative = ds[index]
    assert negative is True
    assert sample_a["meta"]["scene"] != sample_b["meta"]["scene"]
    assert sample_b["meta"]["image_id"] == records[ds.plan(index)[1]].image_id


def test_without_scene_ids_negatives_are_just_different_images(tmp_path: Path) -> None:
    path = tmp_path / "img.jpg"
    cv2.imwrite(str(path), np.zeros((40, 60, 3), np.uint8))
    box = np.array([[5, 5, 20, 30]], np.float32)
    recs = [ImageRecord(f"283554,{k:x}", path, box, np.zeros((0, 4), np.float32), f"283554,{k:x}",
                        "x") for k in range(5)]
    ds = ImageTrainDataset(recs, data_cfg(neg_ratio=1.0), mode="pair")
    for epoch in range(30):
        ds.set_epoch(epoch)
        for index in range(len(ds)):
            a, b, negative = ds.plan(index)
            assert (a != b) if negative else (a == b)
    same_scene = [ImageRecord(r.image_id, path, box, r.ignore, "one", "x") for r in recs]
    with pytest.raises(ConfigError, match="at least two scenes"):
        ImageTrainDataset(same_scene, data_cfg(), mode="pair")
    assert len(ImageTrainDataset(same_scene, data_cfg(neg_ratio=0.0), mode="pair")) == 5


@pytest.mark.parametrize("ratio", [1 / 9, 0.25, 3 / 7])
def test_negative_ratio_over_many_batches(records: list[ImageRecord], ratio: float) -> None:
    ds = ImageTrainDataset(records, data_cfg(neg_ratio=ratio), mode="pair")
    q = ratio / (1 + ratio)
    epochs = 300
    neg = 0
    for epoch in range(epochs):
        ds.set_epoch(epoch)
        flags = ds.negative_items()
        # per epoch the count is floor(q n) or that + 1 (stochastic rounding of q n)
        assert math.floor(q * len(ds)) <= flags.sum() <= math.floor(q * len(ds)) + 1
        neg += int(flags.sum())
    total = epochs * len(ds)
    # the rounding is Bernoulli(frac(q n)) per epoch: its standard error over the epochs
    frac = q * len(ds) - math.floor(q * len(ds))
    sigma = math.sqrt(epochs * frac * (1 - frac))
    assert abs(neg - q * total) <= 4 * sigma + 1e-9
    observed = neg / (total - neg)
    assert observed == pytest.approx(ratio, rel=0.03)


def test_ratio_in_real_batches(records: list[ImageRecord]) -> None:
    """One loaded epoch through collate_pairs, as the trainer sees it."""
    ds = ImageTrainDataset(records, data_cfg(input_size=[64, 32]), mode="pair")
    flags = torch.cat([collate_pairs([ds[i] for i in range(s, min(s + 8, len(ds)))])["pair_negative"]
                       for s in range(0, len(ds), 8)])
    assert flags.tolist() == ds.negative_items().tolist()
    assert int(flags.sum()) in (7, 8)  # 0.2 * 39 = 7.8


def test_positive_pair_is_two_augmentations_of_the_same_boxes(records: list[ImageRecord]) -> None:
    ds = ImageTrainDataset(records, data_cfg(neg_ratio=0.0, input_size=[256, 160]), mode="pair")
    checked = 0
    for index in (0, 4, 13, 30):
        a, b, negative = ds[index]
        assert negative is False
        record = records[index]
        assert a["meta"]["image_id"] == b["meta"]["image_id"] == record.image_id
        assert a["meta"]["affine"] != b["meta"]["affine"]
        assert not np.allclose(a["meta"]["matrix"], b["meta"]["matrix"])
        assert not torch.equal(a["image"], b["image"])
        for sample in (a, b):
            # every kept box is its record box through the sample's own map (then clipped)
            want, kept = transform_boxes(record.boxes, sample["meta"]["matrix"], 256, 160)
            np.testing.assert_allclose(sample["boxes"].numpy(), want, atol=1e-4)
            assert sample["meta"]["box_index"].tolist() == kept.tolist()
            assert sample["ids"].tolist() == (ds.id_offsets[index] + kept).tolist()
        common = set(a["meta"]["box_index"].tolist()) & set(b["meta"]["box_index"].tolist())
        assert len(common) >= 0.5 * min(len(a["boxes"]), len(b["boxes"]))
        checked += len(common)
    assert checked > 20


def test_supervised_every_box_is_its_own_identity(shared_data: Path) -> None:
    cfg = load_config([Path(__file__).parents[2] / "configs" / "crowdhuman.yaml"],
                      [f"data.roots=[{shared_data / 'crowdhuman-mini'}]", "reid.mode=supervised",
                       "data.input_size=[128, 96]"])
    data = build_image_training_data(cfg)
    assert data.num_ids == 814  # the person boxes, independently counted in the reader test
    from baselines import build_baseline
    from plugins import build_plugins

    plugins = build_plugins(cfg)
    baseline = build_baseline(cfg, plugins)
    assert not baseline.needs_pairs
    ds = data.make_dataset(baseline, plugins)
    assert ds.mode == "single" and len(ds) == 39
    criterion = baseline.build_criterion(data.num_ids)
    assert criterion.reid.classifier.out_features == 814
    counts = [len(r.boxes) for r in data.records]
    first_id = {r.image_id: sum(counts[:k]) for k, r in enumerate(data.records)}
    seen: dict[int, tuple[str, int]] = {}
    kept = 0
    for index in range(len(ds)):
        sample = ds[index]
        image_id = sample["meta"]["image_id"]
        for slot, box in zip(sample["ids"].tolist(), sample["meta"]["box_index"].tolist()):
            assert slot == first_id[image_id] + box  # boxes numbered through the file
            assert seen.setdefault(slot, (image_id, box)) == (image_id, box)
            kept += 1
    assert len(seen) == kept > 300  # no two boxes share an identity
    assert len(set(seen.values())) == kept and all(0 <= i < 814 for i in seen)


def test_ignore_regions_mask_the_cells_they_cover(tmp_path: Path) -> None:
    path = tmp_path / "img.jpg"
    cv2.imwrite(str(path), np.zeros((96, 128, 3), np.uint8))
    person = np.array([[8, 8, 24, 60]], np.float32)
    ignore = np.array([[64, 20, 90, 50], [100, 90, 140, 120]], np.float32)  # one leaves the image
    rec = ImageRecord("MOT17-02-FRCNN_000001", path, person, ignore, "MOT17-02", "x")
    ds = ImageTrainDataset([rec], data_cfg(neg_ratio=0.0, augment=False), mode="single")
    sample = ds[0]
    record, _, _ = letterbox_params(128, 96, 128, 96)
    assert (record.scale, record.pad_x, record.pad_y) == (1.0, 0.0, 0.0)
    mask = sample["hm_ignore"]
    assert mask.shape == (1, 24, 32) and mask.dtype == torch.bool
    want = np.zeros((24, 32), bool)
    want[5:13, 16:23] = True  # 64/4 .. ceil(90/4)=23, 20/4 .. ceil(50/4)=13
    want[22:24, 25:32] = True  # the second box clipped to the image: x 100..128, y 90..96
    assert np.array_equal(mask[0].numpy(), want)
    hm = sample["hm"][0].numpy()
    assert hm[want].max() == 0.0  # no object inside the ignore regions
    assert hm.max() == 1.0 and len(sample["boxes"]) == 1
    # the helper itself on a hand example: a box covering half a cell still marks it
    np.testing.assert_array_equal(ignore_mask(np.array([[2, 0, 6, 3]]), 3, 2, 4)[0],
                                  [[True, True, False], [False, False, False]])


def test_epoch_draws_are_reproducible(records: list[ImageRecord]) -> None:
    ds = ImageTrainDataset(records, data_cfg(), mode="pair", seed=3)
    other = ImageTrainDataset(records, data_cfg(), mode="pair", seed=3)
    ds.set_epoch(5)
    other.set_epoch(5)
    assert [ds.plan(i) for i in range(len(ds))] == [other.plan(i) for i in range(len(ds))]
    ds.set_epoch(6)
    assert ds.negative_items().tolist() != other.negative_items().tolist()
    fraction = ImageTrainDataset(records, data_cfg(pair_epoch_fraction=0.5), mode="pair")
    assert len(fraction) == 20
    fraction.set_epoch(1)
    anchors = [fraction.anchor(i) for i in range(20)]
    assert len(set(anchors)) == 20 and max(anchors) < 39
