"""MOTChallenge evaluation: CLEAR-MOT and Identity metrics (motmetrics) and HOTA (TrackEval).

Preprocessing follows the MOTChallenge rule as TrackEval's ``MotChallenge2D`` applies it, frame by
frame: the predictions are matched to *all* ground-truth boxes of the frame (Hungarian on IoU,
IoU >= threshold); a prediction matched to a distractor-class box is removed (neither TP nor FP);
then only ground truth with ``conf != 0`` and the pedestrian class is kept. Every frame in
``frames`` is evaluated, including frames without any output (their objects are misses).

The CLEAR and Identity metrics come from a ``motmetrics.MOTAccumulator`` fed with our own IoU
distances (motmetrics 1.4.0's IoU helper fails on NumPy 2); HOTA comes from TrackEval's ``HOTA``
metric called in memory. Ratios are fractions (MOTA may be negative), counts are ints, and
``MOTP`` is the mean IoU of the matches (the MOTChallenge/TrackEval convention; motmetrics'
own ``motp`` is the mean distance ``1 - IoU``). Ratios whose denominator is zero (no ground truth,
no predictions, no matches) follow TrackEval's ``max(1, denominator)`` convention instead of
motmetrics' NaN, so every number is finite and JSON-safe.

HOTA, IDF1 and the preprocessing equal TrackEval's exactly. The CLEAR numbers are motmetrics',
which differ from TrackEval's CLEAR in two known places (pinned in
tests/eval/test_eval_mot_rules.py): motmetrics keeps an object's last match whenever it is still
valid, even after frames where the object was missed, while TrackEval only favours the match of
the last frame that had both gt and output, so on outputs with holes IDS (rarely FP/FN) can
differ; and MT is a tracked ratio >= 0.8 in motmetrics, > 0.8 in TrackEval. For MOT20 pass
``distractor_classes=(2, 6, 7, 8, 12)`` as TrackEval does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import motmetrics as mm
import numpy as np
from scipy.optimize import linear_sum_assignment
from trackeval.metrics import HOTA

from utrack.data.mot import DISTRACTOR_CLASSES, find_sequences, read_seqinfo, split_frame_range
from utrack.data.motfile import read_mot_txt
from utrack.errors import DataFormatError

__all__ = [
    "SUMMARY_KEYS",
    "SequenceEvaluation",
    "box_iou_xywh",
    "combine_sequences",
    "evaluate_arrays",
    "evaluate_folder",
    "evaluate_sequence",
    "format_table",
]

# The headline metrics, in the order the table and the JSON summary use.
SUMMARY_KEYS = ("MOTA", "IDF1", "HOTA", "MT", "ML", "FP", "FN", "IDS", "Frag")

# Fractions (printed as percentages) and counts (ints) of a metrics dict, in table order.
RATIO_KEYS = ("MOTA", "IDF1", "HOTA", "DetA", "AssA", "LocA", "MOTP", "IDP", "IDR", "Recall",
              "Precision")
COUNT_KEYS = ("GT", "MT", "PT", "ML", "FP", "FN", "IDS", "Frag", "IDTP", "IDFP", "IDFN",
              "num_gt_dets", "num_pred_dets", "num_frames")

_MM_METRICS = [
    "num_frames", "num_objects", "num_predictions", "num_detections", "num_matches",
    "num_switches", "num_false_positives", "num_misses", "num_fragmentations",
    "num_unique_objects", "mostly_tracked", "partially_tracked", "mostly_lost",
    "idtp", "idfp", "idfn", "mota", "motp", "idf1", "idp", "idr", "recall", "precision",
]
_EPS = np.finfo(float).eps
_METRICS_HOST = mm.metrics.create()


def box_iou_xywh(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU matrix (N, M) of boxes given as (x, y, w, h); a box with no area has IoU 0 with all.

    Same arithmetic and degenerate-box conventions as TrackEval, so thresholds agree bit for bit.
    """
    a = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    a = np.concatenate([a[:, :2], a[:, :2] + a[:, 2:]], axis=1)
    b = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.maximum(hi[..., 0] - lo[..., 0], 0) * np.maximum(hi[..., 1] - lo[..., 1], 0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    inter[area_a <= _EPS, :] = 0
    inter[:, area_b <= _EPS] = 0
    inter[union <= _EPS] = 0
    union[union <= _EPS] = 1
    return inter / union


@dataclass
class SequenceEvaluation:
    """What one evaluated sequence contributes to a combined score (no re-computation needed).

    ``accumulator`` holds the motmetrics events; ``clear_identity`` the per-sequence motmetrics
    values (counts and ratios) that ``MetricsHost.compute_overall`` sums; ``hota`` TrackEval's
    ``HOTA.eval_sequence`` result (arrays over the 19 alpha thresholds).
    """

    name: str
    accumulator: mm.MOTAccumulator
    clear_identity: dict[str, float]
    hota: dict[str, Any]
    num_frames: int

    @property
    def metrics(self) -> dict[str, float | int]:
        """The sequence's metrics dict (see ``evaluate_arrays``)."""
        return _summarize(self.clear_identity, self.hota, self.num_frames)


def _check_array(array: np.ndarray, source: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 10), dtype=np.float64)
    if array.ndim != 2 or array.shape[1] < 6:
        raise DataFormatError(
            f"{source}: expected an array (rows, >= 6 columns: frame, id, x, y, w, h, ...), "
            f"got shape {array.shape}")
    if array.shape[1] < 10:
        array = np.concatenate([array, -np.ones((len(array), 10 - array.shape[1]))], axis=1)
    return array


def _gt_classes(gt: np.ndarray, has_class: bool | None, pedestrian_class: int) -> np.ndarray:
    """Class of every gt row. ``has_class=None`` decides from the column itself: it is a class
    column unless it is all -1 or holds non-integers (MOT15 files put world coordinates there,
    e.g. TUD-Stadtmitte). Rows whose class is -1 count as pedestrians."""
    column = gt[:, 7]
    if has_class is None:
        has_class = bool(len(column)) and bool(np.all(column == np.round(column))) \
            and not bool(np.all(column == -1))
    if not has_class:
        return np.full(len(gt), pedestrian_class, dtype=np.int64)
    return np.where(column == -1, pedestrian_class, column).astype(np.int64)


def _rows_by_frame(array: np.ndarray, frames: np.ndarray) -> dict[int, np.ndarray]:
    """Row indices of each frame in ``frames`` (frames absent from ``array`` are left out)."""
    frame_col = array[:, 0].astype(np.int64)
    inside = np.flatnonzero(np.isin(frame_col, frames))
    order = inside[np.argsort(frame_col[inside], kind="stable")]
    keys, starts = np.unique(frame_col[order], return_index=True)
    return {int(k): idx for k, idx in zip(keys, np.split(order, starts[1:]))}


def _check_unique_ids(ids: np.ndarray, frame: int, source: str) -> None:
    values, counts = np.unique(ids, return_counts=True)
    if len(values) and counts.max() > 1:
        dup = ", ".join(str(int(v)) for v in values[counts > 1])
        raise DataFormatError(f"{source}: frame {frame} has id(s) {dup} on more than one row")


def evaluate_sequence(
    gt: np.ndarray,
    results: np.ndarray,
    frames: Iterable[int],
    *,
    iou_threshold: float = 0.5,
    distractor_classes: Sequence[int] = DISTRACTOR_CLASSES,
    pedestrian_class: int = 1,
    gt_has_class: bool | None = None,
    name: str = "sequence",
    gt_source: str = "gt",
    results_source: str = "results",
) -> SequenceEvaluation:
    """Evaluate one sequence and keep what ``combine_sequences`` needs.

    Arguments as in ``evaluate_arrays``; ``gt_source``/``results_source`` name the inputs in
    error messages (file paths when reading from disk); ``gt_has_class`` forces (True) or
    disables (False) the use of the gt class column, None detects it (see ``_gt_classes``).
    """
    gt = _check_array(gt, gt_source)
    results = _check_array(results, results_source)
    frame_list = np.unique(np.fromiter((int(f) for f in frames), dtype=np.int64))
    classes = _gt_classes(gt, gt_has_class, pedestrian_class)
    distractors = np.asarray(list(distractor_classes), dtype=np.int64)
    threshold = iou_threshold - _EPS
    gt_rows = _rows_by_frame(gt, frame_list)
    res_rows = _rows_by_frame(results, frame_list)
    empty = np.zeros(0, dtype=np.int64)

    acc = mm.MOTAccumulator(auto_id=False)
    gt_ids_t: list[np.ndarray] = []
    res_ids_t: list[np.ndarray] = []
    sims_t: list[np.ndarray] = []
    for frame in frame_list.tolist():
        g = gt_rows.get(frame, empty)
        r = res_rows.get(frame, empty)
        gt_ids = gt[g, 1].astype(np.int64)
        res_ids = results[r, 1].astype(np.int64)
        _check_unique_ids(gt_ids, frame, gt_source)
        _check_unique_ids(res_ids, frame, results_source)
        sim = box_iou_xywh(gt[g, 2:6], results[r, 2:6])

        keep_res = np.ones(len(r), dtype=bool)
        if len(g) and len(r):
            scores = np.where(sim < threshold, 0.0, sim)
            rows, cols = linear_sum_assignment(-scores)
            matched = scores[rows, cols] > _EPS
            rows, cols = rows[matched], cols[matched]
            keep_res[cols[np.isin(classes[g][rows], distractors)]] = False
        keep_gt = (gt[g, 6] != 0) & (classes[g] == pedestrian_class)

        gt_ids, res_ids = gt_ids[keep_gt], res_ids[keep_res]
        sim = sim[keep_gt][:, keep_res]
        dist = np.where(sim < threshold, np.nan, 1.0 - sim)
        acc.update(gt_ids, res_ids, dist, frameid=frame)
        gt_ids_t.append(gt_ids)
        res_ids_t.append(res_ids)
        sims_t.append(sim)

    hota = HOTA().eval_sequence(_trackeval_data(gt_ids_t, res_ids_t, sims_t, name))
    partial = _METRICS_HOST.compute(acc, metrics=_MM_METRICS, return_dataframe=False,
                                    return_cached=True)
    clear_identity = {k: float(v) for k, v in partial.items() if np.isscalar(v)}
    if clear_identity["num_detections"] == 0:
        # motmetrics' overall MOTP is sum(motp * num_detections): a NaN here would poison it.
        clear_identity["motp"] = 0.0
    return SequenceEvaluation(name=name, accumulator=acc, clear_identity=clear_identity,
                              hota=hota, num_frames=len(frame_list))


def _trackeval_data(gt_ids_t: list[np.ndarray], res_ids_t: list[np.ndarray],
                    sims_t: list[np.ndarray], name: str) -> dict[str, Any]:
    """The dict TrackEval metrics expect after preprocessing: ids relabelled 0..n-1."""
    gt_unique = np.unique(np.concatenate(gt_ids_t)) if gt_ids_t else np.zeros(0, np.int64)
    res_unique = np.unique(np.concatenate(res_ids_t)) if res_ids_t else np.zeros(0, np.int64)
    return {
        "seq": name,
        "num_timesteps": len(gt_ids_t),
        "num_gt_ids": len(gt_unique),
        "num_tracker_ids": len(res_unique),
        "num_gt_dets": int(sum(len(x) for x in gt_ids_t)),
        "num_tracker_dets": int(sum(len(x) for x in res_ids_t)),
        "gt_ids": [np.searchsorted(gt_unique, x) for x in gt_ids_t],
        "tracker_ids": [np.searchsorted(res_unique, x) for x in res_ids_t],
        "similarity_scores": sims_t,
    }


def evaluate_arrays(
    gt: np.ndarray,
    results: np.ndarray,
    frames: Iterable[int],
    *,
    iou_threshold: float = 0.5,
    distractor_classes: Sequence[int] = DISTRACTOR_CLASSES,
    pedestrian_class: int = 1,
    gt_has_class: bool | None = None,
) -> dict[str, float | int]:
    """CLEAR, Identity and HOTA metrics of one sequence.

    ``gt``: rows ``frame, id, x, y, w, h, conf, class, visibility, ...`` (as ``read_mot_txt``
    returns them); ``results``: rows ``frame, id, x, y, w, h, score, ...``. ``frames``: every frame
    to evaluate; rows outside it are ignored, frames inside it without output count their misses.
    Ids must be unique within a frame (``DataFormatError`` otherwise).

    Returns MOTA, IDF1, HOTA, DetA, AssA, LocA, MOTP (mean IoU of matches), IDP, IDR, Recall,
    Precision (fractions) and GT (gt tracks), MT, PT, ML, FP, FN, IDS, Frag, IDTP, IDFP, IDFN,
    num_gt_dets, num_pred_dets, num_frames (ints).
    """
    return evaluate_sequence(
        gt, results, frames, iou_threshold=iou_threshold, distractor_classes=distractor_classes,
        pedestrian_class=pedestrian_class, gt_has_class=gt_has_class).metrics


def _ratio(value: float, numerator: float, denominator: float) -> float:
    """motmetrics' value, or TrackEval's ``numerator / max(1, denominator)`` when it is NaN/inf."""
    if math.isfinite(value):
        return float(value)
    return float(numerator / max(1.0, denominator))


def _summarize(mmv: Mapping[str, float], hota: Mapping[str, Any],
               num_frames: int) -> dict[str, float | int]:
    """motmetrics values + TrackEval HOTA result -> our metrics dict."""
    objects, predictions = mmv["num_objects"], mmv["num_predictions"]
    tp, fp, ids = mmv["num_detections"], mmv["num_false_positives"], mmv["num_switches"]
    idtp = mmv["idtp"]
    out: dict[str, float | int] = {
        "MOTA": _ratio(mmv["mota"], tp - fp - ids, objects),
        "IDF1": _ratio(mmv["idf1"], 2 * idtp, objects + predictions),
        # TrackEval reports the mean over its 19 alpha thresholds.
        "HOTA": float(np.mean(hota["HOTA"])),
        "DetA": float(np.mean(hota["DetA"])),
        "AssA": float(np.mean(hota["AssA"])),
        "LocA": float(np.mean(hota["LocA"])),
        "MOTP": 1.0 - mmv["motp"] if tp > 0 else 0.0,
        "IDP": _ratio(mmv["idp"], idtp, idtp + mmv["idfp"]),
        "IDR": _ratio(mmv["idr"], idtp, idtp + mmv["idfn"]),
        "Recall": _ratio(mmv["recall"], tp, objects),
        "Precision": _ratio(mmv["precision"], tp, tp + fp),
        "GT": mmv["num_unique_objects"],
        "MT": mmv["mostly_tracked"],
        "PT": mmv["partially_tracked"],
        "ML": mmv["mostly_lost"],
        "FP": fp,
        "FN": mmv["num_misses"],
        "IDS": ids,
        "Frag": mmv["num_fragmentations"],
        "IDTP": idtp,
        "IDFP": mmv["idfp"],
        "IDFN": mmv["idfn"],
        "num_gt_dets": objects,
        "num_pred_dets": predictions,
        "num_frames": num_frames,
    }
    for key in COUNT_KEYS:
        out[key] = int(round(float(out[key])))
    return out


def combine_sequences(evaluations: Iterable[SequenceEvaluation]) -> dict[str, float | int]:
    """Overall metrics of several sequences: CLEAR/Identity as motmetrics' ``generate_overall``
    (sums of the per-sequence counts), HOTA as TrackEval's ``HOTA.combine_sequences``."""
    evaluations = list(evaluations)
    if not evaluations:
        raise ValueError("combine_sequences needs at least one evaluated sequence")
    overall = _METRICS_HOST.compute_overall([e.clear_identity for e in evaluations],
                                            metrics=_MM_METRICS, return_dataframe=False)
    overall = {k: float(v) for k, v in overall.items()}
    hota = HOTA().combine_sequences({str(i): e.hota for i, e in enumerate(evaluations)})
    return _summarize(overall, hota, sum(e.num_frames for e in evaluations))


def evaluate_folder(
    gt_root: str | Path | Sequence[str | Path],
    results_dir: str | Path,
    *,
    split: str = "all",
    sequences: Iterable[str] | None = None,
    iou_threshold: float = 0.5,
    distractor_classes: Sequence[int] = DISTRACTOR_CLASSES,
    pedestrian_class: int = 1,
) -> dict[str, Any]:
    """Evaluate ``<results_dir>/<name>.txt`` against ``<seq>/gt/gt.txt`` for every sequence.

    ``gt_root``: one sequence folder or a dataset root (see ``utrack.data.mot.find_sequences``),
    or a list of them.
    A sequence's name is the ``name`` in its seqinfo.ini (the folder name when absent), as
    ``tools/track.py`` names its results files. ``split``: which frames of each sequence
    (``split_frame_range`` of its seqLength); ``sequences``: a subset, by name or folder name.
    A sequence without a results file, a results frame beyond seqLength, or an unknown sequence
    is a ``DataFormatError``; an empty results file means all misses.
    Returns ``{"sequences": {name: metrics}, "combined": metrics}``.
    """
    split_frame_range(1, split)  # reject a bad split before reading anything
    roots = [gt_root] if isinstance(gt_root, (str, Path)) else list(gt_root)
    infos = [read_seqinfo(d) for root in roots for d in find_sequences(root)]
    if sequences is not None:
        lookup = {i.path.name: i for i in infos} | {i.name: i for i in infos}
        wanted = list(dict.fromkeys(sequences))
        unknown = [s for s in wanted if s not in lookup]
        if unknown:
            raise DataFormatError(
                f"{gt_root}: unknown sequence(s) {', '.join(unknown)}; "
                f"available: {', '.join(i.name for i in infos)}")
        infos = list({id(lookup[s]): lookup[s] for s in wanted}.values())
    names = [i.name for i in infos]
    if len(set(names)) != len(names):
        raise DataFormatError(f"{gt_root}: several sequences share a seqinfo.ini name: {names}")
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise DataFormatError(f"{results_dir}: results folder not found")
    missing = [i.name for i in infos if not (results_dir / f"{i.name}.txt").is_file()]
    if missing:
        raise DataFormatError(
            f"{results_dir}: no results file for sequence(s) {', '.join(missing)} "
            f"(expected <sequence>.txt)")

    evaluations = []
    for info in infos:
        gt_path = info.path / "gt" / "gt.txt"
        res_path = results_dir / f"{info.name}.txt"
        gt = read_mot_txt(gt_path)
        results = read_mot_txt(res_path)
        if len(results) and results[:, 0].max() > info.seq_length:
            raise DataFormatError(
                f"{res_path}: frame {int(results[:, 0].max())} is beyond seqLength "
                f"{info.seq_length} of {info.path / 'seqinfo.ini'}")
        evaluations.append(evaluate_sequence(
            gt, results, split_frame_range(info.seq_length, split),
            iou_threshold=iou_threshold, distractor_classes=distractor_classes,
            pedestrian_class=pedestrian_class, name=info.name,
            gt_source=str(gt_path), results_source=str(res_path)))
    return {"sequences": {e.name: e.metrics for e in evaluations},
            "combined": combine_sequences(evaluations)}


_TABLE_COLUMNS = (
    ("MOTA", "MOTA"), ("IDF1", "IDF1"), ("HOTA", "HOTA"), ("DetA", "DetA"), ("AssA", "AssA"),
    ("MOTP", "MOTP"), ("IDP", "IDP"), ("IDR", "IDR"), ("Recall", "Rcll"), ("Precision", "Prcn"),
    ("GT", "GT"), ("MT", "MT"), ("PT", "PT"), ("ML", "ML"), ("FP", "FP"), ("FN", "FN"),
    ("IDS", "IDs"), ("Frag", "FM"), ("num_frames", "Frames"),
)


def format_table(report: Mapping[str, Any]) -> str:
    """A fixed-width table of ``evaluate_folder``'s output: one row per sequence, then the
    combined row; ratios printed as percentages with one decimal."""
    rows: list[tuple[str, Mapping[str, Any]]] = list(report.get("sequences", {}).items())
    if report.get("combined") is not None:
        rows.append(("COMBINED", report["combined"]))

    def cell(key: str, metrics: Mapping[str, Any]) -> str:
        if key not in metrics:
            return "-"
        value = metrics[key]
        return f"{100.0 * value:.1f}" if key in RATIO_KEYS else str(int(value))

    header = ["Sequence"] + [label for _, label in _TABLE_COLUMNS]
    body = [[name] + [cell(key, m) for key, _ in _TABLE_COLUMNS] for name, m in rows]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    lines = ["  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])])
             for r in [header] + body]
    return "\n".join(lines)
