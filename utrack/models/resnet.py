"""ResNet-18/34 bodies from torchvision's model classes, returning strides 4, 8, 16, 32.

Built with ``weights=None`` (never downloads). ImageNet ResNet weights are not available on these
machines; ``utrack.models.checkpoint.load_backbone_weights`` loads a torchvision-format file
(``conv1.*``, ``bn1.*``, ``layer1..4.*``; ``fc.*`` ignored) when one is supplied.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet18, resnet34

from utrack.models.neck import conv_bn_relu

_BUILDERS = {"resnet18": resnet18, "resnet34": resnet34}


class ResNetBody(nn.Module):
    """torchvision ResNet without ``avgpool``/``fc``; parameter names as torchvision's.

    With ``pre_inputs`` (CenterTrack) a previous image (B, 3, H, W) and a previous heatmap
    (B, 1, H, W) go through their own 7x7 stride-2 stems (``pre_img_layer``, ``pre_hm_layer``)
    whose outputs are added after ``conv1``/``bn1``/``relu``.
    ``forward``: (B, 3, H, W) -> 4 maps (B, out_channels[i], H/s, W/s) for s = 4, 8, 16, 32.
    """

    ignored_pretrained_prefixes = ("fc.",)

    def __init__(self, name: str = "resnet18", pre_inputs: bool = False) -> None:
        super().__init__()
        if name not in _BUILDERS:
            raise ValueError(f"unknown ResNet {name!r}; choose from {sorted(_BUILDERS)}")
        net = _BUILDERS[name](weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (net.layer1, net.layer2, net.layer3,
                                                              net.layer4)
        self.out_channels = [64, 128, 256, 512]
        self.pre_inputs = pre_inputs
        if pre_inputs:
            self.pre_img_layer = conv_bn_relu(3, 64, 7, stride=2)
            self.pre_hm_layer = conv_bn_relu(1, 64, 7, stride=2)

    def forward(self, x: torch.Tensor, pre_img: torch.Tensor | None = None,
                pre_hm: torch.Tensor | None = None) -> list[torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        if pre_img is not None:
            x = x + self.pre_img_layer(pre_img)
        if pre_hm is not None:
            x = x + self.pre_hm_layer(pre_hm)
        c2 = self.layer1(self.maxpool(x))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]
