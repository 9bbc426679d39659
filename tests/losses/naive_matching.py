"""An independent per-pair reference of UTrack's matching loss (Eq. 1-8) with autograd, for
the tests of the vectorised loss's hand-written backward."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

TERMS = ("intra", "inter", "cycle")


def naive_torch_loss(list_a: list[torch.Tensor], list_b: list[torch.Tensor],
                     negatives: list[bool], placeholder: str, temperature: str | float = "adaptive",
                     margin: float = 0.5, terms: Sequence[str] = TERMS) -> torch.Tensor:
    """Eq. 1-8 pair by pair with autograd (independent of the vectorised code's hand-written
    backward): the gradient reference. ``terms``: those summed in Eq. 6 (paper Table 2)."""
    losses = []
    for fa, fb, neg in zip(list_a, list_b, negatives):
        n, m = len(fa), len(fb)
        if n == 0 or m == 0:
            continue
        k = n + m
        f = torch.nn.functional.normalize(torch.cat([fa, fb]), dim=1)
        sim = f @ f.t()
        diag = torch.eye(k, dtype=torch.bool)
        logits = sim.masked_fill(diag, float("-inf"))
        if neg or placeholder != "none":
            p = sim.detach()[~diag].mean() if placeholder == "mean" and not neg else sim.new_zeros(())
            logits = torch.cat([logits, p.expand(k, 1)], 1)
        factor = 2 * math.log(logits.shape[1] + 1) if temperature == "adaptive" else temperature
        mat = torch.softmax(factor * logits, dim=1)
        if neg:
            losses.append(mat[:, :k].sum() / k)
            continue
        top2 = mat.topk(2, dim=1).values
        value = {"intra": mat[:n, :n].sum() + mat[n:, n:k].sum(),
                 "inter": torch.relu(top2[:, 1] + margin - top2[:, 0]).sum(),
                 "cycle": (mat[n:, :n] - mat[:n, n:k].t()).abs().sum()}
        losses.append(sum(value[name] for name in terms) / k)
    return torch.stack(losses).mean()
