"""UTrack matching loss (paper Eq. 1-8) against hand-worked numbers and a naive per-pair loop."""

from __future__ import annotations

import doctest
import itertools
import math
import random

import pytest
import torch

import utrack.losses.matching as matching_module
from utrack.losses.masked import (
    gram,
    l2_normalize,
    masked_logsumexp,
    masked_softmax,
    pad_embeddings,
    trim_padding,
)
from naive_matching import naive_torch_loss
from utrack.losses.matching import MatchingLoss, assignment_matrix, matching_loss

# ---------------------------------------------------------------------------------------------
# Hand-worked example G1 (numbers worked out independently of the code, by hand and checked
# with plain Python math):
# frame A: a0 at 0 deg, a1 at 90 deg; frame B: b0 at 60 deg (2-D unit vectors).
# Cosines: a0.a1 = 0, a0.b0 = 0.5, a1.b0 = sqrt(3)/2 = 0.8660254.
# Rows/columns of M': a0, a1, b0, placeholder.
# ---------------------------------------------------------------------------------------------


def unit(deg: float, scale: float = 1.0) -> list[float]:
    return [scale * math.cos(math.radians(deg)), scale * math.sin(math.radians(deg))]


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def g1(negative: bool = False) -> Batch:
    # norms differ on purpose: the loss must normalise
    emb_a = torch.tensor([[unit(0, 2.0), unit(90, 0.5)]])
    emb_b = torch.tensor([[unit(60, 3.0)]])
    mask_a = torch.ones(1, 2, dtype=torch.bool)
    mask_b = torch.ones(1, 1, dtype=torch.bool)
    return emb_a, emb_b, mask_a, mask_b, torch.tensor([negative])


# 4 ** sqrt(3) and 5 ** sqrt(3): exp(T * sqrt(3)/2) for T = 2 ln 4 and T = 2 ln 5
Q4 = 11.035665
Q5 = 16.242451


def test_masked_softmax_values_and_empty_rows() -> None:
    logits = torch.tensor([[0.0, math.log(3.0), 100.0], [1.0, 2.0, 3.0]], requires_grad=True)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    out = masked_softmax(logits, mask)
    torch.testing.assert_close(out, torch.tensor([[0.25, 0.75, 0.0], [0.0, 0.0, 0.0]]))
    out[0, 0].backward()
    assert torch.isfinite(logits.grad).all()
    # d softmax_0 / d x_0 = s0 (1 - s0) = 0.1875; masked and empty-row entries get exactly 0
    torch.testing.assert_close(logits.grad, torch.tensor([[0.1875, -0.1875, 0.0], [0.0, 0.0, 0.0]]))


def test_masked_logsumexp_values_empty_rows_and_huge_values() -> None:
    x = torch.tensor([[1.0, 2.0, 5.0], [7.0, 8.0, 9.0], [1e4, 1e4, 0.0]], requires_grad=True)
    mask = torch.tensor([[True, True, False], [False, False, False], [True, True, False]])
    out = masked_logsumexp(x, mask)
    assert out[1].item() == float("-inf")
    torch.testing.assert_close(out[0], torch.tensor(2.3132617))  # log(e + e^2)
    torch.testing.assert_close(out[2], torch.tensor(1e4 + 0.6931472))  # no overflow
    out[0].backward()
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(x.grad[0], torch.tensor([0.2689414, 0.7310586, 0.0]))
    assert x.grad[1:].abs().sum() == 0


def test_masked_softmax_with_separable_masks() -> None:
    # rows (B, K, 1), columns (B, 1, C) and a (K, C) "not diagonal" mask, never expanded
    logits = torch.zeros(1, 2, 3)
    rows = torch.tensor([[[True], [False]]])
    cols = torch.tensor([[[True, True, True]]])
    not_diag = ~torch.eye(2, 3, dtype=torch.bool)
    out = masked_softmax(logits, (rows, cols, not_diag))
    torch.testing.assert_close(out, torch.tensor([[[0.0, 0.5, 0.5], [0.0, 0.0, 0.0]]]))


def test_l2_normalize_matches_f_normalize_and_gradcheck() -> None:
    x = torch.randn(2, 5, 4, dtype=torch.float64)
    torch.testing.assert_close(l2_normalize(x), torch.nn.functional.normalize(x, dim=-1))
    # gain: sqrt(T) per pair times a 0/1 row mask; masked rows are exactly 0
    gain = torch.tensor([[[2.0], [0.0], [2.0], [2.0], [0.0]],
                         [[3.0], [3.0], [3.0], [0.0], [3.0]]], dtype=torch.float64)
    y = l2_normalize(x, gain)
    assert y[0, 1].abs().sum() == 0 and y[1, 3].abs().sum() == 0
    torch.testing.assert_close(y.norm(dim=-1), gain[..., 0])
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: l2_normalize(t, gain), (x,))
    # huge entries (their squares overflow even float32's range) are normalised all the same
    big = torch.tensor([[3e38, 4e38 / 3]])
    torch.testing.assert_close(l2_normalize(big), torch.tensor([[0.9138115, 0.4061385]]))


def test_gram_values_and_gradcheck() -> None:
    y = torch.tensor([[[1.0, 2.0], [3.0, -1.0]]], dtype=torch.float64, requires_grad=True)
    out = gram(y, diagonal=-7.0, extra_columns=1)
    # [[1*1+2*2, 1*3-2*1, 0], [3*1-1*2, 3*3+1*1, 0]] with the diagonal replaced by -7
    torch.testing.assert_close(out.detach(), torch.tensor(
        [[[-7.0, 1.0, 0.0], [1.0, -7.0, 0.0]]], dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda t: gram(t, diagonal=-7.0, extra_columns=2), (y,))
    assert torch.autograd.gradcheck(lambda t: gram(t), (y,))


def test_trim_padding_keeps_valid_slots_in_order() -> None:
    emb = torch.arange(12.0).reshape(2, 3, 2)
    mask = torch.tensor([[False, True, True], [True, False, False]])
    out, out_mask = trim_padding(emb, mask, 2)
    torch.testing.assert_close(out, torch.tensor([[[2.0, 3.0], [4.0, 5.0]],
                                                  [[6.0, 7.0], [8.0, 9.0]]]))
    assert out_mask.tolist() == [[True, True], [True, False]]


def test_fixed_size_slots_cost_nothing_extra() -> None:
    # FairMOT-style batches: 500 slots per image, few objects; the loss and the gradients equal
    # those of the tight batch (the surplus slots are trimmed before any K x K work)
    _, _, negatives, pa, pb, ma, mb = random_batch(6)
    neg = torch.tensor(negatives)
    wide_a = torch.nn.functional.pad(pa, (0, 0, 0, 500 - pa.shape[1]), value=5.0)
    wide_b = torch.nn.functional.pad(pb, (0, 0, 0, 500 - pb.shape[1]), value=-5.0)
    wide_ma = torch.nn.functional.pad(ma, (0, 500 - ma.shape[1]))
    wide_mb = torch.nn.functional.pad(mb, (0, 500 - mb.shape[1]))
    wide_a.requires_grad_(True)
    pa.requires_grad_(True)
    tight, _ = matching_loss(pa, pb, ma, mb, neg)
    wide, _ = matching_loss(wide_a, wide_b, wide_ma, wide_mb, neg)
    torch.testing.assert_close(wide, tight)
    tight.backward()
    wide.backward()
    torch.testing.assert_close(wide_a.grad[:, : pa.shape[1]], pa.grad)
    assert wide_a.grad[:, pa.shape[1]:].abs().sum() == 0


def test_pad_embeddings() -> None:
    padded, mask = pad_embeddings([torch.ones(2, 3), torch.ones(0, 3), 2 * torch.ones(3, 3)])
    assert padded.shape == (3, 3, 3)
    assert mask.tolist() == [[True, True, False], [False, False, False], [True, True, True]]
    assert padded[0, 2].abs().sum() == 0 and padded[2, 2, 0] == 2
    with pytest.raises(ValueError):
        pad_embeddings([torch.ones(2, 3), torch.ones(2, 4)])


def test_adaptive_temperature_without_placeholder() -> None:
    # none: C = N + M = 3, T = 2 ln 4, so exp(T * cos) = 4 ** (2 cos): cos 0.5 -> 4, cos 0 -> 1
    mat = assignment_matrix(*g1()[:4], placeholder="none")
    expected = torch.tensor([[0.0, 1 / 5, 4 / 5, 0.0],                       # a0: 1, 4
                             [1 / (1 + Q4), 0.0, Q4 / (1 + Q4), 0.0],         # a1: 1, 4^sqrt3
                             [4 / (4 + Q4), Q4 / (4 + Q4), 0.0, 0.0]])        # b0: 4, 4^sqrt3
    torch.testing.assert_close(mat[0], expected, atol=1e-6, rtol=0)


def test_adaptive_temperature_with_placeholder_counts_its_column() -> None:
    # zero: C = 4, T = 2 ln 5: exp(T * 0.5) = 5, p = 0 -> 1
    mat = assignment_matrix(*g1()[:4], placeholder="zero")
    expected = torch.tensor([[0.0, 1 / 7, 5 / 7, 1 / 7],
                             [1 / (2 + Q5), 0.0, Q5 / (2 + Q5), 1 / (2 + Q5)],
                             [5 / (6 + Q5), Q5 / (6 + Q5), 0.0, 1 / (6 + Q5)]])
    torch.testing.assert_close(mat[0], expected, atol=1e-6, rtol=0)


def test_fixed_temperature_ignores_column_count() -> None:
    t = 2 * math.log(3.0)  # exp(t * 0.5) = 3 whatever C is
    with_ph = assignment_matrix(*g1()[:4], placeholder="zero", temperature=t)
    without = assignment_matrix(*g1()[:4], placeholder="none", temperature=t)
    torch.testing.assert_close(with_ph[0, 0], torch.tensor([0.0, 0.2, 0.6, 0.2]))
    torch.testing.assert_close(without[0, 0], torch.tensor([0.0, 0.25, 0.75, 0.0]))


def test_placeholder_mean_value() -> None:
    # p = mean of the 6 off-diagonal cosines = 2 (0 + 0.5 + 0.8660254) / 6 = 0.4553418
    emb_a, emb_b, mask_a, mask_b, _ = g1()
    _, terms = matching_loss(emb_a, emb_b, mask_a, mask_b, placeholder="mean")
    assert terms["placeholder"].item() == pytest.approx(0.4553418, abs=1e-6)
    # T = 2 ln 5: row a0 has exp(T*[0, 0.5, p]) = [1, 5, 5^(2p) = 4.3305247]
    mat = assignment_matrix(emb_a, emb_b, mask_a, mask_b, placeholder="mean")
    torch.testing.assert_close(mat[0], torch.tensor([
        [0.0, 0.0968005, 0.4840025, 0.4191970],
        [0.0463543, 0.0, 0.7529073, 0.2007384],
        [0.1955189, 0.6351412, 0.0, 0.1693399]]), atol=1e-6, rtol=0)


# (placeholder, intra sum, inter sum, cycle sum), each from the M' rows above:
# intra = M'[a0,a1] + M'[a1,a0]; inter = sum over rows of max(0, 2nd + 0.5 - 1st), the diagonal
# (0) and placeholder included; cycle = |M'[b0,a0] - M'[a0,b0]| + |M'[b0,a1] - M'[a1,b0]|.
G1_TERMS = [
    # zero: intra 1/7 + 1/(2+Q5); every row's winner leads by > 0.5 -> inter 0;
    # cycle |0.2247954 - 0.7142857| + |0.7302456 - 0.8903656|
    ("zero", 0.1976743, 0.0, 0.6496104),
    # mean: inter rows: 0.4191970 + 0.5 - 0.4840025 = 0.4351945, row a1: < 0,
    # row b0: 0.1955189 + 0.5 - 0.6351412 = 0.0603777
    ("mean", 0.1431548, 0.4955721, 0.4062497),
    # none: inter only row b0: 0.2660341 + 0.5 - 0.7339659 = 0.0320683
    ("none", 0.2830864, 0.0320683, 0.7169136),
]


@pytest.mark.parametrize("placeholder,intra,inter,cycle", G1_TERMS)
def test_terms_against_hand_values(placeholder: str, intra: float, inter: float,
                                   cycle: float) -> None:
    loss, terms = matching_loss(*g1()[:4], placeholder=placeholder)
    assert terms["intra"].item() == pytest.approx(intra / 3, abs=1e-6)
    assert terms["inter"].item() == pytest.approx(inter / 3, abs=1e-6)
    assert terms["cycle"].item() == pytest.approx(cycle / 3, abs=1e-6)
    assert loss.item() == pytest.approx((intra + inter + cycle) / 3, abs=1e-6)  # Eq. 6
    assert terms["num_pos"].item() == 1 and terms["num_neg"].item() == 0


@pytest.mark.parametrize("selected,expected", [
    (("intra",), 0.1431548 / 3),
    (("inter",), 0.4955721 / 3),
    (("cycle",), 0.4062497 / 3),
    (("inter", "cycle"), (0.4955721 + 0.4062497) / 3),
])
def test_term_subsets(selected: tuple[str, ...], expected: float) -> None:
    loss, terms = matching_loss(*g1()[:4], terms=selected)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert terms["cycle"].item() == pytest.approx(0.4062497 / 3, abs=1e-6)  # always logged


def test_margin_changes_inter() -> None:
    # zero mode with m = 0.9: row a0 0.1428571 + 0.9 - 0.7142857 = 0.3285714,
    # row a1 0.0548172 + 0.9 - 0.8903656 = 0.0644516, row b0 0.2247954 + 0.9 - 0.7302456 = 0.3945498
    _, terms = matching_loss(*g1()[:4], placeholder="zero", margin=0.9)
    assert terms["inter"].item() == pytest.approx(0.7875728 / 3, abs=1e-6)


@pytest.mark.parametrize("placeholder", ["mean", "zero", "none"])
def test_negative_pair(placeholder: str) -> None:
    # a negative pair has p = 0 and a placeholder column in every mode, so M' is the "zero"
    # matrix: mass off the placeholder = 1 - (1/7 + 1/(2+Q5) + 1/(6+Q5)) per row, / 3 (Eq. 7)
    loss, terms = matching_loss(*g1(negative=True), placeholder=placeholder)
    assert loss.item() == pytest.approx(0.9191222, abs=1e-6)
    assert terms["negative"].item() == pytest.approx(0.9191222, abs=1e-6)
    assert terms["num_neg"].item() == 1 and terms["num_pos"].item() == 0
    mat = assignment_matrix(*g1(negative=True), placeholder=placeholder)
    torch.testing.assert_close(mat[0, :, 3], torch.tensor([1 / 7, 0.0548172, 0.0449591]),
                               atol=1e-6, rtol=0)


def test_negative_loss_has_gradient_towards_placeholder() -> None:
    emb_a, emb_b, mask_a, mask_b, neg = g1(negative=True)
    emb_b.requires_grad_(True)
    loss, _ = matching_loss(emb_a, emb_b, mask_a, mask_b, neg)
    loss.backward()
    # moving b0 away from a0/a1 lowers the loss
    step = emb_b - 0.05 * emb_b.grad / emb_b.grad.norm()
    assert matching_loss(emb_a, step.detach(), mask_a, mask_b, neg)[0] < loss


def test_eq8_weighting() -> None:
    # pairs: G1 positive (zero: 0.2824282), 1+1 orthogonal positive (0.5: each row 1/2 on the
    # other object and 1/2 on p, inter 0.5 per row, / 2), G1 negative (0.9191222), and an
    # invalid pair (frame B empty). Eq. 8: 2/3 * (0.2824282 + 0.5) / 2 + 1/3 * 0.9191222.
    emb_a = torch.tensor([[unit(0), unit(90)], [unit(0), [0.0, 0.0]],
                          [unit(0), unit(90)], [unit(10), unit(20)]])
    emb_b = torch.tensor([[unit(60)], [unit(90)], [unit(60)], [unit(30)]])
    mask_a = torch.tensor([[True, True], [True, False], [True, True], [True, True]])
    mask_b = torch.tensor([[True], [True], [True], [False]])
    negative = torch.tensor([False, False, True, True])
    loss, terms = matching_loss(emb_a, emb_b, mask_a, mask_b, negative, placeholder="zero")
    assert loss.item() == pytest.approx(0.5671835, abs=1e-6)
    assert terms["num_pos"].item() == 2 and terms["num_neg"].item() == 1
    assert terms["positive"].item() == pytest.approx((0.2824282 + 0.5) / 2, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Independent naive implementation: plain Python floats, one pair and one row at a time.
# ---------------------------------------------------------------------------------------------


def naive_pair_rows(fa: list[list[float]], fb: list[list[float]], negative: bool,
                    placeholder: str, temperature: str | float) -> list[dict]:
    feats = [list(v) for v in fa] + [list(v) for v in fb]
    feats = [[x / math.sqrt(sum(y * y for y in v)) for x in v] for v in feats]
    k = len(feats)
    sim = [[sum(x * y for x, y in zip(feats[i], feats[j])) for j in range(k)] for i in range(k)]
    has_ph = negative or placeholder != "none"
    if placeholder == "mean" and not negative:
        p = sum(sim[i][j] for i in range(k) for j in range(k) if i != j) / (k * (k - 1))
    else:
        p = 0.0
    t = 2 * math.log(k + has_ph + 1) if temperature == "adaptive" else temperature
    rows = []
    for i in range(k):
        logits = {j: t * sim[i][j] for j in range(k) if j != i}
        if has_ph:
            logits["p"] = t * p
        top = max(logits.values())
        z = sum(math.exp(v - top) for v in logits.values())
        row = {j: math.exp(v - top) / z for j, v in logits.items()}
        row[i] = 0.0
        rows.append(row)
    return rows


def naive_matching_loss(list_a: list[list[list[float]]], list_b: list[list[list[float]]],
                        negatives: list[bool], placeholder: str = "mean",
                        temperature: str | float = "adaptive", margin: float = 0.5,
                        terms: tuple[str, ...] = ("intra", "inter", "cycle")) -> float:
    pos, neg = [], []
    for fa, fb, is_neg in zip(list_a, list_b, negatives):
        n, m = len(fa), len(fb)
        if n == 0 or m == 0:
            continue
        k = n + m
        rows = naive_pair_rows(fa, fb, is_neg, placeholder, temperature)
        if is_neg:
            neg.append(sum(rows[i][j] for i in range(k) for j in range(k)) / k)
            continue
        value = {"intra": 0.0, "inter": 0.0, "cycle": 0.0}
        for i in range(k):
            for j in range(k):
                if (i < n) == (j < n):
                    value["intra"] += rows[i][j]
        for row in rows:
            ordered = sorted(row.values(), reverse=True)
            value["inter"] += max(0.0, ordered[1] + margin - ordered[0])
        for i in range(n, k):
            for j in range(n):
                value["cycle"] += abs(rows[i][j] - rows[j][i])
        pos.append(sum(value[name] for name in terms) / k)
    total = len(pos) + len(neg)
    if total == 0:
        return 0.0
    mean_pos = sum(pos) / len(pos) if pos else 0.0
    mean_neg = sum(neg) / len(neg) if neg else 0.0
    return len(pos) / total * mean_pos + len(neg) / total * mean_neg


def random_batch(seed: int, batch: int = 9, dim: int = 6, max_objects: int = 5,
                 garbage: float = 0.0) -> tuple[list[torch.Tensor], list[torch.Tensor], list[bool],
                                                torch.Tensor, torch.Tensor, torch.Tensor,
                                                torch.Tensor]:
    """Ragged pairs (incl. empty and single-object frames, negatives) as lists and as padded
    tensors whose valid slots are scattered at random positions (not a prefix)."""
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    sizes = [(0, 3), (1, 1), (1, 4), (3, 0), (2, 5)] + [
        (rng.randint(0, max_objects), rng.randint(0, max_objects)) for _ in range(batch - 5)]
    list_a = [torch.randn(n, dim, generator=gen) for n, _ in sizes]
    list_b = [torch.randn(m, dim, generator=gen) for _, m in sizes]
    negatives = [rng.random() < 0.3 for _ in sizes]
    negatives[2] = True  # a valid negative pair (1 + 4 objects)

    def scatter(frames: list[torch.Tensor], slots: int) -> tuple[torch.Tensor, torch.Tensor]:
        padded = torch.full((len(frames), slots, dim), garbage)
        mask = torch.zeros(len(frames), slots, dtype=torch.bool)
        for b, f in enumerate(frames):
            where = sorted(rng.sample(range(slots), len(f)))  # scattered, in list order
            padded[b, where] = f
            mask[b, where] = True
        return padded, mask

    pa, ma = scatter(list_a, max_objects + 1)
    pb, mb = scatter(list_b, max_objects + 2)
    return list_a, list_b, negatives, pa, pb, ma, mb


TERM_SUBSETS = [("intra", "inter", "cycle"), ("intra",), ("inter", "cycle"), ("cycle",)]


@pytest.mark.parametrize("placeholder", ["mean", "zero", "none"])
@pytest.mark.parametrize("temperature", ["adaptive", 3.5])
def test_vectorised_equals_naive_loop(placeholder: str, temperature: str | float) -> None:
    for seed, selected in zip(range(4), TERM_SUBSETS):
        list_a, list_b, negatives, pa, pb, ma, mb = random_batch(seed, garbage=7.0)
        expected = naive_matching_loss([f.tolist() for f in list_a], [f.tolist() for f in list_b],
                                       negatives, placeholder, temperature, 0.5, selected)
        got, _ = matching_loss(pa, pb, ma, mb, torch.tensor(negatives), placeholder=placeholder,
                               temperature=temperature, terms=selected)
        assert got.item() == pytest.approx(expected, abs=1e-5), (seed, selected)


@pytest.mark.parametrize("placeholder", ["mean", "none"])
def test_assignment_matrix_equals_naive_rows(placeholder: str) -> None:
    list_a, list_b, negatives, pa, pb, ma, mb = random_batch(11)
    mat = assignment_matrix(pa, pb, ma, mb, torch.tensor(negatives), placeholder=placeholder)
    k1 = pa.shape[1]
    for b, (fa, fb) in enumerate(zip(list_a, list_b)):
        slots = torch.cat([ma[b].nonzero()[:, 0], k1 + mb[b].nonzero()[:, 0]]).tolist()
        if len(fa) == 0 or len(fb) == 0:
            assert mat[b].abs().sum() == 0
            continue
        rows = naive_pair_rows(fa.tolist(), fb.tolist(), negatives[b], placeholder, "adaptive")
        for i, row in enumerate(rows):
            for j, slot in enumerate(slots):
                assert mat[b, slots[i], slot].item() == pytest.approx(row[j], abs=1e-6)
            assert mat[b, slots[i], -1].item() == pytest.approx(row.get("p", 0.0), abs=1e-6)
        # everything outside the valid rows/columns (and the diagonal) is exactly 0
        assert mat[b].sum().item() == pytest.approx(len(slots), abs=1e-5)
        allowed = torch.zeros(mat.shape[1:], dtype=torch.bool)
        allowed[torch.tensor(slots)[:, None], torch.tensor(slots + [mat.shape[2] - 1])] = True
        allowed.fill_diagonal_(False)
        assert (mat[b][~allowed] == 0).all()


def test_list_input_equals_padded() -> None:
    list_a, list_b, negatives, pa, pb, ma, mb = random_batch(5)
    neg = torch.tensor(negatives)
    from_lists, terms_l = matching_loss(list_a, list_b, None, None, neg)
    from_padded, terms_p = matching_loss(pa, pb, ma, mb, neg)
    torch.testing.assert_close(from_lists, from_padded)
    for key in ("intra", "inter", "cycle", "negative", "num_pos", "num_neg"):
        torch.testing.assert_close(terms_l[key], terms_p[key])
    with pytest.raises(ValueError):
        matching_loss(list_a, list_b, ma, None)


def test_object_order_and_ids_do_not_matter() -> None:
    _, _, negatives, pa, pb, ma, mb = random_batch(3)
    neg = torch.tensor(negatives)
    base, _ = matching_loss(pa, pb, ma, mb, neg)
    gen = torch.Generator().manual_seed(0)
    perm_a = torch.stack([torch.randperm(pa.shape[1], generator=gen) for _ in range(len(pa))])
    perm_b = torch.stack([torch.randperm(pb.shape[1], generator=gen) for _ in range(len(pb))])
    shuffled_a = pa.gather(1, perm_a[:, :, None].expand_as(pa))
    shuffled_b = pb.gather(1, perm_b[:, :, None].expand_as(pb))
    assert not torch.equal(shuffled_a, pa)
    got, _ = matching_loss(shuffled_a, shuffled_b, ma.gather(1, perm_a), mb.gather(1, perm_b), neg)
    torch.testing.assert_close(got, base, atol=1e-6, rtol=0)


@pytest.mark.parametrize("placeholder,temperature", [("zero", "adaptive"), ("none", 2.5)])
def test_gradcheck(placeholder: str, temperature: str | float) -> None:
    # "mean" is left out on purpose: its p is detached by specification, so finite
    # differences (which see p move) would not match the analytical gradient.
    gen = torch.Generator().manual_seed(1)
    emb_a = torch.randn(3, 3, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    emb_b = torch.randn(3, 2, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    mask_a = torch.tensor([[True, True, False], [True, True, True], [False, True, True]])
    mask_b = torch.tensor([[True, True], [False, True], [True, True]])
    negative = torch.tensor([False, True, False])

    def fn(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return matching_loss(a, b, mask_a, mask_b, negative, placeholder=placeholder,
                             temperature=temperature)[0]

    assert fn(emb_a, emb_b).dtype == torch.float64
    assert torch.autograd.gradcheck(fn, (emb_a, emb_b), eps=1e-6, atol=1e-6)


def _finite_loss_and_grads(emb_a: torch.Tensor, emb_b: torch.Tensor,
                           mask_a: torch.Tensor | None = None, mask_b: torch.Tensor | None = None,
                           negative: torch.Tensor | None = None, **options: object) -> torch.Tensor:
    emb_a = emb_a.clone().requires_grad_(True)
    emb_b = emb_b.clone().requires_grad_(True)
    loss, terms = matching_loss(emb_a, emb_b, mask_a, mask_b, negative, **options)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(v).all() for v in terms.values())
    assert torch.isfinite(emb_a.grad).all() and torch.isfinite(emb_b.grad).all()
    return loss


@pytest.mark.parametrize("placeholder", ["mean", "zero", "none"])
def test_degenerate_inputs_stay_finite(placeholder: str) -> None:
    opts = {"placeholder": placeholder}
    # one object per frame, positive and negative
    for neg in (False, True):
        _finite_loss_and_grads(torch.randn(1, 1, 4), torch.randn(1, 1, 4),
                               negative=torch.tensor([neg]), **opts)
    # all identical embeddings: a uniform M' (ties everywhere)
    same = torch.ones(2, 3, 4)
    loss = _finite_loss_and_grads(same, same.clone(), negative=torch.tensor([False, True]), **opts)
    assert loss > 0
    # huge norms (squares overflow float32) and zero vectors
    big = torch.randn(2, 3, 4) * 1e30
    huge = _finite_loss_and_grads(big, big.flip(1), **opts)
    torch.testing.assert_close(huge, matching_loss(big / 1e30, big.flip(1) / 1e30, **opts)[0])
    _finite_loss_and_grads(torch.zeros(1, 2, 4), torch.randn(1, 2, 4), **opts)
    # huge finite garbage in padded slots is ignored
    emb_a, emb_b = torch.randn(2, 3, 4), torch.randn(2, 2, 4)
    clean = matching_loss(emb_a[:, :2], emb_b, **opts)[0]
    emb_a[:, 2] = 3e38
    mask_a = torch.tensor([[True, True, False], [True, True, False]])
    dirty = _finite_loss_and_grads(emb_a, emb_b, mask_a, None, **opts)
    torch.testing.assert_close(dirty, clean)


def test_no_valid_pair_gives_zero_with_graph() -> None:
    for emb_a, mask_a in [(torch.randn(2, 3, 4), torch.zeros(2, 3, dtype=torch.bool)),
                          (torch.randn(2, 0, 4), torch.zeros(2, 0, dtype=torch.bool))]:
        emb_a.requires_grad_(True)
        emb_b = torch.randn(2, 2, 4, requires_grad=True)
        loss, terms = matching_loss(emb_a, emb_b, mask_a, None, torch.tensor([False, True]))
        assert loss.item() == 0.0 and loss.grad_fn is not None
        assert terms["num_pos"].item() == 0 and terms["num_neg"].item() == 0
        loss.backward()
        assert emb_b.grad.abs().sum() == 0 and torch.isfinite(emb_b.grad).all()
    loss, _ = matching_loss([torch.randn(0, 4, requires_grad=True)], [torch.randn(3, 4)])
    assert loss.item() == 0.0 and loss.requires_grad


def test_bf16_autocast_close_to_float32() -> None:
    gen = torch.Generator().manual_seed(2)
    head = torch.nn.Linear(16, 8)
    x_a, x_b = torch.randn(4, 6, 16, generator=gen), torch.randn(4, 5, 16, generator=gen)
    mask_a = torch.rand(4, 6, generator=gen) > 0.2
    mask_b = torch.rand(4, 5, generator=gen) > 0.2
    negative = torch.tensor([False, False, True, False])
    reference, _ = matching_loss(head(x_a), head(x_b), mask_a, mask_b, negative)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        emb_a, emb_b = head(x_a), head(x_b)
        assert emb_a.dtype == torch.bfloat16
        loss, _ = matching_loss(emb_a, emb_b, mask_a, mask_b, negative)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert loss.item() == pytest.approx(reference.item(), rel=3e-2)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters())


def test_half_inputs_finite_and_close() -> None:
    _, _, negatives, pa, pb, ma, mb = random_batch(7)
    reference, _ = matching_loss(pa, pb, ma, mb, torch.tensor(negatives))
    half_a = pa.half().requires_grad_(True)
    loss, _ = matching_loss(half_a, pb.half(), ma, mb, torch.tensor(negatives))
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert torch.isfinite(half_a.grad).all()
    assert loss.item() == pytest.approx(reference.item(), abs=5e-3)


def test_module_form_and_option_checks() -> None:
    list_a, list_b, negatives, pa, pb, ma, mb = random_batch(4)
    module = MatchingLoss(placeholder="none", temperature=4.0, terms=("inter",))
    got, _ = module(pa, pb, ma, mb, torch.tensor(negatives))
    expected, _ = matching_loss(pa, pb, ma, mb, torch.tensor(negatives), placeholder="none",
                                temperature=4.0, terms=("inter",))
    torch.testing.assert_close(got, expected)
    assert "placeholder='none'" in repr(module)
    for bad in ({"placeholder": "max"}, {"temperature": "fixed"}, {"temperature": -1.0},
                {"terms": ("intra", "bogus")}, {"terms": ()}):
        with pytest.raises(ValueError):
            MatchingLoss(**bad)
    with pytest.raises(ValueError):
        matching_loss(torch.randn(2, 3, 4), torch.randn(3, 3, 4))


def test_module_docstring_example_runs() -> None:
    result = doctest.testmod(matching_module, verbose=False)
    assert result.attempted >= 5 and result.failed == 0


def test_every_combination_of_terms_is_accepted() -> None:
    emb_a, emb_b, mask_a, mask_b, _ = g1()
    full = {"intra": 0.1431548, "inter": 0.4955721, "cycle": 0.4062497}  # mean mode, G1
    for r in (1, 2, 3):
        for subset in itertools.combinations(full, r):
            loss, _ = matching_loss(emb_a, emb_b, mask_a, mask_b, terms=subset)
            assert loss.item() == pytest.approx(sum(full[t] for t in subset) / 3, abs=1e-6)


@pytest.mark.parametrize("placeholder", ["mean", "zero", "none"])
@pytest.mark.parametrize("temperature", ["adaptive", 3.5])
def test_gradients_equal_autograd_through_a_naive_loop(placeholder: str,
                                                       temperature: str | float) -> None:
    """The hand-written backward (all placeholder modes, the detached mean p included) gives
    autograd's gradient of the per-pair loss, on ragged pairs with empty frames and negatives."""
    for seed in range(3):
        list_a, list_b, negatives, *_ = random_batch(seed)
        if placeholder == "mean":
            # one object per frame: p equals the only other similarity, so the inter term's
            # two largest entries tie exactly and either order is a valid subgradient
            list_b = [fb[:0] if len(fa) == len(fb) == 1 and not neg else fb
                      for fa, fb, neg in zip(list_a, list_b, negatives)]
        ref_a = [f.clone().double().requires_grad_(True) for f in list_a]
        ref_b = [f.clone().double().requires_grad_(True) for f in list_b]
        naive_torch_loss(ref_a, ref_b, negatives, placeholder, temperature).backward()
        got_a = [f.clone().double().requires_grad_(True) for f in list_a]
        got_b = [f.clone().double().requires_grad_(True) for f in list_b]
        loss, _ = matching_loss(got_a, got_b, None, None, torch.tensor(negatives),
                                placeholder=placeholder, temperature=temperature)
        loss.backward()
        for ref, got in zip(ref_a + ref_b, got_a + got_b):
            expected = torch.zeros_like(ref) if ref.grad is None else ref.grad  # pair skipped
            torch.testing.assert_close(got.grad, expected, atol=1e-9, rtol=1e-7)
