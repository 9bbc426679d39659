"""Batching samples with different numbers of objects (for ``torch.utils.data.DataLoader``)."""

from __future__ import annotations

from typing import Any, Sequence

import torch


def _pad_value(key: str, dtype: torch.dtype) -> Any:
    if key == "ids" or key.endswith("_ids"):
        return -1
    return False if dtype == torch.bool else 0


def _stack_or_pad(key: str, values: list[torch.Tensor]) -> torch.Tensor:
    shapes = {tuple(v.shape) for v in values}
    first = values[0]
    if len(shapes) == 1 and (first.dim() == 0 or first.shape[0] > 0):
        return torch.stack(values)
    if first.dim() == 0 or len({tuple(v.shape[1:]) for v in values}) != 1:
        raise ValueError(f"collate: key {key!r} has shapes {sorted(shapes)} that neither stack "
                         f"nor pad along the first (object) dimension")
    length = max(1, max(v.shape[0] for v in values))
    out = torch.full((len(values), length, *first.shape[1:]), _pad_value(key, first.dtype),
                     dtype=first.dtype)
    for i, v in enumerate(values):
        out[i, :v.shape[0]] = v
    return out


def collate_frames(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A list of sample dicts -> one batch dict.

    Tensors of equal shape are stacked (B, ...). Per-object tensors whose first dimension (the
    object count N_i) differs across samples, or is 0 everywhere, are padded to
    (B, max(1, max N_i), ...) with 0 / False, or -1 for keys named ``ids`` or ending in ``_ids``;
    ``reg_mask`` marks the real slots. Any other value (``meta``, strings, records) becomes a list.
    """
    if not samples:
        raise ValueError("collate_frames: empty batch")
    keys = list(samples[0])
    for i, sample in enumerate(samples[1:], start=1):
        if set(sample) != set(keys):
            raise ValueError(f"collate_frames: sample {i} has keys {sorted(sample)}, "
                             f"sample 0 has {sorted(keys)}")
    batch: dict[str, Any] = {}
    for key in keys:
        values = [s[key] for s in samples]
        if all(isinstance(v, torch.Tensor) for v in values):
            batch[key] = _stack_or_pad(key, values)
        else:
            batch[key] = values
    return batch


def collate_pairs(pairs: Sequence[tuple[dict[str, Any], dict[str, Any], bool]]) -> dict[str, Any]:
    """B frame pairs ``(sample_a, sample_b, negative)`` -> one frame batch of 2B samples ordered
    ``a_0 .. a_{B-1}, b_0 .. b_{B-1}`` (one forward pass covers both frames; pair i is rows i and
    B + i), padded to one object count K, plus ``pair_negative`` (B,) bool and ``num_pairs`` = B."""
    if not pairs:
        raise ValueError("collate_pairs: empty batch")
    samples = [p[0] for p in pairs] + [p[1] for p in pairs]
    batch = collate_frames(samples)
    batch["pair_negative"] = torch.tensor([bool(p[2]) for p in pairs], dtype=torch.bool)
    batch["num_pairs"] = len(pairs)
    return batch
