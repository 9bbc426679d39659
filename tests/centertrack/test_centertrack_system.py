"""CenterTrack assembled: per-frame detection with the previous inputs (against hand-computed
boxes and offsets), the occlusion plugin's decode and refinding steps on it, and train -> track
-> eval with the command-line tools on MOT17-mini."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from baselines import build_baseline
from baselines.centertrack.decode import decode_centertrack
from plugins import build_plugins
from utrack.data.transforms import Letterbox
from utrack.occlusion.step import CENTERS, SCORES

REPO = Path(__file__).resolve().parents[2]
H, W = 64, 128  # input; output grid 16 x 32


class StubModel(nn.Module):
    """Fixed head outputs: one object at output cell (x=5, y=3) with logit 4, reg (0.5, 0.25),
    wh (4, 8), ltrb (1, 2, 3, 4), tracking (1, -2); an occlusion peak at (2, 1), offset
    (0.5, 0.5). Records the inputs of every call."""

    def __init__(self, heads: dict[str, int]) -> None:
        super().__init__()
        self.heads = heads
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def forward(self, image, pre_image=None, pre_hm=None):
        self.calls.append((image, pre_image, pre_hm))
        out = {name: torch.zeros(1, c, H // 4, W // 4) for name, c in self.heads.items()}
        out["hm"] -= 10.0
        out["hm"][0, 0, 3, 5] = 4.0
        out["reg"][0, :, 3, 5] = torch.tensor([0.5, 0.25])
        out["wh"][0, :, 3, 5] = torch.tensor([4.0, 8.0])
        out["tracking"][0, :, 3, 5] = torch.tensor([1.0, -2.0])
        if "ltrb_amodal" in out:
            out["ltrb_amodal"][0, :, 3, 5] = torch.tensor([1.0, 2.0, 3.0, 4.0])
        if "occ_hm" in out:
            out["occ_hm"] -= 10.0
            out["occ_hm"][0, 0, 1, 2] = 3.0
            out["occ_off"][0, :, 1, 2] = torch.tensor([0.5, 0.5])
        return out


def test_decode_by_hand() -> None:
    stub = StubModel({"hm": 1, "reg": 2, "wh": 2, "tracking": 2, "ltrb_amodal": 4, "id": 3})
    outputs = stub(torch.zeros(1, 3, H, W))
    outputs["id"][0, :, 3, 5] = torch.tensor([3.0, 0.0, 4.0])
    boxes, scores, tracking, emb = decode_centertrack(outputs, k=2, down_ratio=4)
    # centre (5.5, 3.25) at output scale; ltrb_amodal (1, 2, 3, 4) -> [4.5, 1.25, 8.5, 7.25] * 4
    assert boxes[0, 0].tolist() == [18.0, 5.0, 34.0, 29.0]
    assert torch.isclose(scores[0, 0], torch.sigmoid(torch.tensor(4.0)))
    assert tracking[0, 0].tolist() == [4.0, -8.0]
    assert torch.allclose(emb[0, 0], torch.tensor([0.6, 0.0, 0.8]))
    del outputs["ltrb_amodal"]
    boxes, _, _, emb = decode_centertrack(outputs, k=1, down_ratio=4)
    # wh (4, 8) around (5.5, 3.25): [3.5, -0.75, 7.5, 7.25] * 4
    assert boxes[0, 0].tolist() == [14.0, -3.0, 30.0, 29.0]


def test_detect_with_previous_inputs_and_occlusion_plugin(make_cfg) -> None:
    cfg = make_cfg("occlusion.enabled=true", "model.ltrb_amodal=false",
                   f"data.input_size=[{W}, {H}]")
    plugins = build_plugins(cfg)
    baseline = build_baseline(cfg, plugins)
    stub = StubModel(baseline.heads)
    tracker = baseline.make_tracker(frame_rate=30)
    letterbox = Letterbox(0.5, 0.0, 8.0)
    first, second = torch.rand(1, 3, H, W), torch.rand(1, 3, H, W)

    d1 = baseline.detect(stub, tracker, first, letterbox)
    image, pre_image, pre_hm = stub.calls[0]
    assert image is first and pre_image is first and pre_hm.shape == (1, 1, H, W) and pre_hm.sum() == 0
    # input box [14, -3, 30, 29] -> original ((x - 0) / 0.5, (y - 8) / 0.5)
    np.testing.assert_allclose(d1.boxes, [[28.0, -22.0, 60.0, 42.0]])
    # offset (1, -2) at output scale -> (4, -8) input pixels -> (8, -16) original pixels
    np.testing.assert_allclose(d1.extras["tracking"], [[8.0, -16.0]])
    # the occlusion plugin's decode step ran: (2.5, 1.5) * 4 = (10, 6) -> (20, -4)
    np.testing.assert_allclose(d1.extras[CENTERS], [[20.0, -4.0]])
    assert d1.extras[SCORES][0] > 0.9
    out = tracker.update(d1)
    assert [r.track_id for r in out] == [1]

    d2 = baseline.detect(stub, tracker, second, letterbox)
    _, pre_image, pre_hm = stub.calls[1]
    assert pre_image is first
    # the track's box letterboxed again: centre (22, 13) -> a peak at row 13, column 22
    assert torch.nonzero(pre_hm[0, 0] == 1.0).tolist() == [[13, 22]]
    # moved back by its offset, the detection falls on the previous centre: same track
    assert [r.track_id for r in tracker.update(d2)] == [1]


def test_dataset_options_per_baseline(make_cfg) -> None:
    """What each baseline asks the training data for (the tools build the dataset from it)."""
    from utrack.data.collate import collate_frames, collate_pairs

    fairmot = make_cfg("model.arch=fairmot", "reid.mode=supervised")
    assert build_baseline(fairmot, []).dataset_options() == {"mode": "single"}
    assert build_baseline(fairmot, []).collate_fn() is collate_frames
    fairmot.reid.mode = "unsupervised"
    paired = build_baseline(fairmot, build_plugins(fairmot))
    assert paired.dataset_options() == {"mode": "pair"} and paired.collate_fn() is collate_pairs
    ct = build_baseline(make_cfg(), [])
    options = ct.dataset_options()
    assert options["mode"] == "previous" and ct.collate_fn() is collate_frames
    assert options["previous_builder"].cfg is ct.cfg.data.centertrack


def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


def _training_tools_build_previous_frames(cfg, data: Path) -> bool:
    """Whether utrack.engine.setup builds the dataset the baseline asks for
    (``baseline.dataset_options()``), which the tools need to train CenterTrack."""
    from utrack.data.mot import IdentityIndex, MOTSequence
    from utrack.engine.setup import TrainingData

    seqs = [MOTSequence(data / "MOT17-02-FRCNN")]
    data = TrainingData(cfg, seqs, IdentityIndex(seqs), [], "all")
    try:
        return data.make_dataset(build_baseline(cfg, []), []).mode == "previous"
    except (TypeError, ValueError):  # not a mode the dataset of the old make_dataset accepts
        return False


@pytest.mark.slow
def test_train_track_eval_on_mot17_mini(shared_data: Path, tmp_path: Path, make_cfg) -> None:
    data = shared_data / "MOT17-mini"
    if not _training_tools_build_previous_frames(make_cfg(), data):
        pytest.skip("utrack.engine.setup.TrainingData.make_dataset does not use "
                    "baseline.dataset_options() yet (needed to train CenterTrack)")
    out = tmp_path / "run"
    tiny = ["model.backbone=resnet18", "model.head_conv=16", "data.input_size=[256, 160]",
            "data.num_workers=0", "train.batch_size=4", "train.eval_after=false"]
    res = _run("tools/train.py", "--arch", "centertrack", "--data", str(data), "--out", str(out),
               "--epochs", "1", "--occ", "--set", *tiny)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "training centertrack" in res.stdout
    ckpt = out / "checkpoint_last.pth"
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert {"model.base.pre_img_layer.0.weight", "model.tracking.2.bias"} <= {
        f"model.{k}" for k in saved["model"]}
    assert "occ_hm.2.bias" in saved["model"]
    assert {"hm", "wh", "reg", "tracking", "ltrb_amodal", "occ_hm"} <= set(saved["history"][0])

    results = tmp_path / "results"
    res = _run("tools/track.py", "--ckpt", str(ckpt), "--input", str(data), "--out",
               str(results), "--quiet", "--set", "tracker.conf_thres=0.05",
               "tracker.new_thresh=0.05")
    assert res.returncode == 0, res.stderr[-3000:]
    files = sorted(results.glob("*.txt"))
    assert len(files) == 7

    report = tmp_path / "metrics.json"
    res = _run("tools/eval.py", "--gt", str(data), "--results", str(results), "--json",
               str(report))
    assert res.returncode == 0, res.stderr[-3000:]
    combined = json.loads(report.read_text())["combined"]
    assert combined["MOTA"] <= 1.0 and 0.0 <= combined["IDF1"] <= 1.0 and combined["FN"] > 0
