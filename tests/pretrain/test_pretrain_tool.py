"""tools/pretrain_crowdhuman.py: the checkpoint hand-off to tools/train.py --init, the end-to-end
run on crowdhuman-mini, and its command-line behaviour."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import torch

from baselines import build_baseline
from plugins import build_plugins
from utrack.cli import default_config_files
from utrack.config import CONFIG_DIR, load_config
from utrack.engine.setup import initialise_weights

REPO = Path(__file__).resolve().parents[2]
NET = ["model.backbone=resnet18", "model.head_conv=16", "model.neck_channels=32"]
TINY = [*NET, "data.input_size=[192, 128]", "train.batch_size=4", "data.num_workers=0"]


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def model_of(files, overrides):
    cfg = load_config(files, overrides)
    return build_baseline(cfg, build_plugins(cfg)).build_model()


@pytest.mark.parametrize("reid_dim", [128, 64])
def test_pretraining_weights_load_into_a_train_model(tmp_path: Path, reid_dim: int) -> None:
    torch.manual_seed(0)
    pre = model_of([CONFIG_DIR / "crowdhuman.yaml"], [*NET, "occlusion.enabled=true"])
    ckpt = tmp_path / "pre.pth"
    torch.save({"format": "utrack-checkpoint-1", "model": pre.state_dict()}, ckpt)
    # the model tools/train.py builds for video data: supervised re-ID, no occlusion head
    torch.manual_seed(1)
    video = model_of(default_config_files("fairmot", synthetic=False), [*NET, f"reid.dim={reid_dim}"])
    report = initialise_weights(video, str(ckpt), verbose=False)
    occ = sorted(k for k in pre.state_dict() if k.startswith("occ_"))
    assert occ and sorted(report.unexpected) == occ  # reported as unused
    assert report.missing == []
    mismatched = [name for name, *_ in report.skipped_shape]
    if reid_dim == 128:
        assert mismatched == []
    else:  # the embedding head's last layer has another width: skipped, named
        assert mismatched == ["id.2.weight", "id.2.bias"]
    pre_sd, video_sd = pre.state_dict(), video.state_dict()
    assert sorted(report.loaded) == sorted(k for k in video_sd if k not in mismatched)
    for name in report.loaded:
        assert torch.equal(video_sd[name], pre_sd[name]), name


def test_cycas_makes_no_negatives_unless_asked() -> None:
    tool = load_tool("pretrain_crowdhuman")
    flags = tool.config_flags(tool.parse_args(["--data", "x", "--reid", "cycas"]))
    assert flags["data"]["neg_ratio"] == 0.0 and flags["reid"]["mode"] == "cycas"
    flags = tool.config_flags(tool.parse_args(["--data", "x", "--reid", "cycas", "--neg-ratio", "0.4"]))
    assert flags["data"]["neg_ratio"] == 0.4
    flags = tool.config_flags(tool.parse_args(["--data", "x", "--occ"]))
    assert "neg_ratio" not in flags.get("data", {}) and flags["occlusion"]["enabled"] is True


def test_malformed_annotation_exits_with_file_and_line(run_tool, crowdhuman_copy: Path,
                                                       tmp_path: Path) -> None:
    odgt = crowdhuman_copy / "annotation_train.odgt"
    lines = odgt.read_text().splitlines()
    lines[2] = lines[2][:40]
    odgt.write_text("\n".join(lines) + "\n")
    res = run_tool("tools/pretrain_crowdhuman.py", "--data", str(crowdhuman_copy),
                   "--out", str(tmp_path / "run"), "--set", *TINY)
    assert res.returncode == 2
    assert f"{odgt}:3: not valid JSON" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow
def test_pretrain_then_finetune_end_to_end(run_tool, shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "pre"
    res = run_tool("tools/pretrain_crowdhuman.py", "--data", str(shared_data / "crowdhuman-mini"),
                   "--reid", "unsupervised", "--occ", "--epochs", "1", "--out", str(out),
                   "--set", *TINY, "data.pair_epoch_fraction=0.5")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "39 images, 7 scenes, 814 boxes, 136 ignore regions" in res.stdout
    assert "on 20 samples from 39 images of 7 scenes" in res.stdout
    ckpt = out / "checkpoint_last.pth"
    payload = torch.load(ckpt, weights_only=False)
    assert payload["epoch"] == 1 and payload["config"]["data"]["neg_ratio"] == 0.25
    assert payload["config"]["reid"]["mode"] == "unsupervised"
    assert payload["meta"]["pretraining"]["images"] == 39
    assert any(k.startswith("occ_hm.") for k in payload["model"])
    history = payload["history"][0]
    assert {"reid/num_neg", "reid/num_pos", "occ_hm", "hm"} <= set(history)
    assert history["reid/num_neg"] > 0  # negative pairs reached the matching loss
    assert any((out / "tensorboard").iterdir()) and (out / "config.yaml").is_file()
    assert "tools/train.py --data MOT_ROOT --init" in res.stdout

    res = run_tool("tools/pretrain_crowdhuman.py", "--data", str(shared_data / "crowdhuman-mini"),
                   "--occ", "--epochs", "2", "--out", str(out), "--resume", str(ckpt),
                   "--set", *TINY, "data.pair_epoch_fraction=0.5")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "epoch 2/2" in res.stdout + res.stderr and "epoch 1/2:" not in res.stdout + res.stderr
    assert torch.load(ckpt, weights_only=False)["epoch"] == 2

    res = run_tool("tools/train.py", "--data", str(shared_data / "MOT17-mini"), "--init", str(ckpt),
                   "--epochs", "1", "--no-eval", "--out", str(tmp_path / "video"),
                   "--set", *TINY, "train.batch_size=8")
    assert res.returncode == 0, res.stderr[-3000:]
    found = re.search(r"--init \S+: loaded (\d+) tensors; skipped 0 with other shapes \[\]; "
                      r"0 missing from the checkpoint \[\]; (\d+) unused", res.stdout)
    assert found, res.stdout[-2000:]
    video_model = torch.load(tmp_path / "video" / "checkpoint_last.pth", weights_only=False)["model"]
    assert int(found.group(1)) == len(video_model)  # every tensor of the video model came in
    assert int(found.group(2)) == sum(k.startswith("occ_") for k in payload["model"])
