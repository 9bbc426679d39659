"""Image-based (static) training data: annotated images from CrowdHuman or COCO, and the dataset
that turns them into single samples or positive / negative pairs (UTrack paper Sec. 3.1.2).

The readers (``utrack.data.crowdhuman``, ``utrack.data.coco``) return an ``ImageSet`` of
``ImageRecord``s: boxes to train on and ignore regions, in original image pixels, plus a *scene*
key. ``ImageTrainDataset`` serves them:

- ``"single"`` mode: one augmented image per item (detection, or FairMOT's supervised re-ID with
  one pseudo-identity per box);
- ``"pair"`` mode: a positive pair is two independent augmentations of one image (its boxes
  correspond one to one, ``meta["box_index"]``); a negative pair is two images of different
  scenes, each with its own augmentation. The share of negatives follows ``data.neg_ratio``
  = Nneg / Npos (paper Eq. 8; default 0.25, the paper's 2/8).

Ignore regions (CrowdHuman ``mask`` / ``extra.ignore``, COCO ``iscrowd``) produce no object and
no penalty: each sample carries ``hm_ignore`` (1, H/R, W/R) bool, True on the output cells an
ignore region overlaps, which the focal loss removes from its negative term (see
``utrack.losses.focal``). Object peaks keep their positive term even inside an ignore region.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from utrack.config import DataConfig, check_ratio
from utrack.data.mot import read_image
from utrack.data.targets import encode_centernet_targets
from utrack.data.transforms import (AffineParams, sample_affine, sample_hsv, transform_boxes,
                                    transform_frame)
from utrack.errors import ConfigError, DataFormatError

TargetBuilder = Callable[[dict[str, Any]], dict[str, Any]]
MODES = ("single", "pair")
ANCHOR_STREAM, NEGATIVE_STREAM = 1, 2  # epoch-wide random streams (see epoch_rng)

#: the default scene rule: an image ID ``<scene>_<frame number>`` (at least 4 digits) is a video
#: frame of ``<scene>``; a MOT17 detector suffix (-DPM, -FRCNN, -SDP) is not part of the scene,
#: so ``MOT17-02-FRCNN_000001`` belongs to scene ``MOT17-02``. Genuine CrowdHuman IDs
#: (``283554,35288000868e92d4``) do not match: each such image is a scene of its own.
DEFAULT_SCENE_PATTERN = r"^(?P<scene>.+?)(?:-(?:DPM|FRCNN|SDP))?_\d{4,}$"
_SHOW_MISSING = 5  # missing images named in the warning


class MissingImagesWarning(UserWarning):
    """Some annotated images do not exist; their entries were excluded (and counted)."""


@dataclass(eq=False)
class ImageRecord:
    """One annotated image.

    boxes: (N, 4) float32 ``x1, y1, x2, y2`` original pixels, the objects to train on;
    ignore: (K, 4) float32 ignore regions (no object, no penalty); scene: images sharing a scene
    are never paired as a negative; source: ``file:line`` (or ``file: images[i]``) it came from.
    """

    image_id: str
    path: Path
    boxes: np.ndarray
    ignore: np.ndarray
    scene: str
    source: str


@dataclass
class ImageSet:
    """What a reader found in one annotation file: the usable records and the entries whose
    image file is missing (excluded, reported once by ``drop_missing_images``)."""

    source: Path
    records: list[ImageRecord]
    missing: list[ImageRecord] = field(default_factory=list)

    @property
    def num_boxes(self) -> int:
        return sum(len(r.boxes) for r in self.records)

    @property
    def num_ignore(self) -> int:
        return sum(len(r.ignore) for r in self.records)

    @property
    def num_scenes(self) -> int:
        return len({r.scene for r in self.records})

    def summary(self) -> str:
        text = (f"{self.source}: {len(self.records)} images, {self.num_scenes} scenes, "
                f"{self.num_boxes} boxes, {self.num_ignore} ignore regions")
        if self.missing:
            text += f" ({len(self.missing)} entries without an image excluded)"
        return text


def scene_of(image_id: str, pattern: str | None = DEFAULT_SCENE_PATTERN) -> str:
    """The scene key of an image: the ``scene`` group of ``pattern`` (a regular expression with a
    named group ``scene``) when the ID matches it, else the ID itself (a scene of its own).
    ``pattern`` None or empty: every image is its own scene."""
    if pattern:
        found = re.match(pattern, image_id)
        if found and found.group("scene"):
            return found.group("scene")
    return image_id


def check_scene_pattern(pattern: str | None) -> None:
    """A clear error for a scene pattern that does not compile or lacks the ``scene`` group."""
    if not pattern:
        return
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"scene pattern {pattern!r} is not a valid regular expression: "
                          f"{exc}") from exc
    if "scene" not in compiled.groupindex:
        raise ConfigError(f"scene pattern {pattern!r} needs a named group (?P<scene>...)")


def xywh_boxes(values: Sequence[Sequence[float]]) -> np.ndarray:
    """(N, 4) ``x, y, w, h`` -> (N, 4) float32 ``x1, y1, x2, y2``."""
    out = np.asarray(values, dtype=np.float64).reshape(-1, 4).copy()
    out[:, 2:] += out[:, :2]
    return out.astype(np.float32)


def drop_missing_images(image_set: ImageSet, images_dir: Path) -> ImageSet:
    """Move records whose image file does not exist to ``image_set.missing``, with one
    ``MissingImagesWarning`` giving their count and the first few paths. If no image exists at
    all, that is an error (most likely the wrong images folder)."""
    present = [r for r in image_set.records if r.path.is_file()]
    missing = [r for r in image_set.records if not r.path.is_file()]
    if not missing:
        return image_set
    total = len(image_set.records)
    first = ", ".join(str(r.path) for r in missing[:_SHOW_MISSING])
    more = f" and {len(missing) - _SHOW_MISSING} more" if len(missing) > _SHOW_MISSING else ""
    if not present:
        raise DataFormatError(f"{image_set.source}: none of its {total} images exists under "
                              f"{images_dir} (e.g. {first}); pass the images folder (--images DIR)")
    warnings.warn(MissingImagesWarning(
        f"{image_set.source}: {len(missing)} of {total} images are missing under {images_dir}; "
        f"their entries are excluded: {first}{more}"), stacklevel=2)
    return ImageSet(image_set.source, present, image_set.missing + missing)


def ignore_mask(boxes: np.ndarray, out_w: int, out_h: int, down_ratio: int) -> np.ndarray:
    """(1, out_h, out_w) bool: True on every output cell that an ignore box (K, 4) in input
    pixels overlaps. Cell ``(x, y)`` covers ``[x, x + 1) x [y, y + 1)`` at output scale, so a box
    covers columns ``floor(x1 / R) .. ceil(x2 / R) - 1`` (generous at the borders: a cell half in
    an ignored crowd should not be penalised either)."""
    mask = np.zeros((1, out_h, out_w), dtype=bool)
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / down_ratio:
        c0, c1 = max(0, math.floor(x1)), min(out_w, math.ceil(x2))
        r0, r1 = max(0, math.floor(y1)), min(out_h, math.ceil(y2))
        if c1 > c0 and r1 > r0:
            mask[0, r0:r1, c0:c1] = True
    return mask


def apply_target_builders(sample: dict[str, Any], builders: Sequence[TargetBuilder]) -> None:
    """Merge each builder's targets into ``sample`` in order (numpy arrays become tensors so
    they batch like the others); a key clash is an error."""
    for builder in builders:
        extra = {k: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
                 for k, v in builder(sample).items()}
        clash = set(extra) & set(sample)
        if clash:
            raise ValueError(f"target builder {builder!r} returned existing keys {sorted(clash)}")
        sample.update(extra)


def negative_fraction(neg_ratio: float) -> float:
    """Share of negative pairs for a ratio Nneg / Npos: ``r / (1 + r)``."""
    neg_ratio = check_ratio(neg_ratio, "data.neg_ratio")
    return neg_ratio / (1.0 + neg_ratio)


class ImageTrainDataset(Dataset):
    """Augmented training images with CenterNet targets, singly or as pairs.

    Items: in ``"single"`` mode a sample dict; in ``"pair"`` mode ``(sample_a, sample_b,
    negative)``. The epoch has one item per image (``len(records)``; in pair mode times
    ``cfg.pair_epoch_fraction``, with a fresh random subset of anchors per epoch). In pair mode,
    ``floor(q * len + u)`` items per epoch (``q = r / (1 + r)``, ``r = cfg.neg_ratio``, ``u``
    uniform, so the expected share of negatives is exactly ``q``, i.e. Nneg / Npos = ``r``) are
    negative pairs: the anchor image and an image drawn uniformly from the other scenes. The
    rest are positive pairs: the anchor twice, with two independently drawn augmentations
    (affine, flip, HSV; identical when ``cfg.augment.enabled`` is false).

    A sample holds what ``MOTTrainDataset``'s does (``image`` (3, H, W), ``boxes`` (N, 4),
    ``hm``, ``ind``, ``wh``, ``reg``, ``reg_mask``, ``ids`` (N,)), plus ``hm_ignore``
    (1, H/R, W/R) bool (see ``ignore_mask``), and ``meta`` with ``image_id``, ``scene``,
    ``source``, ``orig_size`` (w, h), ``letterbox``, ``affine``, ``matrix`` and ``box_index``
    (N,) int64, the index of each kept box in its record. ``ids`` are pseudo-identities, one per
    annotated box over the whole set (``id_offsets[i] + box_index``; ``num_ids`` in total),
    FairMOT's labels for supervised pretraining; the unsupervised losses never read them.

    Randomness comes from ``np.random.default_rng([seed, epoch, index])`` (per item) and two
    epoch-wide streams (``epoch_rng``: anchor subset, negative items): independent of workers
    and order, reproduced exactly by a resumed run (the Trainer calls ``set_epoch``).
    """

    def __init__(self, records: Sequence[ImageRecord], cfg: DataConfig, *, mode: str = "pair",
                 target_builders: Sequence[TargetBuilder] = (), seed: int = 0,
                 down_ratio: int = 4) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "pair" and cfg.pair_frames != 2:
            raise ConfigError(f"data.pair_frames={cfg.pair_frames}: image pairs are two views of "
                              "one image or two images (set data.pair_frames=2)")
        self.records = list(records)
        if not self.records:
            raise DataFormatError("ImageTrainDataset: no images to train on")
        self.cfg = cfg
        self.mode = mode
        self.seed = int(seed)
        self.epoch = 0
        self.down_ratio = down_ratio
        self.target_builders = list(target_builders)
        self.input_w, self.input_h = (int(v) for v in cfg.input_size)
        counts = np.array([len(r.boxes) for r in self.records], dtype=np.int64)
        self.id_offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.num_ids = int(counts.sum())
        self.neg_fraction = negative_fraction(cfg.neg_ratio) if mode == "pair" else 0.0
        # images grouped by scene, for O(1) draws of "an image of another scene"
        scenes, codes = np.unique([r.scene for r in self.records], return_inverse=True)
        self.scene_names = [str(name) for name in scenes]
        self.scene_codes = codes.astype(np.int64)
        self._by_scene = np.argsort(self.scene_codes, kind="stable")
        sizes = np.bincount(self.scene_codes, minlength=len(scenes))
        self._scene_start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._scene_size = sizes.astype(np.int64)
        if self.neg_fraction > 0 and len(scenes) < 2:
            raise ConfigError(
                f"data.neg_ratio={cfg.neg_ratio} needs images of at least two scenes for negative "
                f"pairs, but all {len(self.records)} images belong to scene "
                f"{self.scene_names[0]!r} (set data.neg_ratio=0, or change the scene rule: "
                "--scene-pattern)")
        self._negatives: tuple[int, np.ndarray] | None = None

    # ------------------------------------------------------------------------------------------
    @property
    def frames_per_item(self) -> int:
        """Images an item puts through the network: 2 in pair mode, else 1."""
        return 2 if self.mode == "pair" else 1

    def __len__(self) -> int:
        if self.mode == "pair":
            return max(1, round(len(self.records) * self.cfg.pair_epoch_fraction))
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of ``epoch`` (call before each epoch, in the main process)."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        """The generator of item ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def epoch_rng(self, stream: int) -> np.random.Generator:
        """An epoch-wide generator; the spawn key keeps it apart from every item's stream."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch],
                                                            spawn_key=(stream,)))

    def anchor(self, index: int) -> int:
        """The image an epoch's ``index`` starts from (a per-epoch subset when the pair epoch is
        shorter than the image list)."""
        if self.mode == "pair" and len(self) < len(self.records):
            order = self.epoch_rng(ANCHOR_STREAM).permutation(len(self.records))
            return int(order[index])
        return index

    def negative_items(self) -> np.ndarray:
        """(len,) bool: which items of the current epoch are negative pairs."""
        if self._negatives is None or self._negatives[0] != self.epoch:
            rng = self.epoch_rng(NEGATIVE_STREAM)
            n = len(self)
            # stochastic rounding: the expected count is exactly neg_fraction * n
            count = min(n, math.floor(self.neg_fraction * n + rng.random()))
            flags = np.zeros(n, dtype=bool)
            flags[rng.permutation(n)[:count]] = True
            self._negatives = (self.epoch, flags)
        return self._negatives[1]

    def other_scene_image(self, image: int, rng: np.random.Generator) -> int:
        """An image drawn uniformly from the scenes other than ``image``'s."""
        code = self.scene_codes[image]
        start, size = self._scene_start[code], self._scene_size[code]
        pos = int(rng.integers(len(self.records) - size))
        if pos >= start:
            pos += size  # skip over the anchor's scene in the scene-sorted order
        return int(self._by_scene[pos])

    def plan(self, index: int, rng: np.random.Generator | None = None) -> tuple[int, int, bool]:
        """``(image_a, image_b, negative)`` of item ``index`` without loading anything (single
        mode: ``(image, image, False)``). ``rng`` is the item's generator (a fresh one if None)."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        first = self.anchor(index)
        if self.mode == "single" or not self.negative_items()[index]:
            return first, first, False
        return first, self.other_scene_image(first, rng or self.rng(index)), True

    def _affine(self, rng: np.random.Generator) -> AffineParams | None:
        return sample_affine(rng, self.cfg.augment) if self.cfg.augment.enabled else None

    def __getitem__(self, index: int
                    ) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any], bool]:
        rng = self.rng(index)
        first, second, negative = self.plan(index, rng)
        image_a = read_image(self.records[first].path)
        sample_a = self.load_sample(first, image_a, self._affine(rng), rng)
        if self.mode == "single":
            return sample_a
        image_b = read_image(self.records[second].path) if negative else image_a
        sample_b = self.load_sample(second, image_b, self._affine(rng), rng)
        return sample_a, sample_b, negative

    def load_sample(self, k: int, image: np.ndarray, affine: AffineParams | None,
                    rng: np.random.Generator) -> dict[str, Any]:
        """Record ``k`` with its (H, W, 3) uint8 BGR ``image`` through ``affine`` (None:
        letterbox only) and HSV jitter from ``rng``; targets, ignore mask, target builders."""
        record = self.records[k]
        hsv = sample_hsv(rng, self.cfg.augment.hsv) if self.cfg.augment.enabled else None
        out = transform_frame(image, record.boxes, self.input_w, self.input_h, affine=affine,
                              hsv=hsv)
        # any part of an ignore region left in the image still removes its penalty
        ignore, _ = transform_boxes(record.ignore, out.matrix, self.input_w, self.input_h,
                                    min_size=1e-3, min_area_frac=0.0)
        ids = self.id_offsets[k] + out.kept
        sample: dict[str, Any] = {"image": out.image, "boxes": torch.from_numpy(out.boxes)}
        sample.update(encode_centernet_targets(out.boxes, ids, self.input_w, self.input_h,
                                               self.down_ratio))
        sample["hm_ignore"] = torch.from_numpy(ignore_mask(
            ignore, self.input_w // self.down_ratio, self.input_h // self.down_ratio,
            self.down_ratio))
        sample["meta"] = {"image_id": record.image_id, "scene": record.scene,
                          "source": record.source,
                          "orig_size": (int(image.shape[1]), int(image.shape[0])),
                          "letterbox": out.letterbox, "affine": affine or AffineParams(),
                          "matrix": out.matrix, "box_index": out.kept}
        apply_target_builders(sample, self.target_builders)
        return sample


def read_image_sets(paths: Sequence[str | Path], data_format: str, *,
                    images_dir: str | Path | None = None, category: str | int = "person",
                    scene_pattern: str | None = DEFAULT_SCENE_PATTERN) -> list[ImageSet]:
    """Read each annotation path with the reader of ``data_format`` (``crowdhuman``: a folder
    with ``annotation_train.odgt`` or an ``.odgt`` file; ``coco``: a JSON file, or a folder holding
    exactly one). Missing images are excluded with a warning per file."""
    check_scene_pattern(scene_pattern)
    if data_format == "crowdhuman":
        from utrack.data.crowdhuman import read_odgt

        return [read_odgt(p, images_dir, scene_pattern=scene_pattern) for p in paths]
    if data_format == "coco":
        from utrack.data.coco import read_coco

        return [read_coco(p, images_dir, category=category, scene_pattern=scene_pattern)
                for p in paths]
    raise ConfigError(f"data.format={data_format!r} is not image data (expected crowdhuman or "
                      "coco; MOTChallenge video data trains with tools/train.py)")
