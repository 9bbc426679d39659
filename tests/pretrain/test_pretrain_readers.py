"""CrowdHuman (.odgt) and COCO readers: counts against independent parsing, ignore regions,
malformed input named by file and line, missing images counted and excluded."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from utrack.data.coco import read_coco
from utrack.data.crowdhuman import read_odgt
from utrack.data.images import MissingImagesWarning, read_image_sets, scene_of
from utrack.errors import DataFormatError


def independent_counts(odgt: Path) -> dict[str, tuple[list, list]]:
    """ID -> (person fboxes, ignore fboxes), by plain json over the lines."""
    out = {}
    for line in odgt.read_text().splitlines():
        entry = json.loads(line)
        person, ignore = [], []
        for box in entry["gtboxes"]:
            flag = box["tag"] == "mask" or box.get("extra", {}).get("ignore", 0) == 1
            (ignore if flag else person).append(box["fbox"])
        out[entry["ID"]] = (person, ignore)
    return out


def test_crowdhuman_mini_boxes_and_ignore_regions(crowdhuman_mini: Path) -> None:
    image_set = read_odgt(crowdhuman_mini)  # the folder: annotation_train.odgt + Images/
    want = independent_counts(crowdhuman_mini / "annotation_train.odgt")
    assert [r.image_id for r in image_set.records] == list(want)
    assert image_set.missing == []
    for record in image_set.records:
        person, ignore = want[record.image_id]
        assert record.boxes.shape == (len(person), 4) and record.ignore.shape == (len(ignore), 4)
        xywh = np.array(person, dtype=np.float32).reshape(-1, 4)
        np.testing.assert_array_equal(record.boxes[:, :2], xywh[:, :2])
        np.testing.assert_array_equal(record.boxes[:, 2:], xywh[:, :2] + xywh[:, 2:])
        assert record.path == crowdhuman_mini / "Images" / f"{record.image_id}.jpg"
        assert record.source.endswith(f"annotation_train.odgt:{list(want).index(record.image_id) + 1}")
    assert image_set.num_boxes == sum(len(p) for p, _ in want.values()) == 814
    assert image_set.num_ignore == sum(len(i) for _, i in want.values()) == 136
    # the first image: 34 boxes of which 12 are ignore regions (checked by eye in the file)
    first = image_set.records[0]
    assert (len(first.boxes), len(first.ignore)) == (22, 12)
    np.testing.assert_array_equal(first.ignore[0], [912, 484, 912 + 97, 484 + 109])


def test_scenes_of_crowdhuman_mini_are_the_mot17_sequences(crowdhuman_mini: Path) -> None:
    image_set = read_odgt(crowdhuman_mini)
    scenes = sorted({r.scene for r in image_set.records})
    assert scenes == ["MOT17-02", "MOT17-04", "MOT17-05", "MOT17-09", "MOT17-10", "MOT17-11",
                      "MOT17-13"]
    assert image_set.num_scenes == 7
    assert scene_of("MOT17-13-FRCNN_000005") == "MOT17-13"
    assert scene_of("MOT20-01_000012") == "MOT20-01"
    # genuine CrowdHuman IDs carry no scene: each image is its own
    assert scene_of("283554,35288000868e92d4") == "283554,35288000868e92d4"
    assert scene_of("MOT17-13-FRCNN_000005", None) == "MOT17-13-FRCNN_000005"


def test_genuine_crowdhuman_line_parses(crowdhuman_mini: Path) -> None:
    path = crowdhuman_mini / "schema_sample_from_mmdetection.odgt"
    record = read_odgt(path, check_images=False).records[0]
    entry = json.loads(path.read_text().splitlines()[0])
    persons = [b["fbox"] for b in entry["gtboxes"] if b["tag"] == "person"]
    assert record.image_id == "283554,35288000868e92d4"
    assert len(record.boxes) == len(persons) == 6
    x, y, w, h = persons[1]  # fbox (full body), not vbox or hbox
    np.testing.assert_array_equal(record.boxes[1], [x, y, x + w, y + h])
    np.testing.assert_array_equal(record.ignore, [[1387, 353, 1387 + 320, 353 + 285]])  # tag mask
    vbox = read_odgt(path, check_images=False, box_field="vbox").records[0]
    np.testing.assert_array_equal(vbox.boxes[1], [792, 24, 792 + 723, 24 + 1332])
    # its image is not available: reading with the image check is an error naming the folder
    with pytest.raises(DataFormatError, match="none of its 1 images exists under .*Images"):
        read_odgt(path)


@pytest.mark.parametrize("lineno, text, message", [
    (5, '{"ID": "x", "gtboxes": [', "not valid JSON"),
    (7, None, "gtboxes\\[2\\]: 'fbox' must be 4 finite numbers"),
    (9, '{"gtboxes": []}', "missing or empty 'ID'"),
    (15, '{"ID": "MOT17-05-FRCNN_000001", "gtboxes": []}', "already annotated on line 13"),
    (12, None, "tag 'people' is not one of person, mask"),
])
def test_malformed_line_names_file_and_line(crowdhuman_copy: Path, lineno: int, text: str | None,
                                            message: str) -> None:
    odgt = crowdhuman_copy / "annotation_train.odgt"
    lines = odgt.read_text().splitlines()
    if text is None:
        entry = json.loads(lines[lineno - 1])
        if "fbox" in message:
            entry["gtboxes"][2]["fbox"] = [1.0, 2.0, 3.0]
        else:
            entry["gtboxes"][0]["tag"] = "people"
        text = json.dumps(entry)
    lines[lineno - 1] = text
    odgt.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=f"annotation_train.odgt:{lineno}: .*{message}"):
        read_odgt(crowdhuman_copy)


def test_missing_images_are_counted_reported_once_and_excluded(crowdhuman_copy: Path) -> None:
    gone = ["MOT17-02-FRCNN_000003", "MOT17-09-FRCNN_000001", "MOT17-13-FRCNN_000005"]
    for image_id in gone:
        (crowdhuman_copy / "Images" / f"{image_id}.jpg").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image_set = read_odgt(crowdhuman_copy / "annotation_train.odgt")
    reports = [w for w in caught if issubclass(w.category, MissingImagesWarning)]
    assert len(reports) == 1
    text = str(reports[0].message)
    assert "3 of 39 images are missing" in text and "excluded" in text
    assert all(image_id in text for image_id in gone)
    assert len(image_set.records) == 36
    assert sorted(r.image_id for r in image_set.missing) == gone
    assert not {r.image_id for r in image_set.records} & set(gone)
    assert "3 entries without an image excluded" in image_set.summary()


def test_images_folder_can_be_given(crowdhuman_copy: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere"
    (crowdhuman_copy / "Images").rename(moved)
    with pytest.raises(DataFormatError, match="none of its 39 images exists"):
        read_odgt(crowdhuman_copy)
    image_set = read_odgt(crowdhuman_copy, moved)
    assert len(image_set.records) == 39 and image_set.records[0].path.parent == moved


def test_folder_without_annotation_train_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "annotation_val.odgt").write_text("")
    with pytest.raises(DataFormatError, match="no annotation_train.odgt .*annotation_val.odgt"):
        read_odgt(tmp_path)


# ----------------------------------------------------------------------------------------------
# COCO

def write_coco(root: Path, *, with_video: bool = False) -> Path:
    images = root / "images"
    images.mkdir(parents=True)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        cv2.imwrite(str(images / name), np.full((60, 80, 3), 100, np.uint8))
    imgs = [{"id": 7, "file_name": "a.jpg", "width": 80, "height": 60},
            {"id": 8, "file_name": "b.jpg", "width": 80, "height": 60},
            {"id": 9, "file_name": "c.jpg", "width": 80, "height": 60}]
    if with_video:
        for img, video in zip(imgs, (1, 1, 2)):
            img["video_id"] = video
    data = {
        "images": imgs,
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "bbox": [10, 5, 20, 40], "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [40, 0, 30, 50], "iscrowd": 1},
            {"id": 3, "image_id": 7, "category_id": 3, "bbox": [0, 0, 10, 10], "iscrowd": 0},
            {"id": 4, "image_id": 8, "category_id": 1, "bbox": [1.5, 2.5, 3, 4]},
            {"id": 5, "image_id": 8, "category_id": 1, "bbox": [5, 5, 5, 5], "ignore": 1},
            {"id": 6, "image_id": 9, "category_id": 3, "bbox": [0, 0, 10, 10], "iscrowd": 0},
        ],
    }
    path = root / "instances.json"
    path.write_text(json.dumps(data, indent=1))
    return path


def test_coco_person_boxes_and_crowd_ignore(tmp_path: Path) -> None:
    path = write_coco(tmp_path)
    image_set = read_coco(path, tmp_path / "images")
    by_id = {r.image_id: r for r in image_set.records}
    assert sorted(by_id) == ["7", "8", "9"]
    np.testing.assert_array_equal(by_id["7"].boxes, [[10, 5, 30, 45]])
    np.testing.assert_array_equal(by_id["7"].ignore, [[40, 0, 70, 50]])  # iscrowd
    np.testing.assert_array_equal(by_id["8"].boxes, [[1.5, 2.5, 4.5, 6.5]])
    np.testing.assert_array_equal(by_id["8"].ignore, [[5, 5, 10, 10]])  # ignore: 1
    assert by_id["9"].boxes.shape == (0, 4) and by_id["9"].ignore.shape == (0, 4)  # only a car
    assert len({r.scene for r in image_set.records}) == 3  # unrelated photos
    cars = read_coco(path, tmp_path / "images", category=3)
    assert [len(r.boxes) for r in cars.records] == [1, 0, 1]
    assert [len(r.boxes) for r in read_coco(path, tmp_path / "images", category="3").records] \
        == [1, 0, 1]


def test_coco_video_id_is_the_scene(tmp_path: Path) -> None:
    records = read_coco(write_coco(tmp_path, with_video=True), tmp_path / "images").records
    assert [r.scene for r in records] == ["video:1", "video:1", "video:2"]


def test_coco_errors_name_the_file_and_entry(tmp_path: Path) -> None:
    path = write_coco(tmp_path)
    with pytest.raises(DataFormatError, match="no single category 'bicycle' .*1=person, 3=car"):
        read_coco(path, tmp_path / "images", category="bicycle")
    text = path.read_text().splitlines()
    text[3] = text[3] + ","  # a syntax error on line 4 of the indented JSON
    path.write_text("\n".join(text))
    with pytest.raises(DataFormatError, match=r"instances.json:\d+: not valid JSON"):
        read_coco(path, tmp_path / "images")
    data = json.loads(write_coco(tmp_path / "again").read_text())
    data["annotations"][3]["bbox"] = [1, 2, -3, 4]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"bad.json: annotations\[3\] \(id 4\): .*negative"):
        read_coco(bad, tmp_path / "again" / "images")
    del data["annotations"]
    bad.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match="'annotations' must be a list"):
        read_coco(bad)


def test_coco_missing_images_counted(tmp_path: Path) -> None:
    path = write_coco(tmp_path)
    (tmp_path / "images" / "b.jpg").unlink()
    with pytest.warns(MissingImagesWarning, match="1 of 3 images are missing .*b.jpg"):
        image_set = read_coco(path, tmp_path / "images")
    assert [r.image_id for r in image_set.records] == ["7", "9"]
    assert [r.image_id for r in image_set.missing] == ["8"]


def test_read_image_sets_dispatches_on_format(crowdhuman_mini: Path, tmp_path: Path) -> None:
    (odgt,) = read_image_sets([crowdhuman_mini], "crowdhuman")
    assert len(odgt.records) == 39
    (coco,) = read_image_sets([write_coco(tmp_path)], "coco", images_dir=tmp_path / "images")
    assert len(coco.records) == 3
    with pytest.raises(Exception, match="not image data"):
        read_image_sets([crowdhuman_mini], "mot")
    with pytest.raises(Exception, match="named group"):
        read_image_sets([crowdhuman_mini], "crowdhuman", scene_pattern=r"(.+)_\d+")
