"""CrowdHuman annotations (``.odgt``): one JSON object per line.

A line is ``{"ID": "<image id>", "gtboxes": [box, ...]}``; a box has ``tag`` (``person`` or
``mask``), ``fbox`` (full body), ``vbox`` (visible part) and ``hbox`` (head), each ``x, y, w, h``
in pixels, and ``extra`` (``ignore``, ``occ``, ``box_id``, ...). We train on the full-body
``fbox`` (as FairMOT and UTrack do). Boxes tagged ``mask`` or with ``extra.ignore == 1`` are
ignore regions: no object, no penalty (see ``utrack.data.images``). The image of a line is
``Images/<ID>.jpg`` beside the ``.odgt`` file unless another folder is given.

Every malformed line is an error naming ``file:line``; blank lines are skipped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from utrack.data.images import (DEFAULT_SCENE_PATTERN, ImageRecord, ImageSet, drop_missing_images,
                                scene_of, xywh_boxes)
from utrack.errors import DataFormatError

TAGS = ("person", "mask")
BOX_FIELDS = ("fbox", "vbox", "hbox")
DEFAULT_ANNOTATION = "annotation_train.odgt"
IMAGE_SUFFIX = ".jpg"


def find_odgt(path: str | Path) -> Path:
    """``path`` itself if it is a file; in a folder, its ``annotation_train.odgt``."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataFormatError(f"{path}: no such file or folder (expected a CrowdHuman .odgt file "
                              "or the folder holding annotation_train.odgt)")
    candidate = path / DEFAULT_ANNOTATION
    if candidate.is_file():
        return candidate
    found = sorted(p.name for p in path.glob("*.odgt"))
    raise DataFormatError(f"{path}: no {DEFAULT_ANNOTATION} in this folder"
                          + (f" (found {', '.join(found)}: pass the file itself)" if found else ""))


def _box(entry: dict[str, Any], key: str, where: str) -> list[float]:
    value = entry.get(key)
    if (not isinstance(value, (list, tuple)) or len(value) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            or not all(math.isfinite(v) for v in value)):
        raise DataFormatError(f"{where}: '{key}' must be 4 finite numbers x, y, w, h, "
                              f"got {value!r}")
    if value[2] < 0 or value[3] < 0:
        raise DataFormatError(f"{where}: '{key}' has a negative width or height: {value!r}")
    return [float(v) for v in value]


def parse_odgt_line(text: str, where: str, images_dir: Path, *, box_field: str = "fbox",
                    scene_pattern: str | None = DEFAULT_SCENE_PATTERN) -> ImageRecord:
    """One ``.odgt`` line -> ``ImageRecord`` (``where`` is ``file:line`` for messages)."""
    if box_field not in BOX_FIELDS:
        raise ValueError(f"box_field must be one of {BOX_FIELDS}, got {box_field!r}")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(obj, dict):
        raise DataFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    image_id = obj.get("ID")
    if not isinstance(image_id, str) or not image_id:
        raise DataFormatError(f"{where}: missing or empty 'ID' (the image name without .jpg)")
    gtboxes = obj.get("gtboxes")
    if not isinstance(gtboxes, list):
        raise DataFormatError(f"{where}: 'gtboxes' must be a list, got {gtboxes!r:.80}")
    boxes: list[list[float]] = []
    ignore: list[list[float]] = []
    for k, entry in enumerate(gtboxes):
        at = f"{where}: gtboxes[{k}]"
        if not isinstance(entry, dict):
            raise DataFormatError(f"{at}: expected a JSON object, got {entry!r:.80}")
        tag = entry.get("tag")
        if tag not in TAGS:
            raise DataFormatError(f"{at}: tag {tag!r} is not one of {', '.join(TAGS)}")
        extra = entry.get("extra", {})
        if not isinstance(extra, dict):
            raise DataFormatError(f"{at}: 'extra' must be a JSON object, got {extra!r:.80}")
        flag = extra.get("ignore", 0)
        if flag not in (0, 1):  # also rejects true/false strings and other numbers
            raise DataFormatError(f"{at}: extra.ignore must be 0 or 1, got {flag!r}")
        box = _box(entry, box_field, at)
        (ignore if tag == "mask" or flag == 1 else boxes).append(box)
    return ImageRecord(image_id=image_id, path=images_dir / f"{image_id}{IMAGE_SUFFIX}",
                       boxes=xywh_boxes(boxes), ignore=xywh_boxes(ignore),
                       scene=scene_of(image_id, scene_pattern), source=where)


def read_odgt(path: str | Path, images_dir: str | Path | None = None, *,
              box_field: str = "fbox", scene_pattern: str | None = DEFAULT_SCENE_PATTERN,
              check_images: bool = True) -> ImageSet:
    """Read a CrowdHuman ``.odgt`` file (or the folder holding ``annotation_train.odgt``).

    Args:
        images_dir: folder of ``<ID>.jpg`` (default ``Images/`` beside the file).
        box_field: the box trained on (``fbox`` full body; ``vbox`` and ``hbox`` also work).
        scene_pattern: how a scene is read from an ID (``utrack.data.images.scene_of``).
        check_images: exclude entries whose image is missing, warning once with their count
            (``MissingImagesWarning``); an error if none exists.

    Raises ``DataFormatError`` naming ``file:line`` for a malformed line or a repeated ID.
    """
    path = find_odgt(path)
    images = Path(images_dir) if images_dir is not None else path.parent / "Images"
    records: list[ImageRecord] = []
    first_line: dict[str, int] = {}
    with open(path, encoding="utf-8") as handle:
        for lineno, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            record = parse_odgt_line(text, f"{path}:{lineno}", images, box_field=box_field,
                                     scene_pattern=scene_pattern)
            if record.image_id in first_line:
                raise DataFormatError(f"{path}:{lineno}: ID {record.image_id!r} already annotated "
                                      f"on line {first_line[record.image_id]}")
            first_line[record.image_id] = lineno
            records.append(record)
    if not records:
        raise DataFormatError(f"{path}: no annotation lines")
    image_set = ImageSet(path, records)
    return drop_missing_images(image_set, images) if check_images else image_set


__all__ = ["BOX_FIELDS", "DEFAULT_ANNOTATION", "TAGS", "find_odgt", "parse_odgt_line", "read_odgt"]
