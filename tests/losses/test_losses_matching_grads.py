"""UTrack matching loss: the hand-written gradients of the term ablations (paper Table 2) and of
the float32 path for dense batches (the top-two search on packed keys) against autograd through
a per-pair loop, and the assignment matrix's backward against finite differences."""

from __future__ import annotations

import itertools

import pytest
import torch

import utrack.losses.matching as matching_module
from naive_matching import TERMS, naive_torch_loss
from utrack.losses.matching import assignment_matrix, matching_loss

def ragged_pairs(seed: int, dtype: torch.dtype = torch.float64,
                 ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[bool]]:
    # empty frames, negatives, no pair with one object per frame (whose two largest entries
    # tie exactly in "mean" mode, where either order is a valid subgradient)
    gen = torch.Generator().manual_seed(seed)
    sizes = [(2, 3), (0, 4), (1, 4), (3, 1), (4, 5), (2, 0), (3, 3)]
    negatives = [False, False, True, False, False, False, True]
    list_a = [torch.randn(n, 6, generator=gen, dtype=dtype) for n, _ in sizes]
    list_b = [torch.randn(m, 6, generator=gen, dtype=dtype) for _, m in sizes]
    return list_a, list_b, negatives


def grads_of(loss_fn, list_a: list[torch.Tensor], list_b: list[torch.Tensor],
             dtype: torch.dtype) -> tuple[torch.Tensor, list[torch.Tensor]]:
    leaves = [f.clone().to(dtype).requires_grad_(True) for f in list_a + list_b]
    loss = loss_fn(leaves[:len(list_a)], leaves[len(list_a):])
    loss.backward()
    return loss, [torch.zeros_like(f) if f.grad is None else f.grad for f in leaves]


@pytest.mark.parametrize("placeholder", ["mean", "zero", "none"])
def test_term_subsets_gradients_equal_autograd(placeholder: str) -> None:
    list_a, list_b, negatives = ragged_pairs(0)
    flags = torch.tensor(negatives)
    for r in (1, 2):
        for terms in itertools.combinations(TERMS, r):
            ref_loss, ref_grads = grads_of(
                lambda a, b: naive_torch_loss(a, b, negatives, placeholder, terms=terms),
                list_a, list_b, torch.float64)
            loss, grads = grads_of(
                lambda a, b: matching_loss(a, b, None, None, flags, placeholder=placeholder,
                                           terms=terms)[0],
                list_a, list_b, torch.float64)
            torch.testing.assert_close(loss, ref_loss, atol=1e-12, rtol=1e-9)
            for got, expected in zip(grads, ref_grads):
                torch.testing.assert_close(got, expected, atol=1e-9, rtol=1e-7, msg=str(terms))


@pytest.mark.parametrize("chunk", [1 << 17, 64])
@pytest.mark.parametrize("placeholder", ["mean", "none"])
def test_float32_dense_batch_gradients_equal_autograd(placeholder: str, chunk: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # every slot holds an object (the unmasked path); K + 1 = 12 columns are padded to 16 for
    # the matmul; chunk 64: the top-two search goes one pair at a time
    monkeypatch.setattr(matching_module, "_TOP2_CHUNK", chunk)
    gen = torch.Generator().manual_seed(4)
    emb_a, emb_b = torch.randn(4, 5, 8, generator=gen), torch.randn(4, 6, 8, generator=gen)
    negatives = [False, True, False, False]
    ref_loss, ref_grads = grads_of(
        lambda a, b: naive_torch_loss(a, b, negatives, placeholder), list(emb_a), list(emb_b),
        torch.float64)
    a, b = emb_a.clone().requires_grad_(True), emb_b.clone().requires_grad_(True)
    loss, _ = matching_loss(a, b, negative=torch.tensor(negatives), placeholder=placeholder)
    loss.backward()
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), ref_loss, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(a.grad.double(), torch.stack(ref_grads[:4]), atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(b.grad.double(), torch.stack(ref_grads[4:]), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("placeholder", ["zero", "none"])
def test_assignment_matrix_gradcheck(placeholder: str) -> None:
    # "mean" is left out: its p is detached by specification (finite differences see it move)
    gen = torch.Generator().manual_seed(6)
    emb_a = torch.randn(3, 3, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    emb_b = torch.randn(3, 2, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    mask_a = torch.tensor([[True, True, False], [True, True, True], [False, False, False]])
    mask_b = torch.tensor([[True, True], [False, True], [True, True]])
    negative = torch.tensor([False, True, False])
    weights = torch.rand(3, 5, 6, dtype=torch.float64, generator=gen)

    def fn(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        mat = assignment_matrix(a, b, mask_a, mask_b, negative, placeholder=placeholder)
        return (mat * weights).sum()

    assert torch.autograd.gradcheck(fn, (emb_a, emb_b), eps=1e-6, atol=1e-6)
