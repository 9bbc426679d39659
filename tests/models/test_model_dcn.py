"""ModulatedDeformConv2d against plain convolutions with hand-known offsets and masks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from utrack.models.dcn import ModulatedDeformConv2d

K = 3
DY = slice(0, 2 * K * K, 2)  # offset channels hold (dy, dx) per kernel tap
DX = slice(1, 2 * K * K, 2)
MASK = slice(2 * K * K, 3 * K * K)


def _set_offset_mask(dcn: ModulatedDeformConv2d, dy: float = 0.0, dx: float = 0.0,
                     mask_logit: float = 0.0) -> None:
    """Constant offsets and mask through the bias of ``conv_offset_mask`` (weights zero)."""
    with torch.no_grad():
        dcn.conv_offset_mask.weight.zero_()
        bias = dcn.conv_offset_mask.bias
        bias.zero_()
        bias[DY] = dy
        bias[DX] = dx
        bias[MASK] = mask_logit


def _delta_dcn() -> ModulatedDeformConv2d:
    """1->1 channel DCN whose kernel is 1 at the centre tap: output = mask * sampled input."""
    dcn = ModulatedDeformConv2d(1, 1, K, padding=1)
    with torch.no_grad():
        dcn.weight.zero_()
        dcn.weight[0, 0, 1, 1] = 1.0
        dcn.bias.zero_()
    return dcn


def test_parameter_names_and_zero_init() -> None:
    dcn = ModulatedDeformConv2d(8, 4, K, padding=1)
    shapes = {k: tuple(v.shape) for k, v in dcn.state_dict().items()}
    assert shapes == {"weight": (4, 8, 3, 3), "bias": (4,),
                      "conv_offset_mask.weight": (27, 8, 3, 3), "conv_offset_mask.bias": (27,)}
    assert torch.count_nonzero(dcn.conv_offset_mask.weight) == 0
    assert torch.count_nonzero(dcn.conv_offset_mask.bias) == 0


def test_zero_offsets_equal_conv_with_half_weights() -> None:
    torch.manual_seed(0)
    dcn = ModulatedDeformConv2d(5, 7, K, padding=1)
    with torch.no_grad():
        dcn.bias.normal_()
    x = torch.randn(2, 5, 9, 11)
    expected = F.conv2d(x, dcn.weight * 0.5, dcn.bias, padding=1)  # sigmoid(0) = 0.5
    torch.testing.assert_close(dcn(x), expected, atol=1e-5, rtol=1e-5)


def test_stride_two_zero_offsets() -> None:
    torch.manual_seed(1)
    dcn = ModulatedDeformConv2d(3, 4, K, stride=2, padding=1)
    x = torch.randn(1, 3, 10, 12)
    out = dcn(x)
    assert out.shape == (1, 4, 5, 6)
    torch.testing.assert_close(out, F.conv2d(x, dcn.weight * 0.5, dcn.bias, stride=2, padding=1),
                               atol=1e-5, rtol=1e-5)


def test_integer_dx_by_hand() -> None:
    dcn = _delta_dcn()
    _set_offset_mask(dcn, dx=1.0)
    x = torch.arange(20, dtype=torch.float32).view(1, 1, 4, 5)
    out = dcn(x)[0, 0]
    # centre tap moved one pixel right: out[y, j] = 0.5 * x[y, j + 1]; beyond the edge reads 0
    assert out[2, 1].item() == pytest.approx(0.5 * 12.0)
    assert out[0, 0].item() == pytest.approx(0.5 * 1.0)
    assert out[3, 4].item() == pytest.approx(0.0)


def test_integer_dy_moves_rows() -> None:
    dcn = _delta_dcn()
    _set_offset_mask(dcn, dy=1.0)
    x = torch.arange(20, dtype=torch.float32).view(1, 1, 4, 5)
    out = dcn(x)[0, 0]
    assert out[1, 2].item() == pytest.approx(0.5 * x[0, 0, 2, 2].item())  # = 0.5 * 12


def test_fractional_dx_interpolates_by_hand() -> None:
    dcn = _delta_dcn()
    _set_offset_mask(dcn, dx=0.5, mask_logit=math.log(3.0))  # sigmoid(log 3) = 0.75
    x = torch.arange(20, dtype=torch.float32).view(1, 1, 4, 5)
    out = dcn(x)[0, 0]
    assert out[1, 2].item() == pytest.approx(0.75 * (7.0 + 8.0) / 2)


def test_integer_dx_equals_conv_on_shifted_input() -> None:
    torch.manual_seed(2)
    dcn = ModulatedDeformConv2d(4, 6, K, padding=1)
    _set_offset_mask(dcn, dx=1.0)
    x = torch.randn(2, 4, 8, 10)
    shifted = torch.zeros_like(x)
    shifted[..., :-1] = x[..., 1:]
    expected = F.conv2d(shifted, dcn.weight * 0.5, dcn.bias, padding=1)
    out = dcn(x)
    # away from the left/right borders, where zero padding and the shift disagree
    torch.testing.assert_close(out[..., 1:-1], expected[..., 1:-1], atol=1e-5, rtol=1e-5)


def test_offsets_and_mask_receive_gradients() -> None:
    torch.manual_seed(3)
    dcn = ModulatedDeformConv2d(3, 2, K, padding=1)
    x = torch.randn(1, 3, 6, 7)
    (dcn(x) ** 2).sum().backward()
    grad = dcn.conv_offset_mask.weight.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert grad[:2 * K * K].abs().sum() > 0  # offset part learns from a zero start
    assert grad[MASK].abs().sum() > 0
