"""Masked, numerically stable helpers shared by the matching losses (UTrack, CycAs).

Conventions: a boolean ``mask`` is True where an entry takes part. Every helper is safe on rows
with no valid entry (padding, empty frames): it returns a finite, documented value and its
gradient is exactly zero there, never NaN. Exponentials are only taken of ``x - max(x) <= 0``
(inside the fused ``torch.softmax``/``torch.logsumexp``), and excluded entries get a finite
"-inf" (``finfo.min / 8``) whose ``exp`` underflows to exactly 0.

On CPU, bool ``where``/``masked_fill`` over a full tensor costs several times a float add, so
masks enter as additive biases or 0/1 factors of broadcast shapes wherever it matters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Union

import torch

__all__ = [
    "batch_counts",
    "compute_dtype",
    "gram",
    "l2_normalize",
    "lengths_to_mask",
    "masked_logsumexp",
    "masked_softmax",
    "normalize_",
    "pad_embeddings",
    "prepare_pair_batch",
    "trim_padding",
    "trim_pair_batch",
]


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype the losses compute in: float32, or float64 when the input already is."""
    return torch.promote_types(x.dtype, torch.float32)


MaskArg = Union[torch.Tensor, Sequence[torch.Tensor]]


def _neg(dtype: torch.dtype) -> float:
    # finite stand-in for -inf: exp() of it underflows to exactly 0, and up to 8 of them add up
    # without overflowing, so a row with no valid entry stays finite (no NaN softmax)
    return torch.finfo(dtype).min / 8


def _masked_logits(logits: torch.Tensor, mask: MaskArg) -> torch.Tensor:
    # masks are turned into additive biases at their own (often broadcast, small) shape: float
    # adds are much cheaper than bool where/masked_fill on full-size tensors
    masks = (mask,) if isinstance(mask, torch.Tensor) else tuple(mask)
    if len(masks) > 8:
        raise ValueError("at most 8 masks")
    neg = _neg(logits.dtype)
    for m in masks:
        logits = logits + torch.where(m, logits.new_zeros(()), logits.new_full((), neg))
    return logits


def masked_softmax(logits: torch.Tensor, mask: MaskArg, dim: int = -1) -> torch.Tensor:
    """Softmax of ``logits`` over the entries where ``mask`` is True.

    Args:
        logits: (..., C) finite float tensor (``-inf`` allowed only at masked entries of rows
            that keep a valid entry).
        mask: bool tensor broadcastable to ``logits``, or a sequence of up to 8 of them, ANDed
            (pass separable masks such as rows (B, K, 1), columns (B, 1, C) and a (K, C)
            diagonal separately: they are never expanded to the full shape).
        dim: the softmax dimension.

    Returns:
        same shape as ``logits``: the softmax over valid entries, exactly 0 at masked entries;
        a row with no valid entry is all zeros (not NaN), with zero gradient.

    Masked entries get a huge negative bias whose ``exp`` underflows to 0; the fused
    ``torch.softmax`` subtracts the row maximum before exponentiating, so nothing overflows.
    """
    x = _masked_logits(logits, mask)
    probs = torch.softmax(x, dim=dim)
    has_valid = x.detach().amax(dim=dim, keepdim=True) > _neg(x.dtype) / 2
    return probs * has_valid.to(probs.dtype)


def masked_logsumexp(x: torch.Tensor, mask: MaskArg, dim: int = -1,
                     keepdim: bool = False) -> torch.Tensor:
    """``log(sum(exp(x)))`` over the entries where ``mask`` is True (stable, fused).

    Args:
        x: (..., C) finite float tensor.
        mask: as for :func:`masked_softmax`.

    Returns:
        the reduced tensor; ``-inf`` for a row with no valid entry (the log of an empty sum),
        with zero (not NaN) gradient flowing back from it.
    """
    biased = _masked_logits(x, mask)
    out = torch.logsumexp(biased, dim=dim, keepdim=True)
    has_valid = biased.detach().amax(dim=dim, keepdim=True) > _neg(biased.dtype) / 2
    out = torch.where(has_valid, out, float("-inf"))
    return out if keepdim else out.squeeze(dim)


def normalize_(x: torch.Tensor, gain: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Scale ``x`` (..., D) in place to ``gain * x / max(||x||, eps)``, as :func:`l2_normalize`
    does out of place but without gradient, and return ``gain / max(||x||, eps)`` (..., 1).

    ``gain``: a tensor broadcastable to (..., 1). Safe for huge and zero vectors: where the
    squares overflow, ``x`` is divided by its largest absolute entry before they are summed
    (squares that underflow only occur below ``eps``). No temporary of the size of ``x`` is
    allocated.
    """
    if x.device.type == "cpu":
        # one pass when no square overflows; checking costs a host sync, free on CPU only
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        if norm.numel() == 0 or math.isfinite(norm.max().item()):
            coef = gain / norm.clamp_(min=eps)
            x.mul_(coef)
            return coef
    scale = torch.maximum(x.amax(dim=-1, keepdim=True), x.amin(dim=-1, keepdim=True).neg_())
    x.div_(scale.clamp_(min=torch.finfo(x.dtype).tiny))
    coef = gain / torch.linalg.vector_norm(x, dim=-1, keepdim=True).mul_(scale).clamp_(min=eps)
    x.mul_(coef * scale)
    return coef


class _L2Normalize(torch.autograd.Function):
    """``gain * x / ||x||`` over the last dim, with a 3-pass analytical backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, gain: torch.Tensor, eps: float) -> torch.Tensor:
        # divide by the largest |entry| before squaring: no overflow even near the dtype's max
        scale = x.abs().amax(dim=-1, keepdim=True).clamp_(min=torch.finfo(x.dtype).tiny)
        norm = torch.linalg.vector_norm(x / scale, dim=-1, keepdim=True).mul_(scale)
        coef = gain / norm.clamp_(min=eps)
        y = x * coef
        # 1 / gain^2 for the backward; a zero gain (masked row) gives y = 0 and coef = 0
        inv_gain2 = (gain * gain).clamp_(min=torch.finfo(x.dtype).tiny).reciprocal_()
        ctx.save_for_backward(y, coef, inv_gain2)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        y, coef, inv_gain2 = ctx.saved_tensors
        # d(gain u)/dx = gain / ||x|| (I - u u^T), u = y / gain
        along = (grad * y).sum(dim=-1, keepdim=True).mul_(inv_gain2)
        return torch.addcmul(grad, y, along, value=-1.0).mul_(coef), None, None


def l2_normalize(x: torch.Tensor, gain: torch.Tensor | float | None = None,
                 eps: float = 1e-12) -> torch.Tensor:
    """``gain * x / ||x||`` along the last dim, safe for huge and zero vectors.

    Args:
        x: (..., D) float tensor.
        gain: None (1), a float, or a non-negative tensor broadcastable to (..., 1), treated as
            a constant (no gradient flows to it). The losses pass ``sqrt(T)`` times the object
            mask: the Gram matrix then comes out multiplied by the softmax factor T, and padded
            rows become exactly zero with exactly zero gradient.
        eps: the norm is ``max(||x||, eps)``, as in F.normalize (a zero vector stays zero).

    Returns:
        (..., D). The norm is taken after dividing by the largest absolute entry, so squares
        never overflow; the backward pass is written out (three passes over x).
    """
    if not isinstance(gain, torch.Tensor):
        gain = torch.full([1] * x.dim(), 1.0 if gain is None else float(gain),
                          dtype=x.dtype, device=x.device)
    return _L2Normalize.apply(x, gain.detach().to(x.dtype), eps)


class _Gram(torch.autograd.Function):
    """``y @ y^T`` (diagonal optionally constant, zero columns appended), one backward matmul."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, diagonal: float | None, extra_columns: int) -> torch.Tensor:
        ctx.save_for_backward(y)
        ctx.fixed_diagonal = diagonal is not None
        k = y.shape[-2]
        right = y
        if extra_columns:
            # zero rows appended to the (K, D) factor: a contiguous copy, much cheaper than
            # padding the (D, K) transpose or the (K, K) product
            zeros = y.new_zeros(*y.shape[:-2], extra_columns, y.shape[-1])
            right = torch.cat([y, zeros], dim=-2)
        out = y @ right.transpose(-1, -2)
        if diagonal is not None:
            out[..., :k].diagonal(dim1=-2, dim2=-1).fill_(diagonal)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (y,) = ctx.saved_tensors
        square = grad[..., : y.shape[-2]]
        sym = square + square.transpose(-1, -2)
        if ctx.fixed_diagonal:
            sym.diagonal(dim1=-2, dim2=-1).zero_()  # a constant diagonal has no gradient
        return sym @ y, None, None


def gram(y: torch.Tensor, diagonal: float | None = None, extra_columns: int = 0) -> torch.Tensor:
    """(..., K, D) -> (..., K, K + extra_columns) dot products ``y @ y^T``.

    Args:
        y: (..., K, D).
        diagonal: if given, the diagonal is set to this constant (and passes no gradient), e.g.
            a huge negative number to keep an object from matching itself in a softmax.
        extra_columns: zero columns appended on the right (room for a placeholder column);
            they pass no gradient.

    The backward pass is one matmul, ``(G + G^T) @ y``, instead of autograd's two.
    """
    return _Gram.apply(y, diagonal, extra_columns)


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) integer lengths -> (B, max_len) bool mask, True in the first ``lengths[b]`` slots."""
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def pad_embeddings(embeddings: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack per-frame embeddings of different lengths into a padded batch.

    Args:
        embeddings: B tensors of shape (N_i, D) (N_i may be 0), same D, dtype and device.

    Returns:
        ``(padded, mask)``: (B, max N_i, D) with zeros in the padding, and (B, max N_i) bool,
        True in the first N_i slots of row i.
    """
    if len(embeddings) == 0:
        raise ValueError("pad_embeddings needs at least one (N, D) tensor")
    dims = {e.shape[-1] for e in embeddings}
    if any(e.dim() != 2 for e in embeddings) or len(dims) != 1:
        shapes = [tuple(e.shape) for e in embeddings]
        raise ValueError(f"pad_embeddings expects (N_i, D) tensors with one D, got {shapes}")
    lengths = torch.tensor([e.shape[0] for e in embeddings], device=embeddings[0].device)
    padded = torch.nn.utils.rnn.pad_sequence(list(embeddings), batch_first=True)
    return padded, lengths_to_mask(lengths, padded.shape[1])


def _as_padded(emb: torch.Tensor | Sequence[torch.Tensor], mask: torch.Tensor | None,
               name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(emb, torch.Tensor):
        if emb.dim() != 3:
            raise ValueError(f"{name} must be (B, K, D) or a list of (N_i, D) tensors, "
                             f"got shape {tuple(emb.shape)}")
        if mask is None:
            mask = torch.ones(emb.shape[:2], dtype=torch.bool, device=emb.device)
        elif mask.shape != emb.shape[:2]:
            raise ValueError(f"mask of {name} must be {tuple(emb.shape[:2])}, "
                             f"got {tuple(mask.shape)}")
        if mask.dtype != torch.bool or mask.device != emb.device:
            mask = mask.to(device=emb.device, dtype=torch.bool)
        return emb, mask
    if mask is not None:
        raise ValueError(f"{name} is a list of tensors: its mask must be None (it is built here)")
    return pad_embeddings(emb)


def trim_padding(emb: torch.Tensor, mask: torch.Tensor,
                 max_count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep ``max_count`` slots per row, the valid ones first (in their order).

    Args:
        emb: (B, K, D); mask: (B, K) bool; max_count: the largest number of True per row.

    Returns:
        (B, max_count, D) and (B, max_count); the inputs themselves when nothing is dropped.
    """
    k = mask.shape[1]
    if max_count >= k:
        return emb, mask
    # a stable sort of "is padding" moves the valid slots to the front, keeping their order
    order = torch.sort((~mask).to(torch.uint8), dim=1, stable=True).indices[:, :max_count]
    return emb.gather(1, order[:, :, None].expand(-1, -1, emb.shape[2])), mask.gather(1, order)


def prepare_pair_batch(emb_a: torch.Tensor | Sequence[torch.Tensor],
                       emb_b: torch.Tensor | Sequence[torch.Tensor],
                       mask_a: torch.Tensor | None,
                       mask_b: torch.Tensor | None, *, trim: bool = True,
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Check and pad the two frames of a batch of frame pairs, and drop surplus padding.

    Args:
        emb_a: (B, K1, D) tensor, or a list of B tensors (N_i, D) (then ``mask_a`` is None).
        emb_b: (B, K2, D) tensor, or a list of B tensors (M_i, D) (then ``mask_b`` is None).
        mask_a, mask_b: (B, K1), (B, K2) bool, or None for "every slot holds an object".
        trim: drop surplus padding (see below).

    Returns:
        ``(emb_a, emb_b, mask_a, mask_b)`` as padded tensors with bool masks; with ``trim``,
        at most as many slots per frame as its fullest row has objects. Trimming costs one host
        synchronisation, and saves a lot when batches come with fixed-size slots (FairMOT
        gathers 500 per image): the losses' work grows with the square of the slot count.
    """
    a, ma = _as_padded(emb_a, mask_a, "emb_a")
    b, mb = _as_padded(emb_b, mask_b, "emb_b")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[2]:
        raise ValueError(f"emb_a {tuple(a.shape)} and emb_b {tuple(b.shape)} must agree in the "
                         "batch size B and the embedding size D")
    if trim and a.shape[0] > 0 and a.shape[1] > 0 and b.shape[1] > 0:
        a, b, ma, mb, _ = trim_pair_batch(a, b, ma, mb)
    return a, b, ma, mb


def trim_pair_batch(a: torch.Tensor, b: torch.Tensor, mask_a: torch.Tensor,
                    mask_b: torch.Tensor, *flags: torch.Tensor,
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                               list[list[int]]]:
    """Drop surplus padding of a padded pair batch (B >= 1), in one host synchronisation.

    Args:
        a: (B, K1, D); b: (B, K2, D); mask_a, mask_b: (B, K1), (B, K2) bool; flags: (B,) bool
            tensors fetched in the same synchronisation (e.g. the negative-pair flags).

    Returns:
        ``(a, b, mask_a, mask_b, counts)``: each frame keeps as many slots as its fullest row
        has objects; ``counts`` is :func:`batch_counts` of the masks and flags.
    """
    counts = batch_counts(mask_a, mask_b, *flags)
    a, mask_a = trim_padding(a, mask_a, max(counts[0]))
    b, mask_b = trim_padding(b, mask_b, max(counts[1]))
    return a, b, mask_a, mask_b, counts


def batch_counts(mask_a: torch.Tensor, mask_b: torch.Tensor, *flags: torch.Tensor,
                 ) -> list[list[int]]:
    """The object counts of each pair, and optionally (B,) bool flags, as host lists.

    Args:
        mask_a, mask_b: (B, K1), (B, K2) bool. flags: (B,) bool tensors on the same device.

    Returns:
        ``[counts_a, counts_b, *flags]``, B ints each (flags as 0/1): one host synchronisation.
    """
    rows = [mask_a.sum(1), mask_b.sum(1)] + [f.to(torch.int64) for f in flags]
    return torch.stack(rows).tolist()
