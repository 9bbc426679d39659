"""Upsampling building blocks and the neck that turns a stride-4..32 pyramid into one stride-4 map.

``bilinear_upsample`` is the learnable depthwise transposed conv both DLA's IDA-up and the neck
use; ``conv_bn_relu`` is the conv + BatchNorm + ReLU unit used for stems, laterals and fusion.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1) -> nn.Sequential:
    """``Sequential(Conv2d(bias=False), BatchNorm2d, ReLU)`` (state_dict names ``0.*``, ``1.*``).

    Padding ``kernel_size // 2``, so (B, in, H, W) -> (B, out, H/stride, W/stride).
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                  padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels, momentum=0.1),
        nn.ReLU(inplace=True),
    )


def fill_bilinear_(weight: torch.Tensor) -> torch.Tensor:
    """Fill a (C, 1, K, K) depthwise transposed-conv weight with the bilinear interpolation kernel.

    With kernel ``K = 2f``, stride ``f`` and padding ``f // 2`` the layer then performs bilinear
    upsampling by ``f`` (exact for the interior of the map).
    """
    k = weight.shape[-1]
    f = (k + 1) // 2
    # centre of the kernel in units of the upsampling factor; odd kernels centre on a tap
    centre = (2 * f - 1 - f % 2) / (2.0 * f)
    taps = 1.0 - (torch.arange(k, dtype=torch.float64) / f - centre).abs()
    kernel = (taps[:, None] * taps[None, :]).to(weight.dtype)
    with torch.no_grad():
        weight.copy_(kernel.expand_as(weight))
    return weight


def bilinear_upsample(channels: int, factor: int) -> nn.ConvTranspose2d:
    """Depthwise ``ConvTranspose2d`` (no bias) initialised to bilinear upsampling by ``factor``.

    (B, C, H, W) -> (B, C, H*factor, W*factor); weight shape (C, 1, 2*factor, 2*factor).
    """
    up = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2,
                            output_padding=0, groups=channels, bias=False)
    fill_bilinear_(up.weight)
    return up


class UpsampleNeck(nn.Module):
    """Top-down fusion of a 4-level pyramid (strides 4, 8, 16, 32) into one stride-4 map.

    Each level gets a 1x1 lateral conv to ``out_channels``; starting from the coarsest level the
    running map is upsampled x2 (``bilinear_upsample``), added to the next finer lateral, and
    fused by a 3x3 conv (all convs with BN + ReLU). Input: a list of 4 maps (B, C_i, H/s_i, W/s_i);
    output (B, out_channels, H/4, W/4).
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 64) -> None:
        super().__init__()
        if len(in_channels) < 2:
            raise ValueError(f"UpsampleNeck needs at least 2 levels, got in_channels={in_channels}")
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.lateral = nn.ModuleList(conv_bn_relu(c, out_channels, 1) for c in in_channels)
        # up[i] / fuse[i] bring level i+1 down to level i
        self.up = nn.ModuleList(bilinear_upsample(out_channels, 2)
                                for _ in range(len(in_channels) - 1))
        self.fuse = nn.ModuleList(conv_bn_relu(out_channels, out_channels, 3)
                                  for _ in range(len(in_channels) - 1))

    def forward(self, levels: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(levels) != len(self.lateral):
            raise ValueError(f"UpsampleNeck expects {len(self.lateral)} levels, got {len(levels)}")
        x = self.lateral[-1](levels[-1])
        for i in range(len(levels) - 2, -1, -1):
            x = self.fuse[i](self.lateral[i](levels[i]) + self.up[i](x))
        return x
