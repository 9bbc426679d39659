"""COCO-format person detection (``instances_*.json``-style) as image training data.

Read with pycocotools' index after our own checks (pycocotools asserts or raises ``KeyError``
on malformed files; we name the file and the entry instead). Boxes of the chosen category
(``person`` by name, or a category id) are objects; those with ``iscrowd: 1`` (or an
``ignore: 1`` field, as CityPersons-style files have) are ignore regions. Annotations of other
categories are not used. Images without any box of the category are kept (background only).

Scenes: an image's ``video_id`` when present (video datasets converted to COCO, such as
CenterTrack's MOT conversion), otherwise the scene rule on the file name without its suffix
(``utrack.data.images.scene_of``: ``MOT17-02-FRCNN_000001.jpg`` is scene ``MOT17-02``), so unrelated
photos are each their own scene.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO

from utrack.data.images import (DEFAULT_SCENE_PATTERN, ImageRecord, ImageSet, drop_missing_images,
                                scene_of, xywh_boxes)
from utrack.errors import DataFormatError

REQUIRED = ("images", "annotations", "categories")


def find_coco_json(path: str | Path) -> Path:
    """``path`` itself if it is a file; in a folder, its only ``.json`` file."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataFormatError(f"{path}: no such file or folder (expected a COCO .json file)")
    found = sorted(path.glob("*.json"))
    if len(found) != 1:
        names = ", ".join(p.name for p in found[:5])
        raise DataFormatError(f"{path}: expected exactly one .json file in this folder, found "
                              f"{len(found)} ({names}); pass the file")
    return found[0]


def _load_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column "
                              f"{exc.colno})") from exc
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a JSON object at the top, got "
                              f"{type(data).__name__}")
    for key in REQUIRED:
        if not isinstance(data.get(key), list):
            raise DataFormatError(f"{path}: '{key}' must be a list (COCO files hold "
                                  f"{', '.join(REQUIRED)})")
    return data


def _check_entries(path: Path, data: dict[str, Any]) -> None:
    """Every field we (and pycocotools' index) read, with the entry named on failure."""
    for key, fields in (("images", ("id", "file_name")), ("categories", ("id", "name")),
                        ("annotations", ("id", "image_id", "category_id", "bbox"))):
        for k, entry in enumerate(data[key]):
            if not isinstance(entry, dict):
                raise DataFormatError(f"{path}: {key}[{k}] must be a JSON object")
            for name in fields:
                if name not in entry:
                    raise DataFormatError(f"{path}: {key}[{k}] has no '{name}'")
    image_ids = {img["id"] for img in data["images"]}
    if len(image_ids) != len(data["images"]):
        raise DataFormatError(f"{path}: image ids are not unique")
    for k, ann in enumerate(data["annotations"]):
        where = f"{path}: annotations[{k}] (id {ann['id']})"
        if ann["image_id"] not in image_ids:
            raise DataFormatError(f"{where}: image_id {ann['image_id']!r} is not in 'images'")
        box = ann["bbox"]
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
                or not all(math.isfinite(v) for v in box)):
            raise DataFormatError(f"{where}: bbox must be 4 finite numbers x, y, w, h, got {box!r}")
        if box[2] < 0 or box[3] < 0:
            raise DataFormatError(f"{where}: bbox has a negative width or height: {box!r}")


def _category_id(path: Path, coco: COCO, category: str | int) -> int:
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    if isinstance(category, int) or (isinstance(category, str) and category.isdigit()):
        if int(category) in names:
            return int(category)
    else:
        ids = coco.getCatIds(catNms=[category])
        if len(ids) == 1:
            return int(ids[0])
    raise DataFormatError(f"{path}: no single category {category!r} (categories: "
                          f"{', '.join(f'{i}={n}' for i, n in sorted(names.items())[:20])})")


def read_coco(path: str | Path, images_dir: str | Path | None = None, *,
              category: str | int = "person", scene_pattern: str | None = DEFAULT_SCENE_PATTERN,
              check_images: bool = True) -> ImageSet:
    """Read a COCO detection JSON into an ``ImageSet``.

    Args:
        images_dir: folder the images' ``file_name`` are relative to (default: the JSON's folder).
        category: category name or id to train on.
        check_images: exclude images whose file is missing, warning once with their count
            (``MissingImagesWarning``); an error if none exists.
    """
    path = find_coco_json(path)
    images = Path(images_dir) if images_dir is not None else path.parent
    data = _load_json(path)
    _check_entries(path, data)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        coco.createIndex()
    cat_id = _category_id(path, coco, category)
    records: list[ImageRecord] = []
    for k, img in enumerate(data["images"]):
        boxes, ignore = [], []
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]], catIds=[cat_id])):
            crowd = ann.get("iscrowd", 0) == 1 or ann.get("ignore", 0) == 1
            (ignore if crowd else boxes).append(ann["bbox"])
        file_name = str(img["file_name"])
        scene = (f"video:{img['video_id']}" if "video_id" in img
                 else scene_of(str(Path(file_name).with_suffix("")), scene_pattern))
        records.append(ImageRecord(image_id=str(img["id"]), path=images / file_name,
                                   boxes=xywh_boxes(boxes), ignore=xywh_boxes(ignore),
                                   scene=scene, source=f"{path}: images[{k}]"))
    if not records:
        raise DataFormatError(f"{path}: no images")
    image_set = ImageSet(path, records)
    return drop_missing_images(image_set, images) if check_images else image_set


__all__ = ["find_coco_json", "read_coco"]
