"""The plugin interface: a probe plugin proves that the baseline calls each of the four hooks
and uses what they return (heads, targets, loss terms, tracker steps)."""

from __future__ import annotations

import torch

from baselines import build_baseline
from utrack.data.collate import collate_frames
from utrack.data.datasets import MOTTrainDataset
from utrack.data.mot import IdentityIndex, MOTSequence
from utrack.data.transforms import Letterbox
from utrack.plugin import Plugin


class ProbePlugin(Plugin):
    name = "probe"
    term_weights = {"probe": 3.0}

    def __init__(self) -> None:
        super().__init__()
        self.calls = {"targets": 0, "loss": 0, "decode": 0, "association": 0}

    def extra_heads(self):
        return {"probe": 3}

    def build_targets(self, sample):
        self.calls["targets"] += 1
        return {"probe_count": torch.tensor([float(len(sample["boxes"]))])}

    def loss_terms(self, outputs, batch):
        self.calls["loss"] += 1
        # depends on both the new head and the new target, so both must have arrived
        return {"probe": outputs["probe"].mean() * 0 + batch["probe_count"].sum(),
                "probe/diagnostic": torch.tensor(123.0)}

    def tracker_steps(self):
        def after_decode(outputs, detections, meta):
            self.calls["decode"] += 1
            assert "probe" in outputs
            detections.extras["probe_seen"] = True

        def after_association(tracker, context):
            self.calls["association"] += 1
            assert context.detections.extras.get("probe_seen") is True

        return {"after_decode": after_decode, "after_association": after_association}


def test_each_hook_is_called_and_used(tiny_cfg, tiny_sequences):
    probe = ProbePlugin()
    baseline = build_baseline(tiny_cfg, [probe])
    model = baseline.build_model()
    assert model.heads == {"hm": 1, "wh": 4, "reg": 2, "id": 128, "probe": 3}

    sequences = [MOTSequence(d) for d in tiny_sequences]
    ids = IdentityIndex(sequences)
    dataset = MOTTrainDataset(sequences, tiny_cfg.data, identity_index=ids,
                              target_builders=[probe.build_targets])
    batch = collate_frames([dataset[0], dataset[1]])
    assert probe.calls["targets"] == 2
    counts = batch["probe_count"].sum().item()
    assert counts == float(sum(len(dataset[i]["boxes"]) for i in range(2))) > 0

    criterion = baseline.build_criterion(ids.num_ids)
    outputs = model(batch["image"])
    assert outputs["probe"].shape[1] == 3
    total, terms = criterion(outputs, batch)
    assert probe.calls["loss"] >= 1
    assert torch.isclose(terms["probe"], torch.tensor(counts))
    assert terms["probe/diagnostic"] == 123.0
    # the probe term enters the detection group with its weight 3; the diagnostic does not
    expected_det = terms["hm"] + 0.1 * terms["wh"] + terms["reg"] + 3.0 * terms["probe"]
    assert torch.isclose(terms["det"], expected_det, rtol=1e-5)

    tracker = baseline.make_tracker(frame_rate=10)
    model.eval()
    image = batch["image"][:1]
    dets = baseline.detect(model, tracker, image, Letterbox(1.0, 0.0, 0.0))
    assert dets.extras["probe_seen"] is True and probe.calls["decode"] == 1
    tracker.update(dets)
    assert probe.calls["association"] == 1


def test_no_plugin_means_plain_fairmot(tiny_cfg):
    baseline = build_baseline(tiny_cfg, [])
    assert baseline.heads == {"hm": 1, "wh": 4, "reg": 2, "id": 128}
    assert not baseline.needs_pairs
    tiny_cfg.reid.mode = "none"
    assert build_baseline(tiny_cfg, []).heads == {"hm": 1, "wh": 4, "reg": 2}


def test_plugin_replacing_reid_removes_the_classifier(tiny_cfg):
    class Replacer(Plugin):
        name = "replacer"
        replaces = ("reid",)
        needs_pairs = True

    baseline = build_baseline(tiny_cfg, [Replacer()])
    assert baseline.needs_pairs
    criterion = baseline.build_criterion(num_ids=10)
    assert criterion.reid is None
    assert not any("classifier" in name for name, _ in criterion.named_parameters())
