"""Lost-object refinding on real annotations (tracker-only replay, no network).

For MOT17-02/05/09/11 (public FRCNN detections, full ground truth) the FairMOT tracker runs on the
detections with identity-derived embeddings (``--emb-source gt``) or on IoU alone, without
refinding and with refinding from oracle occlusion centres (the centres of every ground-truth
pair with overlap / min-area > 0.7: an upper bound for the occlusion head), with the refound box
updating the Kalman state or not. Prints FN, FP, IDS, MOTA, IDF1, HOTA per sequence and combined,
then the refinding step's ms/frame against the number of lost tracks (side by side with the
per-track loop of ``refind_lost_box``).

    UTRACK_SHARED=../shared python benchmarks/bench_refinding.py [--seqs MOT17-02-FRCNN ...]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from baselines import build_baseline
from plugins import build_plugins
from utrack.config import CONFIG_DIR, load_config
from utrack.data.mot import load_gt, read_seqinfo
from utrack.data.motfile import read_mot_txt
from utrack.engine.replay import replay_sequence
from utrack.eval.mot import combine_sequences, evaluate_sequence
from utrack.occlusion import oracle_occlusion_centers, refind_lost_box, refind_lost_boxes

SEQUENCES = ["MOT17-02-FRCNN", "MOT17-05-FRCNN", "MOT17-09-FRCNN", "MOT17-11-FRCNN"]
KEYS = ("FN", "FP", "IDS", "MOTA", "IDF1", "HOTA")


def shared_data() -> Path:
    root = Path(os.environ.get("UTRACK_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    if not (root / "data").is_dir():
        raise SystemExit(f"shared data not found at {root} (set UTRACK_SHARED)")
    return root / "data"


def run_variant(seq_dir: Path, emb: str, occ: str, update_kalman: bool, min_score: float):
    overrides = [f"tracker.refind_update_kalman={str(update_kalman).lower()}",
                 f"occlusion.enabled={'true' if occ != 'none' else 'false'}"]
    if emb == "none":
        overrides.append("reid.mode=none")
    cfg = load_config([CONFIG_DIR / "fairmot.yaml"], overrides)
    info = read_seqinfo(seq_dir)
    tracker = build_baseline(cfg, build_plugins(cfg)).make_tracker(info.frame_rate)
    run = replay_sequence(seq_dir, seq_dir / "det" / "det.txt", tracker, min_score=min_score,
                          occ_source=occ, emb_source=emb, tau=cfg.occlusion.tau,
                          input_size=tuple(cfg.data.input_size),
                          min_box_area=cfg.tracker.min_box_area,
                          max_aspect=cfg.tracker.max_aspect, progress=False)
    gt = read_mot_txt(seq_dir / "gt" / "gt.txt")
    results = np.concatenate([run.rows, -np.ones((len(run.rows), 3))], axis=1)
    evaluation = evaluate_sequence(gt, results, range(1, info.seq_length + 1), name=info.name)
    return evaluation, len(run.refound)


def table(data: Path, seqs: list[str], min_score: float) -> None:
    variants = [("gt", "none", True), ("gt", "oracle", True), ("gt", "oracle", False),
                ("none", "none", True), ("none", "oracle", True), ("none", "oracle", False)]
    print(f"{'embeddings':<10} {'refinding':<16} {'sequence':<16} " +
          " ".join(f"{k:>7}" for k in KEYS) + "  refound")
    for emb, occ, update in variants:
        label = "off" if occ == "none" else f"oracle, kf {'upd' if update else 'keep'}"
        evals = []
        refound_total = 0
        for name in seqs:
            evaluation, refound = run_variant(data / "mot-annotations" / name, emb, occ, update,
                                              min_score)
            evals.append(evaluation)
            refound_total += refound
            m = evaluation.metrics
            print(f"{emb:<10} {label:<16} {name:<16} " + fmt(m) + f"  {refound:7d}")
        m = combine_sequences(evals)
        print(f"{emb:<10} {label:<16} {'COMBINED':<16} " + fmt(m) + f"  {refound_total:7d}")


def fmt(m: dict) -> str:
    return " ".join(f"{100 * m[k]:7.2f}" if k in ("MOTA", "IDF1", "HOTA") else f"{m[k]:7d}"
                    for k in KEYS)


def step_timing(data: Path, reps: int) -> None:
    """ms per frame of refinding for L lost tracks, on MOT20-01's boxes and oracle centres."""
    gt = load_gt(data / "mot-annotations" / "MOT20-01")
    frames = np.unique(gt[:, 0]).astype(int)[:50]
    rng = np.random.default_rng(0)
    print(f"\nrefinding step on MOT20-01 frames (mean {np.mean([np.sum(gt[:, 0] == f) for f in frames]):.0f} "
          "boxes, oracle centres)")
    print(f"{'lost tracks':>11} {'batched ms':>11} {'per-track ms':>13} {'ratio':>6}")
    for lost in (1, 5, 10, 25, 50, 100, 200):
        batched, looped = [], []
        for _ in range(reps):
            for f in frames:
                rows = gt[gt[:, 0] == f]
                boxes = np.c_[rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]]
                centers = np.asarray(oracle_occlusion_centers(boxes))
                pick = boxes[rng.integers(len(boxes), size=lost)] + rng.normal(0, 5, (lost, 4))
                t0 = time.perf_counter()
                refind_lost_boxes(pick, boxes, centers)
                t1 = time.perf_counter()
                for p in pick:
                    refind_lost_box(p, boxes, centers)
                t2 = time.perf_counter()
                batched.append(t1 - t0)
                looped.append(t2 - t1)
        b, l_ = 1000 * np.median(batched), 1000 * np.median(looped)
        print(f"{lost:>11d} {b:>11.3f} {l_:>13.3f} {l_ / b:>6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seqs", nargs="+", default=SEQUENCES)
    parser.add_argument("--min-score", type=float, default=0.0,
                        help="drop public detections below this score before tracking")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-table", action="store_true")
    args = parser.parse_args()
    data = shared_data()
    if not args.no_table:
        table(data, args.seqs, args.min_score)
    step_timing(data, args.reps)


if __name__ == "__main__":
    main()
