"""Pictures of what a tracker did: boxes with ids, refound boxes, heatmap overlays, videos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from utrack.tracking.base import TrackResult


def id_color(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour per id (golden-ratio hue steps)."""
    hue = (track_id * 0.618033988749895) % 1.0
    hsv = np.uint8([[[int(hue * 179), 220, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def _dashed_rectangle(image: np.ndarray, p1: tuple[int, int], p2: tuple[int, int],
                      color: tuple[int, int, int], thickness: int = 2, dash: int = 8) -> None:
    (x1, y1), (x2, y2) = p1, p2
    for x in range(x1, x2, 2 * dash):
        cv2.line(image, (x, y1), (min(x + dash, x2), y1), color, thickness)
        cv2.line(image, (x, y2), (min(x + dash, x2), y2), color, thickness)
    for y in range(y1, y2, 2 * dash):
        cv2.line(image, (x1, y), (x1, min(y + dash, y2)), color, thickness)
        cv2.line(image, (x2, y), (x2, min(y + dash, y2)), color, thickness)


def draw_tracks(image: np.ndarray, results: list[TrackResult], frame_id: int | None = None,
                fps: float | None = None) -> np.ndarray:
    """A copy of BGR ``image`` with each track's box and id; refound boxes (recovered by the
    occlusion refinding, not detected) are dashed and labelled ``id*``."""
    out = image.copy()
    scale = max(0.4, min(out.shape[:2]) / 900)
    thick = max(1, int(round(2 * scale)))
    for res in results:
        x1, y1, x2, y2 = (int(round(v)) for v in res.box)
        color = id_color(res.track_id)
        if res.refound:
            _dashed_rectangle(out, (x1, y1), (x2, y2), color, thick)
        else:
            cv2.rectangle(out, (x1, y1), (x2, y2), color, thick)
        label = f"{res.track_id}{'*' if res.refound else ''}"
        cv2.putText(out, label, (x1, max(0, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick)
    header = []
    if frame_id is not None:
        header.append(f"frame {frame_id}")
    header.append(f"tracks {len(results)}")
    if fps is not None:
        header.append(f"{fps:.1f} fps")
    cv2.putText(out, "  ".join(header), (8, int(24 * scale) + 8), cv2.FONT_HERSHEY_SIMPLEX,
                scale, (0, 255, 255), thick)
    return out


def heatmap_to_image(heatmap: np.ndarray, letterbox, image_shape: tuple[int, ...],
                     down_ratio: int = 4) -> np.ndarray:
    """A network-output heatmap (h, w) of a letterboxed input -> the original image's (H, W):
    upsample to the input size (h, w) * down_ratio, cut the padding away, resize to the image."""
    heat = np.asarray(heatmap, dtype=np.float32)
    height, width = image_shape[:2]
    up = cv2.resize(heat, (heat.shape[1] * down_ratio, heat.shape[0] * down_ratio),
                    interpolation=cv2.INTER_LINEAR)
    x0, y0 = int(letterbox.pad_x), int(letterbox.pad_y)
    crop = up[y0:y0 + max(1, round(height * letterbox.scale)),
              x0:x0 + max(1, round(width * letterbox.scale))]
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a [0, 1] heatmap (any size; resized to the image) onto BGR ``image`` as a colour map."""
    heat = np.clip(np.asarray(heatmap, dtype=np.float32), 0, 1)
    heat = cv2.resize(heat, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    colored = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    weight = (alpha * heat)[..., None]
    return (image * (1 - weight) + colored * weight).astype(np.uint8)


class VideoSink:
    """mp4 writer that opens on the first frame (size taken from it)."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self._writer: cv2.VideoWriter | None = None

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"),
                                           self.fps, (w, h))
            if not self._writer.isOpened():
                raise OSError(f"{self.path}: cannot open a video writer (mp4v)")
        self._writer.write(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> "VideoSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
