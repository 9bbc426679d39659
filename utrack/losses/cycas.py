"""CycAs cycle-association loss: the unsupervised re-ID baseline of UTrack's Tables 1, 7-10.

Per frame pair with N <= M objects (the frames are swapped otherwise), with S the (N x M)
cosine similarities:

- ``A12 = softmax_row(t1 * S)`` (N x M) and ``A21 = softmax_row(t2 * S^T)`` (M x N), with the
  adaptive factor ``t = 2 log(K + 1)`` and K the softmax width (t1: K = M, t2: K = N);
- the cycle matrix ``C = A12 @ A21`` (N x N) should be the identity; the loss is
  ``sum_i max(0, max_{j != i} C[i, j] - C[i, i] + m)``
  ``+ sum_i max(0, max_{j != i} C[j, i] - C[i, i] + m)``, divided by N (m = 0.5). With N = 1
  there is no j != i: the maximum over the empty set is taken as 0 (C >= 0, so this is the
  same as leaving it out when N >= 2); C is then exactly 1 and the pair costs nothing for m < 1.
- batch: the mean over valid pairs (N >= 1 and M >= 1).

Vectorised over B pairs with masks. The swap needs no Python loop: the two softmaxes do not
depend on it (the one over frame B's objects always has width M_B, the one over frame A's
width N_A), only the order of the product does; both orders are computed (each only if some
pair needs it) and each pair takes its own. Masks enter as float factors and huge negative
biases rather than bool ``where``, which is much slower on CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import torch
from torch import nn

from utrack.losses.masked import compute_dtype, l2_normalize, prepare_pair_batch

__all__ = ["CycasLoss", "cycas_loss"]

Embeddings = Union[torch.Tensor, Sequence[torch.Tensor]]


def cycas_loss(emb_a: Embeddings, emb_b: Embeddings, mask_a: torch.Tensor | None = None,
               mask_b: torch.Tensor | None = None, *, margin: float = 0.5,
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """CycAs loss over a batch of frame pairs (see the module docstring).

    Args:
        emb_a: (B, K1, D) embeddings of frame A (any norm), or a list of B (N_i, D) tensors.
        emb_b: (B, K2, D) embeddings of frame B, or a list of B (M_i, D) tensors.
        mask_a: (B, K1) bool, True at real objects (None: all; must be None for lists).
        mask_b: (B, K2) bool, likewise.
        margin: m of the two hinges.

    Returns:
        ``(loss, terms)``: the scalar loss (float32, or float64 for float64 inputs; 0 with a
        grad_fn when no pair is valid) and detached logging scalars ``row`` and ``column`` (mean
        over valid pairs of each hinge sum / N), ``cycle_diag`` (mean C[i, i]) and ``num_pairs``.
    """
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0, got {margin!r}")
    a, b, ma, mb = prepare_pair_batch(emb_a, emb_b, mask_a, mask_b)
    dtype = compute_dtype(a)
    if a.shape[0] == 0 or a.shape[1] == 0 or b.shape[1] == 0:
        zero = a.sum().to(dtype) * 0 + b.sum().to(dtype) * 0
        keys = ("row", "column", "cycle_diag", "num_pairs")
        return zero, {key: zero.detach().clone() for key in keys}

    with torch.autocast(device_type=a.device.type, enabled=False):
        valid = ma.any(1) & mb.any(1)
        fa = (ma & valid[:, None]).to(dtype)                 # (B, K1)
        fb = (mb & valid[:, None]).to(dtype)                 # (B, K2)
        n_a, n_b = fa.sum(1), fb.sum(1)
        neg_big = torch.finfo(dtype).min / 8  # a finite -inf: exp() underflows to exactly 0
        # masked rows become zero vectors (zero gradient); padding may hold any finite value
        unit_a = l2_normalize(a.to(dtype), fa[:, :, None])
        unit_b = l2_normalize(b.to(dtype), fb[:, :, None])
        sim = unit_a @ unit_b.transpose(1, 2)                # (B, K1, K2) cosines
        # softmax over B's objects (width N_b) and over A's objects (width N_a), t = 2 log(K + 1);
        # the clamp only touches invalid pairs
        t_b = torch.log(n_b + 1.0).clamp_(min=0.5).mul_(2.0)[:, None, None]
        t_a = torch.log(n_a + 1.0).clamp_(min=0.5).mul_(2.0)[:, None, None]
        # A -> B (B, K1, K2) and B -> A (B, K2, K1); padded columns get the finite -inf,
        # padded rows are zeroed
        to_b = torch.softmax(sim * t_b + (1.0 - fb[:, None, :]) * neg_big, dim=2)
        to_b = to_b * fa[:, :, None]
        to_a = torch.softmax(sim.transpose(1, 2) * t_a + (1.0 - fa[:, None, :]) * neg_big, dim=2)
        to_a = to_a * fb[:, :, None]

        # the smaller frame goes first (A12 from it, A21 back to it). Both softmaxes are the same
        # either way, only the product order changes: A->B->A (N_a <= N_b) or B->A->B. Each
        # order is computed only if some pair needs it (a second host synchronisation).
        swap = n_a > n_b
        need_ab, need_ba = torch.stack([(valid & ~swap).any(), (valid & swap).any()]).tolist()
        zeros = torch.zeros_like(n_a)
        row_ab = col_ab = row_ba = col_ba = zeros
        diag_ab = diag_ba = zeros
        if need_ab:
            row_ab, col_ab, diag_ab = _cycle_hinges(to_b @ to_a, fa, margin)
        if need_ba:
            row_ba, col_ba, diag_ba = _cycle_hinges(to_a @ to_b, fb, margin)
        row = torch.where(swap, row_ba, row_ab)
        col = torch.where(swap, col_ba, col_ab)
        n = torch.minimum(n_a, n_b)

        denom = n.clamp(min=1.0)
        num_pairs = valid.sum().to(dtype)
        loss = ((row + col) / denom).sum() / num_pairs.clamp(min=1.0)

        with torch.no_grad():
            diag = torch.where(swap, diag_ba, diag_ab)
            stats = torch.stack([row / denom, col / denom, diag]).sum(1)
            stats = stats / torch.stack([num_pairs, num_pairs, n.sum()]).clamp(min=1.0)
        logged = dict(zip(("row", "column", "cycle_diag"), stats.unbind()))
        logged["num_pairs"] = num_pairs
    return loss, logged


def _cycle_hinges(cyc: torch.Tensor, mask: torch.Tensor, margin: float,
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row and column hinges of the cycle matrices C (B, K, K) over the slots in ``mask``.

    Returns (B,) sums of the row hinges, of the column hinges and of C's valid diagonal.
    """
    k = cyc.shape[1]
    diag = torch.diagonal(cyc, dim1=1, dim2=2)               # (B, K)
    # C >= 0 and padded entries are 0, so the max over j != i of all entries (diagonal pushed
    # below 0) is the max over the valid j != i, and 0 when there is none (N = 1)
    off = cyc - 2.0 * torch.eye(k, dtype=cyc.dtype, device=cyc.device)
    row = (torch.relu(off.amax(2) - diag + margin) * mask).sum(1)
    col = (torch.relu(off.amax(1) - diag + margin) * mask).sum(1)
    return row, col, (diag.detach() * mask).sum(1)


class CycasLoss(nn.Module):
    """Module form of :func:`cycas_loss`: ``forward(emb_a, emb_b, mask_a, mask_b)``."""

    def __init__(self, *, margin: float = 0.5) -> None:
        super().__init__()
        if not margin >= 0:
            raise ValueError(f"margin must be >= 0, got {margin!r}")
        self.margin = float(margin)

    def forward(self, emb_a: Embeddings, emb_b: Embeddings, mask_a: torch.Tensor | None = None,
                mask_b: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return cycas_loss(emb_a, emb_b, mask_a, mask_b, margin=self.margin)

    def extra_repr(self) -> str:
        return f"margin={self.margin}"
