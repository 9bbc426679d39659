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

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Union

import torch
import torch.nn.functional as F
from torch import nn

from utrack.losses.masked import (
    compute_dtype,
    gram,
    l2_normalize,
    pad_embeddings,
    prepare_pair_batch,
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
class _Assignment:
    """The batched M' and what is needed to read it (K = K1 + K2)."""

    matrix: torch.Tensor        # (B, K, K+1) M', 0 at every masked entry
    objects: torch.Tensor       # (B, K) compute dtype, 1 at objects of valid pairs
    pair_valid: torch.Tensor    # (B,) bool, both frames hold >= 1 object
    negative: torch.Tensor | None  # (B,) bool, None when no pair is negative
    num_objects: torch.Tensor   # (B,) N + M, compute dtype
    factor: torch.Tensor        # (B,) softmax factor T
    ph_logit: torch.Tensor      # (B,) T * p
    k1: int


def _assign(a: torch.Tensor, b: torch.Tensor, mask_a: torch.Tensor, mask_b: torch.Tensor,
            negative: torch.Tensor | None, placeholder: str,
            temperature: Temperature) -> _Assignment:
    """Eq. 1-2 with the placeholder column, batched. Call with autocast disabled.

    Full-size work is float arithmetic only: padded rows are multiplied by 0 and excluded
    columns get a huge negative bias (a finite -inf), because bool ``where``/``masked_fill`` on
    full tensors cost several times a float add on CPU; and the op count is kept low, since at
    these sizes per-op overhead is a large part of the time.
    """
    dtype = compute_dtype(a)
    batch, k1 = mask_a.shape
    if negative is not None:
        negative = negative.to(device=a.device, dtype=torch.bool).reshape(batch)

    pair_valid = mask_a.any(1) & mask_b.any(1)
    objects = (torch.cat([mask_a, mask_b], 1) & pair_valid[:, None]).to(dtype)  # (B, K)
    num_objects = objects.sum(1)                                              # N + M, 0 if invalid
    # negatives always get a placeholder (p = 0): without one every row of M' sums to 1 over
    # object columns and Eq. 7 would be the constant N + M, even in "none" mode
    ph_missing = None
    if placeholder == "none":
        ph_missing = (~negative).to(dtype) if negative is not None else 1.0
    if temperature == "adaptive":
        # T = 2 log(C + 1), C = N + M (+ 1 placeholder) counts every column incl. the diagonal;
        # the clamp only touches invalid pairs (a valid pair has C >= 2)
        cols_plus_one = num_objects + 2.0
        if ph_missing is not None:
            cols_plus_one = cols_plus_one - ph_missing
        factor = torch.log(cols_plus_one).clamp_(min=0.5).mul_(2.0)
    else:
        factor = torch.full((batch,), float(temperature), dtype=dtype, device=a.device)

    # gain sqrt(T) * mask: the Gram matrix is T * S directly, and padded slots (any finite
    # value) become zero vectors with exactly zero gradient
    gain = factor.sqrt()[:, None, None] * objects[:, :, None]
    f = l2_normalize(torch.cat([a, b], 1).to(dtype), gain)                    # (B, K, D)
    neg_big = torch.finfo(dtype).min / 8  # a finite -inf: exp() underflows to exactly 0
    sim = gram(f, diagonal=neg_big, extra_columns=1)                         # T * S, Eq. 1

    if placeholder == "mean":
        # T * (sum of the off-diagonal S) = |sum_i f_i|^2 - sum_i |f_i|^2 (padding is zero)
        fd = f.detach()
        off_sum = (torch.linalg.vector_norm(fd.sum(1), dim=1).square_()
                   - torch.linalg.vector_norm(fd, dim=(1, 2)).square_())
        ph_logit = off_sum.div_((num_objects * (num_objects - 1.0)).clamp_(min=1.0))  # T * p
        if negative is not None:
            ph_logit = ph_logit * ~negative
    else:
        ph_logit = torch.zeros(batch, dtype=dtype, device=a.device)

    # S' = [S | p]; padded columns (and a missing placeholder) get the finite -inf
    ph_col = ph_logit if ph_missing is None else ph_logit + ph_missing * neg_big
    col_bias = torch.cat([objects.mul(-neg_big).add_(neg_big), ph_col[:, None]], 1)  # (B, K+1)
    # in place is fine: the Gram's backward does not need its output
    logits = sim.add_(col_bias[:, None, :])                                  # (B, K, K+1)
    matrix = torch.softmax(logits, dim=2) * objects[:, :, None]               # Eq. 2 on S'
    return _Assignment(matrix, objects, pair_valid, negative, num_objects, factor, ph_logit, k1)


@functools.lru_cache(maxsize=32)
def _frame_layout(k1: int, k: int, dtype: torch.dtype, device: torch.device,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, K+1) same-frame indicator (placeholder column 0) and (K+1,) object-column indicator."""
    frame = torch.arange(k, device=device) >= k1
    same = F.pad((frame[:, None] == frame[None, :]).to(dtype), (0, 1))
    object_cols = F.pad(torch.ones(k, dtype=dtype, device=device), (0, 1))
    return same, object_cols


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
    with torch.autocast(device_type=a.device.type, enabled=False):
        return _assign(a, b, ma, mb, negative, placeholder, temperature).matrix


_LOGGED = ("intra", "inter", "cycle", "positive", "negative", "placeholder", "num_pos", "num_neg")


def _zero_result(a: torch.Tensor, b: torch.Tensor,
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    zero = a.sum().to(compute_dtype(a)) * 0 + b.sum().to(compute_dtype(a)) * 0
    return zero, {key: zero.detach().clone() for key in _LOGGED}


@torch.no_grad()
def _linearised_terms(asg: _Assignment, margin: float, selected: tuple[str, ...],
                      ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 3-8 as ``loss = sum(weights * M') + const`` with detached weights.

    Every term is piecewise linear in M' (sums, ``|.|``, ``max``, ``relu``): with its active
    pieces fixed, it is a weighted sum of M' whose weights are its (sub)gradient: 1 on the
    same-frame blocks (intra), +-sign(M'[i, j] - M'[j, i]) on the cross blocks (cycle), +1 at
    each active row's second largest and -1 at its largest entry plus ``margin`` per active
    row (inter), 1 on the object columns (negative pairs). Value and gradient are those of the
    terms themselves, while autograd records one product instead of a few dozen nodes.

    Returns:
        ``weights`` (B, K, K+1), already divided by (N + M) and the number of valid pairs
        (Eq. 6-8), ``const`` (scalar), and the detached logging scalars.
    """
    mat, k1, obj = asg.matrix, asg.k1, asg.objects
    k = obj.shape[1]
    same_frame, object_cols = _frame_layout(k1, k, mat.dtype, mat.device)

    intra = (mat * same_frame).sum((1, 2))                                    # Eq. 3
    # Eq. 4 over a row's columns: its objects (the diagonal, 0, included) and the placeholder.
    # Every other entry is 0 too and M' >= 0, so the top two of the whole row are the same.
    largest, at_largest = mat.max(dim=2)
    second, at_second = mat.scatter(2, at_largest[..., None], -1.0).max(dim=2)
    gap = second.sub_(largest).add_(margin)
    active = (gap > 0).to(mat.dtype).mul_(obj)
    inter = (gap * active).sum(1)
    diff = mat[:, k1:, :k1] - mat[:, :k1, k1:k].transpose(1, 2)               # (B, K2, K1)
    cycle = diff.abs().sum((1, 2))                                            # Eq. 5
    off_placeholder = asg.num_objects - mat[..., k].sum(1)                    # Eq. 7

    chosen = [name in selected for name in TERM_NAMES]
    positive = sum(t for t, c in zip((intra, inter, cycle), chosen) if c)     # Eq. 6
    # per pair: intra, inter, cycle, Eq. 6, Eq. 7, each / (N + M); and p
    denom = asg.num_objects.clamp(min=1.0)
    per_pair = torch.stack([intra, inter, cycle, positive, off_placeholder, asg.ph_logit])
    per_pair[:5] /= denom
    per_pair[5] /= asg.factor

    valid = asg.pair_valid.to(mat.dtype)
    is_neg = valid * asg.negative if asg.negative is not None else torch.zeros_like(valid)
    is_pos = valid - is_neg
    counts = torch.stack([is_pos.sum(), is_neg.sum()])
    # Eq. 8: Npos/(Npos+Nneg) * sum_pos/Npos + Nneg/(Npos+Nneg) * sum_neg/Nneg = sum / Nvalid
    scale = (denom * counts.sum().clamp(min=1.0)).reciprocal_()
    pos_scale = (scale * is_pos)[:, None, None]

    weights = same_frame * pos_scale if chosen[0] else torch.zeros_like(mat)
    if chosen[2]:
        sign = diff.sign_().mul_(pos_scale)
        weights[:, k1:, :k1] += sign
        weights[:, :k1, k1:k] -= sign.transpose(1, 2)
    const = mat.new_zeros(())
    if chosen[1]:
        active.mul_(pos_scale[..., 0])
        const = margin * active.sum()
        weights.scatter_add_(2, at_second[..., None], active[..., None])
        weights.scatter_add_(2, at_largest[..., None], active.neg_()[..., None])
    if asg.negative is not None:
        weights += object_cols * (scale * is_neg)[:, None, None]

    means = per_pair @ torch.stack([is_pos, is_neg], 1) / counts.clamp(min=1.0)  # (6, 2)
    logged = dict(zip(("intra", "inter", "cycle", "positive"), means[:4, 0].unbind()))
    logged.update(negative=means[4, 1], placeholder=means[5, 0],
                  num_pos=counts[0], num_neg=counts[1])
    return weights, const, logged


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
    a, b, ma, mb = prepare_pair_batch(emb_a, emb_b, mask_a, mask_b)
    if a.shape[0] == 0 or a.shape[1] == 0 or b.shape[1] == 0:
        return _zero_result(a, b)
    with torch.autocast(device_type=a.device.type, enabled=False):
        asg = _assign(a, b, ma, mb, negative, placeholder, temperature)
        weights, const, logged = _linearised_terms(asg, margin, selected)
        loss = torch.dot(asg.matrix.reshape(-1), weights.reshape(-1)) + const
    return loss, logged


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
