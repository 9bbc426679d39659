"""Association speed of ``JDETracker`` against the straightforward reference, on the same inputs.

Scenarios: (a) MOT20-01 ground-truth pedestrian boxes (about 46 per frame) with identity-derived
embeddings, also without embeddings (IoU-only first stage); (b) synthetic crowds of 10 to 300
moving boxes. For each, both trackers run in this process on the same detections; their outputs
(ids and boxes per frame) must agree, and the update time per frame (best of ``--repeats`` runs)
is printed for both. Times are process CPU time, which a busy shared machine disturbs less than
wall time; BLAS runs single-threaded (threads only add latency on these tiny matrices).

    UTRACK_SHARED=/work/shared python benchmarks/bench_tracker.py [--repeats 3] [--frames 150]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # tiny matrices: threads only add latency
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_jde import ReferenceJDETracker  # noqa: E402

from baselines.fairmot.tracker import JDETracker  # noqa: E402
from utrack.config import TrackerConfig  # noqa: E402
from utrack.data.motfile import read_mot_txt  # noqa: E402
from utrack.data.mot import read_seqinfo  # noqa: E402
from utrack.tracking.base import Detections  # noqa: E402

DIM = 128
Frame = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes (N, 4) x1y1x2y2, scores (N,), (N, D)


def identity_embeddings(ids: np.ndarray, protos: dict[int, np.ndarray], rng: np.random.Generator,
                        noise: float = 0.03) -> np.ndarray:
    """(N,) identities -> (N, D) unit vectors: a fixed random direction per identity plus noise."""
    for i in ids.tolist():
        if i not in protos:
            v = rng.normal(size=DIM)
            protos[i] = v / np.linalg.norm(v)
    emb = np.array([protos[i] for i in ids.tolist()]).reshape(-1, DIM)
    emb = emb + rng.normal(scale=noise, size=emb.shape)
    return (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)


def mot20_frames(seq_dir: Path, rng: np.random.Generator) -> tuple[list[Frame], float]:
    """Pedestrian gt boxes (conf 1, class 1) of every frame as detections, scores in [0.45, 1)."""
    info = read_seqinfo(seq_dir)
    gt = read_mot_txt(seq_dir / "gt" / "gt.txt")
    gt = gt[(gt[:, 6] == 1) & (gt[:, 7] == 1)]
    protos: dict[int, np.ndarray] = {}
    frames = []
    for f in range(1, info.seq_length + 1):
        rows = gt[gt[:, 0] == f]
        boxes = np.c_[rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]]
        scores = rng.uniform(0.45, 1.0, size=len(rows))
        frames.append((boxes, scores, identity_embeddings(rows[:, 1].astype(int), protos, rng)))
    return frames, info.frame_rate


def synthetic_frames(n: int, num_frames: int, rng: np.random.Generator,
                     size: tuple[int, int] = (1920, 1080), miss: float = 0.05) -> list[Frame]:
    """``n`` boxes moving at constant velocity (bouncing off the borders) with box jitter; each box
    is missed with probability ``miss`` per frame (so tracks get lost and re-found)."""
    w_img, h_img = size
    h = rng.uniform(60, 220, n)
    w = h * rng.uniform(0.35, 0.5, n)
    pos = np.c_[rng.uniform(0, w_img - w), rng.uniform(0, h_img - h)]
    vel = rng.normal(scale=2.0, size=(n, 2))
    protos: dict[int, np.ndarray] = {}
    frames = []
    for _ in range(num_frames):
        pos += vel
        for k, limit in ((0, w_img - w), (1, h_img - h)):
            out = (pos[:, k] < 0) | (pos[:, k] > limit)
            vel[out, k] *= -1
            pos[:, k] = np.clip(pos[:, k], 0, limit)
        seen = np.flatnonzero(rng.random(n) > miss)
        jitter = rng.normal(scale=1.0, size=(len(seen), 4))
        boxes = np.c_[pos[seen], pos[seen] + np.c_[w[seen], h[seen]]] + jitter
        scores = rng.uniform(0.45, 1.0, size=len(seen))
        frames.append((boxes, scores, identity_embeddings(seen, protos, rng)))
    return frames


def run_ours(frames: list[Frame], frame_rate: float,
             use_embeddings: bool = True) -> tuple[list[dict], float]:
    inputs = [Detections(b, s, e) for b, s, e in frames]
    tracker = JDETracker(TrackerConfig(), frame_rate=frame_rate, use_embeddings=use_embeddings)
    gc.collect()
    t0 = time.process_time()
    results = [tracker.update(d) for d in inputs]
    elapsed = time.process_time() - t0
    return [{r.track_id: r.box for r in res} for res in results], elapsed


def run_reference(frames: list[Frame], frame_rate: float,
                  use_embeddings: bool = True) -> tuple[list[dict], float]:
    cfg = TrackerConfig()
    tracker = ReferenceJDETracker(cfg.conf_thres, frame_rate, cfg.track_buffer, cfg.emb_thresh,
                                  cfg.iou_thresh, cfg.unconfirmed_thresh, cfg.iou_only_thresh,
                                  cfg.motion_lambda, cfg.feat_momentum, use_embeddings)
    gc.collect()
    t0 = time.process_time()
    results = [tracker.update(b, s, e) for b, s, e in frames]
    elapsed = time.process_time() - t0
    return [{tid: box for tid, box, _ in res} for res in results], elapsed


def compare(ours: list[dict], ref: list[dict]) -> tuple[bool, float]:
    """Same ids on every frame, and the largest box coordinate difference."""
    worst = 0.0
    for a, b in zip(ours, ref):
        if a.keys() != b.keys():
            return False, float("inf")
        for tid in a:
            worst = max(worst, float(np.abs(a[tid] - b[tid]).max()))
    return len(ours) == len(ref), worst


def bench(name: str, frames: list[Frame], frame_rate: float, repeats: int,
          use_embeddings: bool = True) -> dict:
    best_ours = best_ref = float("inf")
    for _ in range(repeats):
        out_ours, t = run_ours(frames, frame_rate, use_embeddings)
        best_ours = min(best_ours, t)
        out_ref, t = run_reference(frames, frame_rate, use_embeddings)
        best_ref = min(best_ref, t)
    same, diff = compare(out_ours, out_ref)
    n = len(frames)
    return {"scenario": name, "dets": np.mean([len(f[0]) for f in frames]),
            "tracks": np.mean([len(o) for o in out_ours]), "ours": best_ours / n * 1e3,
            "ref": best_ref / n * 1e3, "same": same and diff < 1e-6, "diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=os.environ.get("UTRACK_SHARED", "../shared"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=150, help="frames per synthetic scenario")
    parser.add_argument("--sizes", type=int, nargs="*", default=[10, 30, 100, 200, 300])
    args = parser.parse_args()

    rows = []
    seq = Path(args.shared) / "data" / "mot-annotations" / "MOT20-01"
    if seq.is_dir():
        frames, fps = mot20_frames(seq, np.random.default_rng(0))
        rows.append(bench("MOT20-01 gt", frames, fps, args.repeats))
        rows.append(bench("MOT20-01 iou", frames, fps, args.repeats, use_embeddings=False))
    else:
        print(f"(no {seq}: skipping MOT20-01)")
    for n in args.sizes:
        frames = synthetic_frames(n, args.frames, np.random.default_rng(n))
        rows.append(bench(f"synthetic {n}", frames, 30.0, args.repeats))

    print(f"{'scenario':<16}{'dets/frame':>11}{'tracks out':>11}{'ours ms':>10}{'ref ms':>10}"
          f"{'ref/ours':>10}  identical (max box diff)")
    for r in rows:
        print(f"{r['scenario']:<16}{r['dets']:>11.1f}{r['tracks']:>11.1f}{r['ours']:>10.3f}"
              f"{r['ref']:>10.3f}{r['ref'] / r['ours']:>10.2f}  {r['same']} ({r['diff']:.1e})")
    if not all(r["same"] for r in rows):
        sys.exit("outputs differ between JDETracker and the reference")


if __name__ == "__main__":
    main()
