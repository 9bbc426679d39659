"""build_model on every backbone: shapes, gradients, previous-frame inputs, normalisation, init."""

from __future__ import annotations

import pytest
import torch

from utrack.models import BACKBONES, build_model
from utrack.models.heads import make_head

HEADS = {"hm": 1, "wh": 4, "reg": 2, "id": 16}
B, H, W = 2, 64, 96


def _rand_inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(B, 3, H, W, generator=g), torch.rand(B, 3, H, W, generator=g),
            torch.rand(B, 1, H, W, generator=g))


@pytest.mark.parametrize("backbone", BACKBONES)
def test_forward_backward_shapes_and_grads(backbone: str) -> None:
    torch.manual_seed(0)
    model = build_model(backbone, HEADS, head_conv=32)
    model.train()
    image, _, _ = _rand_inputs()
    out = model(image)
    assert set(out) == set(HEADS)
    for name, channels in HEADS.items():
        assert out[name].shape == (B, channels, H // 4, W // 4)
    sum(o.square().mean() for o in out.values()).backward()
    for name in HEADS:
        for pname, p in getattr(model, name).named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}.{pname}"
            assert p.grad.abs().sum() > 0, f"{name}.{pname} got a zero gradient"
    # every trainable parameter takes part (DistributedDataParallel requires it)
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    first_conv = next(p for n, p in model.base.named_parameters() if p.dim() == 4)
    assert first_conv.grad is not None and torch.isfinite(first_conv.grad).all()
    assert first_conv.grad.abs().sum() > 0


@pytest.mark.parametrize("backbone", BACKBONES)
def test_pre_inputs_forward(backbone: str) -> None:
    torch.manual_seed(0)
    model = build_model(backbone, {"hm": 1, "tracking": 2}, head_conv=32, pre_inputs=True).eval()
    image, pre_image, pre_hm = _rand_inputs()
    with torch.no_grad():
        with_pre = model(image, pre_image, pre_hm)
        without = model(image)
        hm_only = model(image, pre_hm=pre_hm)
    assert with_pre["tracking"].shape == (B, 2, H // 4, W // 4)
    # each previous input reaches the output through its own stem
    assert not torch.allclose(with_pre["hm"], without["hm"])
    assert not torch.allclose(with_pre["hm"], hm_only["hm"])
    assert hasattr(model.base, "pre_img_layer") and hasattr(model.base, "pre_hm_layer")


def test_pre_inputs_refused_without_stems() -> None:
    model = build_model("resnet18", {"hm": 1}, head_conv=8)
    image, pre_image, pre_hm = _rand_inputs()
    with pytest.raises(ValueError, match="pre_inputs"):
        model(image, pre_image, pre_hm)


def test_bad_inputs_and_arguments() -> None:
    with pytest.raises(ValueError, match="dla34, resnet18, resnet34, mobilenet_v2"):
        build_model("vgg16", {"hm": 1})
    with pytest.raises(ValueError, match="input_norm"):
        build_model("resnet18", {"hm": 1}, input_norm="zscore")
    with pytest.raises(ValueError, match="head name"):
        build_model("resnet18", {"base": 1})
    model = build_model("resnet18", {"hm": 1}, head_conv=8)
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.rand(1, 3, 60, 96))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(1, 1, 64, 96))


def test_input_norm_imagenet_equals_unit_on_normalised_image() -> None:
    torch.manual_seed(0)
    unit = build_model("resnet18", {"hm": 1, "wh": 4}, head_conv=16).eval()
    imagenet = build_model("resnet18", {"hm": 1, "wh": 4}, head_conv=16,
                           input_norm="imagenet").eval()
    # normalisation buffers are not persistent: same state-dict keys, weights transfer strictly
    assert imagenet.state_dict().keys() == unit.state_dict().keys()
    imagenet.load_state_dict(unit.state_dict())
    image, _, _ = _rand_inputs()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        a = imagenet(image)["wh"]
        b = unit((image - mean) / std)["wh"]
        c = unit(image)["wh"]
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)
    assert not torch.allclose(a, c)


def test_head_init_rule() -> None:
    torch.manual_seed(0)
    model = build_model("resnet18", {"hm": 1, "occ_hm": 1, "wh": 4, "id": 128})
    assert model.hm[2].bias.item() == pytest.approx(-2.19)
    assert model.occ_hm[2].bias.item() == pytest.approx(-2.19)  # any name containing "hm"
    # heatmap heads keep PyTorch's default conv init (uniform, bound 1/sqrt(fan_in))
    bound = 1 / (64 * 9) ** 0.5
    assert model.hm[0].weight.abs().max() <= bound and model.hm[0].weight.std() > bound / 3
    for i in (0, 2):
        assert torch.count_nonzero(model.wh[i].bias) == 0
        assert model.wh[i].weight.std().item() == pytest.approx(0.001, rel=0.1)
        # the embedding head keeps the default weights (uniform, bound 1/sqrt(fan_in)), zero bias
        assert torch.count_nonzero(model.id[i].bias) == 0
    # default head_conv 256: std = bound / sqrt(3) with fan_in 64 * 9, then 256
    assert model.id[0].weight.std().item() == pytest.approx(bound / 3 ** 0.5, rel=0.1)
    assert model.id[2].weight.std().item() == pytest.approx(1 / (3 * 256) ** 0.5, rel=0.1)
    names = [k for k in model.state_dict() if k.startswith("wh.")]
    assert names == ["wh.0.weight", "wh.0.bias", "wh.2.weight", "wh.2.bias"]


def test_fresh_embeddings_are_not_collapsed() -> None:
    """A fresh id head gives embeddings whose norm is far above one Adam step (1e-3) and whose
    directions differ from place to place; at std 0.001 they had norm ~1e-3 and the first
    optimizer step turned them all into the bias direction."""
    torch.manual_seed(0)
    model = build_model("resnet18", {"hm": 1, "id": 128})
    emb = model(torch.rand(2, 3, 128, 128))["id"].flatten(2).transpose(1, 2).reshape(-1, 128)
    assert emb.norm(dim=1).min() > 0.05
    unit = torch.nn.functional.normalize(emb[::97], dim=1)
    assert (unit @ unit.T).mean() < 0.95


def test_make_head_structure() -> None:
    head = make_head(64, 5, head_conv=32)
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert shapes == {"0.weight": (32, 64, 3, 3), "0.bias": (32,),
                      "2.weight": (5, 32, 1, 1), "2.bias": (5,)}
    assert isinstance(head[1], torch.nn.ReLU)


def test_attributes_and_neck_channels() -> None:
    model = build_model("mobilenet_v2", {"hm": 1, "wh": 4}, neck_channels=32, head_conv=16)
    assert model.backbone == "mobilenet_v2"
    assert model.heads == {"hm": 1, "wh": 4}
    assert model.feature_channels == 32
    assert model.hm[0].in_channels == 32
    image, _, _ = _rand_inputs()
    with torch.no_grad():
        assert model.features(image).shape == (B, 32, H // 4, W // 4)
    with pytest.raises(ValueError, match="neck_channels"):
        build_model("dla34", {"hm": 1}, neck_channels=32)
