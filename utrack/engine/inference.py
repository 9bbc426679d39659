"""Tracking a sequence with a trained model: the loop shared by tools/track.py and the
evaluation at the end of tools/train.py."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from tqdm import tqdm

from utrack.data.motfile import write_mot_results
from utrack.tracking.base import Detections, TrackResult, filter_results


@dataclass
class SequenceRun:
    """One sequence's output. rows: (R, 7) ``frame, id, x, y, w, h, score``; refound: the
    subset of rows whose box came from occlusion refinding (same layout)."""

    name: str
    rows: np.ndarray
    refound: np.ndarray
    frames: int = 0
    network_s: float = 0.0
    association_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        total = self.network_s + self.association_s
        return self.frames / total if total > 0 else float("nan")

    def timing_line(self) -> str:
        n = max(self.frames, 1)
        return (f"{self.name}: {self.frames} frames, {self.fps:.1f} fps "
                f"(network {1000 * self.network_s / n:.1f} ms/frame, "
                f"association {1000 * self.association_s / n:.2f} ms/frame)")


def results_to_rows(frame_id: int, results: list[TrackResult]) -> list[list[float]]:
    return [[frame_id, r.track_id, *r.tlwh.tolist(), r.score] for r in results]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_tracker(name: str, frames: Iterable[tuple[int, Any, Any, Any]],
                detect: Callable[[int, Any, Any], Detections], tracker: Any, *,
                min_box_area: float, max_aspect: float, device: torch.device | None = None,
                on_frame: Callable[[int, Any, list[TrackResult], Detections], None] | None = None,
                progress: bool = True) -> SequenceRun:
    """Track ``frames`` = (frame number, original image, network input, letterbox record).

    ``detect(frame number, input, letterbox) -> Detections`` is timed as network time (forward
    + decode),
    ``tracker.update`` as association time. ``on_frame`` sees every frame's results (videos).
    """
    device = device or torch.device("cpu")
    tracker.reset()
    rows: list[list[float]] = []
    refound: list[list[float]] = []
    run = SequenceRun(name, np.zeros((0, 7)), np.zeros((0, 7)))
    for frame_id, original, net_input, letterbox in tqdm(frames, desc=name, disable=not progress,
                                                         leave=False, dynamic_ncols=True):
        t0 = time.perf_counter()
        dets = detect(frame_id, net_input, letterbox)
        _sync(device)
        t1 = time.perf_counter()
        results = tracker.update(dets)
        t2 = time.perf_counter()
        run.network_s += t1 - t0
        run.association_s += t2 - t1
        run.frames += 1
        results = filter_results(results, min_box_area, max_aspect)
        rows.extend(results_to_rows(frame_id, results))
        refound.extend(results_to_rows(frame_id, [r for r in results if r.refound]))
        if on_frame is not None:
            on_frame(frame_id, original, results, dets)
    run.rows = np.asarray(rows, dtype=np.float64).reshape(-1, 7)
    run.refound = np.asarray(refound, dtype=np.float64).reshape(-1, 7)
    return run


def write_run(run: SequenceRun, out_dir: str | Path) -> Path:
    """``<out>/<name>.txt`` in MOTChallenge format (10 columns); refound boxes also go to the
    sidecar ``<out>/refound/<name>.txt`` that standard evaluators never read."""
    out_dir = Path(out_dir)
    path = write_mot_results(out_dir / f"{run.name}.txt", run.rows)
    if len(run.refound):
        write_mot_results(out_dir / "refound" / f"{run.name}.txt", run.refound)
    return path


@torch.no_grad()
def embeddings_at_boxes(model: torch.nn.Module, image: torch.Tensor, boxes: np.ndarray,
                        down_ratio: int = 4) -> np.ndarray:
    """Embeddings of the ``id`` head at the centres of given boxes (FairMOT style).

    A model with previous-frame inputs (CenterTrack) sees the image as its own previous frame
    with an empty previous heatmap, as the first frames of its training pairs do.

    Args:
        image: (1, 3, H, W) network input on the model's device; boxes: (N, 4) ``x1, y1, x2,
            y2`` in network-input pixels.

    Returns:
        (N, D) float32, L2-normalised.
    """
    if getattr(model, "pre_inputs", False):
        outputs = model(image, image, torch.zeros_like(image[:, :1]))
    else:
        outputs = model(image)
    id_map = torch.nn.functional.normalize(outputs["id"].float(), dim=1)[0]  # (D, h, w)
    _, h, w = id_map.shape
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cx = np.clip(((boxes[:, 0] + boxes[:, 2]) / 2 / down_ratio).astype(np.int64), 0, w - 1)
    cy = np.clip(((boxes[:, 1] + boxes[:, 3]) / 2 / down_ratio).astype(np.int64), 0, h - 1)
    index = torch.as_tensor(cy * w + cx, device=id_map.device)
    return id_map.reshape(id_map.shape[0], -1)[:, index].T.cpu().numpy().astype(np.float32)
