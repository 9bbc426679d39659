"""Modulated deformable convolution (DCNv2 semantics) on ``torchvision.ops.deform_conv2d``.

No compiled extension is needed. Parameter names follow the published DCNv2 layers (``weight``,
``bias``, ``conv_offset_mask.*``) so FairMOT/CenterTrack checkpoints load unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.ops import deform_conv2d


class ModulatedDeformConv2d(nn.Module):
    """Deformable conv whose offsets and modulation mask are predicted from its own input.

    A plain conv ``conv_offset_mask`` (in -> 3*k*k, same kernel/stride/padding) predicts, per output
    pixel, ``3*k*k`` channels split in three equal thirds ``(o1, o2, m)``. The sampling offsets are
    ``cat(o1, o2)`` (2*k*k channels, (dy, dx) interleaved per kernel tap, the layout DCNv2 and
    ``deform_conv2d`` share) and the mask is ``sigmoid(m)``. ``conv_offset_mask`` starts at zero,
    so a fresh layer samples the regular grid with mask 0.5 everywhere.

    Shapes: input (B, in_channels, H, W) -> output (B, out_channels, H', W') with the usual
    convolution arithmetic for ``kernel_size``, ``stride``, ``padding``, ``dilation``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, padding: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.conv_offset_mask = nn.Conv2d(in_channels, 3 * kernel_size * kernel_size, kernel_size,
                                          stride=stride, padding=padding, dilation=dilation,
                                          bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size * self.kernel_size)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.zeros_(self.bias)
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def offsets_and_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Offsets (B, 2*k*k, H', W') and mask (B, k*k, H', W') predicted from ``x``."""
        o1, o2, m = torch.chunk(self.conv_offset_mask(x), 3, dim=1)
        return torch.cat((o1, o2), dim=1), torch.sigmoid(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset, mask = self.offsets_and_mask(x)
        return deform_conv2d(x, offset, self.weight, self.bias, stride=self.stride,
                             padding=self.padding, dilation=self.dilation, mask=mask)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}")
