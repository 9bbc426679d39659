"""evaluate_folder on MOT17-mini, with the public detections as "results" (one id per row)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from utrack.data.mot import read_seqinfo
from utrack.data.motfile import read_mot_txt, write_mot_results
from utrack.errors import DataFormatError
from utrack.eval.mot import evaluate_folder, format_table

MINI_SEQS = ("MOT17-02-FRCNN", "MOT17-04-FRCNN", "MOT17-05-FRCNN", "MOT17-09-FRCNN",
             "MOT17-10-FRCNN", "MOT17-11-FRCNN", "MOT17-13-FRCNN")


def write_det_results(mini: Path, out: Path, seqs: tuple[str, ...] = MINI_SEQS) -> Path:
    """det/det.txt rows as tracker output; det ids are -1, so each row gets its own id."""
    for seq in seqs:
        det = read_mot_txt(mini / seq / "det" / "det.txt")
        rows = np.column_stack([det[:, 0], np.arange(1, len(det) + 1), det[:, 2:7]])
        write_mot_results(out / f"{seq}.txt", rows)
    return out


@pytest.fixture(scope="module")
def mini(shared_data: Path) -> Path:
    return shared_data / "MOT17-mini"


@pytest.fixture(scope="module")
def det_results(mini: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_det_results(mini, tmp_path_factory.mktemp("det_results"))


@pytest.fixture(scope="module")
def report(mini: Path, det_results: Path) -> dict:
    return evaluate_folder(mini, det_results)


def _pedestrian_rows(mini: Path, seq: str, frames: range) -> int:
    gt = read_mot_txt(mini / seq / "gt" / "gt.txt")
    keep = (gt[:, 6] != 0) & (gt[:, 7] == 1) & np.isin(gt[:, 0], list(frames))
    return int(keep.sum())


def test_folder_smoke_over_all_sequences(mini: Path, det_results: Path, report: dict) -> None:
    assert list(report["sequences"]) == list(MINI_SEQS)
    combined = report["combined"]
    lengths = {s: read_seqinfo(mini / s).seq_length for s in MINI_SEQS}
    assert combined["num_frames"] == sum(lengths.values()) == 39
    for seq, m in report["sequences"].items():
        assert m["num_frames"] == lengths[seq]
        # Independent count: gt rows with conf != 0 and class 1 within the sequence's frames.
        assert m["num_gt_dets"] == _pedestrian_rows(mini, seq, range(1, lengths[seq] + 1))
        n_det = len(read_mot_txt(det_results / f"{seq}.txt"))
        assert m["num_pred_dets"] <= n_det  # predictions on distractors are removed
        assert m["FP"] + m["num_gt_dets"] - m["FN"] == m["num_pred_dets"]  # FP + TP
    for key in ("FP", "FN", "IDS", "GT", "MT", "ML", "num_gt_dets", "num_pred_dets"):
        assert combined[key] == sum(m[key] for m in report["sequences"].values()), key
    # MOTA of the combination from the summed counts.
    tp = combined["num_gt_dets"] - combined["FN"]
    assert combined["MOTA"] == pytest.approx(
        (tp - combined["FP"] - combined["IDS"]) / combined["num_gt_dets"])
    # The distractor rule is exercised here: detections on class 2/7/8/12 boxes were dropped.
    assert combined["num_pred_dets"] < sum(
        len(read_mot_txt(det_results / f"{s}.txt")) for s in MINI_SEQS)


def test_folder_matches_trackeval_with_distractors(
        mini: Path, det_results: Path, report: dict, tmp_path: Path, trackeval_files) -> None:
    """TrackEval's MOT17 pipeline reads the same gt (classes, conf 0 rows) and results."""
    tracker_dir = tmp_path / "trackers" / "tr" / "data"
    tracker_dir.mkdir(parents=True)
    for seq in MINI_SEQS:
        (tracker_dir / f"{seq}.txt").write_text((det_results / f"{seq}.txt").read_text())
    seqmap = tmp_path / "seqmap.txt"
    seqmap.write_text("name\n" + "\n".join(MINI_SEQS) + "\n")
    reference = trackeval_files(mini, tmp_path / "trackers", seqmap, "MOT17", tmp_path / "out")
    ours = dict(report["sequences"], COMBINED_SEQ=report["combined"])
    for name, m in ours.items():
        hota, clear, identity = (reference[name][k] for k in ("HOTA", "CLEAR", "Identity"))
        assert m["HOTA"] == pytest.approx(float(np.mean(hota["HOTA"])), abs=1e-12), name
        assert m["MOTA"] == pytest.approx(float(clear["MOTA"]), abs=1e-12), name
        assert m["IDF1"] == pytest.approx(float(identity["IDF1"]), abs=1e-12), name
        assert (m["FP"], m["FN"], m["IDS"]) == (
            int(clear["CLR_FP"]), int(clear["CLR_FN"]), int(clear["IDSW"])), name


def test_split_restricts_frames(mini: Path, det_results: Path, report: dict) -> None:
    seq = "MOT17-02-FRCNN"  # seqLength 4: train_half = frames 1-3, val_half = frame 4
    train = evaluate_folder(mini, det_results, split="train_half", sequences=[seq])
    val = evaluate_folder(mini, det_results, split="val_half", sequences=[seq])
    full = report["sequences"][seq]
    assert list(train["sequences"]) == [seq]
    assert (train["combined"]["num_frames"], val["combined"]["num_frames"]) == (3, 1)
    assert train["combined"]["num_gt_dets"] == _pedestrian_rows(mini, seq, range(1, 4))
    assert val["combined"]["num_gt_dets"] == _pedestrian_rows(mini, seq, range(4, 5))
    # Every result id lives in one frame only, so matching never carries over between frames:
    # FP and FN split exactly between the two halves.
    for key in ("FP", "FN", "num_gt_dets", "num_pred_dets"):
        assert train["combined"][key] + val["combined"][key] == full[key], key


def test_single_sequence_folder_and_train_level(
        mini: Path, det_results: Path, report: dict, tmp_path: Path) -> None:
    seq = "MOT17-05-FRCNN"
    single = evaluate_folder(mini / seq, det_results)
    assert single["sequences"] == {seq: report["sequences"][seq]}
    # A dataset root with a train/ level (symlinks to the shared sequences, nothing copied).
    (tmp_path / "train").mkdir()
    for name in ("MOT17-02-FRCNN", seq):
        (tmp_path / "train" / name).symlink_to(mini / name, target_is_directory=True)
    nested = evaluate_folder(tmp_path, det_results)
    assert list(nested["sequences"]) == ["MOT17-02-FRCNN", seq]
    assert nested["sequences"][seq] == report["sequences"][seq]


def test_empty_results_file_is_all_misses(mini: Path, tmp_path: Path) -> None:
    seq = "MOT17-09-FRCNN"
    (tmp_path / f"{seq}.txt").write_text("")
    m = evaluate_folder(mini, tmp_path, sequences=[seq])["sequences"][seq]
    n_gt = _pedestrian_rows(mini, seq, range(1, read_seqinfo(mini / seq).seq_length + 1))
    assert n_gt > 0
    assert (m["FN"], m["FP"], m["num_gt_dets"], m["MOTA"], m["HOTA"]) == (n_gt, 0, n_gt, 0.0, 0.0)


def test_missing_results_lists_sequences(mini: Path, det_results: Path, tmp_path: Path) -> None:
    partial = write_det_results(mini, tmp_path / "partial", ("MOT17-02-FRCNN",))
    with pytest.raises(DataFormatError) as info:
        evaluate_folder(mini, partial, sequences=["MOT17-02-FRCNN", "MOT17-04-FRCNN",
                                                  "MOT17-13-FRCNN"])
    assert "MOT17-04-FRCNN, MOT17-13-FRCNN" in str(info.value)
    assert "MOT17-02-FRCNN" not in str(info.value).split("sequence(s)")[1]
    with pytest.raises(DataFormatError, match="unknown sequence.*MOT17-99"):
        evaluate_folder(mini, det_results, sequences=["MOT17-99"])
    with pytest.raises(DataFormatError, match="not a folder|not found"):
        evaluate_folder(tmp_path / "nowhere", det_results)


def test_results_beyond_seq_length_is_an_error(mini: Path, tmp_path: Path) -> None:
    seq = "MOT17-09-FRCNN"  # seqLength 4
    path = write_mot_results(tmp_path / f"{seq}.txt",
                             np.array([[1, 1, 0, 0, 10, 10, 1], [5, 1, 0, 0, 10, 10, 1]]))
    with pytest.raises(DataFormatError, match=f"{path}: frame 5 is beyond seqLength 4"):
        evaluate_folder(mini, tmp_path, sequences=[seq])


def test_format_table(report: dict) -> None:
    lines = format_table(report).splitlines()
    assert len(lines) == 1 + len(MINI_SEQS) + 1
    header = lines[0].split()
    assert header[:4] == ["Sequence", "MOTA", "IDF1", "HOTA"]
    combined = dict(zip(header, lines[-1].split()))
    assert combined["Sequence"] == "COMBINED"
    assert combined["MOTA"] == f"{100 * report['combined']['MOTA']:.1f}"
    assert combined["FN"] == str(report["combined"]["FN"])
    assert combined["Frames"] == "39"
