"""MOTChallenge readers on the real files in shared/data, checked against plain-Python counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from utrack.data.mot import (IdentityIndex, MOTSequence, find_sequences, load_det, load_gt,
                             split_frame_range)
from utrack.errors import DataFormatError


def plain_rows(path: Path) -> list[list[float]]:
    return [[float(v) for v in line.strip().split(",")] for line in path.read_text().splitlines()
            if line.strip()]


@pytest.fixture(scope="module")
def pets(shared_data: Path) -> Path:
    return shared_data / "PETS09-S2L1-train" / "PETS09-S2L1"


def test_find_sequences_layouts(shared_data: Path, pets: Path, tmp_path: Path) -> None:
    assert find_sequences(pets) == [pets]
    assert find_sequences(pets.parent) == [pets]
    mini = find_sequences(shared_data / "MOT17-mini")
    assert [p.name for p in mini] == sorted(p.name for p in (shared_data / "MOT17-mini").iterdir()
                                            if (p / "seqinfo.ini").is_file())
    assert len(mini) == 7
    # a MOTChallenge download root: sequences under train/
    for name in ("B-seq", "A-seq"):
        (tmp_path / "root" / "train" / name).mkdir(parents=True)
        (tmp_path / "root" / "train" / name / "seqinfo.ini").write_text("[Sequence]\nseqLength=1\n")
    assert [p.name for p in find_sequences(tmp_path / "root")] == ["A-seq", "B-seq"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no MOT sequence"):
        find_sequences(tmp_path / "empty")
    with pytest.raises(DataFormatError, match="not a folder"):
        find_sequences(tmp_path / "missing")


def test_load_gt_pets_filters(pets: Path) -> None:
    rows = plain_rows(pets / "gt" / "gt.txt")
    conf1 = [r for r in rows if r[6] == 1]
    assert 0 < len(conf1) < len(rows)  # PETS has conf 0 (ignore) rows
    gt = load_gt(pets)
    assert len(gt) == len(conf1)
    assert np.array_equal(gt[:, :6], np.array([r[:6] for r in conf1]))
    assert len(load_gt(pets, conf1_only=False)) == len(rows)


def test_load_gt_mot17_class_and_visibility(shared_data: Path) -> None:
    for seq in find_sequences(shared_data / "MOT17-mini"):
        rows = plain_rows(seq / "gt" / "gt.txt")
        for min_vis in (0.0, 0.5):
            expected = sum(1 for r in rows if r[6] == 1 and r[7] == 1 and r[8] >= min_vis)
            assert len(load_gt(seq, min_visibility=min_vis)) == expected, (seq.name, min_vis)
        cars = sum(1 for r in rows if r[6] == 1 and r[7] in (3, 4))
        assert len(load_gt(seq, classes=(3, 4))) == cars
        assert len(load_gt(seq, classes=None, conf1_only=False)) == len(rows)


def test_gt_without_class_and_visibility_columns(tmp_path: Path) -> None:
    path = tmp_path / "gt.txt"
    path.write_text("1,1,10,10,5,10\n1,2,20,10,5,10,1\n2,1,11,10,5,10,0\n")
    gt = load_gt(path, min_visibility=0.9)
    assert gt[:, 1].tolist() == [1, 2]  # 6 columns: conf, class, visibility all default to 1
    assert gt[:, 7].tolist() == [1, 1] and gt[:, 8].tolist() == [1, 1]


def test_load_det_unsorted_seven_columns(shared_data: Path) -> None:
    path = shared_data / "mot-annotations" / "MOT17-02-FRCNN" / "det" / "det.txt"
    rows = plain_rows(path)
    frames = [r[0] for r in rows]
    assert frames != sorted(frames) and len(rows[0]) == 7
    det = load_det(path.parent.parent)
    assert det.shape == (len(rows), 10)
    assert np.all(np.diff(det[:, 0]) >= 0)
    assert np.all(det[:, 7:] == -1)
    assert sorted(map(tuple, det[:, :7].tolist())) == sorted(map(tuple, rows))


def test_half_split_frames(pets: Path) -> None:
    seq = MOTSequence(pets)
    assert seq.info.seq_length == 397
    train, val = seq.frames("train_half"), seq.frames("val_half")
    assert (train.start, train.stop - 1) == (1, 199) and (val.start, val.stop - 1) == (200, 397)
    assert list(seq.frames("all")) == list(train) + list(val)
    assert list(split_frame_range(3, "val_half")) == [3]


def test_sequence_annotations_match_file(pets: Path) -> None:
    seq = MOTSequence(pets)
    rows = plain_rows(pets / "gt" / "gt.txt")
    for frame in (1, 100, 147, 397):
        plain = sorted((r for r in rows if r[0] == frame and r[6] == 1), key=lambda r: r[1])
        boxes, ids = seq.annotations(frame)
        assert boxes.dtype == np.float32 and ids.dtype == np.int64
        assert ids.tolist() == [int(r[1]) for r in plain]
        want = np.array([[r[2], r[3], r[2] + r[4], r[3] + r[5]] for r in plain], np.float32)
        np.testing.assert_allclose(boxes, want.reshape(-1, 4), atol=1e-3)
        ignore = [r for r in rows if r[0] == frame and r[6] == 0]
        assert len(seq.ignore_boxes(frame)) == len(ignore)
    assert seq.ignore_boxes(147).shape[0] >= 1
    assert seq.image_path(5) == pets / "img1" / "000005.jpg"
    assert seq.read_image(1).shape == (576, 768, 3)


def test_empty_frame_and_distractors(shared_data: Path, tmp_path: Path) -> None:
    seq_dir = shared_data / "MOT17-mini" / "MOT17-02-FRCNN"
    seq = MOTSequence(seq_dir)
    rows = plain_rows(seq_dir / "gt" / "gt.txt")
    ign = [r for r in rows if r[0] == 1 and (r[6] == 0 or r[7] in (2, 7, 8, 12))]
    assert len(seq.ignore_boxes(1)) == len(ign) > 0
    # a sequence whose gt skips frame 2 entirely
    d = tmp_path / "S"
    (d / "gt").mkdir(parents=True)
    (d / "seqinfo.ini").write_text("[Sequence]\nname=S\nseqLength=3\nimWidth=100\nimHeight=80\n")
    (d / "gt" / "gt.txt").write_text("1,4,1,2,3,4,1,1,1\n3,4,2,2,3,4,1,1,1\n")
    s = MOTSequence(d)
    boxes, ids = s.annotations(2)
    assert boxes.shape == (0, 4) and ids.shape == (0,)
    assert s.annotations(3)[0].tolist() == [[2, 2, 5, 6]]


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "gt.txt"
    path.write_text("1,1,10,10,5,10,1,1,1\n\n2,1,ten,10,5,10,1,1,1\n")
    with pytest.raises(DataFormatError, match=f"{path}:3"):
        load_gt(path)


def test_gt_frame_beyond_seq_length(tmp_path: Path) -> None:
    (tmp_path / "gt").mkdir()
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nseqLength=2\n")
    (tmp_path / "gt" / "gt.txt").write_text("5,1,1,1,4,4,1,1,1\n")
    with pytest.raises(DataFormatError, match="beyond seqLength"):
        MOTSequence(tmp_path)


def test_missing_image_is_named(shared_data: Path) -> None:
    seq = MOTSequence(shared_data / "mot-annotations" / "MOT17-02-FRCNN")  # annotations only
    assert len(seq.annotations(1)[0]) > 0
    missing = shared_data / "mot-annotations" / "MOT17-02-FRCNN" / "img1" / "000001.jpg"
    with pytest.raises(DataFormatError, match=str(missing)):
        seq.image_path(1)
    with pytest.raises(IndexError):
        seq.image_path(10 ** 6)


def test_identity_index_contiguous(shared_data: Path) -> None:
    seqs = [MOTSequence(p) for p in find_sequences(shared_data / "MOT17-mini")]
    index = IdentityIndex(seqs)
    expected = {}
    for p in find_sequences(shared_data / "MOT17-mini"):
        expected[p.name] = sorted({int(r[1]) for r in plain_rows(p / "gt" / "gt.txt")
                                   if r[6] == 1 and r[7] == 1})
    assert index.num_ids == sum(len(v) for v in expected.values())
    seen = []
    for seq in seqs:
        glob = index.lookup(seq.name, np.array(expected[seq.name]))
        assert glob.tolist() == list(index.sequence_range(seq.name))
        seen += glob.tolist()
    assert sorted(seen) == list(range(index.num_ids))
    assert index.lookup(seqs[0].name, np.array([-1, 10 ** 6])).tolist() == [-1, -1]
    assert index.lookup("unknown", np.array([1])).tolist() == [-1]
    # ids seen only in the second half get no index with split=train_half
    pets = MOTSequence(shared_data / "PETS09-S2L1-train" / "PETS09-S2L1")
    half = IdentityIndex([pets], "train_half")
    rows = plain_rows(pets.gt_path)
    first_half = {int(r[1]) for r in rows if r[6] == 1 and r[0] <= 199}
    assert half.num_ids == len(first_half) < IdentityIndex([pets]).num_ids
