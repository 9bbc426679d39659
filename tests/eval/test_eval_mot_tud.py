"""TUD-Campus / TUD-Stadtmitte (gt + one tracker's output, from the motmetrics 1.4.0 wheel):
our numbers against motmetrics' own pinned scores and against TrackEval's file pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from utrack.data.motfile import read_mot_txt
from utrack.eval.mot import SequenceEvaluation, combine_sequences, evaluate_sequence

# Frame counts of the two sequences (every frame has ground truth).
TUD_LENGTHS = {"TUD-Campus": 71, "TUD-Stadtmitte": 179}

# motmetrics 1.4.0 tests/test_metrics.py::test_motchallenge_files, in its column order:
# idf1, idp, idr, recall, precision, num_unique_objects, mostly_tracked, partially_tracked,
# mostly_lost, num_false_positives, num_misses, num_switches, num_fragmentations, mota, motp.
# Its motp is the mean distance 1 - IoU; ours (MOTChallenge convention) is the mean IoU.
MM_COLUMNS = ("IDF1", "IDP", "IDR", "Recall", "Precision", "GT", "MT", "PT", "ML", "FP", "FN",
              "IDS", "Frag", "MOTA", "motmetrics_motp")
MM_PINNED = {
    "TUD-Campus": (0.557659, 0.729730, 0.451253, 0.582173, 0.941441, 8, 1, 6, 1, 13, 150, 7, 7,
                   0.526462, 0.277201),
    "TUD-Stadtmitte": (0.644619, 0.819760, 0.531142, 0.608997, 0.939920, 10, 5, 4, 1, 45, 452,
                       7, 6, 0.564014, 0.345904),
    "OVERALL": (0.624296, 0.799176, 0.512211, 0.602640, 0.940268, 18, 6, 10, 2, 58, 602, 14, 13,
                0.555116, 0.330177),
}


def _tud_paths(shared_data: Path, name: str) -> tuple[Path, Path]:
    folder = shared_data / "tud"
    return folder / f"{name}-gt.txt", folder / f"{name}-test.txt"


@pytest.fixture(scope="module")
def tud_evaluations(shared_data: Path) -> dict[str, SequenceEvaluation]:
    out = {}
    for name, length in TUD_LENGTHS.items():
        gt_path, res_path = _tud_paths(shared_data, name)
        out[name] = evaluate_sequence(read_mot_txt(gt_path), read_mot_txt(res_path),
                                      range(1, length + 1), name=name)
    return out


def test_tud_files_have_no_class_column(shared_data: Path) -> None:
    """Why the distractor rule leaves these files alone: every gt row has conf 1, and column 8
    is not a class: -1 for Campus, a non-integer world coordinate for Stadtmitte (MOT15 style),
    which the class auto-detection treats as 'no class' (every row a pedestrian)."""
    campus = read_mot_txt(_tud_paths(shared_data, "TUD-Campus")[0])
    stadtmitte = read_mot_txt(_tud_paths(shared_data, "TUD-Stadtmitte")[0])
    assert np.all(campus[:, 6] == 1) and np.all(stadtmitte[:, 6] == 1)
    assert np.all(campus[:, 7] == -1)
    assert np.any(stadtmitte[:, 7] != np.round(stadtmitte[:, 7]))
    for name, gt in (("TUD-Campus", campus), ("TUD-Stadtmitte", stadtmitte)):
        assert int(gt[:, 0].max()) == TUD_LENGTHS[name]


@pytest.mark.parametrize("name", ["TUD-Campus", "TUD-Stadtmitte", "OVERALL"])
def test_tud_matches_motmetrics_pinned_scores(
        tud_evaluations: dict[str, SequenceEvaluation], name: str) -> None:
    if name == "OVERALL":
        metrics = combine_sequences(tud_evaluations.values())
    else:
        metrics = tud_evaluations[name].metrics
    expected = dict(zip(MM_COLUMNS, MM_PINNED[name]))
    assert metrics["MOTP"] == pytest.approx(1.0 - expected.pop("motmetrics_motp"), abs=1e-6)
    for key, value in expected.items():
        if isinstance(value, int):
            assert metrics[key] == value and type(metrics[key]) is int, key
        else:
            assert metrics[key] == pytest.approx(value, abs=1e-6), key
    assert metrics["num_frames"] == (sum(TUD_LENGTHS.values()) if name == "OVERALL"
                                     else TUD_LENGTHS[name])


def test_tud_matches_trackeval_file_pipeline(
        shared_data: Path, tmp_path: Path, tud_evaluations: dict[str, SequenceEvaluation],
        trackeval_files) -> None:
    """The same pairs through TrackEval's MotChallenge2DBox reading its own files. BENCHMARK
    MOT15: these gt files have no class column, and MotChallenge2DBox applies the class rule only
    for MOT16/17/20 (it would reject Campus' class -1 as an invalid class otherwise)."""
    gt_root, tracker_dir = tmp_path / "gt", tmp_path / "trackers" / "tr" / "data"
    tracker_dir.mkdir(parents=True)
    for name, length in TUD_LENGTHS.items():
        gt_path, res_path = _tud_paths(shared_data, name)
        (gt_root / name / "gt").mkdir(parents=True)
        (gt_root / name / "gt" / "gt.txt").write_text(gt_path.read_text())
        (gt_root / name / "seqinfo.ini").write_text(
            f"[Sequence]\nname={name}\nseqLength={length}\n")
        (tracker_dir / f"{name}.txt").write_text(res_path.read_text())
    seqmap = tmp_path / "seqmap.txt"
    seqmap.write_text("name\n" + "\n".join(TUD_LENGTHS) + "\n")
    reference = trackeval_files(gt_root, tmp_path / "trackers", seqmap, "MOT15", tmp_path / "out")

    ours = {name: e.metrics for name, e in tud_evaluations.items()}
    ours["COMBINED_SEQ"] = combine_sequences(tud_evaluations.values())
    for name, metrics in ours.items():
        hota, clear, identity = (reference[name][k] for k in ("HOTA", "CLEAR", "Identity"))
        assert metrics["HOTA"] == pytest.approx(float(np.mean(hota["HOTA"])), abs=1e-12), name
        assert metrics["DetA"] == pytest.approx(float(np.mean(hota["DetA"])), abs=1e-12), name
        assert metrics["AssA"] == pytest.approx(float(np.mean(hota["AssA"])), abs=1e-12), name
        assert metrics["MOTA"] == pytest.approx(float(clear["MOTA"]), abs=1e-12), name
        assert metrics["MOTP"] == pytest.approx(float(clear["MOTP"]), abs=1e-12), name
        assert metrics["IDF1"] == pytest.approx(float(identity["IDF1"]), abs=1e-12), name
        assert (metrics["FP"], metrics["FN"], metrics["IDS"]) == (
            int(clear["CLR_FP"]), int(clear["CLR_FN"]), int(clear["IDSW"])), name
        # MT/PT/ML and Frag are defined slightly differently by the two libraries (see
        # test_eval_mot_rules.py); on these pairs they agree.
        assert (metrics["MT"], metrics["PT"], metrics["ML"], metrics["Frag"]) == (
            int(clear["MT"]), int(clear["PT"]), int(clear["ML"]), int(clear["Frag"])), name
    # The HOTA values themselves, so a change in either library shows up here.
    assert ours["TUD-Campus"]["HOTA"] == pytest.approx(0.391397, abs=1e-6)
    assert ours["TUD-Stadtmitte"]["HOTA"] == pytest.approx(0.397849, abs=1e-6)
    assert ours["COMBINED_SEQ"]["HOTA"] == pytest.approx(0.399957, abs=1e-6)
