"""JDETracker on real MOT17-02 public FRCNN detections, with embeddings derived from the ground
truth identities, scored with motmetrics (IoU distances computed here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from baselines.fairmot.tracker import JDETracker
from utrack.config import TrackerConfig
from utrack.data.mot import read_seqinfo
from utrack.data.motfile import read_mot_txt
from utrack.tracking.base import Detections, filter_results

mm = pytest.importorskip("motmetrics")

DIM = 64


def tlwh_to_tlbr(tlwh: np.ndarray) -> np.ndarray:
    return np.c_[tlwh[:, :2], tlwh[:, :2] + tlwh[:, 2:4]]


def plain_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) x1y1x2y2 IoU written out here (independent of utrack's iou_matrix)."""
    x1 = np.maximum.outer(a[:, 0], b[:, 0])
    y1 = np.maximum.outer(a[:, 1], b[:, 1])
    x2 = np.minimum.outer(a[:, 2], b[:, 2])
    y2 = np.minimum.outer(a[:, 3], b[:, 3])
    inter = (x2 - x1).clip(min=0) * (y2 - y1).clip(min=0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


@pytest.fixture(scope="module")
def sequence(shared_data: Path):
    """Per frame: (Detections with identity embeddings, gt ids (G,), gt boxes (G, 4))."""
    seq_dir = shared_data / "mot-annotations" / "MOT17-02-FRCNN"
    info = read_seqinfo(seq_dir)
    det = read_mot_txt(seq_dir / "det" / "det.txt")  # 7 columns, rows not sorted by frame
    gt = read_mot_txt(seq_dir / "gt" / "gt.txt")
    gt = gt[(gt[:, 6] == 1) & (gt[:, 7] == 1)]  # pedestrians only
    rng = np.random.default_rng(0)
    protos = {}
    frames = []
    for f in range(1, info.seq_length + 1):
        d, g = det[det[:, 0] == f], gt[gt[:, 0] == f]
        boxes, gt_boxes = tlwh_to_tlbr(d[:, 2:6]), tlwh_to_tlbr(g[:, 2:6])
        iou = plain_iou(boxes, gt_boxes)
        emb = rng.normal(size=(len(d), DIM))  # unmatched detections: a random direction
        for k in range(len(d)):
            if len(g) and iou[k].max() >= 0.5:
                identity = int(g[iou[k].argmax(), 1])
                if identity not in protos:
                    v = rng.normal(size=DIM)
                    protos[identity] = v / np.linalg.norm(v)
                emb[k] = protos[identity] + rng.normal(scale=0.02, size=DIM)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        frames.append((Detections(boxes, d[:, 6], emb), g[:, 1].astype(int), gt_boxes))
    return frames, info.frame_rate


def evaluate(frames, frame_rate: float, use_embeddings: bool) -> dict[str, float]:
    cfg = TrackerConfig()
    tracker = JDETracker(cfg, frame_rate=frame_rate, use_embeddings=use_embeddings)
    acc = mm.MOTAccumulator(auto_id=True)
    for dets, gt_ids, gt_boxes in frames:  # every frame, also those without output
        results = filter_results(tracker.update(dets), cfg.min_box_area, cfg.max_aspect)
        hyp_boxes = np.array([r.box for r in results]).reshape(-1, 4)
        iou = plain_iou(gt_boxes, hyp_boxes)
        dist = np.where(iou >= 0.5, 1.0 - iou, np.nan)
        acc.update(gt_ids.tolist(), [r.track_id for r in results], dist)
    summary = mm.metrics.create().compute(acc, metrics=["idf1", "mota", "num_switches"])
    return summary.iloc[0].to_dict()


def test_mot17_02_identity_embeddings_beat_iou_only(sequence):
    frames, frame_rate = sequence
    with_emb = evaluate(frames, frame_rate, use_embeddings=True)
    iou_only = evaluate(frames, frame_rate, use_embeddings=False)
    # measured: IDF1 0.384, MOTA 0.264, 47 switches with embeddings; IDF1 0.380, MOTA 0.260,
    # 55 switches with IoU only (public FRCNN detections cap the recall of this sequence)
    assert with_emb["idf1"] > 0.36
    assert with_emb["mota"] > 0.24
    assert with_emb["idf1"] > iou_only["idf1"]
    assert with_emb["num_switches"] < iou_only["num_switches"]
