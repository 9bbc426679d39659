"""MOTChallenge sequences: seqinfo.ini, frame splits, ground truth and detections."""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

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
