"""train -> track -> eval on real MOTChallenge data (MOT17-mini), as a user runs the tools."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from utrack.data.mot import read_seqinfo
from utrack.data.motfile import read_mot_txt

TINY = ["model.backbone=resnet18", "model.head_conv=16", "data.input_size=[256, 160]",
        "data.num_workers=0", "train.batch_size=4"]


@pytest.mark.slow
def test_train_track_eval_on_mot17_mini(tool, shared_data, tmp_path):
    data = shared_data / "MOT17-mini"
    out = tmp_path / "run"
    res = tool("tools/train.py", "--data", str(data), "--out", str(out), "--epochs", "1",
               "--set", *TINY)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "7 sequences" in res.stdout and "wrote" in res.stderr + res.stdout
    ckpt = out / "checkpoint_last.pth"
    assert ckpt.is_file() and (out / "config.yaml").is_file()

    results = tmp_path / "results"
    res = tool("tools/track.py", "--ckpt", str(ckpt), "--input", str(data), "--out", str(results),
               "--quiet", "--set", "tracker.conf_thres=0.05")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "network" in res.stdout and "association" in res.stdout
    names = sorted(p.stem for p in results.glob("*.txt"))
    assert names == sorted(read_seqinfo(d).name for d in data.iterdir() if d.is_dir())
    rows = np.concatenate([read_mot_txt(p).reshape(-1, 10) for p in results.glob("*.txt")])
    if len(rows):
        assert np.all(rows[:, 7:] == -1) and np.all(rows[:, 4:6] > 0)
    assert (results / "config.yaml").is_file()

    report = tmp_path / "metrics.json"
    res = tool("tools/eval.py", "--gt", str(data), "--results", str(results), "--json", str(report))
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads(report.read_text())
    assert len(metrics["sequences"]) == 7
    combined = metrics["combined"]
    assert set(combined) >= {"MOTA", "IDF1", "HOTA", "MT", "ML", "FP", "FN", "IDS", "Frag"}
    assert combined["MOTA"] <= 1.0 and 0.0 <= combined["IDF1"] <= 1.0
    assert isinstance(combined["FN"], int) and combined["FN"] > 0


def test_track_rejects_corrupt_checkpoint(tool, tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint at all")
    res = tool("tools/track.py", "--ckpt", str(bad), "--input", str(tmp_path))
    assert res.returncode == 2
    assert "bad.pth" in res.stderr and "Traceback" not in res.stderr


def test_train_rejects_unknown_config_key(tool, tmp_path):
    res = tool("tools/train.py", "--out", str(tmp_path), "--set", "train.bach_size=2")
    assert res.returncode == 2
    assert "train.bach_size" in res.stderr and "did you mean 'train.batch_size'" in res.stderr


@pytest.mark.slow
def test_occlusion_model_tracks_video_with_heatmap_overlay(tool, shared_data, tmp_path):
    """--occ trains the extra heads; track.py --save-video draws heatmap + tracks on a video."""
    import cv2

    data = shared_data / "MOT17-mini" / "MOT17-09-FRCNN"
    out = tmp_path / "run"
    res = tool("tools/train.py", "--data", str(data), "--out", str(out), "--epochs", "1",
               "--occ", "--no-eval", "--set", *TINY)
    assert res.returncode == 0, res.stderr[-3000:]
    res = tool("tools/track.py", "--ckpt", str(out / "checkpoint_last.pth"), "--input", str(data),
               "--out", str(tmp_path / "results"), "--save-video", "--quiet")
    assert res.returncode == 0, res.stderr[-3000:]
    video = tmp_path / "results" / "MOT17-09-FRCNN.mp4"
    cap = cv2.VideoCapture(str(video))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, image = cap.read()
    cap.release()
    assert ok and frames == read_seqinfo(data).seq_length
    assert image.shape[:2] == (1080, 1920)

    # --occ-source none: the same model with refinding off, recorded in the saved config
    res = tool("tools/track.py", "--ckpt", str(out / "checkpoint_last.pth"), "--input", str(data),
               "--out", str(tmp_path / "plain"), "--occ-source", "none", "--quiet")
    assert res.returncode == 0, res.stderr[-3000:]
    saved = yaml.safe_load((tmp_path / "plain" / "config.yaml").read_text())
    assert saved["occlusion"]["enabled"] and saved["occlusion"]["tau_w"] == 0
    assert not (tmp_path / "plain" / "refound").exists()


@pytest.mark.slow
def test_default_run_tracks_and_evaluates_the_held_out_sequence(tool, tmp_path):
    """The built-in default (generated data, here tiny): training ends by tracking the held-out
    sequence, printing the table and saving metrics.json, with and without refinding."""
    out = tmp_path / "run"
    res = tool("tools/train.py", "--reid", "unsupervised", "--occ", "--out", str(out),
               "--epochs", "1", "--set", *TINY, f"data.synthetic.root={tmp_path / 'syn'}",
               "data.synthetic.num_train=1", "data.synthetic.num_val=1",
               "data.synthetic.frames=16", "data.synthetic.width=256",
               "data.synthetic.height=160")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "COMBINED" in res.stdout and "without refinding" in res.stdout
    metrics = json.loads((out / "results" / "metrics.json").read_text())
    names = set(metrics["sequences"])
    assert names == {p.name for p in (tmp_path / "syn" / "val").iterdir()}
    for section in (metrics["combined"], metrics["without_refinding"]["combined"]):
        assert set(section) >= {"MOTA", "IDF1", "HOTA", "FN", "IDS"}
    assert {"precision", "recall", "num_true"} <= set(metrics["occlusion_centers"])
    assert (out / "results" / "config.yaml").is_file()
    assert (out / "results_without_refinding" / "config.yaml").is_file()

    # re-ID of the same checkpoint on both generated sequences: across them (the paper's
    # protocol) and within each; a gallery cut to the query's own sequence keeps every true
    # match and drops distractors, so neither number can fall
    reid_out = tmp_path / "reid"
    res = tool("tools/eval_reid.py", "--ckpt", str(out / "checkpoint_last.pth"), "--data",
               str(tmp_path / "syn" / "train"), str(tmp_path / "syn" / "val"),
               "--out", str(reid_out), "--quiet")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "within each sequence" in res.stdout
    reid = json.loads((reid_out / "reid_metrics.json").read_text())
    assert len(reid["sequences"]) == 2 and reid["queries"] > 0
    within = reid["within_sequence"]
    assert within["queries"] == reid["queries"]
    assert within["rank1"] >= reid["rank1"] and within["mAP"] >= reid["mAP"] - 1e-12
    for name in ("embeddings.png", "assignment.png", "config.yaml"):
        assert (reid_out / name).is_file()
