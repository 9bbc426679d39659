"""MOTChallenge sequences: seqinfo.ini, frame splits, ground truth and detections."""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from utrack.data.motfile import read_mot_txt
from utrack.errors import DataFormatError

SPLITS = ("all", "train_half", "val_half")


@dataclass(frozen=True)
class SeqInfo:
    """The ``[Sequence]`` section of a MOTChallenge ``seqinfo.ini``."""

    name: str
    path: Path
    im_dir: str
    frame_rate: float
    seq_length: int
    width: int
    height: int
    im_ext: str = ".jpg"

    def image_path(self, frame: int) -> Path:
        return self.path / self.im_dir / f"{frame:06d}{self.im_ext}"


def read_seqinfo(seq_dir: str | Path) -> SeqInfo:
    """Parse ``seq_dir/seqinfo.ini``; a missing file or field is an error naming both."""
    seq_dir = Path(seq_dir)
    path = seq_dir / "seqinfo.ini"
    if not path.is_file():
        raise DataFormatError(f"{path}: not found (a MOTChallenge sequence folder needs seqinfo.ini)")
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
        section = parser["Sequence"]
    except (configparser.Error, KeyError) as exc:
        raise DataFormatError(f"{path}: no valid [Sequence] section ({exc})") from exc

    def get(key: str, default: str | None = None) -> str:
        if key in section:
            return section[key]
        if default is None:
            raise DataFormatError(f"{path}: missing field '{key}' in [Sequence]")
        return default

    try:
        return SeqInfo(
            name=get("name", seq_dir.name),
            path=seq_dir,
            im_dir=get("imDir", "img1"),
            frame_rate=float(get("frameRate", "30")),
            seq_length=int(get("seqLength")),
            width=int(get("imWidth", "0")),
            height=int(get("imHeight", "0")),
            im_ext=get("imExt", ".jpg"),
        )
    except ValueError as exc:
        raise DataFormatError(f"{path}: invalid number in [Sequence]: {exc}") from exc


def split_frame_range(seq_length: int, split: str) -> range:
    """1-based frames of a split: ``all``; ``train_half`` = the first ``seq_length // 2 + 1``
    frames; ``val_half`` = the rest (the half split used for the ablations of FairMOT, UTrack and
    ByteTrack, which comes from CenterTrack's MOT conversion)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    half = seq_length // 2 + 1
    if split == "all":
        return range(1, seq_length + 1)
    if split == "train_half":
        return range(1, half + 1)
    return range(half + 1, seq_length + 1)


# ----------------------------------------------------------------------------------------------
# Finding sequences

def find_sequences(path: str | Path) -> list[Path]:
    """Sequence folders under ``path``, sorted by name.

    ``path`` is a sequence folder (holds ``seqinfo.ini``), or a dataset root whose subfolders are
    sequences, or a root with a ``train/`` folder of sequences (the MOTChallenge download layout).
    """
    path = Path(path)
    if not path.is_dir():
        raise DataFormatError(f"{path}: not a folder (expected a MOT sequence or dataset root)")
    if (path / "seqinfo.ini").is_file():
        return [path]
    for root in (path, path / "train"):
        if root.is_dir():
            found = sorted(p for p in root.iterdir() if (p / "seqinfo.ini").is_file())
            if found:
                return found
    raise DataFormatError(
        f"{path}: no MOT sequence found (no seqinfo.ini in it, in its subfolders or in train/*)")


# ----------------------------------------------------------------------------------------------
# Ground truth and detections

#: MOTChallenge classes that are neither pedestrians nor false positives when detected
#: (person on vehicle, static person, distractor, reflection)
DISTRACTOR_CLASSES = (2, 7, 8, 12)


def _gt_file(path: str | Path) -> Path:
    path = Path(path)
    return path / "gt" / "gt.txt" if path.is_dir() else path


def _det_file(path: str | Path) -> Path:
    path = Path(path)
    return path / "det" / "det.txt" if path.is_dir() else path


def _normalise_gt(rows: np.ndarray) -> np.ndarray:
    """Files without conf/class/visibility columns (-1 after padding): conf 1, class 1, vis 1."""
    rows = rows.copy()
    for col in (6, 7, 8):
        rows[rows[:, col] == -1, col] = 1.0
    return rows


def load_gt(seq_dir_or_file: str | Path, *, min_visibility: float = 0.0,
            classes: tuple[int, ...] | None = (1,), conf1_only: bool = True) -> np.ndarray:
    """Training ground truth: (M, 10) float64 rows ``frame,id,x,y,w,h,conf,class,vis,-1``.

    Keeps rows with conf 1 (when ``conf1_only``), class in ``classes`` (``None``: any class) and
    visibility >= ``min_visibility``. Files without class/visibility columns (MOT15) count as
    class 1, fully visible. ``seq_dir_or_file`` is a sequence folder (reads ``gt/gt.txt``) or a
    file. Rows keep the file's order.
    """
    rows = _normalise_gt(read_mot_txt(_gt_file(seq_dir_or_file)))
    keep = rows[:, 8] >= min_visibility
    if conf1_only:
        keep &= rows[:, 6] == 1
    if classes is not None:
        keep &= np.isin(rows[:, 7], np.asarray(classes, dtype=np.float64))
    return rows[keep]


def load_det(path: str | Path) -> np.ndarray:
    """Public detections: (M, 10) float64 ``frame,-1,x,y,w,h,score,...`` sorted by frame (stable).

    ``path`` is a sequence folder (reads ``det/det.txt``) or a file with 7 or 10 columns whose
    lines may come in any order.
    """
    rows = read_mot_txt(_det_file(path), min_columns=7)
    return rows[np.argsort(rows[:, 0], kind="stable")]


def group_rows_by_frame(rows: np.ndarray) -> dict[int, np.ndarray]:
    """frame -> its rows (views into one frame-sorted copy); one sort, no per-frame scan."""
    if len(rows) == 0:
        return {}
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    frames, starts = np.unique(rows[:, 0].astype(np.int64), return_index=True)
    ends = np.append(starts[1:], len(rows))
    return {int(f): rows[s:e] for f, s, e in zip(frames, starts, ends)}


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """(N, 4) ``x, y, w, h`` -> (N, 4) ``x1, y1, x2, y2`` (same dtype)."""
    out = np.array(xywh, copy=True)
    out[:, 2:4] += out[:, 0:2]
    return out


_EMPTY_BOXES = np.zeros((0, 4), dtype=np.float32)
_EMPTY_IDS = np.zeros((0,), dtype=np.int64)


class MOTSequence:
    """One MOTChallenge sequence folder: seqinfo, per-frame ground truth, ignore regions, images.

    Ground truth (if ``gt/gt.txt`` exists) is read once and grouped by frame. Training rows follow
    ``load_gt(min_visibility, classes, conf1_only=True)``; ignore regions are the rows with conf 0
    or a distractor class. A folder without images is fine until an image is asked for.
    """

    def __init__(self, seq_dir: str | Path, *, min_visibility: float = 0.0,
                 classes: tuple[int, ...] | None = (1,)) -> None:
        self.path = Path(seq_dir)
        self.info: SeqInfo = read_seqinfo(self.path)
        self.gt_path = self.path / "gt" / "gt.txt"
        self.has_gt = self.gt_path.is_file()
        self._boxes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._ignore: dict[int, np.ndarray] = {}
        if not self.has_gt:
            return
        raw = _normalise_gt(read_mot_txt(self.gt_path))
        if len(raw) and raw[:, 0].max() > self.info.seq_length:
            raise DataFormatError(
                f"{self.gt_path}: frame {int(raw[:, 0].max())} is beyond seqLength="
                f"{self.info.seq_length} of {self.path / 'seqinfo.ini'}")
        train = (raw[:, 6] == 1) & (raw[:, 8] >= min_visibility)
        if classes is not None:
            train &= np.isin(raw[:, 7], np.asarray(classes, dtype=np.float64))
        ignore = (raw[:, 6] == 0) | np.isin(raw[:, 7], DISTRACTOR_CLASSES)
        self.gt_rows = raw[train]
        for frame, rows in group_rows_by_frame(self.gt_rows).items():
            order = np.argsort(rows[:, 1], kind="stable")
            rows = rows[order]
            self._boxes[frame] = (xywh_to_xyxy(rows[:, 2:6]).astype(np.float32),
                                  rows[:, 1].astype(np.int64))
        for frame, rows in group_rows_by_frame(raw[ignore]).items():
            self._ignore[frame] = xywh_to_xyxy(rows[:, 2:6]).astype(np.float32)

    @property
    def name(self) -> str:
        return self.info.name

    def __repr__(self) -> str:
        return f"MOTSequence({self.path}, frames={self.info.seq_length}, gt={self.has_gt})"

    def _require_gt(self) -> None:
        if not self.has_gt:
            raise DataFormatError(f"{self.gt_path}: not found (sequence {self.name} has no ground truth)")

    def annotations(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Training boxes of ``frame``: (N, 4) float32 ``x1, y1, x2, y2`` and (N,) int64 ids,
        sorted by id; empty arrays for a frame without objects."""
        self._require_gt()
        boxes, ids = self._boxes.get(int(frame), (_EMPTY_BOXES, _EMPTY_IDS))
        return boxes.copy(), ids.copy()

    def ignore_boxes(self, frame: int) -> np.ndarray:
        """(K, 4) float32 ``x1, y1, x2, y2`` of ignore regions (conf 0 or classes 2, 7, 8, 12)."""
        self._require_gt()
        return self._ignore.get(int(frame), _EMPTY_BOXES).copy()

    def track_ids(self, frames: range | None = None) -> np.ndarray:
        """Sorted unique ids of the training rows (of ``frames`` only, if given)."""
        if not self.has_gt or len(self.gt_rows) == 0:
            return _EMPTY_IDS.copy()
        rows = self.gt_rows
        if frames is not None:
            rows = rows[(rows[:, 0] >= frames.start) & (rows[:, 0] < frames.stop)]
        ids = np.unique(rows[:, 1].astype(np.int64))
        return ids[ids >= 0]

    def image_path(self, frame: int) -> Path:
        """Path of the image of ``frame``; an error naming the path if the file is missing."""
        if not 1 <= int(frame) <= self.info.seq_length:
            raise IndexError(f"{self.name}: frame {frame} outside 1..{self.info.seq_length}")
        path = self.info.image_path(int(frame))
        if not path.is_file():
            raise DataFormatError(f"{path}: image not found (sequence {self.name}, frame {frame})")
        return path

    def read_image(self, frame: int) -> np.ndarray:
        """(H, W, 3) uint8 BGR image of ``frame``."""
        return read_image(self.image_path(frame))

    def frames(self, split: str = "all") -> range:
        """1-based frame numbers of ``split`` (see ``split_frame_range``)."""
        return split_frame_range(self.info.seq_length, split)


def read_image(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 BGR image; a missing or undecodable file is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: image not found")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataFormatError(f"{path}: cannot decode image")
    return image


# ----------------------------------------------------------------------------------------------
# Identities for supervised re-ID

class IdentityIndex:
    """(sequence name, gt id) -> contiguous global index ``0 .. num_ids - 1``.

    Sequences are numbered in the given order, each one's ids in increasing order (the ids FairMOT
    gets by offsetting every sequence's ids, without the gaps). Ids seen only outside ``split``
    get no index; unknown ids map to -1.
    """

    def __init__(self, sequences: "list[MOTSequence]", split: str = "all") -> None:
        self._ids: dict[str, np.ndarray] = {}
        self._offsets: dict[str, int] = {}
        total = 0
        for seq in sequences:
            if seq.name in self._ids:
                raise ValueError(f"IdentityIndex: two sequences are named {seq.name!r} "
                                 f"({seq.path}); names must be unique")
            ids = seq.track_ids(seq.frames(split))
            self._ids[seq.name] = ids
            self._offsets[seq.name] = total
            total += len(ids)
        self.num_ids = total

    def __len__(self) -> int:
        return self.num_ids

    def lookup(self, sequence: str, ids: np.ndarray) -> np.ndarray:
        """(N,) gt ids of ``sequence`` -> (N,) int64 global indices (-1 when unknown)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        known = self._ids.get(sequence)
        if known is None or len(known) == 0:
            return np.full(len(ids), -1, dtype=np.int64)
        pos = np.searchsorted(known, ids).clip(0, len(known) - 1)
        found = known[pos] == ids
        return np.where(found, pos + self._offsets[sequence], -1).astype(np.int64)

    def sequence_range(self, sequence: str) -> range:
        """Global indices owned by ``sequence``."""
        start = self._offsets[sequence]
        return range(start, start + len(self._ids[sequence]))
