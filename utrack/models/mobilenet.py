"""MobileNetV2 body from torchvision's model class, returning strides 4, 8, 16, 32.

Built with ``weights=None`` (never downloads). ImageNet weights for its ``features.*`` are in
``../shared/weights/mobilenet_v2_imagenet_features.pth``; load them with
``utrack.models.checkpoint.load_backbone_weights`` (``classifier.*`` keys are ignored).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import mobilenet_v2

from utrack.models.neck import conv_bn_relu

# indices into torchvision's ``features`` after which the map is at stride 4, 8, 16, 32
_TAPS = (3, 6, 13, 18)


class MobileNetV2Body(nn.Module):
    """torchvision MobileNetV2 ``features`` (all 19 blocks, names ``features.*`` as torchvision).

    Taps after blocks 3, 6, 13 and 18 give 24, 32, 96 and 1280 channels at strides 4, 8, 16, 32
    (the last tap is the 1x1 conv to 1280, kept so every pretrained ``features.*`` tensor is used).
    With ``pre_inputs`` a previous image and a previous heatmap go through 3x3 stride-2 stems
    (``pre_img_layer``, ``pre_hm_layer``, 32 channels) added after ``features[0]``.
    ``forward``: (B, 3, H, W) -> 4 maps (B, out_channels[i], H/s, W/s) for s = 4, 8, 16, 32.
    """

    ignored_pretrained_prefixes = ("classifier.",)

    def __init__(self, pre_inputs: bool = False) -> None:
        super().__init__()
        self.features = mobilenet_v2(weights=None).features
        self.out_channels = [24, 32, 96, 1280]
        self.pre_inputs = pre_inputs
        stem_channels = self.features[0][0].out_channels
        if pre_inputs:
            self.pre_img_layer = conv_bn_relu(3, stem_channels, 3, stride=2)
            self.pre_hm_layer = conv_bn_relu(1, stem_channels, 3, stride=2)

    def forward(self, x: torch.Tensor, pre_img: torch.Tensor | None = None,
                pre_hm: torch.Tensor | None = None) -> list[torch.Tensor]:
        x = self.features[0](x)
        if pre_img is not None:
            x = x + self.pre_img_layer(pre_img)
        if pre_hm is not None:
            x = x + self.pre_hm_layer(pre_hm)
        outs = []
        for i in range(1, len(self.features)):
            x = self.features[i](x)
            if i in _TAPS:
                outs.append(x)
        return outs
