"""CenterNet-style prediction heads: conv3x3 -> ReLU -> conv1x1, and their initialisation."""

from __future__ import annotations

from torch import nn

HEATMAP_BIAS = -2.19  # sigmoid(-2.19) ~ 0.1: the focal loss starts from a low, stable prior
REGRESSION_STD = 0.001
EMBEDDING_HEADS = ("id",)


def make_head(in_channels: int, out_channels: int, head_conv: int = 256) -> nn.Sequential:
    """``Sequential(Conv2d(in, head_conv, 3, padding=1), ReLU, Conv2d(head_conv, out, 1))``.

    State-dict names ``0.weight``, ``0.bias``, ``2.weight``, ``2.bias`` (as FairMOT/CenterTrack).
    Shapes: (B, in_channels, H, W) -> (B, out_channels, H, W). Default PyTorch init; see
    ``init_head``.
    """
    if head_conv <= 0:
        raise ValueError(f"head_conv must be positive, got {head_conv}")
    return nn.Sequential(
        nn.Conv2d(in_channels, head_conv, 3, padding=1, bias=True),
        nn.ReLU(inplace=True),
        nn.Conv2d(head_conv, out_channels, 1, bias=True),
    )


def init_head(name: str, head: nn.Sequential) -> nn.Sequential:
    """Initialise a head by its name, in place.

    Heatmap heads (name contains ``"hm"``) keep the default conv init and their last bias is
    filled with -2.19. Embedding heads (``EMBEDDING_HEADS``) keep the default conv init with zero
    biases: at std 0.001 both layers give embeddings of norm ~1e-3 whose direction the first
    optimizer step overwrites with the bias, so every object starts with the same embedding and a
    cosine loss without a classifier (unsupervised re-ID, CycAs) cannot move it. Every other head
    gets conv weights ~ N(0, std=0.001) and zero biases.
    """
    if "hm" in name:
        nn.init.constant_(head[-1].bias, HEATMAP_BIAS)
        return head
    if name in EMBEDDING_HEADS:
        for m in head.modules():
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                nn.init.zeros_(m.bias)
        return head
    for m in head.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=REGRESSION_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return head
