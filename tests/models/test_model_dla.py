"""DLA-34 parameter tree against the official checkpoints' json, and its bilinear upsamplers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from utrack.models import build_model
from utrack.models.neck import bilinear_upsample, fill_bilinear_

FAIRMOT_HEADS = {"hm": 1, "wh": 4, "id": 128, "reg": 2}
CENTERTRACK_HEADS = {"hm": 1, "reg": 2, "wh": 2, "tracking": 2, "ltrb_amodal": 4}


def _shapes(model: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def fairmot_model() -> torch.nn.Module:
    return build_model("dla34", FAIRMOT_HEADS)


def test_fairmot_state_dict_equals_official(shared: Path, fairmot_model) -> None:
    ref = json.loads((shared / "reference" / "fairmot_dla34_state_dict_shapes.json").read_text())
    assert len(ref) == 402
    assert _shapes(fairmot_model) == ref


def test_centertrack_state_dict_equals_official(shared: Path) -> None:
    ref = json.loads(
        (shared / "reference" / "centertrack_dla34_state_dict_shapes.json").read_text())
    model = build_model("dla34", CENTERTRACK_HEADS, pre_inputs=True)
    assert _shapes(model) == ref


def test_bilinear_kernel_by_hand() -> None:
    w = fill_bilinear_(torch.empty(2, 1, 4, 4))
    taps = torch.tensor([0.25, 0.75, 0.75, 0.25])
    torch.testing.assert_close(w[1, 0], taps[:, None] * taps[None, :])
    w8 = fill_bilinear_(torch.empty(1, 1, 8, 8))
    taps8 = torch.tensor([0.125, 0.375, 0.625, 0.875, 0.875, 0.625, 0.375, 0.125])
    torch.testing.assert_close(w8[0, 0], taps8[:, None] * taps8[None, :])


@pytest.mark.parametrize("name,factor", [("dla_up.ida_0.up_1", 2), ("ida_up.up_2", 4)])
def test_dla_upsamplers_start_bilinear(fairmot_model, name: str, factor: int) -> None:
    up = fairmot_model.get_submodule(name)
    channels = up.in_channels
    const = torch.full((1, channels, 5, 6), 3.0)
    with torch.no_grad():
        out = up(const)
        assert out.shape == (1, channels, 5 * factor, 6 * factor)
        m = factor  # interior: away from the zero-padded border
        torch.testing.assert_close(out[..., m:-m, m:-m],
                                   torch.full_like(out[..., m:-m, m:-m], 3.0))
        # independent check: PyTorch's own bilinear resize (half-pixel centres) in the interior
        x = torch.randn(1, channels, 5, 6)
        ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
        torch.testing.assert_close(up(x)[..., m:-m, m:-m], ref[..., m:-m, m:-m],
                                   atol=1e-5, rtol=1e-5)


def test_bilinear_upsample_is_depthwise_without_bias() -> None:
    up = bilinear_upsample(3, 2)
    assert up.bias is None and up.groups == 3
    x = torch.zeros(1, 3, 4, 4)
    x[:, 1] = 1.0
    out = up(x)
    assert out[:, 0].abs().sum() == 0 and out[:, 2].abs().sum() == 0  # no channel mixing


def test_dla_levels_strides_and_features(fairmot_model) -> None:
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        levels = fairmot_model.base(x)
        feats = fairmot_model.features(x)
    assert [tuple(t.shape[1:]) for t in levels] == [
        (16, 64, 96), (32, 32, 48), (64, 16, 24), (128, 8, 12), (256, 4, 6), (512, 2, 3)]
    assert feats.shape == (1, 64, 16, 24)
