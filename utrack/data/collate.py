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


def collate_pairs(items: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
    """B items ``(sample_1, ..., sample_k, negative)`` (k >= 2; frame pairs have k = 2) -> one
    frame batch of kB samples in slot order ``1_0 .. 1_{B-1}, 2_0 .. 2_{B-1}, ...`` (one
    forward pass covers every frame; frame s of item i is row (s - 1) B + i), padded to one
    object count K, plus ``pair_negative`` (B,) bool, ``num_pairs`` = B (the number of items)
    and ``pair_frames`` = k."""
    if not items:
        raise ValueError("collate_pairs: empty batch")
    k = len(items[0]) - 1
    if k < 2 or any(len(item) != k + 1 for item in items):
        raise ValueError(f"collate_pairs: items must all be (k >= 2 samples, negative), got "
                         f"lengths {sorted({len(item) for item in items})}")
    batch = collate_frames([item[s] for s in range(k) for item in items])
    batch["pair_negative"] = torch.tensor([bool(item[-1]) for item in items], dtype=torch.bool)
    batch["num_pairs"] = len(items)
    batch["pair_frames"] = k
    return batch
