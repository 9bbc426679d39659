"""The synthetic generator: determinism, MOT layout, and the scene properties it promises."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from utrack.config import SyntheticConfig
from utrack.data.mot import MOTSequence, load_det, read_seqinfo
from utrack.data.synthetic import STAMP_NAME, generate_dataset, generate_sequence

FRAMES = 80


@pytest.fixture(scope="module")
def seqs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("syn")
    return [generate_sequence(root / f"S{s}", seed=(7, s), frames=FRAMES) for s in range(3)]


def gt_rows(seq: Path) -> np.ndarray:
    return np.array([[float(v) for v in line.split(",")]
                     for line in (seq / "gt" / "gt.txt").read_text().splitlines()])


def test_deterministic_by_seed(seqs: list[Path], tmp_path: Path) -> None:
    again = generate_sequence(tmp_path / "again", seed=(7, 0), frames=FRAMES)
    for name in ("gt/gt.txt", "det/det.txt"):
        assert (again / name).read_bytes() == (seqs[0] / name).read_bytes()
    assert (seqs[1] / "gt" / "gt.txt").read_bytes() != (seqs[0] / "gt" / "gt.txt").read_bytes()


def test_mot_layout(seqs: list[Path]) -> None:
    info = read_seqinfo(seqs[0])
    assert (info.seq_length, info.width, info.height, info.frame_rate) == (FRAMES, 480, 288, 10)
    images = sorted((seqs[0] / "img1").glob("*.jpg"))
    assert [p.name for p in images] == [f"{f:06d}.jpg" for f in range(1, FRAMES + 1)]
    assert cv2.imread(str(images[0])).shape == (288, 480, 3)
    rows = gt_rows(seqs[0])
    assert rows.shape[1] == 9 and np.all(rows[:, 6] == 1) and np.all(rows[:, 7] == 1)
    assert np.all((rows[:, 8] >= 0) & (rows[:, 8] <= 1))
    # every box touches the image
    assert np.all(rows[:, 2] < 480) and np.all(rows[:, 2] + rows[:, 4] > 0)
    assert np.all(rows[:, 3] < 288) and np.all(rows[:, 3] + rows[:, 5] > 0)
    seq = MOTSequence(seqs[0])
    assert seq.track_ids().tolist() == list(range(1, len(seq.track_ids()) + 1))


def test_detections_are_noisy_gt(seqs: list[Path]) -> None:
    rows = gt_rows(seqs[0])
    det = load_det(seqs[0])
    text = (seqs[0] / "det" / "det.txt").read_text().splitlines()
    assert all(len(line.split(",")) == 10 for line in text)
    assert np.all((det[:, 6] > 0) & (det[:, 6] <= 1)) and np.all(det[:, 1] == -1)
    visible = rows[rows[:, 8] > 0.7]
    hidden = rows[rows[:, 8] == 0]
    assert 0.5 * len(visible) < len(det) < len(rows) + FRAMES  # misses, some false positives

    def best_iou(r: np.ndarray) -> float:
        d = det[det[:, 0] == r[0]]
        if not len(d):
            return 0.0
        x1 = np.maximum(d[:, 2], r[2]); y1 = np.maximum(d[:, 3], r[3])
        x2 = np.minimum(d[:, 2] + d[:, 4], r[2] + r[4]); y2 = np.minimum(d[:, 3] + d[:, 5], r[3] + r[5])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        return float((inter / (d[:, 4] * d[:, 5] + r[4] * r[5] - inter)).max())

    found_visible = np.mean([best_iou(r) > 0.5 for r in visible])
    found_hidden = np.mean([best_iou(r) > 0.5 for r in hidden]) if len(hidden) else 0.0
    assert found_visible > 0.8 and found_hidden < 0.3


def test_births_and_deaths(seqs: list[Path]) -> None:
    for seq in seqs:
        rows = gt_rows(seq)
        first = {i: rows[rows[:, 1] == i, 0].min() for i in np.unique(rows[:, 1])}
        assert any(f > 1 for f in first.values()), seq
    all_rows = [gt_rows(s) for s in seqs]
    assert any((r[r[:, 1] == i, 0].max() < FRAMES) for r in all_rows for i in np.unique(r[:, 1]))


def test_overlapping_pairs_in_every_sequence(seqs: list[Path]) -> None:
    for seq in seqs:
        rows = gt_rows(seq)
        best = 0.0
        for frame in np.unique(rows[:, 0]):
            boxes = rows[rows[:, 0] == frame, 2:6]
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    (xa, ya, wa, ha), (xb, yb, wb, hb) = boxes[i], boxes[j]
                    iw = max(0.0, min(xa + wa, xb + wb) - max(xa, xb))
                    ih = max(0.0, min(ya + ha, yb + hb) - max(ya, yb))
                    best = max(best, iw * ih / min(wa * ha, wb * hb))
        assert best > 0.7, seq


def test_fully_hidden_stretches_in_every_sequence(seqs: list[Path]) -> None:
    for seq in seqs:
        rows = gt_rows(seq)
        longest = 0
        for i in np.unique(rows[:, 1]):
            run = 0
            for v in rows[rows[:, 1] == i, 8]:  # rows are in frame order
                run = run + 1 if v == 0 else 0
                longest = max(longest, run)
        assert longest >= 3, seq


def test_appearance_identifies_people(seqs: list[Path]) -> None:
    """Nearest neighbour on colour histograms of visible crops (from other frames) finds the
    same identity: appearance carries identity."""
    rows = gt_rows(seqs[0])
    rows = rows[(rows[:, 8] > 0.97) & (rows[:, 0] % 5 == 0) & (rows[:, 2] >= 0) & (rows[:, 3] >= 0)
                & (rows[:, 2] + rows[:, 4] <= 480) & (rows[:, 3] + rows[:, 5] <= 288)]
    feats = []
    for f, _, x, y, w, h, *_ in rows:
        image = cv2.imread(str(seqs[0] / "img1" / f"{int(f):06d}.jpg"))
        crop = image[int(y + 0.15 * h):int(y + 0.55 * h), int(x + 0.2 * w):int(x + 0.8 * w)]
        hist = cv2.calcHist([crop], [0, 1, 2], None, [6, 6, 6], [0, 256] * 3).ravel()
        feats.append(hist / hist.sum())
    feats = np.array(feats)
    dist = np.abs(feats[:, None] - feats[None]).sum(-1)
    same_frame = rows[:, 0][:, None] == rows[:, 0][None]
    dist[same_frame] = np.inf
    nearest = dist.argmin(1)
    valid = np.isfinite(dist.min(1))
    accuracy = np.mean(rows[nearest, 1][valid] == rows[valid, 1])
    assert valid.sum() > 20 and accuracy > 0.9


def test_generate_dataset_reuses_stamped_generation(tmp_path: Path) -> None:
    cfg = SyntheticConfig(root=str(tmp_path), num_train=2, num_val=1, frames=6, width=160,
                          height=96, max_people=4, seed=3)
    train, val = generate_dataset(tmp_path, cfg)
    assert [p.name for p in train] == ["SYN-01", "SYN-02"] and [p.name for p in val] == ["SYN-03"]
    assert all(p.parent.name == "train" for p in train) and val[0].parent.name == "val"
    assert (tmp_path / STAMP_NAME).is_file()
    gt = train[0] / "gt" / "gt.txt"
    stamp_time = gt.stat().st_mtime_ns
    assert generate_dataset(tmp_path, cfg) == (train, val)
    assert gt.stat().st_mtime_ns == stamp_time  # reused, not rewritten
    before = gt.read_bytes()
    cfg.seed = 4
    generate_dataset(tmp_path, cfg)
    assert gt.read_bytes() != before
    assert len(list((train[0] / "img1").glob("*.jpg"))) == 6


def test_generate_dataset_removes_sequences_of_another_generation(tmp_path: Path) -> None:
    cfg = SyntheticConfig(root=str(tmp_path), num_train=2, num_val=2, frames=4, width=160,
                          height=96, max_people=3, seed=0)
    generate_dataset(tmp_path, cfg)
    assert sorted(p.name for p in (tmp_path / "val").iterdir()) == ["SYN-03", "SYN-04"]
    cfg.num_train, cfg.num_val = 3, 1  # SYN-03 moves from val to train
    train, val = generate_dataset(tmp_path, cfg)
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["SYN-01", "SYN-02", "SYN-03"]
    assert [p.name for p in (tmp_path / "val").iterdir()] == ["SYN-04"] == [p.name for p in val]
    assert (val[0] / "img1" / "000004.jpg").is_file()
