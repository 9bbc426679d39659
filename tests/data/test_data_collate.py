"""Batching samples with 0, 1 and 3 objects, and frame pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from utrack.data.collate import collate_frames, collate_pairs
from utrack.data.targets import encode_centernet_targets


def sample(n: int, tag: str) -> dict:
    boxes = np.array([[4 + 8 * k, 4, 12 + 8 * k, 20] for k in range(n)], np.float32).reshape(-1, 4)
    out = {"image": torch.full((3, 32, 32), float(n)), "boxes": torch.from_numpy(boxes)}
    out.update(encode_centernet_targets(boxes, np.arange(10, 10 + n), 32, 32))
    out["occ_ids"] = torch.arange(n, dtype=torch.int64)
    out["meta"] = {"tag": tag}
    return out


def test_collate_pads_objects() -> None:
    batch = collate_frames([sample(0, "a"), sample(1, "b"), sample(3, "c")])
    assert batch["image"].shape == (3, 3, 32, 32) and batch["hm"].shape == (3, 1, 8, 8)
    assert batch["boxes"].shape == (3, 3, 4) and batch["wh"].shape == (3, 3, 4)
    assert batch["reg_mask"].tolist() == [[False] * 3, [True, False, False], [True] * 3]
    assert batch["ids"].tolist() == [[-1, -1, -1], [10, -1, -1], [10, 11, 12]]
    assert batch["occ_ids"].tolist() == [[-1, -1, -1], [0, -1, -1], [0, 1, 2]]
    assert batch["ind"][1].tolist() == [3 * 8 + 2, 0, 0]  # box (1, 1, 3, 5) at output scale
    assert batch["wh"][0].abs().sum() == 0 and batch["reg"][1, 1:].abs().sum() == 0
    assert batch["boxes"][2].tolist()[2] == [20.0, 4.0, 28.0, 20.0]
    assert batch["meta"] == [{"tag": "a"}, {"tag": "b"}, {"tag": "c"}]


def test_collate_zero_objects_everywhere() -> None:
    batch = collate_frames([sample(0, "a"), sample(0, "b")])
    assert batch["ind"].shape == (2, 1) and batch["wh"].shape == (2, 1, 4)
    assert not batch["reg_mask"].any() and batch["ids"].tolist() == [[-1], [-1]]


def test_collate_equal_counts_stack() -> None:
    a, b = sample(3, "a"), sample(3, "b")
    batch = collate_frames([a, b])
    assert torch.equal(batch["wh"], torch.stack([a["wh"], b["wh"]]))
    assert batch["reg_mask"].all()


def test_collate_rejects_mismatches() -> None:
    a, b = sample(1, "a"), sample(1, "b")
    b["image"] = torch.zeros(3, 16, 16)
    with pytest.raises(ValueError, match="image"):
        collate_frames([a, b])
    c = sample(1, "c")
    del c["meta"]
    with pytest.raises(ValueError, match="keys"):
        collate_frames([a, c])


def test_collate_pairs_order() -> None:
    pairs = [(sample(1, "a0"), sample(2, "b0"), False), (sample(0, "a1"), sample(3, "b1"), True)]
    batch = collate_pairs(pairs)
    assert [m["tag"] for m in batch["meta"]] == ["a0", "a1", "b0", "b1"]
    assert batch["image"][:, 0, 0, 0].tolist() == [1.0, 0.0, 2.0, 3.0]
    assert batch["ind"].shape == (4, 3)  # one K for both frames of every pair
    assert batch["reg_mask"].sum(1).tolist() == [1, 0, 2, 3]
    assert batch["pair_negative"].tolist() == [False, True] and batch["num_pairs"] == 2
    assert batch["pair_frames"] == 2


def test_collate_items_of_three_frames() -> None:
    items = [(sample(1, "a0"), sample(2, "b0"), sample(0, "c0"), False),
             (sample(0, "a1"), sample(3, "b1"), sample(1, "c1"), False)]
    batch = collate_pairs(items)
    assert [m["tag"] for m in batch["meta"]] == ["a0", "a1", "b0", "b1", "c0", "c1"]
    assert batch["num_pairs"] == 2 and batch["pair_frames"] == 3
    assert batch["pair_negative"].tolist() == [False, False]
    with pytest.raises(ValueError, match="lengths"):
        collate_pairs([items[0], (sample(1, "a"), sample(1, "b"), False)])
