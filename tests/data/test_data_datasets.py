"""Training datasets (single frames and pairs) on synthetic and real sequences; inference frames."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from utrack.config import AugmentConfig, DataConfig, SyntheticConfig
from utrack.data.collate import collate_frames
from utrack.data.datasets import (MOTTrainDataset, SequenceFrames, clip_frames, pair_offset,
                                  training_sequence_dirs)
from utrack.data.mot import IdentityIndex, MOTSequence
from utrack.data.synthetic import generate_sequence
from utrack.data.transforms import letterbox_params
from utrack.errors import ConfigError, DataFormatError

WINDOW = 4


@pytest.fixture(scope="module")
def syn(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("syn_ds")
    return [generate_sequence(root / f"SYN-{k}", seed=(11, k), frames=24, width=160, height=96,
                              max_people=5) for k in range(2)]


def config(split: str = "train_half", augment: bool = True, **aug) -> DataConfig:
    return DataConfig(split=split, input_size=[320, 192], pair_window=WINDOW,
                      augment=AugmentConfig(enabled=augment, **aug))


def same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor))


def test_single_samples(syn: list[Path]) -> None:
    ds = MOTTrainDataset(syn, config())
    assert len(ds) == 2 * 13  # train_half of 24 frames: 1..13
    n_ids = ds.identity_index.num_ids
    for i in (0, 7, 20):
        s = ds[i]
        assert s["image"].shape == (3, 192, 320) and s["image"].dtype == torch.float32
        assert 0 <= s["image"].min() and s["image"].max() <= 1
        n = len(s["boxes"])
        assert s["hm"].shape == (1, 48, 80)
        assert all(s[k].shape[0] == n for k in ("ind", "wh", "reg", "reg_mask", "ids"))
        assert torch.all((s["ids"] >= 0) & (s["ids"] < n_ids))
        assert torch.all(s["boxes"][:, 0::2] <= 320) and torch.all(s["boxes"] >= 0)
        mask = s["reg_mask"]
        assert torch.all(s["hm"].flatten()[s["ind"][mask]] == 1.0)
        meta = s["meta"]
        assert meta["frame"] in range(1, 14) and meta["orig_size"] == (160, 96)
        assert meta["sequence"] == ("SYN-0" if i < 13 else "SYN-1")


def test_determinism_per_seed_epoch_index(syn: list[Path]) -> None:
    ds = MOTTrainDataset(syn, config())
    a = ds[5]
    assert same(a, ds[5]) and same(a, MOTTrainDataset(syn, config())[5])
    ds.set_epoch(1)
    b = ds[5]
    assert not same(a, b) and b["meta"]["affine"] != a["meta"]["affine"]
    ds.set_epoch(0)
    assert same(a, ds[5])
    assert not same(a, MOTTrainDataset(syn, config(), seed=1)[5])


def test_worker_count_does_not_change_data(syn: list[Path]) -> None:
    ds = MOTTrainDataset(syn, config())
    ds.set_epoch(3)
    batches = []
    for workers in (0, 2):
        loader = DataLoader(ds, batch_size=3, num_workers=workers, collate_fn=collate_frames)
        batches.append([b for _, b in zip(range(2), loader)])
    for b0, b2 in zip(*batches):
        assert torch.equal(b0["image"], b2["image"]) and torch.equal(b0["ind"], b2["ind"])


def test_pairs_within_window_and_split(syn: list[Path]) -> None:
    ds = MOTTrainDataset(syn, config(pair_jitter=0.05), mode="pair")
    distances = Counter()
    for i in range(len(ds)):
        a, b, negative = ds[i]
        assert negative is False and a["meta"]["sequence"] == b["meta"]["sequence"]
        d = b["meta"]["frame"] - a["meta"]["frame"]
        assert 1 <= abs(d) <= WINDOW and 1 <= b["meta"]["frame"] <= 13
        distances[d] += 1
        fa, fb = a["meta"]["affine"], b["meta"]["affine"]
        assert fa.flip == fb.flip and fa != fb
        assert abs(np.log(fb.scale / fa.scale)) <= 0.05 + 1e-9
        assert abs(fb.translate_x - fa.translate_x) <= 0.05 + 1e-9
    assert any(d < 0 for d in distances) and any(d > 0 for d in distances)


def test_pair_carries_identities_of_frame_b(syn: list[Path]) -> None:
    ds = MOTTrainDataset(syn, config(augment=False), mode="pair")
    seq = MOTSequence(syn[0])
    index = IdentityIndex([MOTSequence(p) for p in syn], "train_half")
    a, b, _ = ds[6]
    boxes, ids = seq.annotations(b["meta"]["frame"])
    record, _, _ = letterbox_params(160, 96, 320, 192)
    want = boxes * record.scale
    want[:, 0::2] = np.clip(want[:, 0::2] + record.pad_x, 0, 320)
    want[:, 1::2] = np.clip(want[:, 1::2] + record.pad_y, 0, 192)
    keep = ((want[:, 2] - want[:, 0]) >= 2) & ((want[:, 3] - want[:, 1]) >= 2)
    np.testing.assert_allclose(b["boxes"].numpy(), want[keep], atol=1e-3)
    assert b["ids"].tolist() == index.lookup("SYN-0", ids[keep]).tolist()


def test_one_frame_split_pairs_frame_with_itself(syn: list[Path], tmp_path: Path) -> None:
    seq = tmp_path / "TINY"
    generate_sequence(seq, seed=1, frames=3, width=160, height=96)
    ds = MOTTrainDataset([seq], config(split="val_half"), mode="pair")
    assert len(ds) == 1
    a, b, _ = ds[0]
    assert a["meta"]["frame"] == b["meta"]["frame"] == 3
    assert not torch.equal(a["image"], b["image"])  # augmented differently


def test_pair_offset_uniform_and_clamped() -> None:
    rng = np.random.default_rng(0)
    counts = Counter(pair_offset(rng, 2, range(1, 11), 3) for _ in range(4000))
    assert set(counts) == {-1, 1, 2, 3}
    assert all(850 < c < 1150 for c in counts.values())
    assert pair_offset(rng, 5, range(5, 6), 20) == 0
    assert set(pair_offset(rng, 10, range(1, 11), 20) for _ in range(500)) == set(range(-9, 0))


def test_clip_frames_within_one_window() -> None:
    rng = np.random.default_rng(0)
    seen = Counter()
    for _ in range(3000):
        clip = [5] + clip_frames(rng, 5, range(1, 21), 3, 2)
        assert len(set(clip)) == 3 and all(1 <= f <= 20 for f in clip)
        assert max(clip) - min(clip) <= 3          # every two frames at most W = 3 apart
        seen.update(clip[1:])
    assert set(seen) == {2, 3, 4, 6, 7, 8}         # windows [2, 5] .. [5, 8]
    # at the split's ends the window is clamped; a too short split repeats the frame
    assert all(set(clip_frames(rng, 1, range(1, 21), 3, 3)) == {2, 3, 4} for _ in range(20))
    assert sorted(clip_frames(rng, 2, range(1, 4), 5, 3)) == [1, 2, 3]


def test_clip_items_of_k_frames(syn: list[Path]) -> None:
    cfg = config(pair_jitter=0.05)
    cfg.pair_frames = 3
    ds = MOTTrainDataset(syn, cfg, mode="pair")
    assert ds.frames_per_item == 3
    assert len(ds) == round(2 * 13 * 2 / 3)  # pair_epoch_fraction 1 is for pairs: 2/3 of it
    for i in range(len(ds)):
        *samples, negative = ds[i]
        assert len(samples) == 3 and negative is False
        frames = [s["meta"]["frame"] for s in samples]
        assert len(set(frames)) == 3 and max(frames) - min(frames) <= WINDOW
        assert len({s["meta"]["sequence"] for s in samples}) == 1
        assert len({s["meta"]["affine"].flip for s in samples}) == 1
    cfg.pair_frames = 1
    with pytest.raises(ConfigError, match="data.pair_frames"):
        MOTTrainDataset(syn, cfg, mode="pair")
    cfg.pair_frames = 3
    previous = MOTTrainDataset(syn, cfg, mode="previous_pair")  # always a frame and its previous
    assert previous.frames_per_item == 2 and len(previous[0]) == 3


def test_target_builders_merge(syn: list[Path]) -> None:
    def count(sample: dict) -> dict:
        return {"num_boxes": torch.tensor(len(sample["boxes"]))}

    ds = MOTTrainDataset(syn, config(), target_builders=[count])
    s = ds[2]
    assert int(s["num_boxes"]) == len(s["boxes"])
    with pytest.raises(ValueError, match="existing keys"):
        MOTTrainDataset(syn, config(), target_builders=[lambda s: {"hm": 0}])[0]


def test_real_sequence_without_augmentation(shared_data: Path) -> None:
    pets = shared_data / "PETS09-S2L1-train" / "PETS09-S2L1"
    cfg = DataConfig(split="all", augment=AugmentConfig(enabled=False))
    ds = MOTTrainDataset([pets], cfg)
    s = ds[99]
    boxes, _ = MOTSequence(pets).annotations(100)
    scale, pad_x = 608 / 576, (1088 - round(768 * 608 / 576)) // 2
    want = boxes * scale + np.array([pad_x, 0, pad_x, 0])
    want[:, 0::2] = want[:, 0::2].clip(0, 1088)
    want[:, 1::2] = want[:, 1::2].clip(0, 608)
    np.testing.assert_allclose(s["boxes"].numpy(), want, atol=0.3)
    assert s["meta"]["letterbox"].scale == pytest.approx(scale)
    assert int((s["hm"] == 1).sum()) == int(s["reg_mask"].sum()) == len(boxes)


def test_missing_image_fails_at_construction(tmp_path: Path) -> None:
    (tmp_path / "S" / "gt").mkdir(parents=True)
    (tmp_path / "S" / "seqinfo.ini").write_text("[Sequence]\nname=S\nseqLength=2\n")
    (tmp_path / "S" / "gt" / "gt.txt").write_text("1,1,1,1,4,4,1,1,1\n")
    with pytest.raises(DataFormatError, match=str(tmp_path / "S" / "img1" / "000001.jpg")):
        MOTTrainDataset([tmp_path / "S"], DataConfig())


def test_training_sequence_dirs(tmp_path: Path, shared_data: Path) -> None:
    syn_cfg = SyntheticConfig(root=str(tmp_path / "gen"), num_train=2, num_val=1, frames=4,
                              width=160, height=96)
    dirs = training_sequence_dirs(DataConfig(synthetic=syn_cfg))
    assert [d.name for d in dirs] == ["SYN-01", "SYN-02"] and all(d.is_dir() for d in dirs)
    pets_root = shared_data / "PETS09-S2L1-train"
    assert training_sequence_dirs(DataConfig(roots=[str(pets_root)])) == [pets_root / "PETS09-S2L1"]


def test_sequence_frames_sources(shared_data: Path, syn: list[Path], tmp_path: Path) -> None:
    pets = shared_data / "PETS09-S2L1-train" / "PETS09-S2L1"
    frames = SequenceFrames(pets, (1088, 608))
    assert len(frames) == 397 and frames.fps == 7
    frame, image, tensor, record = next(iter(frames))
    assert frame == 1 and image.shape == (576, 768, 3) and tensor.shape == (3, 608, 1088)
    assert record.pad_x == 138
    assert np.array_equal(image, cv2.imread(str(pets / "img1" / "000001.jpg")))

    folder = tmp_path / "images"
    folder.mkdir()
    for k in (2, 1):
        cv2.imwrite(str(folder / f"im{k}.png"), np.full((40, 60, 3), k * 50, np.uint8))
    got = [(f, int(im[0, 0, 0])) for f, im, _, _ in SequenceFrames(folder, (64, 64))]
    assert got == [(1, 50), (2, 100)]

    video = SequenceFrames(shared_data / "videos" / "vtest.avi", (320, 256))
    assert len(video) == 795 and video.fps > 0
    it = iter(video)
    first, second = next(it), next(it)
    assert (first[0], second[0]) == (1, 2) and first[1].shape == (576, 768, 3)
    assert second[2].shape == (3, 256, 320)


def test_sequence_frames_errors(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no such file"):
        SequenceFrames(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.avi"
    bad.write_text("not a video")
    with pytest.raises(DataFormatError, match="bad.avi"):
        list(SequenceFrames(bad))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no images"):
        SequenceFrames(tmp_path / "empty")
    seq = tmp_path / "seq"
    seq.mkdir()
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=seq\nseqLength=2\n")
    with pytest.raises(DataFormatError, match=str(seq / "img1" / "000001.jpg")):
        next(iter(SequenceFrames(seq)))


def test_sequence_frames_split(syn: list[Path], shared_data: Path) -> None:
    frames = SequenceFrames(syn[0], (320, 192), split="val_half")  # 24 frames: 14..24
    assert len(frames) == 11
    numbers = [f for f, *_ in frames]
    assert numbers == list(range(14, 25))
    video = SequenceFrames(shared_data / "videos" / "vtest.avi", (320, 256), split="val_half")
    assert video.frames == range(399, 796)
    assert next(iter(video))[0] == 399


def test_numpy_builder_outputs_become_tensors(syn: list[Path]) -> None:
    ds = MOTTrainDataset(syn, config(), target_builders=[
        lambda s: {"occ_ind": np.arange(len(s["boxes"]) % 3, dtype=np.int64)}])
    batch = collate_frames([ds[0], ds[1]])
    assert isinstance(batch["occ_ind"], torch.Tensor) and batch["occ_ind"].shape[0] == 2
