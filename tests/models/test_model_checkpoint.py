"""Checkpoint io: atomic save, safe load, published formats, strict / partial / backbone loads."""

from __future__ import annotations

import pathlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from utrack.errors import CheckpointError
from utrack.models import (build_model, extract_state_dict, load_backbone_weights,
                           load_checkpoint, load_matching_weights, load_model_weights,
                           save_checkpoint)

FAIRMOT_HEADS = {"hm": 1, "wh": 4, "id": 128, "reg": 2}


def _small(heads: dict[str, int] | None = None, seed: int = 0):
    torch.manual_seed(seed)
    return build_model("resnet18", heads or {"hm": 1, "wh": 4, "id": 16}, head_conv=8).eval()


# ---------------------------------------------------------------------------- save / load files
def test_save_and_load_roundtrip_with_numpy_rng(tmp_path: Path) -> None:
    state = np.random.RandomState(7).get_state()
    payload = {"model": {"w": torch.arange(6.0)}, "epoch": 3, "rng": {"numpy": state},
               "history": [{"loss": 1.5}]}
    path = save_checkpoint(payload, tmp_path / "sub" / "ckpt.pth")
    assert path == tmp_path / "sub" / "ckpt.pth"
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 3 and loaded["history"] == [{"loss": 1.5}]
    torch.testing.assert_close(loaded["model"]["w"], torch.arange(6.0))
    restored = np.random.RandomState()
    restored.set_state(loaded["rng"]["numpy"])
    assert restored.randint(1 << 30) == np.random.RandomState(7).randint(1 << 30)
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.pth"]


def test_atomic_save_failure_keeps_old_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "ckpt.pth"
    save_checkpoint({"epoch": 1}, path)
    old_bytes = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"epoch": 2}, path)
    assert path.read_bytes() == old_bytes
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pth"]
    monkeypatch.undo()
    assert load_checkpoint(path) == {"epoch": 1}


def _truncated(path: Path) -> None:
    save_checkpoint({"model": {"w": torch.zeros(2000)}}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("make", [
    _truncated,
    lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)),
    lambda p: p.write_text("epoch: 3\nthis is not a checkpoint\n"),
    lambda p: p.write_bytes(b""),
], ids=["truncated", "random", "text", "empty"])
def test_corrupt_files_raise_naming_path(tmp_path: Path, make) -> None:
    path = tmp_path / "bad.pth"
    make(path)
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load_checkpoint(path)
    model = _small()
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load_model_weights(model, path)


def test_missing_and_non_dict_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found.*nope.pth"):
        load_checkpoint(tmp_path / "nope.pth")
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(CheckpointError, match=re.escape(str(path)) + ".*list"):
        load_checkpoint(path)


def test_arbitrary_objects_refused_unless_trusted(tmp_path: Path) -> None:
    path = tmp_path / "obj.pth"
    torch.save({"where": pathlib.PurePosixPath("/data")}, path)
    with pytest.raises(CheckpointError, match="PurePosixPath.*trusted=True"):
        load_checkpoint(path)
    assert load_checkpoint(path, trusted=True)["where"] == pathlib.PurePosixPath("/data")


# ----------------------------------------------------------------------------- state-dict formats
def test_extract_state_dict_formats() -> None:
    sd = {"a.weight": torch.ones(2), "b.bias": torch.zeros(1)}
    prefixed = {"module." + k: v for k, v in sd.items()}
    for obj in (sd, {"model": sd, "epoch": 1}, {"epoch": 3, "state_dict": prefixed}, prefixed):
        out = extract_state_dict(obj)
        assert list(out) == ["a.weight", "b.bias"]
    with pytest.raises(CheckpointError, match="epoch"):
        extract_state_dict({"epoch": 3, "optimizer": {}})


def test_published_format_loads_strictly_and_reproduces_outputs(tmp_path: Path) -> None:
    torch.manual_seed(1)
    trained = build_model("dla34", FAIRMOT_HEADS).eval()
    with torch.no_grad():  # make BN statistics and offsets non-trivial
        for name, buf in trained.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
        trained.ida_up.node_2.conv.conv_offset_mask.weight.normal_(0, 0.01)
    published = {"epoch": 3,
                 "state_dict": {"module." + k: v for k, v in trained.state_dict().items()}}
    path = tmp_path / "fairmot_dla34.pth"
    torch.save(published, path)

    torch.manual_seed(2)
    fresh = build_model("dla34", FAIRMOT_HEADS).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = trained(x)
        before = fresh(x)
    assert not torch.allclose(before["wh"], expected["wh"])
    report = load_model_weights(fresh, path)
    assert report.complete and len(report.loaded) == 402
    with torch.no_grad():
        after = fresh(x)
    for name in FAIRMOT_HEADS:
        torch.testing.assert_close(after[name], expected[name])


def test_strict_load_lists_offending_names() -> None:
    model = _small()
    sd = model.state_dict()
    missing = {k: v for k, v in sd.items() if not k.startswith("wh.")}
    with pytest.raises(CheckpointError, match=r"missing 4 .*wh\.0\.weight"):
        load_model_weights(model, missing)
    extra = dict(sd, **{"occ.2.bias": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"unexpected 1 .*occ\.2\.bias"):
        load_model_weights(model, extra)
    load_model_weights(model, extra, strict=False)  # names on one side only are fine then
    wrong = dict(sd, **{"id.2.bias": torch.zeros(3)})
    with pytest.raises(CheckpointError, match=r"id\.2\.bias \(3,\) vs \(16,\)"):
        load_model_weights(model, wrong, strict=False)


def test_load_matching_weights_skips_resized_head(tmp_path: Path) -> None:
    source = _small({"hm": 1, "wh": 4, "id": 32}, seed=1)
    target = _small({"hm": 1, "wh": 4, "id": 16}, seed=2)
    id_before = target.id[2].weight.clone()
    path = save_checkpoint({"model": source.state_dict(), "epoch": 5}, tmp_path / "c.pth")
    report = load_matching_weights(target, path)
    assert report.skipped_shape == [("id.2.weight", (32, 8, 1, 1), (16, 8, 1, 1)),
                                    ("id.2.bias", (32,), (16,))]
    assert report.missing == [] and report.unexpected == []
    assert len(report.loaded) == len(target.state_dict()) - 2
    src, dst = source.state_dict(), target.state_dict()
    for name in report.loaded:
        torch.testing.assert_close(dst[name], src[name])
    torch.testing.assert_close(target.id[2].weight, id_before)
    torch.testing.assert_close(dst["id.0.weight"], src["id.0.weight"])


# ---------------------------------------------------------------------------- backbone weights
def test_mobilenet_imagenet_weights_from_shared(shared: Path) -> None:
    path = shared / "weights" / "mobilenet_v2_imagenet_features.pth"
    file_sd = torch.load(path, weights_only=True)
    torch.manual_seed(0)
    model = build_model("mobilenet_v2", {"hm": 1}, head_conv=8)
    first = model.base.features[0][0].weight.detach().clone()
    report = load_backbone_weights(model, path)
    assert sorted(report.loaded) == sorted(file_sd) and len(report.loaded) == 312
    assert report.missing == [] and report.unexpected == [] and report.skipped_shape == []
    assert not torch.allclose(first, model.base.features[0][0].weight)
    for name, tensor in file_sd.items():
        torch.testing.assert_close(model.base.state_dict()[name], tensor)
    built = build_model("mobilenet_v2", {"hm": 1}, head_conv=8, pretrained=str(path))
    torch.testing.assert_close(built.base.features[18][0].weight, file_sd["features.18.0.weight"])


def test_resnet_torchvision_file_loads_and_ignores_fc(tmp_path: Path) -> None:
    torch.manual_seed(5)
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18_imagenet.pth"
    torch.save(reference.state_dict(), path)
    model = build_model("resnet18", {"hm": 1}, head_conv=8)
    report = load_backbone_weights(model, path)
    expected = [k for k in reference.state_dict() if not k.startswith("fc.")]
    assert sorted(report.loaded) == sorted(expected)
    assert report.unexpected == [] and report.missing == []
    torch.testing.assert_close(model.base.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_backbone_file_for_other_backbone_is_refused(shared: Path, tmp_path: Path) -> None:
    mobilenet = shared / "weights" / "mobilenet_v2_imagenet_features.pth"
    with pytest.raises(CheckpointError, match=re.escape(str(mobilenet)) + ".*resnet18"):
        load_backbone_weights(build_model("resnet18", {"hm": 1}, head_conv=8), mobilenet)
    with pytest.raises(CheckpointError, match="mobilenet_v2_imagenet_features"):
        build_model("dla34", {"hm": 1}, head_conv=8, pretrained=str(mobilenet))
