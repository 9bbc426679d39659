"""Datasets: training frames (single or pairs) over MOT sequences, and frames for inference."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from utrack.config import DataConfig
from utrack.data.mot import (IdentityIndex, MOTSequence, find_sequences, read_image, read_seqinfo,
                             split_frame_range)
from utrack.data.synthetic import generate_dataset
from utrack.data.targets import encode_centernet_targets
from utrack.data.transforms import (AffineParams, Letterbox, jitter_affine, letterbox, sample_affine,
                                    sample_hsv, to_tensor, transform_frame)
from utrack.errors import ConfigError, DataFormatError

TargetBuilder = Callable[[dict[str, Any]], dict[str, Any]]
#: ``(sample, previous or None, rng) -> extra keys for sample`` (see ``MOTTrainDataset``)
PreviousBuilder = Callable[[dict[str, Any], "dict[str, Any] | None", np.random.Generator],
                           dict[str, Any]]
MODES = ("single", "pair", "previous", "previous_pair")
#: modes whose items are two frames that both go through the network
PAIR_MODES = ("pair", "previous_pair")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def training_sequence_dirs(cfg: DataConfig) -> list[Path]:
    """Sequence folders to train on: those found under ``cfg.roots``, or, when it is empty, the
    built-in synthetic training sequences (generated on first use under ``cfg.synthetic.root``)."""
    if not cfg.roots:
        train, _ = generate_dataset(cfg.synthetic.root, cfg.synthetic)
        return train
    return [seq for root in cfg.roots for seq in find_sequences(root)]


def pair_offset(rng: np.random.Generator, frame: int, frames: range, window: int) -> int:
    """Offset to the second frame of a pair: uniform over the non-zero offsets in
    ``-window .. window`` that stay inside ``frames``; 0 when there is none (one-frame split)."""
    lo = max(-window, frames.start - frame)
    hi = min(window, frames.stop - 1 - frame)
    choices = [o for o in range(lo, hi + 1) if o != 0]
    if not choices:
        return 0
    return int(choices[int(rng.integers(len(choices)))])


def clip_frames(rng: np.random.Generator, frame: int, frames: range, window: int,
                count: int) -> list[int]:
    """``count`` further frames for a clip with ``frame``: a run of ``window + 1`` consecutive
    frames of ``frames`` that contains ``frame`` is drawn uniformly, then ``count`` of its other
    frames without repetition, so every two frames of the clip are at most ``window`` apart.
    A split too short for that repeats ``frame`` (as :func:`pair_offset` gives 0)."""
    lo = max(frames.start, frame - window)
    hi = max(lo, min(frame, frames.stop - 1 - window))
    start = int(lo + rng.integers(hi - lo + 1))
    others = [f for f in range(start, min(start + window, frames.stop - 1) + 1) if f != frame]
    picked = [int(f) for f in rng.choice(others, size=min(count, len(others)), replace=False)]
    return picked + [frame] * (count - len(picked))


def previous_offset(rng: np.random.Generator, frame: int, frames: range, max_dist: int) -> int:
    """Offset to CenterTrack's "previous" frame: uniform over ``-max_dist .. max_dist`` (0 and
    later frames included, as CenterTrack samples any nearby frame) inside ``frames``."""
    lo = max(-max_dist, frames.start - frame)
    hi = min(max_dist, frames.stop - 1 - frame)
    if hi < lo:
        return 0
    return int(lo + rng.integers(hi - lo + 1))


class MOTTrainDataset(Dataset):
    """Augmented training frames with CenterNet targets, from MOT sequence folders.

    Items are the frames of split ``cfg.split`` of every sequence. In ``"single"`` mode an item
    is one sample dict; in ``"pair"`` mode it is ``(sample_a, sample_b, False)`` with frame B of
    the same sequence at a distance 1..``cfg.data.pair_window`` (see ``pair_offset``), augmented
    with the same affine (plus ``cfg.augment.pair_jitter``) and the same flip. With
    ``cfg.pair_frames`` = k > 2 it is ``(sample_1, ..., sample_k, False)``: the first frame and
    k - 1 others of a window of ``pair_window + 1`` frames (see ``clip_frames``), each of the
    others through its own jitter of the same affine.

    CenterTrack modes: the previous frame is drawn at ``previous_offset`` (within
    ``cfg.centertrack.max_frame_dist``, inside the split) and goes through the same affine and
    flip (no jitter; its HSV gains are drawn separately). In ``"previous"`` mode an item is the
    current sample (``meta["pre_frame"]``: the previous frame's number) plus ``pre_image``
    (3, H, W), the previous frame's image, and whatever
    ``previous_builder(sample, previous, rng)`` returns (the previous frame's plugin targets
    are not built). In ``"previous_pair"`` mode an item is ``(sample, previous, False)`` and
    both frames are complete samples: the previous one is a first frame, its ``pre_image`` is
    its own image, plus ``previous_builder(previous, None, rng)``.

    A sample holds: ``image`` (3, H, W) float32 RGB in [0, 1]; ``boxes`` (N, 4) float32 input
    pixels; ``hm`` (1, H/R, W/R), ``ind`` (N,), ``wh`` (N, 4), ``reg`` (N, 2), ``reg_mask`` (N,)
    and ``ids`` (N,) global identity indices (``IdentityIndex``; -1 unknown), see
    ``encode_centernet_targets``; ``meta`` (dict: sequence, frame, orig_size (w, h), letterbox,
    affine, matrix); then whatever each of ``target_builders`` returns (merged in order, numpy
    arrays turned into tensors; a key clash is an error). Builders see the sample so far, boxes
    in input pixels after augmentation.

    Randomness comes from ``np.random.default_rng([seed, epoch, index])``: an item does not depend
    on workers or order, and ``set_epoch`` makes a resumed run reproduce the data exactly.
    """

    def __init__(self, sequences: Sequence[MOTSequence | str | Path], cfg: DataConfig, *,
                 identity_index: IdentityIndex | None = None, mode: str = "single",
                 target_builders: Sequence[TargetBuilder] = (), seed: int = 0,
                 down_ratio: int = 4, previous_builder: PreviousBuilder | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not (isinstance(cfg.pair_frames, int) and cfg.pair_frames >= 2):
            raise ConfigError(f"data.pair_frames must be an integer >= 2, got {cfg.pair_frames!r}")
        self.cfg = cfg
        self.mode = mode
        self.previous_builder = previous_builder
        self.seed = int(seed)
        self.epoch = 0
        self.down_ratio = down_ratio
        self.target_builders = list(target_builders)
        self.input_w, self.input_h = (int(v) for v in cfg.input_size)
        self.sequences = [s if isinstance(s, MOTSequence) else
                          MOTSequence(s, min_visibility=cfg.min_visibility) for s in sequences]
        if not self.sequences:
            raise ValueError("MOTTrainDataset: no sequences")
        self.identity_index = identity_index or IdentityIndex(self.sequences, cfg.split)
        self.items: list[tuple[int, int]] = []
        for k, seq in enumerate(self.sequences):
            if not seq.has_gt:
                raise DataFormatError(f"{seq.gt_path}: not found (training needs ground truth)")
            frames = seq.frames(cfg.split)
            for frame in frames:
                seq.image_path(frame)  # fail now, naming the file, rather than inside a worker
                self.items.append((k, frame))
        if not self.items:
            raise ValueError(f"MOTTrainDataset: split {cfg.split!r} has no frames")

    @property
    def frames_per_item(self) -> int:
        """Images an item puts through the network: k in pair mode, 2 with CenterTrack's
        previous frame as a pair, else 1."""
        return {"pair": self.cfg.pair_frames, "previous_pair": 2}.get(self.mode, 1)

    def __len__(self) -> int:
        if self.mode in PAIR_MODES:
            # the fraction is given for pairs: k-frame items show as many images in 2 / k of it
            fraction = self.cfg.pair_epoch_fraction * 2 / self.frames_per_item
            return max(1, round(len(self.items) * fraction))
        return len(self.items)

    def anchor(self, index: int) -> int:
        """The frame item an epoch's ``index`` stands for. In the pair modes with
        ``pair_epoch_fraction`` < 1, each epoch uses a fresh random subset of the frames as
        first frames (a permutation drawn from (seed, epoch))."""
        if self.mode in PAIR_MODES and len(self) < len(self.items):
            # key entry len(items): never an item index (SeedSequence rejects negative entries)
            order = np.random.default_rng([self.seed, self.epoch, len(self.items)]).permutation(
                len(self.items))
            return int(order[index])
        return index

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of ``epoch`` (call before each epoch, in the main process)."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def __getitem__(self, index: int
                    ) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any], bool]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        rng = self.rng(index)
        seq_idx, frame = self.items[self.anchor(index)]
        aug = self.cfg.augment
        affine = sample_affine(rng, aug) if aug.enabled else None
        if self.mode == "single":
            return self.load_sample(seq_idx, frame, affine, rng)
        if self.mode in ("previous", "previous_pair"):
            return self.load_with_previous(seq_idx, frame, affine, rng)
        seq = self.sequences[seq_idx]
        frames = seq.frames(self.cfg.split)
        if self.cfg.pair_frames == 2:
            others = [frame + pair_offset(rng, frame, frames, self.cfg.pair_window)]
        else:
            others = clip_frames(rng, frame, frames, self.cfg.pair_window, self.cfg.pair_frames - 1)
        affines = [jitter_affine(affine, rng, aug.pair_jitter) if affine is not None else None
                   for _ in others]
        samples = [self.load_sample(seq_idx, frame, affine, rng)]
        samples += [self.load_sample(seq_idx, f, a, rng) for f, a in zip(others, affines)]
        return (*samples, False)

    def load_with_previous(self, seq_idx: int, frame: int, affine: AffineParams | None,
                           rng: np.random.Generator
                           ) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any], bool]:
        """The CenterTrack modes: ``frame`` and a previous frame through the same ``affine``."""
        seq = self.sequences[seq_idx]
        frame_p = frame + previous_offset(rng, frame, seq.frames(self.cfg.split),
                                          self.cfg.centertrack.max_frame_dist)
        sample = self.load_sample(seq_idx, frame, affine, rng)
        pairs = self.mode == "previous_pair"
        previous = self.load_sample(seq_idx, frame_p, affine, rng, run_builders=pairs)
        sample["pre_image"] = previous["image"]
        sample["meta"]["pre_frame"] = int(frame_p)
        if self.previous_builder is not None:
            self._merge(sample, self.previous_builder(sample, previous, rng), "previous_builder")
        if not pairs:
            return sample
        previous["pre_image"] = previous["image"]
        if self.previous_builder is not None:
            self._merge(previous, self.previous_builder(previous, None, rng), "previous_builder")
        return sample, previous, False

    @staticmethod
    def _merge(sample: dict[str, Any], extra: dict[str, Any], source: Any) -> None:
        """Add ``extra`` to ``sample`` (numpy arrays become tensors); a key clash is an error."""
        extra = {k: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
                 for k, v in extra.items()}  # numpy targets batch like the others
        clash = set(extra) & set(sample)
        if clash:
            raise ValueError(f"target builder {source!r} returned existing keys {sorted(clash)}")
        sample.update(extra)

    def load_sample(self, seq_idx: int, frame: int, affine: AffineParams | None,
                    rng: np.random.Generator, run_builders: bool = True) -> dict[str, Any]:
        """One frame of sequence ``seq_idx`` through the given affine (None: letterbox only),
        HSV jitter from ``rng`` (when augmenting), targets and (if ``run_builders``) the target
        builders."""
        seq = self.sequences[seq_idx]
        image = seq.read_image(frame)
        boxes, track_ids = seq.annotations(frame)
        hsv = sample_hsv(rng, self.cfg.augment.hsv) if self.cfg.augment.enabled else None
        out = transform_frame(image, boxes, self.input_w, self.input_h, affine=affine, hsv=hsv)
        ids = self.identity_index.lookup(seq.name, track_ids[out.kept])
        sample: dict[str, Any] = {"image": out.image, "boxes": torch.from_numpy(out.boxes)}
        sample.update(encode_centernet_targets(out.boxes, ids, self.input_w, self.input_h,
                                               self.down_ratio))
        sample["meta"] = {"sequence": seq.name, "frame": int(frame),
                          "orig_size": (int(image.shape[1]), int(image.shape[0])),
                          "letterbox": out.letterbox, "affine": affine or AffineParams(),
                          "matrix": out.matrix}
        for builder in self.target_builders if run_builders else ():
            self._merge(sample, builder(sample), builder)
        return sample


class SequenceFrames:
    """Frames for inference from a MOT sequence folder, a folder of images or a video file.

    Iterating yields ``(frame, image, input, record)``: the 1-based frame number, the original
    (H, W, 3) uint8 BGR image, the letterboxed (3, input_h, input_w) float32 RGB tensor in [0, 1],
    and its ``Letterbox`` (map boxes back with ``letterbox_inverse``). ``split`` selects frames
    as for training (``split_frame_range`` over the sequence length; a video's length is its
    reported frame count); frame numbers stay those of the whole sequence. ``fps`` is the
    sequence's or video's frame rate (None for an image folder); ``len()`` counts the frames of
    the split.
    """

    def __init__(self, source: str | Path, input_size: Sequence[int] = (1088, 608),
                 split: str = "all") -> None:
        self.source = Path(source)
        self.input_w, self.input_h = (int(v) for v in input_size)
        self.fps: float | None = None
        self._paths: list[Path] | None = None
        if self.source.is_dir():
            if (self.source / "seqinfo.ini").is_file():
                info = read_seqinfo(self.source)
                self.name = info.name
                self.fps = info.frame_rate
                self._paths = [info.image_path(f) for f in range(1, info.seq_length + 1)]
            else:
                self.name = self.source.name
                self._paths = sorted(p for p in self.source.iterdir()
                                     if p.suffix.lower() in IMAGE_SUFFIXES)
                if not self._paths:
                    raise DataFormatError(f"{self.source}: no images ({', '.join(IMAGE_SUFFIXES)}) "
                                          f"and no seqinfo.ini")
            total = len(self._paths)
        elif self.source.is_file():
            self.name = self.source.stem
            capture = cv2.VideoCapture(str(self.source))
            if not capture.isOpened():
                raise DataFormatError(f"{self.source}: cannot open as a video")
            self.fps = float(capture.get(cv2.CAP_PROP_FPS)) or None
            total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            capture.release()
        else:
            raise DataFormatError(f"{self.source}: no such file or folder")
        if total <= 0 and split != "all":
            raise DataFormatError(f"{self.source}: the video does not report its frame count, "
                                  f"so split {split!r} cannot be taken (use 'all')")
        #: frame numbers to yield; None: every frame of a video of unknown length
        self.frames: range | None = split_frame_range(total, split) if total > 0 else None

    def __len__(self) -> int:
        return len(self.frames) if self.frames is not None else 0

    def prepare(self, image: np.ndarray) -> tuple[torch.Tensor, Letterbox]:
        """(H, W, 3) uint8 BGR -> letterboxed network input and its record."""
        padded, record = letterbox(image, self.input_w, self.input_h)
        return to_tensor(padded), record

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, torch.Tensor, Letterbox]]:
        if self._paths is not None:
            for frame in self.frames:
                image = read_image(self._paths[frame - 1])
                yield (frame, image, *self.prepare(image))
            return
        capture = cv2.VideoCapture(str(self.source))
        if not capture.isOpened():
            raise DataFormatError(f"{self.source}: cannot open as a video")
        first, stop = (1, None) if self.frames is None else (self.frames.start, self.frames.stop)
        frame = 0
        try:
            while stop is None or frame + 1 < stop:
                ok, image = capture.read()
                if not ok:
                    break
                frame += 1
                if frame >= first:
                    yield (frame, image, *self.prepare(image))
        finally:
            capture.release()
        if frame == 0:
            raise DataFormatError(f"{self.source}: no frame could be decoded")
