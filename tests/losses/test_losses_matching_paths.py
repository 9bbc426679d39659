"""UTrack matching loss: exact ties in the inter term (Eq. 4), the top-two search behind it, the
equality of the code paths for dense and padded batches, and the in-place normalisation."""

from __future__ import annotations

import math

import pytest
import torch

import utrack.losses.matching as matching_module
from utrack.losses.masked import l2_normalize, normalize_
from utrack.losses.matching import assignment_matrix, matching_loss


def reference_loss(frames_a: list[list[list[float]]], frames_b: list[list[list[float]]],
                   placeholder: str, margin: float = 0.5) -> dict[str, float]:
    """Eq. 1-6 for positive pairs in plain Python floats, the inter term from sorted rows."""
    totals = {"intra": 0.0, "inter": 0.0, "cycle": 0.0}
    for fa, fb in zip(frames_a, frames_b):
        n, k = len(fa), len(fa) + len(fb)
        feats = [[x / math.sqrt(sum(y * y for y in v)) for x in v] for v in fa + fb]
        sim = [[sum(x * y for x, y in zip(u, v)) for v in feats] for u in feats]
        off_diagonal = [sim[i][j] for i in range(k) for j in range(k) if i != j]
        p = sum(off_diagonal) / len(off_diagonal) if placeholder == "mean" else 0.0
        t = 2 * math.log(k + (placeholder != "none") + 1)
        rows = []
        for i in range(k):
            logits = [t * sim[i][j] for j in range(k) if j != i]
            if placeholder != "none":
                logits.append(t * p)
            top = max(logits)
            z = sum(math.exp(v - top) for v in logits)
            row = [math.exp(t * sim[i][j] - top) / z if j != i else 0.0 for j in range(k)]
            rows.append(row + ([math.exp(t * p - top) / z] if placeholder != "none" else []))
        pair = {
            "intra": sum(rows[i][j] for i in range(k) for j in range(k) if (i < n) == (j < n)),
            "inter": sum(max(0.0, second + margin - first)
                         for second, first in (sorted(r)[-2:] for r in rows)),
            "cycle": sum(abs(rows[i][j] - rows[j][i]) for i in range(n, k) for j in range(n)),
        }
        for key in totals:
            totals[key] += pair[key] / k / len(frames_a)
    return totals


def tied_frames() -> tuple[list[list[list[float]]], list[list[list[float]]]]:
    # pair 0: b0 == b1, so a0's two largest entries are equal (second == largest, inter =
    # margin); pair 1: a single object per frame, whose rows have one non-zero candidate in
    # "none" mode (second largest = the diagonal's 0); pair 2: every embedding equal
    return ([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [[0.6, 0.8, 0.0]], [[1.0, 1.0, 1.0]] * 3],
            [[[0.6, 0.8, 0.0], [0.6, 0.8, 0.0]], [[0.0, 0.0, 1.0]], [[2.0, 2.0, 2.0]] * 2])


@pytest.mark.parametrize("placeholder", ["mean", "zero", "none"])
def test_inter_term_with_tied_largest_entries(placeholder: str) -> None:
    frames_a, frames_b = tied_frames()
    expected = reference_loss(frames_a, frames_b, placeholder)
    emb_a = [torch.tensor(f, requires_grad=True) for f in frames_a]
    emb_b = [torch.tensor(f, requires_grad=True) for f in frames_b]
    loss, terms = matching_loss(emb_a, emb_b, placeholder=placeholder)
    for key, value in expected.items():
        assert terms[key].item() == pytest.approx(value, abs=1e-6), key
    assert loss.item() == pytest.approx(sum(expected.values()), abs=1e-6)
    loss.backward()
    assert all(torch.isfinite(e.grad).all() for e in emb_a + emb_b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("chunk", [1 << 16, 64])
def test_top2_values_and_columns(dtype: torch.dtype, chunk: int,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matching_module, "_TOP2_CHUNK", chunk)  # 64: one pair per chunk
    gen = torch.Generator().manual_seed(0)
    mat = torch.softmax(torch.randn(5, 7, 9, generator=gen, dtype=dtype) * 3, dim=2)
    mat[0, 0] = torch.tensor([0.0, 0.3, 0.1, 0.3, 0.0, 0.0, 0.2, 0.1, 0.0])  # tied largest
    mat[0, 1] = 0.0                                                         # all zero
    mat[1, 2] = 0.0
    mat[1, 2, 4] = 1.0                                                      # one candidate
    mat[2, :, :3] = 0.0                                                     # zero columns
    values, columns = matching_module._top2(mat)
    expected = mat.sort(dim=2, descending=True).values[..., :2]
    torch.testing.assert_close(values, expected, atol=0, rtol=0)
    torch.testing.assert_close(mat.gather(2, columns), expected, atol=0, rtol=0)
    assert (columns[..., 0] != columns[..., 1]).all()


def test_dense_batch_equals_padded_batch() -> None:
    # every slot holds an object (the dense path) vs the same pairs with a padded slot in each
    # frame plus an invalid pair that fills frame A's slots (so trimming keeps the padding)
    gen = torch.Generator().manual_seed(3)
    emb_a = torch.randn(4, 3, 6, generator=gen)
    emb_b = torch.randn(4, 5, 6, generator=gen)
    negative = torch.tensor([False, True, False, False])
    mask_a = torch.tensor([[True] * 3 + [False]] * 4 + [[True] * 4])
    mask_b = torch.tensor([[False] + [True] * 5] * 4 + [[False] * 6])
    for placeholder in ("mean", "zero", "none"):
        dense_a, dense_b = emb_a.clone().requires_grad_(True), emb_b.clone().requires_grad_(True)
        dense, dense_terms = matching_loss(dense_a, dense_b, negative=negative,
                                           placeholder=placeholder)
        dense.backward()
        padded_a = torch.cat([torch.cat([emb_a, torch.full((4, 1, 6), 9.0)], 1),
                              torch.randn(1, 4, 6, generator=gen)]).requires_grad_(True)
        padded_b = torch.cat([torch.cat([torch.full((4, 1, 6), -9.0), emb_b], 1),
                              torch.randn(1, 6, 6, generator=gen)]).requires_grad_(True)
        padded, padded_terms = matching_loss(padded_a, padded_b, mask_a, mask_b,
                                             torch.cat([negative, torch.tensor([False])]),
                                             placeholder=placeholder)
        padded.backward()
        torch.testing.assert_close(padded, dense)
        for key, value in dense_terms.items():
            torch.testing.assert_close(padded_terms[key], value, msg=key)
        torch.testing.assert_close(padded_a.grad[:4, :3], dense_a.grad)
        torch.testing.assert_close(padded_b.grad[:4, 1:], dense_b.grad)
        assert padded_a.grad[:4, 3].abs().sum() == 0 and padded_b.grad[:4, 0].abs().sum() == 0
        assert padded_a.grad[4].abs().sum() == 0 and padded_b.grad[4].abs().sum() == 0


@pytest.mark.parametrize("dtype,big", [(torch.float64, 1e300), (torch.float32, 1e30)])
def test_normalize_in_place_matches_l2_normalize(dtype: torch.dtype, big: float) -> None:
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3, 6, 8, generator=gen, dtype=dtype)
    x[0, 1] *= big      # the squares overflow
    x[1, 2] /= big      # the squares underflow
    x[2, 3] = 0.0       # stays 0 (the norm is clamped to eps)
    gain = torch.rand(3, 6, 1, generator=gen, dtype=dtype)
    gain[1, 4] = 0.0
    scale = x.abs().amax(-1, keepdim=True).clamp(min=torch.finfo(dtype).tiny)
    norm = torch.linalg.vector_norm(x / scale, dim=-1, keepdim=True) * scale
    y = x.clone()
    coef = normalize_(y, gain)
    torch.testing.assert_close(y, l2_normalize(x, gain))
    torch.testing.assert_close(coef, gain / norm.clamp(min=1e-12))
    assert torch.isfinite(y).all() and y[2, 3].abs().sum() == 0


def test_empty_batch_has_an_empty_assignment_matrix() -> None:
    """No pair at all (B = 0): M' is empty, not an error (normalize_ sees no vector)."""
    mat = assignment_matrix(torch.randn(0, 2, 8), torch.randn(0, 3, 8))
    assert mat.shape == (0, 5, 6)
    x = torch.randn(0, 4, 8)
    assert normalize_(x, torch.ones(1)).shape == (0, 4, 1)
