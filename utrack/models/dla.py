"""DLA-34 (Deep Layer Aggregation) with deformable iterative upsampling to stride 4.

Module and parameter names reproduce the official FairMOT / CenterTrack DLA-34 checkpoints
(``reference/*_state_dict_shapes.json``): ``DLA`` is their ``base``, ``DLAUp`` their ``dla_up``
and ``IDAUp`` their ``ida_up``. ImageNet-pretrained DLA-34 weights are not available on these
machines; ``utrack.models.checkpoint.load_backbone_weights`` loads such a file (keys
``base_layer.*``, ``level0.*`` ... ``level5.*``, ``fc.*`` ignored) when one is supplied.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from utrack.models.dcn import ModulatedDeformConv2d
from utrack.models.neck import bilinear_upsample, conv_bn_relu

DLA34_LEVELS = (1, 1, 1, 2, 2, 1)
DLA34_CHANNELS = (16, 32, 64, 128, 256, 512)


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers with a residual: (B, in, H, W) -> (B, out, H/stride, W/stride).

    The residual is given by the caller (a ``Tree`` projects/pools it); default: the input.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels, momentum=0.1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels, momentum=0.1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        if residual is None:
            residual = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Root(nn.Module):
    """Aggregation node: 1x1 conv + BN + ReLU over the channel concatenation of its children."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=1, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, momentum=0.1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, *children: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(torch.cat(children, dim=1))))


class Tree(nn.Module):
    """Hierarchical deep aggregation of depth ``levels`` built from ``BasicBlock``s.

    A depth-1 tree is two blocks whose outputs (plus, at a level root, the pooled input) meet in a
    ``Root``; a deeper tree nests a tree in ``tree1`` and passes the collected children down to
    ``tree2``. ``project`` (1x1 conv + BN) matches the residual's channels when they change; it
    exists at every tree whose channels change (checkpoints hold it) but only depth-1 trees use it.
    (B, in, H, W) -> (B, out, H/stride, W/stride).
    """

    def __init__(self, levels: int, in_channels: int, out_channels: int, stride: int = 1,
                 level_root: bool = False, root_dim: int = 0) -> None:
        super().__init__()
        if root_dim == 0:
            root_dim = 2 * out_channels
        if level_root:
            root_dim += in_channels
        self.levels = levels
        self.level_root = level_root
        if levels == 1:
            self.tree1: nn.Module = BasicBlock(in_channels, out_channels, stride)
            self.tree2: nn.Module = BasicBlock(out_channels, out_channels, 1)
            self.root = Root(root_dim, out_channels)
        else:
            self.tree1 = Tree(levels - 1, in_channels, out_channels, stride, root_dim=0)
            self.tree2 = Tree(levels - 1, out_channels, out_channels, 1,
                              root_dim=root_dim + out_channels)
        self.downsample = nn.MaxPool2d(stride, stride=stride) if stride > 1 else None
        self.project = None
        if in_channels != out_channels:
            self.project = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=1, bias=False),
                nn.BatchNorm2d(out_channels, momentum=0.1),
            )
            if levels > 1:
                # never used in forward; frozen so DDP does not wait for its gradients
                self.project.requires_grad_(False)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None,
                children: list[torch.Tensor] | None = None) -> torch.Tensor:
        children = [] if children is None else children
        bottom = self.downsample(x) if self.downsample is not None else x
        if self.level_root:
            children.append(bottom)
        if self.levels == 1:
            residual = self.project(bottom) if self.project is not None else bottom
            x1 = self.tree1(x, residual)
            x2 = self.tree2(x1)
            return self.root(x2, x1, *children)
        x1 = self.tree1(x)
        children.append(x1)
        return self.tree2(x1, children=children)


class DLA(nn.Module):
    """The DLA trunk (FairMOT's ``base``): six levels at strides 1, 2, 4, 8, 16, 32.

    With ``pre_inputs`` (CenterTrack) a previous image (B, 3, H, W) and a previous-frame heatmap
    (B, 1, H, W) pass through their own 7x7 stems whose outputs are added to ``base_layer``'s.
    ``forward`` returns the six level outputs (B, channels[i], H/2**i, W/2**i).
    """

    ignored_pretrained_prefixes = ("fc.",)

    def __init__(self, levels: Sequence[int] = DLA34_LEVELS,
                 channels: Sequence[int] = DLA34_CHANNELS, pre_inputs: bool = False) -> None:
        super().__init__()
        self.channels = list(channels)
        self.base_layer = conv_bn_relu(3, channels[0], 7)
        self.level0 = conv_bn_relu(channels[0], channels[0], 3)
        self.level1 = conv_bn_relu(channels[0], channels[1], 3, stride=2)
        self.level2 = Tree(levels[2], channels[1], channels[2], 2, level_root=False)
        self.level3 = Tree(levels[3], channels[2], channels[3], 2, level_root=True)
        self.level4 = Tree(levels[4], channels[3], channels[4], 2, level_root=True)
        self.level5 = Tree(levels[5], channels[4], channels[5], 2, level_root=True)
        self.pre_inputs = pre_inputs
        if pre_inputs:
            self.pre_img_layer = conv_bn_relu(3, channels[0], 7)
            self.pre_hm_layer = conv_bn_relu(1, channels[0], 7)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor, pre_img: torch.Tensor | None = None,
                pre_hm: torch.Tensor | None = None) -> list[torch.Tensor]:
        x = self.base_layer(x)
        if pre_img is not None:
            x = x + self.pre_img_layer(pre_img)
        if pre_hm is not None:
            x = x + self.pre_hm_layer(pre_hm)
        outs = []
        for i in range(6):
            x = getattr(self, f"level{i}")(x)
            outs.append(x)
        return outs


class DeformConv(nn.Module):
    """3x3 modulated deformable conv (``conv``) followed by BN + ReLU (``actf``)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.actf = nn.Sequential(nn.BatchNorm2d(out_channels, momentum=0.1),
                                  nn.ReLU(inplace=True))
        self.conv = ModulatedDeformConv2d(in_channels, out_channels, 3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.actf(self.conv(x))


class IDAUp(nn.Module):
    """Iterative deep aggregation towards the finest input.

    Inputs ``layers[0..n-1]`` (finest first, ``channels[i]`` channels, each ``up_factors[i]``
    times coarser than ``layers[0]``). Layer ``i >= 1`` is projected to ``out_channels``
    (``proj_i``), upsampled to the resolution of ``layers[0]`` (``up_i``) and merged with the
    previous result by ``node_i``. ``forward`` returns the running results
    ``[layers[0], merged_1, ..., merged_{n-1}]``, all at the resolution of ``layers[0]``.
    """

    def __init__(self, out_channels: int, channels: Sequence[int],
                 up_factors: Sequence[int]) -> None:
        super().__init__()
        self.num_inputs = len(channels)
        for i in range(1, len(channels)):
            setattr(self, f"proj_{i}", DeformConv(channels[i], out_channels))
            setattr(self, f"up_{i}", bilinear_upsample(out_channels, int(up_factors[i])))
            setattr(self, f"node_{i}", DeformConv(out_channels, out_channels))

    def forward(self, layers: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(layers) != self.num_inputs:
            raise ValueError(f"IDAUp expects {self.num_inputs} inputs, got {len(layers)}")
        out = [layers[0]]
        for i in range(1, len(layers)):
            up = getattr(self, f"up_{i}")(getattr(self, f"proj_{i}")(layers[i]))
            out.append(getattr(self, f"node_{i}")(up + out[-1]))
        return out


class DLAUp(nn.Module):
    """Progressive aggregation of the stride-4..32 levels (FairMOT's ``dla_up``).

    ``ida_0`` merges the two coarsest levels, ``ida_1`` the three coarsest (using ``ida_0``'s
    result), and so on; every step is an ``IDAUp``. Input: levels (B, channels[i], H/s_i, W/s_i)
    finest first; output: one map per level, finest first, level ``i`` having ``channels[i]``
    channels at its own stride (the coarsest level is passed through unchanged).
    """

    def __init__(self, channels: Sequence[int], scales: Sequence[int]) -> None:
        super().__init__()
        channels = list(channels)
        in_channels = list(channels)
        scales = list(scales)
        self.num_levels = len(channels)
        for i in range(len(channels) - 1):
            j = len(channels) - i - 2
            setattr(self, f"ida_{i}", IDAUp(channels[j], in_channels[j:],
                                            [s // scales[j] for s in scales[j:]]))
            # after this step every level coarser than j lives at level j's scale and width
            scales[j + 1:] = [scales[j]] * (len(scales) - j - 1)
            in_channels[j + 1:] = [channels[j]] * (len(in_channels) - j - 1)

    def forward(self, levels: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(levels) != self.num_levels:
            raise ValueError(f"DLAUp expects {self.num_levels} levels, got {len(levels)}")
        layers = list(levels)
        outs = [layers[-1]]
        for i in range(self.num_levels - 1):
            start = self.num_levels - i - 2
            layers[start:] = getattr(self, f"ida_{i}")(layers[start:])
            outs.insert(0, layers[-1])
        return outs


def dla34_parts(pre_inputs: bool = False) -> dict[str, nn.Module]:
    """The three DLA-34 modules a FairMOT/CenterTrack model holds at its root:
    ``base`` (``DLA``), ``dla_up`` (``DLAUp`` over strides 4..32) and ``ida_up`` (``IDAUp``
    merging strides 4, 8, 16 into 64 channels at stride 4)."""
    channels = list(DLA34_CHANNELS)
    first = 2  # stride 4 = 2**first
    scales = [2 ** i for i in range(len(channels) - first)]
    return {
        "base": DLA(DLA34_LEVELS, channels, pre_inputs=pre_inputs),
        "dla_up": DLAUp(channels[first:], scales),
        "ida_up": IDAUp(channels[first], channels[first:5], [2 ** i for i in range(5 - first)]),
    }


def dla34_features(base: DLA, dla_up: DLAUp, ida_up: IDAUp, x: torch.Tensor,
                   pre_img: torch.Tensor | None = None,
                   pre_hm: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 3, H, W) normalised image -> (B, 64, H/4, W/4) features (H, W multiples of 32)."""
    levels = base(x, pre_img, pre_hm)
    ups = dla_up(levels[2:])
    return ida_up(ups[:3])[-1]
