"""The unsupervised re-ID plugins: wiring into FairMOT, pair batches, identities never used."""

from __future__ import annotations

import pytest
import torch

from baselines import build_baseline
from plugins import build_plugins
from plugins.unsupervised_reid import (CycasReIDPlugin, UnsupervisedReIDPlugin,
                                       cross_item_negatives, pair_embeddings)
from utrack.data.collate import collate_pairs
from utrack.data.datasets import MOTTrainDataset
from utrack.data.mot import IdentityIndex, MOTSequence
from utrack.errors import ConfigError
from utrack.losses import cycas_loss, gather_at, matching_loss


def pair_batch(cfg, sequences, n=3):
    seqs = [MOTSequence(d) for d in sequences]
    dataset = MOTTrainDataset(seqs, cfg.data, identity_index=IdentityIndex(seqs), mode="pair")
    return collate_pairs([dataset[i] for i in range(n)])


def test_reid_modes_select_plugins(tiny_cfg):
    tiny_cfg.reid.mode = "unsupervised"
    (plugin,) = build_plugins(tiny_cfg)
    assert isinstance(plugin, UnsupervisedReIDPlugin)
    baseline = build_baseline(tiny_cfg, [plugin])
    assert baseline.needs_pairs and "id" in baseline.heads
    criterion = baseline.build_criterion(num_ids=0)  # no identities needed at all
    assert criterion.reid is None
    tiny_cfg.reid.mode = "cycas"
    assert isinstance(build_plugins(tiny_cfg)[0], CycasReIDPlugin)
    tiny_cfg.reid.mode = "supervised"
    assert build_plugins(tiny_cfg) == []


def test_plugin_loss_is_the_matching_loss_of_the_pair_embeddings(tiny_cfg, tiny_sequences):
    tiny_cfg.reid.mode = "unsupervised"
    tiny_cfg.reid.matching.placeholder = "zero"
    plugins = build_plugins(tiny_cfg)
    baseline = build_baseline(tiny_cfg, plugins)
    model = baseline.build_model()
    batch = pair_batch(tiny_cfg, tiny_sequences)
    assert batch["image"].shape[0] == 6 and batch["num_pairs"] == 3  # one forward, both frames
    outputs = model(batch["image"])
    total, terms = baseline.build_criterion(0)(outputs, batch)
    emb = gather_at(outputs["id"], batch["ind"])
    mask = batch["reg_mask"].bool()
    expected, _ = matching_loss(emb[:3], emb[3:], mask[:3], mask[3:], placeholder="zero")
    assert torch.isclose(terms["reid"], expected, rtol=1e-5)
    assert {"reid/intra", "reid/inter", "reid/cycle"} <= set(terms)
    # detection losses cover both frames of every pair: hm sums over all six images
    assert "hm" in terms and total.requires_grad


def test_identities_are_never_read(tiny_cfg, tiny_sequences):
    """Shuffling or deleting the ids of a pair batch leaves the unsupervised loss unchanged."""
    for mode, loss_fn in (("unsupervised", matching_loss), ("cycas", cycas_loss)):
        tiny_cfg.reid.mode = mode
        plugins = build_plugins(tiny_cfg)
        baseline = build_baseline(tiny_cfg, plugins)
        model = baseline.build_model()
        criterion = baseline.build_criterion(0)
        batch = pair_batch(tiny_cfg, tiny_sequences)
        outputs = model(batch["image"])
        _, terms = criterion(outputs, batch)
        shuffled = dict(batch, ids=batch["ids"][torch.randperm(len(batch["ids"]))].flip(1))
        _, terms_shuffled = criterion(outputs, shuffled)
        deleted = {k: v for k, v in batch.items() if k != "ids"}
        _, terms_deleted = criterion(outputs, deleted)
        assert torch.equal(terms["reid"], terms_shuffled["reid"]), mode
        assert torch.equal(terms["reid"], terms_deleted["reid"]), mode


def test_pair_embeddings_split(tiny_cfg, tiny_sequences):
    batch = pair_batch(tiny_cfg, tiny_sequences, n=2)
    id_map = torch.randn(4, 8, 16, 32)
    a, b, ma, mb, negative = pair_embeddings(id_map, batch)
    full = gather_at(id_map, batch["ind"])
    assert torch.equal(a, full[:2]) and torch.equal(b, full[2:])
    assert torch.equal(ma, batch["reg_mask"][:2].bool())
    assert torch.equal(negative, batch["pair_negative"])


def test_items_of_three_frames_give_three_pairs_each(tiny_cfg, tiny_sequences):
    tiny_cfg.data.pair_frames = 3
    batch = pair_batch(tiny_cfg, tiny_sequences, n=2)
    assert batch["image"].shape[0] == 6 and batch["pair_frames"] == 3
    id_map = torch.randn(6, 8, 16, 32)
    a, b, ma, mb, negative = pair_embeddings(id_map, batch)
    full, mask = gather_at(id_map, batch["ind"]), batch["reg_mask"].bool()
    # slots (1, 2), (1, 3), (2, 3) of items 0 and 1: rows 0-1 frame 1, 2-3 frame 2, 4-5 frame 3
    first, second = [0, 1, 0, 1, 2, 3], [2, 3, 4, 5, 4, 5]
    assert torch.equal(a, full[first]) and torch.equal(b, full[second])
    assert torch.equal(ma, mask[first]) and torch.equal(mb, mask[second])
    assert negative.tolist() == [False] * 6
    # the plugin's loss is the matching loss over those six pairs
    tiny_cfg.reid.mode = "unsupervised"
    baseline = build_baseline(tiny_cfg, build_plugins(tiny_cfg))
    outputs = baseline.build_model()(batch["image"])
    _, terms = baseline.build_criterion(0)(outputs, batch)
    full = gather_at(outputs["id"], batch["ind"])
    expected, expected_terms = matching_loss(full[first], full[second], mask[first], mask[second])
    assert torch.isclose(terms["reid"], expected, rtol=1e-5)
    assert terms["reid/num_pos"] == expected_terms["num_pos"] > 0


def test_cross_item_negatives_pair_frames_of_different_scenes():
    # 3 items x 2 frames, rows slot-major: row s * 3 + i; items 0 and 2 share a scene
    scenes = ["A", "B", "A", "A", "B", "A"]
    # slot-aligned first: (0,1) then (1,2) on slot 0 ((0,2) is one scene), then slot 1
    assert cross_item_negatives(scenes, 3, 2, 3) == [(0, 1), (1, 2), (3, 4)]
    # then across slots (0, 1): item i slot 0 with item j slot 1
    assert cross_item_negatives(scenes, 3, 2, 6) == [(0, 1), (1, 2), (3, 4), (4, 5), (0, 4),
                                                     (1, 5)]
    assert cross_item_negatives(["A"] * 6, 3, 2, 4) == []  # one scene: no negative


def test_pair_embeddings_adds_batch_negatives(tiny_cfg, tiny_sequences):
    tiny_cfg.data.pair_frames = 3
    batch = pair_batch(tiny_cfg, tiny_sequences, n=2)
    for row, meta in enumerate(batch["meta"]):
        meta["sequence"] = f"seq{row % 2}"  # item 0 in seq0, item 1 in seq1
    id_map = torch.randn(6, 8, 16, 32)
    a, b, ma, mb, negative = pair_embeddings(id_map, batch, batch_neg_ratio=0.5)
    full, mask = gather_at(id_map, batch["ind"]), batch["reg_mask"].bool()
    # 6 own pairs (see above), then round(0.5 * 6) = 3 negatives: rows (0, 1), (2, 3), (4, 5)
    first, second = [0, 1, 0, 1, 2, 3, 0, 2, 4], [2, 3, 4, 5, 4, 5, 1, 3, 5]
    assert torch.equal(a, full[first]) and torch.equal(b, full[second])
    assert torch.equal(ma, mask[first]) and torch.equal(mb, mask[second])
    assert negative.tolist() == [False] * 6 + [True] * 3
    # the plugin passes them to the loss as negative pairs
    tiny_cfg.reid.mode = "unsupervised"
    tiny_cfg.reid.batch_neg_ratio = 0.5
    baseline = build_baseline(tiny_cfg, build_plugins(tiny_cfg))
    outputs = baseline.build_model()(batch["image"])
    _, terms = baseline.build_criterion(0)(outputs, batch)
    full = gather_at(outputs["id"], batch["ind"])
    expected, expected_terms = matching_loss(full[first], full[second], mask[first],
                                             mask[second], negative)
    assert torch.isclose(terms["reid"], expected, rtol=1e-5)
    assert int(terms["reid/num_neg"]) == int(expected_terms["num_neg"]) == 3


def test_batch_neg_ratio_must_be_non_negative(tiny_cfg):
    tiny_cfg.reid.mode = "unsupervised"
    tiny_cfg.reid.batch_neg_ratio = -0.5
    with pytest.raises(ConfigError, match="reid.batch_neg_ratio"):
        build_plugins(tiny_cfg)
