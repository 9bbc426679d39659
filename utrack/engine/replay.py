"""Tracker-only replay: run a tracker on given detections, without a network or images.

For ablations on real annotations (DESIGN.md section 5, issue "tracker-only replay"): detections
come from a MOTChallenge ``det.txt``; embeddings are absent (``--reid none``: IoU and motion) or
derived from ground-truth identities (an upper bound for appearance); occlusion centres come from
the ground truth (``oracle``: the centres of every gt pair with overlap > tau, an upper bound),
from a file, or nowhere. A sequence folder with ``seqinfo.ini`` is enough.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from utrack.data.mot import MOTSequence, group_rows_by_frame, load_det, xywh_to_xyxy
from utrack.data.transforms import letterbox_params
from utrack.engine.inference import SequenceRun, run_tracker
from utrack.errors import DataFormatError
from utrack.occlusion import oracle_occlusion_centers
from utrack.occlusion.step import CENTERS, STRIDE
from utrack.tracking.association import iou_matrix
from utrack.tracking.base import Detections


def read_occlusion_file(path: str | Path) -> dict[int, np.ndarray]:
    """Occlusion centres per frame from a text file of ``frame,x,y[,score]`` lines (original
    image pixels); a malformed line is an error naming ``path:line``."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: occlusion centre file not found")
    rows: dict[int, list[tuple[float, float]]] = {}
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            parts = text.split(",")
            try:
                values = [float(p) for p in parts]
            except ValueError:
                raise DataFormatError(f"{path}:{number}: not a number in {text!r}") from None
            if len(values) not in (3, 4) or values[0] < 1 or not values[0].is_integer():
                raise DataFormatError(f"{path}:{number}: expected 'frame,x,y[,score]' with an "
                                      f"integer frame >= 1, got {text!r}")
            rows.setdefault(int(values[0]), []).append((values[1], values[2]))
    return {f: np.asarray(v, dtype=np.float64) for f, v in rows.items()}


def external_occlusion_centers(seq: MOTSequence, occ_source: str, tau: float = 0.7
                               ) -> Callable[[int], np.ndarray] | None:
    """Occlusion centres that do not come from a network, as ``frame -> (K, 2)`` original
    pixels: ``"oracle"`` (the centres of the sequence's ground-truth occlusions, pairs with
    overlap / min-area > ``tau``: an upper bound for the head), a ``frame,x,y[,score]`` file,
    or None for ``"none"`` / ``"model"``."""
    if occ_source in ("none", "model"):
        return None
    if occ_source == "oracle":
        if not seq.has_gt:
            raise DataFormatError(f"{seq.gt_path}: --occ-source oracle needs ground truth")
        return lambda frame: np.asarray(
            oracle_occlusion_centers(seq.annotations(frame)[0].astype(np.float64), tau))
    file_centers = read_occlusion_file(occ_source)
    return lambda frame: file_centers.get(frame, np.zeros((0, 2)))


def identity_embeddings(det_boxes: np.ndarray, gt_boxes: np.ndarray, gt_ids: np.ndarray,
                        prototypes: dict[int, np.ndarray], rng: np.random.Generator, *,
                        dim: int = 128, noise: float = 0.1, min_iou: float = 0.5) -> np.ndarray:
    """Embeddings that know the ground truth: a detection overlapping a gt box with IoU >=
    ``min_iou`` gets that identity's fixed random unit vector plus gaussian noise, any other
    detection a random unit vector. ``prototypes`` (id -> vector) is filled as ids appear.

    Returns (N, dim) float32 L2-normalised rows.
    """
    n = len(det_boxes)
    out = rng.normal(size=(n, dim))
    if n and len(gt_boxes):
        iou = iou_matrix(det_boxes, gt_boxes)
        best = iou.argmax(axis=1)
        for i in np.nonzero(iou[np.arange(n), best] >= min_iou)[0]:
            gid = int(gt_ids[best[i]])
            if gid not in prototypes:
                v = rng.normal(size=dim)
                prototypes[gid] = v / np.linalg.norm(v)
            out[i] = prototypes[gid] + noise * rng.normal(size=dim) / np.sqrt(dim)
    out /= np.linalg.norm(out, axis=1, keepdims=True).clip(min=1e-12)
    return out.astype(np.float32)


def replay_sequence(seq_dir: str | Path, det_path: str | Path, tracker: Any, *,
                    frames: range | None = None, min_score: float = -np.inf,
                    occ_source: str = "none", emb_source: str = "none", tau: float = 0.7,
                    input_size: tuple[int, int] = (1088, 608), down_ratio: int = 4,
                    min_box_area: float = 0.0, max_aspect: float = np.inf, seed: int = 0,
                    progress: bool = True) -> SequenceRun:
    """Track one sequence from its detection file.

    Args:
        occ_source: ``"none"``, ``"oracle"`` (centres of gt occlusions, tau as in training), or a
            path to a ``frame,x,y[,score]`` file.
        emb_source: ``"none"`` (no embeddings) or ``"gt"`` (``identity_embeddings``).
        input_size: the network input the centres' gaussian scale refers to: refinding scores
            distances at output stride ``down_ratio / letterbox scale`` in original pixels, as
            it would for centres decoded from the network at that input size.
    """
    seq = MOTSequence(seq_dir)
    frames = frames or seq.frames("all")
    dets_by_frame = group_rows_by_frame(load_det(det_path))
    if emb_source == "gt" and not seq.has_gt:
        raise DataFormatError(f"{seq.gt_path}: gt embeddings need ground truth")
    centers_of = external_occlusion_centers(seq, occ_source, tau)
    if emb_source not in ("none", "gt"):
        raise ValueError(f"emb_source must be 'none' or 'gt', got {emb_source!r}")
    record, _, _ = letterbox_params(seq.info.width or 1, seq.info.height or 1, *input_size)
    stride = down_ratio / record.scale if seq.info.width and seq.info.height else float(down_ratio)
    rng = np.random.default_rng(seed)
    prototypes: dict[int, np.ndarray] = {}

    def detect(frame: int, _input: Any, _letterbox: Any) -> Detections:
        rows = dets_by_frame.get(frame, np.zeros((0, 10)))
        rows = rows[rows[:, 6] >= min_score]
        boxes = xywh_to_xyxy(rows[:, 2:6])
        embeddings = None
        if emb_source == "gt":
            gt_boxes, gt_ids = seq.annotations(frame)
            embeddings = identity_embeddings(boxes, gt_boxes, gt_ids, prototypes, rng)
        dets = Detections(boxes, rows[:, 6], embeddings)
        if centers_of is not None:
            dets.extras[CENTERS] = centers_of(frame)
        dets.extras[STRIDE] = stride
        return dets

    return run_tracker(seq.name, ((f, None, None, None) for f in frames), detect, tracker,
                       min_box_area=min_box_area, max_aspect=max_aspect, progress=progress)
