"""UTrack's unsupervised re-ID matching loss (paper Sec. 3.1, Eq. 1-8).

For a pair of frames with N objects in frame A and M in frame B, all N + M embeddings are
compared with each other (Eq. 1), a placeholder column is appended, and a row-wise softmax gives
the assignment matrix M' ((N+M) x (N+M+1), Eq. 2). No identity is used: the loss only asks that
an object is not matched inside its own frame (intra, Eq. 3), that each row has one clear winner
(inter margin, Eq. 4) and that A->B and B->A assignments agree (cycle, Eq. 5). A negative pair
(two images of different scenes) puts all mass on the placeholder (Eq. 7). Eq. 8 mixes the two.

Everything is vectorised over B pairs padded to (B, K1, D) and (B, K2, D) with bool masks, and
computed in float32 (float64 inputs stay float64) with autocast disabled, so the loss is safe to
call inside ``torch.autocast`` with fp16/bf16 embeddings. Slots beyond the fullest row's object
count are dropped first (one host synchronisation), so fixed-size slot tensors such as
FairMOT's 500 per image cost what their objects cost.

The loss is one autograd node. Every term is piecewise linear in M', so its forward, while M'
is at hand, also works out the gradient through the softmax, the Gram matrix and the
normalisation (in place, on its own buffers); the backward is one matmul. The per-pair scalars
(T, 1 / (N + M), the Eq. 8 weights) are computed on the host from the object counts that the
trimming synchronises anyway, and a batch without padded slots or invalid pairs skips the
masking. At typical sizes most of the time on CPU beyond the two matmuls and the softmax is
per-operation overhead, so the code keeps the number of tensor operations (views included) low.

Where the official release differs we follow the paper: the release's negative-pair branch can
never run (its pair sampler disables negatives), so Eq. 7-8 are implemented from the paper; its
frame window for positive pairs defaults to 10 frames where the paper uses 20 (the window is a
data-side setting; ours defaults to 20).

Example (one pair, one object per frame, orthogonal embeddings; norms do not matter):

>>> import torch
>>> from utrack.losses.matching import matching_loss
>>> emb_a = torch.tensor([[[1.0, 0.0]]])
>>> emb_b = torch.tensor([[[0.0, 3.0]]])
>>> mask = torch.ones(1, 1, dtype=torch.bool)
>>> loss, terms = matching_loss(emb_a, emb_b, mask, mask)
>>> round(loss.item(), 4)  # each row: 0.5 on the other object, 0.5 on the placeholder p = 0
0.5
>>> {k: round(terms[k].item(), 4) for k in ("intra", "inter", "cycle")}
{'intra': 0.0, 'inter': 0.5, 'cycle': 0.0}

Ragged pairs can be given as lists; a pair with an empty frame is skipped:

>>> frames_a = [torch.randn(3, 8), torch.randn(0, 8)]
>>> frames_b = [torch.randn(4, 8), torch.randn(2, 8)]
>>> loss, terms = matching_loss(frames_a, frames_b)
>>> int(terms["num_pos"]), bool(torch.isfinite(loss))
(1, True)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Union

import torch
from torch import nn

from utrack.losses.masked import (
    batch_counts,
    compute_dtype,
    normalize_,
    pad_embeddings,
    prepare_pair_batch,
    trim_pair_batch,
)

__all__ = ["MatchingLoss", "assignment_matrix", "matching_loss", "pad_embeddings"]

PlaceholderMode = Literal["mean", "zero", "none"]
Temperature = Union[Literal["adaptive"], float]
Embeddings = Union[torch.Tensor, Sequence[torch.Tensor]]

TERM_NAMES: tuple[str, ...] = ("intra", "inter", "cycle")
_PLACEHOLDERS = ("mean", "zero", "none")


def _check_options(placeholder: str, temperature: Temperature, margin: float,
                   terms: Sequence[str]) -> tuple[str, ...]:
    if placeholder not in _PLACEHOLDERS:
        raise ValueError(f"placeholder must be one of {_PLACEHOLDERS}, got {placeholder!r}")
    if isinstance(temperature, str):
        if temperature != "adaptive":
            raise ValueError(f"temperature must be 'adaptive' or a float > 0, got {temperature!r}")
    elif not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be 'adaptive' or a float > 0, got {temperature!r}")
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0, got {margin!r}")
    if isinstance(terms, str):
        terms = (terms,)
    unknown = [t for t in terms if t not in TERM_NAMES]
    if unknown or len(terms) == 0:
        raise ValueError(f"terms must be a non-empty subset of {TERM_NAMES}, got {tuple(terms)}")
    return tuple(terms)


@dataclass
class _Layout:
    """What a padded batch's masks fix (K = K1 + K2), with the per-pair scalars worked out on
    the host from the object counts (the one synchronisation, shared with the trimming)."""

    k1: int
    objects: torch.Tensor | None  # (B, K) compute dtype, 1 at objects of valid pairs; None: all
    summary: torch.Tensor         # (7, B) weights of the per-pair values, see _summary
    is_pos: torch.Tensor          # (B,) 1 for a valid positive pair
    is_neg: torch.Tensor          # (B,) 1 for a valid negative pair
    one: torch.Tensor             # (B,) 1
    num_objects: torch.Tensor     # (B,) N + M (0 for an invalid pair)
    root: torch.Tensor            # (B,) sqrt(T), T the softmax factor
    inv_factor: torch.Tensor      # (B,) 1 / T
    ph_scale: torch.Tensor        # (B,) 1 / (N + M)(N + M - 1) ("mean" p; 0 for negatives)
    ph_bias: torch.Tensor         # (B,) the finite -inf where a pair has no placeholder column
    valid: torch.Tensor           # (B,) 1 for a valid pair
    grad_scale: torch.Tensor      # (B,) d loss / d (a pair's Eq. 6 or 7 sum), 1 / (N + M) Nvalid
    all_placeholders: bool        # every pair has a placeholder column (``ph_bias`` is 0)
    negatives: bool               # some valid pair is negative

    @property
    def dense(self) -> bool:
        """No padded slot and no invalid pair: every row and column holds an object."""
        return self.objects is None


@functools.lru_cache(maxsize=4096)
def _pair_scalars(n: int, m: int, negative: int, npos: int, nneg: int, placeholder: str,
                  temperature: Temperature, neg_big: float) -> tuple[float, ...]:
    """The 15 values of :func:`_layout`'s table for a pair with ``n`` and ``m`` objects (not
    valid if one is 0) in a batch of ``npos`` valid positive and ``nneg`` valid negative pairs.
    """
    num = n + m if n > 0 and m > 0 else 0
    pos, neg = float(num > 0 and not negative), float(num > 0 and bool(negative))
    # negatives always get a placeholder (p = 0): without one every row of M' sums to 1 over
    # object columns and Eq. 7 would be the constant N + M, even in "none" mode
    has_ph = placeholder != "none" or bool(negative)
    if temperature == "adaptive":
        # T = 2 log(C + 1), C = N + M (+ 1 placeholder) counts every column incl. the
        # diagonal; the clamp only touches invalid pairs (a valid pair has C >= 2)
        factor = max(2.0 * math.log(num + 1 + has_ph), 1.0)
    else:
        factor = float(temperature)
    per_object = 1.0 / max(num, 1)
    to_pos, to_neg, to_all = 1.0 / max(npos, 1), 1.0 / max(nneg, 1), 1.0 / max(npos + nneg, 1)
    return (
        # summary weights: means over positive / negative pairs of the per-pair values divided
        # by N + M, the mean p (divided by T), Eq. 8 (= sum / Nvalid) and the counts
        pos * per_object * to_pos, neg * per_object * to_neg, pos / factor * to_pos,
        pos * per_object * to_all, neg * per_object * to_all, pos, neg,
        1.0, float(num), math.sqrt(factor), 1.0 / factor,
        (1.0 - neg) / max(num * (num - 1), 1), 0.0 if has_ph else neg_big, pos + neg,
        (pos + neg) * per_object * to_all,
    )


def _layout(mask_a: torch.Tensor, mask_b: torch.Tensor, counts: Sequence[Sequence[int]],
            placeholder: str, temperature: Temperature, dtype: torch.dtype) -> _Layout:
    """The :class:`_Layout` of (B, K1) and (B, K2) bool masks.

    ``counts``: :func:`batch_counts` of the masks, the objects per pair in A and in B, and
    optionally the pairs' negative flags. The per-pair scalars are computed in Python floats
    (cached per kind of pair) and reach the device as one (15, B) tensor.
    """
    (batch, k1), k2 = mask_a.shape, mask_b.shape[1]
    flags = counts[2] if len(counts) > 2 else [0] * batch
    valid = [n > 0 and m > 0 for n, m in zip(counts[0], counts[1])]
    nneg = sum(itertools.compress(flags, valid))
    npos = sum(valid) - nneg
    values = array("d" if dtype == torch.float64 else "f", itertools.chain.from_iterable(map(
        _pair_scalars, counts[0], counts[1], flags, itertools.repeat(npos),
        itertools.repeat(nneg), itertools.repeat(placeholder), itertools.repeat(temperature),
        itertools.repeat(torch.finfo(dtype).min / 8))))  # a finite -inf: exp() underflows to 0
    if batch:
        table = torch.frombuffer(values, dtype=dtype).view(batch, 15).t()    # (15, B)
        if mask_a.device.type != "cpu":
            table = table.to(mask_a.device)                                  # one host->device
    else:
        table = torch.empty(15, 0, dtype=dtype, device=mask_a.device)
    rows = table.unbind()
    objects = None
    if npos + nneg < batch or counts[0].count(k1) < batch or counts[1].count(k2) < batch:
        objects = torch.cat([mask_a, mask_b], 1).to(dtype)
        if npos + nneg < batch:
            objects.mul_(rows[13].unsqueeze(1))
    # rows 5 to 14 are the fields is_pos to grad_scale, in order
    return _Layout(k1, objects, table[:7], *rows[5:], placeholder != "none" or all(flags),
                   nneg > 0)


@dataclass
class _Forward:
    """Eq. 1-2 of a batch (C >= K + 1 columns), computed without autograd, and what the
    backward pass needs."""

    matrix: torch.Tensor    # (B, K, C) M', 0 at every masked entry and after column K
    logits: torch.Tensor    # (B, K, C) T * S', equal to the Gram y y^T at all object columns
    rows: torch.Tensor      # (B, C, D) y = sqrt(T) * unit embeddings (0 at padding), 0 rows
    coef: torch.Tensor      # (B, K, 1) dy/dx scale sqrt(T) / ||x|| (0 at padding)
    ph_logit: torch.Tensor  # (B,) T * p


def _forward(a: torch.Tensor, b: torch.Tensor, lay: _Layout, placeholder: str,
             columns: int | None = None) -> _Forward:
    """Eq. 1-2 with the placeholder column. Call without grad and with autocast disabled.

    ``a`` (B, K1, D) and ``b`` (B, K2, D) are in the compute dtype. ``columns``: the width C of
    the logits and M' (default K + 1); columns after the placeholder's are excluded (M' = 0),
    e.g. to round C up to a multiple of 8, on which the matmul runs faster. Full-size work is
    float arithmetic on fresh buffers, mostly in place: padded rows are multiplied by 0 and
    excluded columns get a huge negative bias (a finite -inf), because bool ``where`` /
    ``masked_fill`` on full tensors cost several times a float add on CPU.
    """
    batch, k1, dim = a.shape
    k = k1 + b.shape[1]
    columns = k + 1 if columns is None else columns
    # gain sqrt(T) * mask: the Gram matrix is T * S directly, and padded slots (any finite
    # value) become zero vectors. The zero rows at the end give the placeholder column (and
    # the excluded ones).
    gain = lay.root.view(-1, 1, 1)
    if not lay.dense:
        gain = gain * lay.objects.unsqueeze(2)
    rows = torch.cat([a, b, a.new_zeros(batch, columns - k, dim)], 1)        # (B, C, D)
    y = rows.narrow(1, 0, k)
    coef = normalize_(y, gain)
    logits = torch.bmm(y, rows.transpose(1, 2))                              # T * S, Eq. 1
    diagonal = logits.diagonal(dim1=1, dim2=2)
    if placeholder == "mean":
        # T * p: the mean of the off-diagonal entries of T * S (padding is zero); 0 for negatives
        diagonal.zero_()
        ph_logit = logits.sum((1, 2)).mul_(lay.ph_scale)
    else:
        ph_logit = lay.ph_scale.new_zeros(batch)
    neg_big = torch.finfo(a.dtype).min / 8  # a finite -inf: exp() underflows to exactly 0
    diagonal.fill_(neg_big)
    # S' = [S | p]; padded columns (and a missing placeholder) get the finite -inf
    ph_col = ph_logit if lay.all_placeholders else ph_logit + lay.ph_bias
    if lay.dense:
        logits.select(2, k).copy_(ph_col.unsqueeze(1))
        if columns > k + 1:
            logits.narrow(2, k + 1, columns - k - 1).fill_(neg_big)
        matrix = torch.softmax(logits, dim=2)                                # Eq. 2 on S'
    else:
        col_bias = torch.cat([lay.objects.mul(-neg_big).add_(neg_big), ph_col.unsqueeze(1),
                              ph_col.new_full((batch, columns - k - 1), neg_big)], 1)
        logits.add_(col_bias.unsqueeze(1))                                   # (B, K, C)
        matrix = torch.softmax(logits, dim=2).mul_(lay.objects.unsqueeze(2))
    return _Forward(matrix, logits, rows, coef, ph_logit)


_INDEX_BITS = 29  # the zero low mantissa bits of a float32 value in float64
_INDEX_MASK = (1 << _INDEX_BITS) - 1
_TOP2_CHUNK = 1 << 16  # entries per int64 key buffer (512 KiB; fewer page faults than 1 MiB)


@functools.lru_cache(maxsize=32)
def _column_index(columns: int, device: torch.device) -> torch.Tensor:
    return torch.arange(columns, device=device)


def _top2(mat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two largest entries of each row of a non-negative (B, K, C) tensor, largest first.

    Returns values and column indices, (B, K, 2) each. Of tied entries either may come first;
    a tie for the largest gives ``second == largest``.

    ``max(dim)`` with indices is several times slower than ``amax`` on CPU (``topk`` slower
    still). For float32: a float32 value converted to float64 has 29 zero low mantissa bits,
    and non-negative floats order as their bit patterns do, so the column index is packed into
    those bits and an integer ``amax`` gives each row's largest entry with its column. These
    int64 keys take twice the memory of ``mat``: big batches are done a few pairs at a time.
    """
    batch, rows, columns = mat.shape
    if mat.dtype == torch.float32 and columns <= _INDEX_MASK:
        chunk = max(1, _TOP2_CHUNK // (rows * columns))
        if batch > chunk:
            parts = [_top2(part) for part in mat.split(chunk)]
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        key = mat.to(torch.float64).view(torch.int64)
        key.bitwise_or_(_column_index(columns, mat.device))
        at_first = key.amax(2, keepdim=True).bitwise_and_(_INDEX_MASK)
        key.scatter_(2, at_first, -1)
        at = torch.cat([at_first, key.amax(2, keepdim=True).bitwise_and_(_INDEX_MASK)], 2)
    else:
        at_first = mat.argmax(2, keepdim=True)
        at_second = mat.scatter(2, at_first, -1.0).argmax(2, keepdim=True)
        at = torch.cat([at_first, at_second], 2)
    return mat.gather(2, at), at


@functools.lru_cache(maxsize=32)
def _signs(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(2,) [-1, 1]: the signs of the inter weights at the largest and second largest entry."""
    return torch.tensor([-1.0, 1.0], dtype=dtype, device=device)


@functools.lru_cache(maxsize=32)
def _summary_selection(chosen: tuple[bool, ...], device: torch.device, dtype: torch.dtype,
                       ) -> torch.Tensor:
    """(49, 9): the logged scalars (in the order of ``_LOGGED``) and the loss as sums of the
    entries of the flattened (7, 7) product of :func:`_summary`.

    Its rows are the summary weights of :class:`_Layout` (0 mean positive, 1 mean negative,
    2 mean p, 3 and 4 Eq. 8 for positives and negatives, 5 and 6 counts), its columns the
    per-pair values (0 intra, 1 inter, 2 cycle, 3 mass on the placeholder, 4 T * p, 5 one,
    6 N + M); Eq. 7 is N + M minus the placeholder's mass.
    """
    select = torch.zeros(7, 7, 9, dtype=dtype)
    for term in range(3):
        select[0, term, term] = 1.0
        if chosen[term]:
            select[0, term, 3] = select[3, term, 8] = 1.0                     # Eq. 6
    select[1, 6, 4], select[1, 3, 4] = 1.0, -1.0                              # Eq. 7
    select[4, 6, 8], select[4, 3, 8] = 1.0, -1.0
    select[2, 4, 5] = select[5, 5, 6] = select[6, 5, 7] = 1.0
    return select.view(49, 9).to(device)


def _terms(fwd: _Forward, lay: _Layout, margin: float, chosen: tuple[bool, ...], grad: bool,
           ) -> torch.Tensor:
    """Eq. 3-7 of a batch of M' (B, K, C): the per-pair values (B, 7) that :func:`_summary`
    combines. With ``grad``, M' is then overwritten with d loss / d logits (but for the
    placeholder's and excluded columns, never used: their logits are constant), up to the
    factor ``lay.grad_scale``.

    Every term is piecewise linear in M' (sums, ``|.|``, ``max``, ``relu``): with its active
    pieces fixed, d (a pair's sum) / d M' = W is 1 on the same-frame blocks (intra, Eq. 3),
    s = sign(M'[i, j] - M'[j, i]) at M'[i, j] and -s at M'[j, i] for i in B, j in A (cycle,
    Eq. 5), -1 at an active row's largest and +1 at its second largest entry (inter, Eq. 4),
    1 on the object columns (negative pairs, Eq. 7). Through the softmax this becomes
    M' * (W - rowsum), rowsum_i = sum_j M'[i, j] W[i, j], worked out block by block.
    """
    mat = fwd.matrix
    k1, k = lay.k1, mat.shape[1]
    # Eq. 4 over a row's columns: its objects (the diagonal, 0, included) and the placeholder.
    # The excluded columns are 0 too and M' >= 0, so the top two of the whole row are the same.
    top, at = _top2(mat)
    gap = top.diff(dim=2)                                       # (B, K, 1) second - largest
    inter_rows = (gap + margin).clamp_(min=0.0)
    if not lay.dense:
        inter_rows.mul_(lay.objects.unsqueeze(2))
    to_a, to_b, ph_part = mat.split([k1, k - k1, mat.shape[2] - k], 2)
    (aa, ba), (ab, bb) = to_a.split([k1, k - k1], 1), to_b.split([k1, k - k1], 1)
    # Eq. 3 per row: the mass on the row's own frame
    same_rows = torch.cat([aa.sum(2), bb.sum(2)], 1)                          # (B, K)
    # Eq. 5 per row, sum_j W[i, j] M'[i, j] over the cross blocks: sum_j s M'[i, j] (j in A)
    # for a row i in B, -sum_j s M'[i, j] (j in B, s transposed) for a row i in A. Summed over
    # a pair's rows, sum s (M'[i, j] - M'[j, i]) = sum |M'[i, j] - M'[j, i]|: the cycle term.
    sign = torch.sub(ba, ab.transpose(1, 2)).sign_()                          # (B, K2, K1)
    cross_rows = torch.cat([(ab * sign.transpose(1, 2)).sum(2).neg_(), (sign * ba).sum(2)], 1)

    # per pair (B, 7): intra, inter, cycle, the placeholder's mass, T * p, 1, N + M
    per_pair = torch.stack([same_rows.sum(1), inter_rows.sum((1, 2)), cross_rows.sum(1),
                            ph_part.sum((1, 2)), fwd.ph_logit, lay.one, lay.num_objects], 1)
    if not grad:
        return per_pair

    intra, inter, cycle = (float(c) for c in chosen)
    if intra == cycle == 1.0:
        rowsum = same_rows.add_(cross_rows)
    else:                                                       # ablations (paper Table 2)
        rowsum = same_rows.mul_(intra).add_(cross_rows, alpha=cycle)
        sign.mul_(cycle)
    active = inter_rows.sign_() if inter else inter_rows.zero_()  # 1 where the hinge is active
    same = intra                                                # W on the same-frame blocks
    if lay.negatives:
        # W = 1 on a negative pair's object columns, so M' * (W - rowsum) is
        # M' * M'[i, placeholder]: the terms' weights are dropped, rowsum is -M'[i, placeholder]
        is_pos = lay.is_pos.view(-1, 1, 1)
        sign.mul_(is_pos)
        active.mul_(is_pos)
        same = is_pos * intra
        rowsum = torch.addcmul(rowsum * lay.is_pos.unsqueeze(1), ph_part[..., 0],
                               lay.is_neg.unsqueeze(1), value=-1.0)
    minus = rowsum.unsqueeze(2).addcmul_(gap, active).neg_()    # inter: second - largest
    minus_a, minus_b = minus.split([k1, k - k1], 1)
    same_a, same_b = (minus + same).split([k1, k - k1], 1)
    aa.mul_(same_a)
    bb.mul_(same_b)
    ab.mul_(torch.sub(minus_a, sign.transpose(1, 2)))
    ba.mul_(sign.add_(minus_b))
    mat.scatter_add_(2, at, top.mul_(active * _signs(mat.device, mat.dtype)))
    return per_pair


def _summary(per_pair: torch.Tensor, lay: _Layout, chosen: tuple[bool, ...],
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss (scalar, Eq. 8) and the 8 logged scalars (see :func:`matching_loss`) stacked
    in the order of ``_LOGGED``, from the per-pair values (B, 7) of :func:`_terms`: one matmul
    gives every logged mean and Eq. 8."""
    selection = _summary_selection(chosen, per_pair.device, per_pair.dtype)
    summary = (lay.summary @ per_pair).view(-1) @ selection
    return summary[8], summary[:8]


def _gram_grad(dlogits: torch.Tensor, logits: torch.Tensor, lay: _Layout,
               in_place: bool = False) -> torch.Tensor:
    """Backward of Eq. 1 and of the normalisation, up to the last matmul.

    With y = gain * x / ||x|| (the rows of ``_Forward.rows``) and G = y y^T, returns the
    (B, K, K) matrix A such that d loss / d x = coef * (A @ y).

    Args:
        dlogits: (B, K, C) d loss / d logits on the object columns, 0 wherever M' is 0 (the
            diagonal, padding), as the softmax's backward gives.
        logits: (B, K, C) the forward's logits: G at every object column.
        in_place: ``logits`` is overwritten (scratch, then A in its first K columns) instead of
            allocating.
    """
    k = dlogits.shape[1]
    square = dlogits.narrow(2, 0, k)
    # d(gain x / ||x||)/dx = coef (I - u u^T), u = y / gain: the u u^T part is diag(along) @ y,
    # folded into the one matmul. With the symmetric d / dy of y y^T, S = square + square^T:
    # along_i = (S @ y)_i . y_i / gain_i^2 = sum_j S_ij G_ij / gain_i^2, and G (symmetric) is
    # the logits wherever ``square`` is not 0 (no bias on object columns)
    scratch = logits.narrow(2, 0, k)
    scratch = scratch.mul_(square) if in_place else square * scratch
    inv_gain2 = lay.inv_factor.unsqueeze(1)
    if not lay.dense:
        inv_gain2 = inv_gain2 * lay.objects
    along = (scratch.sum(2) + scratch.sum(1)).mul_(inv_gain2)
    grad = torch.add(square, square.transpose(1, 2), out=scratch if in_place else None)
    grad.diagonal(dim1=1, dim2=2).sub_(along)
    return grad


def _embedding_grads(grad: torch.Tensor, rows: torch.Tensor, coef: torch.Tensor, k1: int,
                     needs: Sequence[bool]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """d loss / d a (B, K1, D) and d loss / d b (B, K2, D) (None where not needed) from the
    :func:`_gram_grad` matrix ``grad`` (B, K, K) and ``coef`` (B, K, 1), the factor of dy/dx
    (times any scale)."""
    k = grad.shape[1]
    y = rows.narrow(1, 0, k)
    if needs[0] and needs[1]:
        grad_a, grad_b = torch.bmm(grad, y).split([k1, k - k1], 1)
        coef_a, coef_b = coef.split([k1, k - k1], 1)
        return grad_a * coef_a, grad_b * coef_b
    start, size = (0, k1) if needs[0] else (k1, k - k1)
    part = torch.bmm(grad.narrow(1, start, size), y).mul_(coef.narrow(1, start, size))
    return (part, None) if needs[0] else (None, part)


def _autocast_off(device_type: str) -> contextlib.AbstractContextManager:
    """Disables autocast (the losses compute in float32 or float64); entering ``torch.autocast``
    costs far more than this check when autocast is off anyway."""
    if torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


class _MatchingLoss(torch.autograd.Function):
    """Eq. 1-8 in one node. The backward is written out (the terms' weights, the softmax, the
    Gram matrix, the normalisation) and run in the forward, while M' is at hand, up to the last
    matmul: the node keeps one (B, K, K) matrix."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, lay: _Layout, placeholder: str,
                margin: float, chosen: tuple[bool, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        k = a.shape[1] + b.shape[1]
        columns = -(-(k + 1) // 8) * 8  # K + 1 rounded up to a multiple of 8: a faster matmul
        needs_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        # autograd records nothing in here: inference mode spares every op its bookkeeping
        # (what it creates is only read afterwards; the outputs are made outside)
        with torch.inference_mode():
            fwd = _forward(a, b, lay, placeholder, columns)
            per_pair = _terms(fwd, lay, margin, chosen, needs_grad)
            if needs_grad:
                # M' (now d loss / d logits) and the logits are not needed any more: reused
                ctx.grad = _gram_grad(fwd.matrix, fwd.logits, lay, in_place=True)
                ctx.coef = fwd.coef * lay.grad_scale.view(-1, 1, 1)
                ctx.rows, ctx.k1 = fwd.rows, lay.k1
        loss, logged = _summary(per_pair, lay, chosen)
        ctx.mark_non_differentiable(logged)
        ctx.set_materialize_grads(False)
        return loss, logged

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor | None, _: None) -> tuple[torch.Tensor | None, ...]:
        if grad is None:  # grads are not materialised: no gradient reached the loss
            return None, None, None, None, None, None
        with _autocast_off(grad.device.type):
            if grad.dtype != ctx.coef.dtype:
                grad = grad.to(ctx.coef.dtype)
            grads = _embedding_grads(ctx.grad, ctx.rows, ctx.coef * grad, ctx.k1,
                                     ctx.needs_input_grad[:2])
        return (*grads, None, None, None, None)


class _AssignmentMatrix(torch.autograd.Function):
    """M' of Eq. 2 (B, K, K+1) from the (B, K1, D), (B, K2, D) embeddings."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, lay: _Layout,
                placeholder: str) -> torch.Tensor:
        fwd = _forward(a, b, lay, placeholder)
        ctx.save_for_backward(fwd.matrix)  # an output: not kept on ctx (a reference cycle)
        ctx.fwd, ctx.lay = dataclasses.replace(fwd, matrix=None), lay
        return fwd.matrix

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (mat,), fwd, lay = ctx.saved_tensors, ctx.fwd, ctx.lay
        with _autocast_off(grad.device.type):
            grad = grad.to(mat.dtype)
            # softmax backward; padded rows of M' are 0, so their logits get 0 as well
            pw = mat * grad
            dlogits = pw.sub_(mat * pw.sum(2, keepdim=True))
            grads = _embedding_grads(_gram_grad(dlogits, fwd.logits, lay), fwd.rows, fwd.coef,
                                     lay.k1, ctx.needs_input_grad[:2])
        return (*grads, None, None)


def _as_dtype(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return x if x.dtype == dtype else x.to(dtype)


def _negative_flags(negative: torch.Tensor | None, mask: torch.Tensor) -> list[torch.Tensor]:
    if negative is None:
        return []
    return [negative.to(device=mask.device, dtype=torch.bool).reshape(mask.shape[0])]


_LOGGED = ("intra", "inter", "cycle", "positive", "negative", "placeholder", "num_pos", "num_neg")


def _zero_result(a: torch.Tensor, b: torch.Tensor,
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    zero = a.sum().to(compute_dtype(a)) * 0 + b.sum().to(compute_dtype(a)) * 0
    return zero, {key: zero.detach().clone() for key in _LOGGED}


def assignment_matrix(emb_a: Embeddings, emb_b: Embeddings, mask_a: torch.Tensor | None = None,
                      mask_b: torch.Tensor | None = None, negative: torch.Tensor | None = None, *,
                      placeholder: PlaceholderMode = "mean",
                      temperature: Temperature = "adaptive") -> torch.Tensor:
    """The assignment matrix M' of each pair (paper Eq. 2 applied to S'; drawn in Fig. 7).

    Args: as :func:`matching_loss`.

    Returns:
        (B, K1+K2, K1+K2+1): rows and the first K1+K2 columns are frame A's slots then frame
        B's slots, the last column is the placeholder. Entries of padded slots, the diagonal, and
        the placeholder column of pairs without one are 0; so are all entries of invalid pairs.
    """
    _check_options(placeholder, temperature, 0.0, TERM_NAMES)
    a, b, ma, mb = prepare_pair_batch(emb_a, emb_b, mask_a, mask_b, trim=False)
    dtype = compute_dtype(a)
    counts = batch_counts(ma, mb, *_negative_flags(negative, ma))
    with _autocast_off(a.device.type):
        lay = _layout(ma, mb, counts, placeholder, temperature, dtype)
        return _AssignmentMatrix.apply(_as_dtype(a, dtype), _as_dtype(b, dtype), lay, placeholder)


def matching_loss(emb_a: Embeddings, emb_b: Embeddings, mask_a: torch.Tensor | None = None,
                  mask_b: torch.Tensor | None = None, negative: torch.Tensor | None = None, *,
                  placeholder: PlaceholderMode = "mean", temperature: Temperature = "adaptive",
                  margin: float = 0.5, terms: Sequence[str] = TERM_NAMES,
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """UTrack's unsupervised matching loss over a batch of frame pairs (paper Eq. 1-8).

    Per pair (N valid objects in A, M in B, rows/columns: A's objects then B's):

    - S (Eq. 1): cosine similarities, diagonal excluded; S' adds a placeholder column of value p:
      ``mean`` = the mean of the off-diagonal entries of S (detached), ``zero`` = 0, ``none`` = no
      column. A negative pair always has the column, with p = 0 (also in ``none`` mode: otherwise
      Eq. 7 would be constant).
    - M' = softmax_row(T * S') (Eq. 2) with T = 2 log(C + 1), C = N + M (+1 with a placeholder)
      the number of columns of S' incl. the diagonal one, or the fixed float ``temperature``.
    - intra (Eq. 3): the mass of M' on the same frame (A->A and B->B blocks);
      inter (Eq. 4): per row ``max(0, second + margin - largest)`` over all of the row's columns
      (the diagonal, whose M' is 0, and the placeholder included, so a row with a single non-zero
      candidate compares it with 0); cycle (Eq. 5): ``sum |M'[i, j] - M'[j, i]|``, i in B, j in A.
    - positive pair (Eq. 6): (sum of the selected ``terms``) / (N + M); negative pair (Eq. 7):
      the mass of M' off the placeholder column / (N + M).
    - batch (Eq. 8): ``Npos/(Npos+Nneg) * mean_pos + Nneg/(Npos+Nneg) * mean_neg`` over valid
      pairs (both frames non-empty), i.e. the plain mean of the valid pairs' losses.

    The official release never runs its negative branch (its sampler disables negatives); Eq. 7
    and the Eq. 8 weighting follow the paper.

    Args:
        emb_a: (B, K1, D) embeddings of frame A (any norm), or a list of B (N_i, D) tensors.
        emb_b: (B, K2, D) embeddings of frame B, or a list of B (M_i, D) tensors.
        mask_a: (B, K1) bool, True at real objects (None: all; must be None for lists).
        mask_b: (B, K2) bool, likewise.
        negative: (B,) bool, True for a negative pair (frames of different scenes); None: none.
        placeholder: ``"mean"``, ``"zero"`` or ``"none"`` (see above).
        temperature: ``"adaptive"`` or a fixed positive softmax factor T.
        margin: m of Eq. 4.
        terms: which of ``("intra", "inter", "cycle")`` enter Eq. 6 (ablations, paper Table 2).

    Returns:
        ``(loss, terms)``: the scalar loss (float32, or float64 for float64 inputs; 0 with a
        grad_fn when no pair is valid) and detached scalars for logging: ``intra``, ``inter``,
        ``cycle`` (mean over valid positive pairs of each term / (N + M), always all three),
        ``positive`` and ``negative`` (mean Eq. 6 / Eq. 7 losses), ``placeholder`` (mean p over
        valid positive pairs), ``num_pos``, ``num_neg`` (valid pairs counted).
    """
    selected = _check_options(placeholder, temperature, margin, terms)
    a, b, ma, mb = prepare_pair_batch(emb_a, emb_b, mask_a, mask_b, trim=False)
    if a.shape[0] == 0 or a.shape[1] == 0 or b.shape[1] == 0:
        return _zero_result(a, b)
    # the one host synchronisation: object counts (to trim surplus slots) and negative flags
    a, b, ma, mb, counts = trim_pair_batch(a, b, ma, mb, *_negative_flags(negative, ma))
    dtype = compute_dtype(a)
    with _autocast_off(a.device.type):
        lay = _layout(ma, mb, counts, placeholder, temperature, dtype)
        loss, logged = _MatchingLoss.apply(_as_dtype(a, dtype), _as_dtype(b, dtype), lay,
                                           placeholder, margin,
                                           tuple(name in selected for name in TERM_NAMES))
    return loss, dict(zip(_LOGGED, logged.unbind()))


class MatchingLoss(nn.Module):
    """Module form of :func:`matching_loss` (paper Eq. 1-8); the options are fixed at init.

    ``forward(emb_a, emb_b, mask_a, mask_b, negative=None) -> (loss, terms)`` with the shapes
    of :func:`matching_loss`.
    """

    def __init__(self, *, placeholder: PlaceholderMode = "mean",
                 temperature: Temperature = "adaptive", margin: float = 0.5,
                 terms: Sequence[str] = TERM_NAMES) -> None:
        super().__init__()
        self.terms = _check_options(placeholder, temperature, margin, terms)
        self.placeholder = placeholder
        self.temperature = temperature
        self.margin = float(margin)

    def forward(self, emb_a: Embeddings, emb_b: Embeddings, mask_a: torch.Tensor | None = None,
                mask_b: torch.Tensor | None = None, negative: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return matching_loss(emb_a, emb_b, mask_a, mask_b, negative,
                             placeholder=self.placeholder, temperature=self.temperature,
                             margin=self.margin, terms=self.terms)

    def extra_repr(self) -> str:
        return (f"placeholder={self.placeholder!r}, temperature={self.temperature!r}, "
                f"margin={self.margin}, terms={self.terms}")
