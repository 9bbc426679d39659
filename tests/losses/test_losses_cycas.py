"""CycAs loss against hand-worked numbers and a naive per-pair loop."""

from __future__ import annotations

import math
import random

import pytest
import torch

from utrack.losses.cycas import CycasLoss, cycas_loss


def unit(deg: float, scale: float = 1.0) -> list[float]:
    return [scale * math.cos(math.radians(deg)), scale * math.sin(math.radians(deg))]


def two_by_three() -> tuple[torch.Tensor, torch.Tensor]:
    # A: 0, 90 deg; B: 0, 90, 180 deg -> S = [[1, 0, -1], [0, 1, 0]]
    return (torch.tensor([[unit(0), unit(90, 2.0)]]),
            torch.tensor([[unit(0, 0.5), unit(90), unit(180, 3.0)]]))


def test_identity_like_pair_hand_values() -> None:
    # N = M = 2, S = I: t = 2 ln 3, exp(t) = 9 -> A12 = A21 = [[.9, .1], [.1, .9]],
    # C = [[.82, .18], [.18, .82]]; m = 0.7: each of 2 row + 2 column hinges is
    # .18 - .82 + .7 = .06 -> 0.24 / N = 0.12; m = 0.5: all hinges are 0
    emb_a = torch.tensor([[unit(0), unit(90)]])
    emb_b = torch.tensor([[unit(0), unit(90)]])
    loss, terms = cycas_loss(emb_a, emb_b, margin=0.7)
    assert loss.item() == pytest.approx(0.12, abs=1e-6)
    assert terms["row"].item() == pytest.approx(0.06, abs=1e-6)
    assert terms["column"].item() == pytest.approx(0.06, abs=1e-6)
    assert terms["cycle_diag"].item() == pytest.approx(0.82, abs=1e-6)
    assert cycas_loss(emb_a, emb_b, margin=0.5)[0].item() == pytest.approx(0.0, abs=1e-7)


def test_unequal_frames_hand_values_and_swap() -> None:
    # N = 2, M = 3. t1 = 2 ln 4 (width M = 3): exp(t1 s) = 16^s;
    #   A12 = [[256, 16, 1] / 273, [1, 16, 1] / 18]
    # t2 = 2 ln 3 (width N = 2): exp(t2 s) = 9^s; A21 = [[.9, .1], [.1, .9], [.1, .9]]
    # C = A12 @ A21 = [[232.1, 40.9] / 273, [2.6, 15.4] / 18]
    #   = [[0.8501832, 0.1498168], [0.1444444, 0.8555556]]
    # m = 0.9: rows 0.1996337 + 0.1888889, columns 0.1942613 + 0.1942613, / N = 2 -> 0.3885226
    emb_a, emb_b = two_by_three()
    loss, terms = cycas_loss(emb_a, emb_b, margin=0.9)
    assert loss.item() == pytest.approx(0.3885226, abs=1e-6)
    assert terms["row"].item() == pytest.approx(0.3885226 / 2, abs=1e-6)
    assert terms["cycle_diag"].item() == pytest.approx((0.8501832 + 0.8555556) / 2, abs=1e-6)
    # frame A holds more objects: the frames are swapped, the loss is the same
    swapped, _ = cycas_loss(emb_b, emb_a, margin=0.9)
    assert swapped.item() == pytest.approx(0.3885226, abs=1e-6)
    # m = 0.5: every hinge is negative
    assert cycas_loss(emb_a, emb_b)[0].item() == pytest.approx(0.0, abs=1e-7)


def test_single_object_pair_costs_nothing() -> None:
    # N = 1: C = [[1]] exactly; no j != i, so both hinges are max(0, 0 - 1 + m) = 0 for m < 1
    loss, terms = cycas_loss(torch.randn(1, 1, 4), torch.randn(1, 3, 4), margin=0.9)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    assert terms["cycle_diag"].item() == pytest.approx(1.0, abs=1e-6)


def naive_cycas(list_a: list[list[list[float]]], list_b: list[list[list[float]]],
                margin: float = 0.5) -> float:
    losses = []
    for fa, fb in zip(list_a, list_b):
        if len(fa) == 0 or len(fb) == 0:
            continue
        if len(fa) > len(fb):
            fa, fb = fb, fa
        n, m = len(fa), len(fb)
        unit_a = [[x / math.sqrt(sum(y * y for y in v)) for x in v] for v in fa]
        unit_b = [[x / math.sqrt(sum(y * y for y in v)) for x in v] for v in fb]
        sim = [[sum(x * y for x, y in zip(u, w)) for w in unit_b] for u in unit_a]

        def softmax(values: list[float], t: float) -> list[float]:
            top = max(values)
            ex = [math.exp(t * (v - top)) for v in values]
            return [e / sum(ex) for e in ex]

        a12 = [softmax(sim[i], 2 * math.log(m + 1)) for i in range(n)]
        a21 = [softmax([sim[i][j] for i in range(n)], 2 * math.log(n + 1)) for j in range(m)]
        cyc = [[sum(a12[i][k] * a21[k][j] for k in range(m)) for j in range(n)] for i in range(n)]
        total = 0.0
        for i in range(n):
            others_row = [cyc[i][j] for j in range(n) if j != i] or [0.0]
            others_col = [cyc[j][i] for j in range(n) if j != i] or [0.0]
            total += max(0.0, max(others_row) - cyc[i][i] + margin)
            total += max(0.0, max(others_col) - cyc[i][i] + margin)
        losses.append(total / n)
    return sum(losses) / len(losses) if losses else 0.0


def random_batch(seed: int, dim: int = 5, max_objects: int = 6,
                 ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor, torch.Tensor,
                            torch.Tensor, torch.Tensor]:
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    sizes = [(0, 2), (1, 1), (4, 2), (2, 4), (3, 3), (1, 5), (5, 0)] + [
        (rng.randint(0, max_objects), rng.randint(0, max_objects)) for _ in range(5)]
    list_a = [torch.randn(n, dim, generator=gen) for n, _ in sizes]
    list_b = [torch.randn(m, dim, generator=gen) for _, m in sizes]

    def scatter(frames: list[torch.Tensor], slots: int) -> tuple[torch.Tensor, torch.Tensor]:
        padded = torch.full((len(frames), slots, dim), -3.0)
        mask = torch.zeros(len(frames), slots, dtype=torch.bool)
        for b, f in enumerate(frames):
            where = sorted(rng.sample(range(slots), len(f)))
            padded[b, where] = f
            mask[b, where] = True
        return padded, mask

    pa, ma = scatter(list_a, max_objects)
    pb, mb = scatter(list_b, max_objects + 2)
    return list_a, list_b, pa, pb, ma, mb


@pytest.mark.parametrize("margin", [0.5, 0.95])
def test_vectorised_equals_naive_loop(margin: float) -> None:
    for seed in range(4):
        list_a, list_b, pa, pb, ma, mb = random_batch(seed)
        expected = naive_cycas([f.tolist() for f in list_a], [f.tolist() for f in list_b], margin)
        got, terms = cycas_loss(pa, pb, ma, mb, margin=margin)
        assert got.item() == pytest.approx(expected, abs=1e-5), seed
        assert terms["num_pairs"].item() == sum(len(a) > 0 and len(b) > 0
                                                for a, b in zip(list_a, list_b))
        from_lists, _ = cycas_loss(list_a, list_b, margin=margin)
        torch.testing.assert_close(from_lists, got)


def test_gradcheck() -> None:
    gen = torch.Generator().manual_seed(3)
    emb_a = torch.randn(3, 3, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    emb_b = torch.randn(3, 4, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    mask_a = torch.tensor([[True, True, True], [True, True, False], [True, True, True]])
    mask_b = torch.tensor([[True, True, False, False], [True, True, True, True],
                           [True, True, True, True]])

    def fn(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return cycas_loss(a, b, mask_a, mask_b, margin=0.95)[0]

    assert fn(emb_a, emb_b).item() > 0  # some hinges active, so the gradient is non-trivial
    assert torch.autograd.gradcheck(fn, (emb_a, emb_b), eps=1e-6, atol=1e-6)


def test_degenerate_inputs_stay_finite() -> None:
    cases = [
        (torch.ones(2, 3, 4), torch.ones(2, 3, 4)),            # all identical
        (torch.randn(2, 3, 4) * 1e30, torch.randn(2, 2, 4) * 1e30),  # squares overflow
        (torch.zeros(1, 2, 4), torch.randn(1, 2, 4)),          # zero vectors
        (torch.randn(1, 1, 4), torch.randn(1, 1, 4)),          # one object each
    ]
    for emb_a, emb_b in cases:
        emb_a.requires_grad_(True)
        emb_b.requires_grad_(True)
        loss, terms = cycas_loss(emb_a, emb_b)
        loss.backward()
        assert torch.isfinite(loss) and all(torch.isfinite(v) for v in terms.values())
        assert torch.isfinite(emb_a.grad).all() and torch.isfinite(emb_b.grad).all()


def test_no_valid_pair_gives_zero_with_graph() -> None:
    emb_a = torch.randn(2, 3, 4, requires_grad=True)
    loss, terms = cycas_loss(emb_a, torch.randn(2, 2, 4), None, torch.zeros(2, 2, dtype=torch.bool))
    assert loss.item() == 0.0 and loss.grad_fn is not None and terms["num_pairs"].item() == 0
    loss.backward()
    assert emb_a.grad.abs().sum() == 0
    empty, _ = cycas_loss(torch.randn(2, 0, 4, requires_grad=True), torch.randn(2, 2, 4))
    assert empty.item() == 0.0 and empty.requires_grad


def test_object_order_does_not_matter() -> None:
    _, _, pa, pb, ma, mb = random_batch(9)
    base, _ = cycas_loss(pa, pb, ma, mb, margin=0.9)
    perm_a, perm_b = torch.randperm(pa.shape[1]), torch.randperm(pb.shape[1])
    got, _ = cycas_loss(pa[:, perm_a], pb[:, perm_b], ma[:, perm_a], mb[:, perm_b], margin=0.9)
    torch.testing.assert_close(got, base, atol=1e-6, rtol=0)


def test_autocast_and_half_inputs() -> None:
    list_a, list_b, pa, pb, ma, mb = random_batch(2)
    reference, _ = cycas_loss(pa, pb, ma, mb, margin=0.9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = cycas_loss(pa.bfloat16(), pb.bfloat16(), ma, mb, margin=0.9)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(reference.item(), rel=3e-2)
    half, _ = cycas_loss(pa.half(), pb.half(), ma, mb, margin=0.9)
    assert torch.isfinite(half) and half.item() == pytest.approx(reference.item(), abs=5e-3)


def test_module_form() -> None:
    _, _, pa, pb, ma, mb = random_batch(1)
    module = CycasLoss(margin=0.8)
    torch.testing.assert_close(module(pa, pb, ma, mb)[0], cycas_loss(pa, pb, ma, mb, margin=0.8)[0])
    assert "margin=0.8" in repr(module)
    with pytest.raises(ValueError):
        CycasLoss(margin=-1.0)
