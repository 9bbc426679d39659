"""Hand-made sequences with the expected numbers worked out in the comments.

Boxes are (x, y, w, h); A = (0, 0, 10, 10) has area 100.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import trackeval

from utrack.errors import DataFormatError
from utrack.eval.mot import box_iou_xywh, combine_sequences, evaluate_arrays, evaluate_sequence

A = (0.0, 0.0, 10.0, 10.0)
FAR = (500.0, 500.0, 10.0, 10.0)


def gt_row(frame: int, tid: int, box: tuple[float, ...], conf: float = 1, cls: float = 1,
           vis: float = 1.0) -> list[float]:
    return [frame, tid, *box, conf, cls, vis, -1]


def res_row(frame: int, tid: int, box: tuple[float, ...]) -> list[float]:
    return [frame, tid, *box, 0.9, -1, -1, -1]


def arr(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64).reshape(-1, 10)


def test_box_iou_by_hand() -> None:
    # (0,0,10,10) vs (5,0,10,10): intersection 5*10 = 50, union 150 -> 1/3; disjoint -> 0;
    # a zero-width box has IoU 0 even with itself.
    iou = box_iou_xywh(np.array([A, (0, 0, 0, 10)]), np.array([(5, 0, 10, 10), FAR, (0, 0, 0, 10)]))
    np.testing.assert_allclose(iou, [[1 / 3, 0, 0], [0, 0, 0]])


def test_prediction_on_distractor_is_removed_not_fp() -> None:
    # Frame 1: pedestrian 1 at A, static person (class 7) at B; a prediction on each.
    # The one on B matches a distractor -> removed: TP 1, FP 0, FN 0, MOTA 1.
    b = (100.0, 0.0, 10.0, 10.0)
    gt = arr([gt_row(1, 1, A), gt_row(1, 2, b, conf=0, cls=7)])
    res = arr([res_row(1, 10, A), res_row(1, 11, b)])
    m = evaluate_arrays(gt, res, [1])
    assert (m["FP"], m["FN"], m["num_pred_dets"], m["GT"]) == (0, 0, 1, 1)
    assert m["MOTA"] == 1.0 and m["Precision"] == 1.0
    # Same frame with class 3 (car: not a distractor, not a pedestrian): the prediction on B
    # stays and the car gt is dropped -> FP 1, MOTA = 1 - 1/1 = 0.
    gt_car = arr([gt_row(1, 1, A), gt_row(1, 2, b, conf=0, cls=3)])
    m = evaluate_arrays(gt_car, res, [1])
    assert (m["FP"], m["FN"], m["num_pred_dets"]) == (1, 0, 2)
    assert m["MOTA"] == 0.0 and m["Precision"] == 0.5


def test_distractor_matching_uses_all_gt_boxes() -> None:
    # Pedestrian at A, distractor (class 8) at B = (2,0,10,10); one prediction exactly on B.
    # IoU(pred, B) = 1, IoU(pred, A) = 80/120 = 0.667 >= 0.5, but the Hungarian over *all* gt
    # boxes pairs it with B, so it is removed: FP 0, and A is missed: FN 1, MOTA 0.
    b = (2.0, 0.0, 10.0, 10.0)
    gt = arr([gt_row(1, 1, A), gt_row(1, 2, b, conf=1, cls=8)])
    m = evaluate_arrays(gt, arr([res_row(1, 10, b)]), [1])
    assert (m["FP"], m["FN"], m["num_pred_dets"]) == (0, 1, 0)
    assert m["MOTA"] == 0.0


def test_prediction_on_conf0_pedestrian_is_fp() -> None:
    # MOTChallenge rule: only distractor *classes* remove predictions; a conf-0 box of class 1 is
    # not a distractor, so the prediction on it stays, and then the conf-0 gt is dropped:
    # pedestrian 1 at A (conf 1) + pedestrian 2 at B (conf 0), predictions on both
    # -> TP 1, FP 1, FN 0, MOTA = 1 - 1/1 = 0, Precision 1/2, GT 1.
    b = (100.0, 0.0, 10.0, 10.0)
    gt = arr([gt_row(1, 1, A), gt_row(1, 2, b, conf=0, cls=1)])
    m = evaluate_arrays(gt, arr([res_row(1, 10, A), res_row(1, 11, b)]), [1])
    assert (m["FP"], m["FN"], m["GT"], m["num_gt_dets"]) == (1, 0, 1, 1)
    assert m["MOTA"] == 0.0 and m["Precision"] == 0.5
    # Only the conf-0 pedestrian and its prediction: no gt left, FP 1. MOTA follows TrackEval's
    # (TP - FP - IDS) / max(1, #gt) = -1 (motmetrics would give -inf).
    m = evaluate_arrays(arr([gt_row(1, 2, b, conf=0, cls=1)]), arr([res_row(1, 11, b)]), [1])
    assert (m["FP"], m["FN"], m["GT"]) == (1, 0, 0)
    assert m["MOTA"] == -1.0
    # A conf-0 *distractor* (class 7): the prediction is removed instead -> FP 0.
    m = evaluate_arrays(arr([gt_row(1, 2, b, conf=0, cls=7)]), arr([res_row(1, 11, b)]), [1])
    assert (m["FP"], m["FN"], m["num_pred_dets"]) == (0, 0, 0)


def test_unmatched_prediction_and_iou_threshold() -> None:
    # gt A; prediction (0,0,10,20): IoU = 100/200 = 0.5 exactly -> a match (IoU >= 0.5).
    m = evaluate_arrays(arr([gt_row(1, 1, A)]), arr([res_row(1, 5, (0, 0, 10, 20))]), [1])
    assert (m["FP"], m["FN"]) == (0, 0)
    assert m["MOTP"] == pytest.approx(0.5)
    # (0,0,10,21): IoU = 100/210 = 0.476 < 0.5 -> FP 1 and FN 1, MOTA = 1 - 2/1 = -1.
    m = evaluate_arrays(arr([gt_row(1, 1, A)]), arr([res_row(1, 5, (0, 0, 10, 21))]), [1])
    assert (m["FP"], m["FN"], m["MOTA"]) == (1, 1, -1.0)
    # A far-away extra prediction next to a correct one: FP 1, MOTA = 1 - 1/1 = 0.
    m = evaluate_arrays(arr([gt_row(1, 1, A)]), arr([res_row(1, 5, A), res_row(1, 6, FAR)]), [1])
    assert (m["FP"], m["FN"], m["MOTA"]) == (1, 0, 0.0)


def test_frames_without_output_count_their_misses() -> None:
    # One pedestrian on A in frames 1-4; the tracker reports it in frames 1-2 only, plus a row in
    # frame 9, which is outside ``frames`` and must be ignored.
    gt = arr([gt_row(f, 1, A) for f in range(1, 5)])
    res = arr([res_row(1, 7, A), res_row(2, 7, A), res_row(9, 7, FAR)])
    m = evaluate_arrays(gt, res, range(1, 5))
    # Every frame: TP 2, FN 2, FP 0 -> MOTA = 1 - 2/4 = 0.5, Recall 0.5, Frag 0 (no miss between
    # tracked frames). HOTA: DetA = 2/(2+2+0) = 0.5 at every alpha (IoU 1); the one pair has
    # 2 matches, gt 4 dets, tracker 2 dets -> Ass-IoU 2/(4+2-2) = 0.5, AssA 0.5 -> HOTA 0.5.
    assert (m["FN"], m["FP"], m["num_frames"]) == (2, 0, 4)
    assert m["MOTA"] == 0.5 and m["Recall"] == 0.5
    assert m["DetA"] == pytest.approx(0.5) and m["AssA"] == pytest.approx(0.5)
    assert m["HOTA"] == pytest.approx(0.5)
    # An evaluator iterating only the frames that have output (FairMOT's) would see gt in
    # frames 1-2 only and report FN 0 / MOTA 1: ours equals the full count of gt rows.
    result_frames = sorted({int(f) for f in res[:, 0]} & set(range(1, 5)))
    skipping = evaluate_arrays(gt, res, result_frames)
    assert skipping["FN"] == 0 and skipping["MOTA"] == 1.0
    assert m["num_gt_dets"] == len(gt) == 4


def test_identity_switch_counted_once() -> None:
    # Pedestrian on A in frames 1-4; hypothesis 7 in frames 1-2, then hypothesis 8 in frames 3-4.
    gt = arr([gt_row(f, 1, A) for f in range(1, 5)])
    res = arr([res_row(f, 7 if f <= 2 else 8, A) for f in range(1, 5)])
    m = evaluate_arrays(gt, res, range(1, 5))
    # One switch (frame 3; frame 4 continues with 8): MOTA = 1 - 1/4 = 0.75.
    # IDF1: the best single hypothesis covers 2 of 4 -> IDTP 2, IDF1 = 2*2/(4+4) = 0.5.
    # HOTA: DetA 1; each pair has 2 matches, Ass-IoU 2/(4+2-2) = 0.5 -> AssA 0.5,
    # HOTA = sqrt(0.5).
    assert (m["IDS"], m["FP"], m["FN"], m["Frag"]) == (1, 0, 0, 0)
    assert m["MOTA"] == 0.75
    assert (m["IDTP"], m["IDF1"]) == (2, 0.5)
    assert m["DetA"] == pytest.approx(1.0) and m["HOTA"] == pytest.approx(math.sqrt(0.5))


def test_empty_gt_and_results() -> None:
    empty = np.zeros((0, 10))
    m = evaluate_arrays(empty, empty, range(1, 4))
    assert m["num_frames"] == 3
    assert all(m[k] == 0 for k in ("FP", "FN", "IDS", "GT", "MT", "ML", "Frag"))
    assert all(math.isfinite(m[k]) for k in ("MOTA", "IDF1", "HOTA", "MOTP"))
    assert combine_sequences([evaluate_sequence(empty, empty, [])])["num_frames"] == 0


def test_gt_class_column_detection() -> None:
    # Column 8 holding a non-integer (MOT15 world coordinate) is not a class: the row is a
    # pedestrian and the prediction on it a TP. The integer 7 is a class: the prediction is
    # removed and there is no gt left. Forcing gt_has_class=False treats 7 as a pedestrian too.
    res = arr([res_row(1, 3, A)])
    m = evaluate_arrays(arr([gt_row(1, 1, A, cls=7.25)]), res, [1])
    assert (m["GT"], m["FN"], m["FP"], m["MOTA"]) == (1, 0, 0, 1.0)
    m = evaluate_arrays(arr([gt_row(1, 1, A, cls=7)]), res, [1])
    assert (m["GT"], m["FP"], m["num_pred_dets"]) == (0, 0, 0)
    m = evaluate_arrays(arr([gt_row(1, 1, A, cls=7)]), res, [1], gt_has_class=False)
    assert (m["GT"], m["FP"], m["MOTA"]) == (1, 0, 1.0)
    # Class -1 rows in a file that has classes count as pedestrians.
    gt = arr([gt_row(1, 1, A, cls=-1), gt_row(1, 2, FAR, cls=1)])
    m = evaluate_arrays(gt, res, [1])
    assert (m["GT"], m["FN"], m["FP"]) == (2, 1, 0)


def test_duplicate_id_in_a_frame_is_an_error() -> None:
    res = arr([res_row(3, 5, A), res_row(3, 5, FAR)])
    with pytest.raises(DataFormatError, match="results: frame 3 has id"):
        evaluate_arrays(arr([gt_row(3, 1, A)]), res, [3])
    with pytest.raises(DataFormatError, match="results"):
        evaluate_arrays(arr([gt_row(3, 1, A)]), np.zeros((2, 4)), [3])


def _trackeval_clear(gt_ids: list[list[int]], tr_ids: list[list[int]],
                     sims: list[list[list[float]]]) -> dict:
    """TrackEval's CLEAR on a hand-written, already preprocessed sequence."""
    data = {
        "num_timesteps": len(gt_ids),
        "num_gt_ids": len({i for t in gt_ids for i in t}),
        "num_tracker_ids": len({i for t in tr_ids for i in t}),
        "num_gt_dets": sum(map(len, gt_ids)), "num_tracker_dets": sum(map(len, tr_ids)),
        "gt_ids": [np.array(t, dtype=int) for t in gt_ids],
        "tracker_ids": [np.array(t, dtype=int) for t in tr_ids],
        "similarity_scores": [np.array(s, dtype=float).reshape(len(g), len(t))
                              for s, g, t in zip(sims, gt_ids, tr_ids)],
    }
    return trackeval.metrics.CLEAR({"PRINT_CONFIG": False}).eval_sequence(data)


def test_where_motmetrics_and_trackeval_clear_differ() -> None:
    """Pinned differences between motmetrics (our CLEAR numbers) and TrackEval's CLEAR.

    1. Continuing a match after a gap. motmetrics first re-establishes the last match of every
       object whenever it is still valid, however many frames ago it was made; TrackEval only
       favours the match of the last frame that had both gt and output. Pedestrian on A in
       frames 1-3; hypothesis 1 on A in frame 1; in frame 2 only hypothesis 3, far away; in
       frame 3 hypothesis 1 at (0,0,10,13) (IoU 100/130 = 0.77) and hypothesis 2 exactly on A.
       motmetrics: frame 3 keeps 1 -> IDS 0, FP 2, FN 1, MOTA = 1 - 3/3 = 0.
       TrackEval: frame 2 cleared the pedestrian's previous match, so the Hungarian takes the
       better IoU (hypothesis 2) -> IDS 1, FP 2, FN 1, MOTA = 1 - 4/3.
       (Had frame 2 no output at all, TrackEval would skip it and keep hypothesis 1 too.)
       So on outputs with holes IDS, and rarely FP/FN, can differ between the two libraries;
       on the TUD pairs and MOT17-mini they agree.
    2. Mostly tracked: motmetrics counts a track tracked in exactly 80% of its frames as MT
       (ratio >= 0.8); TrackEval needs > 0.8 (it is PT there).
    """
    gt = arr([gt_row(f, 1, A) for f in (1, 2, 3)])
    res = arr([res_row(1, 1, A), res_row(2, 3, FAR), res_row(3, 1, (0, 0, 10, 13)),
               res_row(3, 2, A)])
    m = evaluate_arrays(gt, res, [1, 2, 3])
    assert (m["IDS"], m["FP"], m["FN"]) == (0, 2, 1)
    assert m["MOTA"] == pytest.approx(0.0)
    te = _trackeval_clear([[0], [0], [0]], [[0], [2], [0, 1]],
                          [[[1.0]], [[0.0]], [[1 / 1.3, 1.0]]])
    assert (te["IDSW"], te["CLR_FP"], te["CLR_FN"]) == (1, 2, 1)
    assert te["MOTA"] == pytest.approx(-1 / 3)

    gt = arr([gt_row(f, 1, A) for f in range(1, 6)])
    res = arr([res_row(f, 1, A) for f in range(1, 5)])
    m = evaluate_arrays(gt, res, range(1, 6))
    assert (m["MT"], m["PT"], m["ML"]) == (1, 0, 0)
    te = _trackeval_clear([[0]] * 5, [[0]] * 4 + [[]], [[[1.0]]] * 4 + [[]])
    assert (te["MT"], te["PT"], te["ML"]) == (0, 1, 0)
