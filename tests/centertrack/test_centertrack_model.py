"""CenterTrack's model: official key names and shapes, and every head on every backbone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from baselines import build_baseline
from baselines.centertrack import CenterTrack
from plugins import build_plugins
from utrack.cli import default_config_files
from utrack.config import load_config
from utrack.errors import ConfigError


def test_dla34_keys_match_the_official_checkpoint(shared: Path) -> None:
    ref = json.loads(
        (shared / "reference" / "centertrack_dla34_state_dict_shapes.json").read_text())
    cfg = load_config(default_config_files("centertrack", synthetic=False))
    assert cfg.model.arch == "centertrack" and cfg.model.ltrb_amodal
    baseline = build_baseline(cfg, build_plugins(cfg))
    assert isinstance(baseline, CenterTrack)
    assert baseline.heads == {"hm": 1, "reg": 2, "wh": 2, "tracking": 2, "ltrb_amodal": 4}
    model = baseline.build_model()  # the tools call it without arguments
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert shapes == ref and len(ref) == 418
    # a checkpoint with exactly the official names and shapes loads strictly
    published = {k: torch.zeros(v) for k, v in ref.items()}
    model.load_state_dict(published, strict=True)

    cfg.model.ltrb_amodal = False
    plain = build_baseline(cfg, []).build_model().state_dict()
    assert set(plain) == {k for k in ref if not k.startswith("ltrb_amodal.")}


def test_heads_follow_reid_mode_and_plugins(make_cfg) -> None:
    small_config = make_cfg
    cfg = small_config("reid.mode=unsupervised", "occlusion.enabled=true", "reid.dim=32")
    baseline = build_baseline(cfg, build_plugins(cfg))
    assert baseline.heads == {"hm": 1, "reg": 2, "wh": 2, "tracking": 2, "ltrb_amodal": 4,
                              "id": 32, "occ_hm": 1, "occ_off": 2}
    assert baseline.needs_pairs and baseline.dataset_options()["mode"] == "previous_pair"
    cfg = small_config("model.ltrb_amodal=false", "reid.mode=cycas")
    assert build_baseline(cfg, build_plugins(cfg)).heads == {
        "hm": 1, "reg": 2, "wh": 2, "tracking": 2, "id": 128}
    with pytest.raises(ConfigError, match="supervised"):
        build_baseline(small_config("reid.mode=supervised"), [])


@pytest.mark.parametrize("backbone", ["dla34", "resnet18", "mobilenet_v2"])
def test_every_head_trains_on_each_backbone(make_cfg, backbone: str) -> None:
    """Forward and backward at 64x96 with the previous inputs: every head has the right shape
    and gets a gradient, and so do both previous-input stems."""
    cfg = make_cfg(f"model.backbone={backbone}", "reid.mode=unsupervised", "reid.dim=8",
                       "occlusion.enabled=true")
    baseline = build_baseline(cfg, build_plugins(cfg))
    torch.manual_seed(0)
    model = baseline.build_model()
    assert model.pre_inputs
    image, pre_image = torch.rand(2, 3, 64, 96), torch.rand(2, 3, 64, 96)
    pre_hm = torch.rand(2, 1, 64, 96)
    batch = {"image": image, "pre_image": pre_image, "pre_hm": pre_hm}
    outputs = baseline.forward_train(model, batch)
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        name: (2, c, 16, 24) for name, c in baseline.heads.items()}
    sum(v.square().mean() for v in outputs.values()).backward()
    for name in baseline.heads:
        grad = getattr(model, name)[0].weight.grad
        assert grad is not None and grad.abs().sum() > 0, name
    for stem in ("pre_img_layer", "pre_hm_layer"):
        grad = model.base.get_submodule(stem)[0].weight.grad
        assert grad is not None and grad.abs().sum() > 0, stem
    # the previous inputs change the output: they are really used
    with torch.no_grad():
        model.eval()
        a = model(image, pre_image, pre_hm)["hm"]
        b = model(image, pre_image, torch.zeros_like(pre_hm))["hm"]
    assert not torch.allclose(a, b)
