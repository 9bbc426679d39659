"""Model assembly: a backbone to one stride-4 feature map, plus named CenterNet heads.

The DLA-34 model keeps the official module tree at its root (``base.*``, ``dla_up.*``,
``ida_up.*``, one ``<head>.*`` per head), so published FairMOT / CenterTrack checkpoints load with
``strict=True``. The torchvision bodies (ResNet-18/34, MobileNetV2) sit under ``base.*`` with
torchvision's names, followed by an ``UpsampleNeck`` under ``neck.*``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch import nn

from utrack.models.checkpoint import load_backbone_weights
from utrack.models.dla import dla34_features, dla34_parts
from utrack.models.heads import init_head, make_head
from utrack.models.mobilenet import MobileNetV2Body
from utrack.models.neck import UpsampleNeck
from utrack.models.resnet import ResNetBody

log = logging.getLogger(__name__)

BACKBONES = ("dla34", "resnet18", "resnet34", "mobilenet_v2")
INPUT_NORMS = ("unit", "imagenet")
OUTPUT_STRIDE = 4
INPUT_MULTIPLE = 32
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class CenterNet(nn.Module):
    """A trunk producing a stride-4 map and one ``make_head`` per named head.

    Subclasses register their trunk modules (before the heads, so state-dict order follows the
    official files) and implement ``_trunk_features``.

    Attributes: ``heads`` (name -> output channels), ``feature_channels`` (channels of the
    stride-4 map), ``backbone`` (its name), ``output_stride`` (4), ``pre_inputs``,
    ``input_norm``.
    """

    def __init__(self, backbone: str, trunk: Mapping[str, nn.Module], feature_channels: int,
                 heads: Mapping[str, int], *, head_conv: int = 256, input_norm: str = "unit",
                 pre_inputs: bool = False) -> None:
        super().__init__()
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {input_norm!r}")
        if not heads:
            raise ValueError("heads must name at least one head")
        self.backbone = backbone
        self.output_stride = OUTPUT_STRIDE
        self.feature_channels = int(feature_channels)
        self.pre_inputs = pre_inputs
        self.input_norm = input_norm
        for name, module in trunk.items():
            self.add_module(name, module)
        mean, std = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)) if input_norm == "unit" else (
            _IMAGENET_MEAN, _IMAGENET_STD)
        # non-persistent: the state dict stays exactly the published one
        self.register_buffer("input_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.heads: dict[str, int] = {}
        for name, channels in heads.items():
            if not (isinstance(name, str) and name.isidentifier()) or name.startswith("_") \
                    or hasattr(self, name):
                raise ValueError(f"invalid head name {name!r}: must be an identifier not already "
                                 "used by the model (e.g. 'base', 'heads', 'forward')")
            if int(channels) <= 0:
                raise ValueError(f"head {name!r}: output channels must be positive, got {channels}")
            self.add_module(name, init_head(name, make_head(self.feature_channels, int(channels),
                                                            head_conv)))
            self.heads[name] = int(channels)

    def _trunk_features(self, x: torch.Tensor, pre_image: torch.Tensor | None,
                        pre_hm: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> the network's input scale (identity for ``unit``)."""
        if self.input_norm == "unit":
            return image
        return (image - self.input_mean) / self.input_std

    def _check_inputs(self, image: torch.Tensor, pre_image: torch.Tensor | None,
                      pre_hm: torch.Tensor | None) -> None:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
        b, _, h, w = image.shape
        if h % INPUT_MULTIPLE or w % INPUT_MULTIPLE:
            raise ValueError(f"image height and width must be multiples of {INPUT_MULTIPLE}, "
                             f"got {h}x{w}")
        if (pre_image is not None or pre_hm is not None) and not self.pre_inputs:
            raise ValueError("pre_image/pre_hm given but the model was built with pre_inputs=False")
        if pre_image is not None and pre_image.shape != image.shape:
            raise ValueError(f"pre_image must have the image's shape {tuple(image.shape)}, "
                             f"got {tuple(pre_image.shape)}")
        if pre_hm is not None and tuple(pre_hm.shape) != (b, 1, h, w):
            raise ValueError(f"pre_hm must be {(b, 1, h, w)}, got {tuple(pre_hm.shape)}")

    def features(self, image: torch.Tensor, pre_image: torch.Tensor | None = None,
                 pre_hm: torch.Tensor | None = None) -> torch.Tensor:
        """The stride-4 feature map (B, feature_channels, H/4, W/4) the heads read.

        ``image`` and ``pre_image``: (B, 3, H, W) RGB in [0, 1], H and W multiples of 32;
        ``pre_hm``: (B, 1, H, W) previous-frame heatmap. The previous inputs need ``pre_inputs``
        and may be omitted (their stems are then skipped).
        """
        self._check_inputs(image, pre_image, pre_hm)
        pre = None if pre_image is None else self.normalize(pre_image)
        return self._trunk_features(self.normalize(image), pre, pre_hm)

    def forward(self, image: torch.Tensor, pre_image: torch.Tensor | None = None,
                pre_hm: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Raw head outputs (no sigmoid): ``{name: (B, heads[name], H/4, W/4)}``."""
        feats = self.features(image, pre_image, pre_hm)
        return {name: getattr(self, name)(feats) for name in self.heads}


class DLA34CenterNet(CenterNet):
    """FairMOT / CenterTrack DLA-34 with deformable IDA upsampling (64 channels at stride 4)."""

    def __init__(self, heads: Mapping[str, int], *, head_conv: int = 256,
                 input_norm: str = "unit", pre_inputs: bool = False) -> None:
        super().__init__("dla34", dla34_parts(pre_inputs), 64, heads, head_conv=head_conv,
                         input_norm=input_norm, pre_inputs=pre_inputs)

    def _trunk_features(self, x: torch.Tensor, pre_image: torch.Tensor | None,
                        pre_hm: torch.Tensor | None) -> torch.Tensor:
        return dla34_features(self.base, self.dla_up, self.ida_up, x, pre_image, pre_hm)


class BodyNeckCenterNet(CenterNet):
    """A torchvision body (``base``) and an ``UpsampleNeck`` (``neck``) to ``neck_channels``."""

    def __init__(self, backbone: str, heads: Mapping[str, int], *, head_conv: int = 256,
                 neck_channels: int = 64, input_norm: str = "unit",
                 pre_inputs: bool = False) -> None:
        if backbone == "mobilenet_v2":
            body: nn.Module = MobileNetV2Body(pre_inputs=pre_inputs)
        else:
            body = ResNetBody(backbone, pre_inputs=pre_inputs)
        neck = UpsampleNeck(body.out_channels, neck_channels)
        super().__init__(backbone, {"base": body, "neck": neck}, neck_channels, heads,
                         head_conv=head_conv, input_norm=input_norm, pre_inputs=pre_inputs)

    def _trunk_features(self, x: torch.Tensor, pre_image: torch.Tensor | None,
                        pre_hm: torch.Tensor | None) -> torch.Tensor:
        return self.neck(self.base(x, pre_image, pre_hm))


def build_model(backbone: str, heads: Mapping[str, int], *, head_conv: int = 256,
                neck_channels: int = 64, pretrained: str | None = None,
                pre_inputs: bool = False, input_norm: str = "unit") -> CenterNet:
    """Build a CenterNet model.

    Args:
        backbone: one of ``BACKBONES``. ``dla34`` has a fixed 64-channel output (the published
            layout), so ``neck_channels`` must stay 64 for it.
        heads: head name -> output channels, e.g. ``{"hm": 1, "wh": 4, "reg": 2, "id": 128}``.
        head_conv: hidden channels of every head.
        neck_channels: channels of the stride-4 map for the torchvision bodies.
        pretrained: a torchvision-format ImageNet file for the backbone body
            (``load_backbone_weights``); only MobileNetV2 weights exist on these machines.
        pre_inputs: add CenterTrack's previous-image and previous-heatmap stems.
        input_norm: ``"unit"`` (image in [0, 1] used as is) or ``"imagenet"`` (mean/std).
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose from {', '.join(BACKBONES)}")
    if backbone == "dla34":
        if neck_channels != 64:
            raise ValueError(f"dla34 produces 64 feature channels; neck_channels={neck_channels} "
                             "applies to the torchvision backbones only")
        model: CenterNet = DLA34CenterNet(heads, head_conv=head_conv, input_norm=input_norm,
                                          pre_inputs=pre_inputs)
    else:
        model = BodyNeckCenterNet(backbone, heads, head_conv=head_conv,
                                  neck_channels=neck_channels, input_norm=input_norm,
                                  pre_inputs=pre_inputs)
    if pretrained:
        report = load_backbone_weights(model, pretrained)
        log.info("backbone weights from %s: %s", pretrained, report.summary())
        if report.skipped_shape or report.unexpected:
            log.warning("backbone weights %s only partly fit %s: %s", pretrained, backbone,
                        report.summary())
    return model
