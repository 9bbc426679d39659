"""FairMOT's losses and decoding against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import torch

from baselines.fairmot.decode import decode_detections
from utrack.data.targets import encode_centernet_targets
from utrack.losses.classifier import ClassifierReIDLoss, embedding_scale
from utrack.losses.focal import focal_loss
from utrack.losses.regression import masked_l1_loss
from utrack.losses.uncertainty import UncertaintyWeighting


def test_focal_loss_hand_values():
    # one positive (target 1, p = 0.8), one negative near it (target 0.5, p = 0.3),
    # one far negative (target 0, p = 0.1); logits = log(p / (1 - p))
    p = torch.tensor([0.8, 0.3, 0.1])
    logits = torch.log(p / (1 - p)).reshape(1, 1, 1, 3)
    target = torch.tensor([1.0, 0.5, 0.0]).reshape(1, 1, 1, 3)
    pos = math.log(0.8) * 0.2 ** 2  # -0.00892574
    neg = math.log(0.7) * 0.3 ** 2 * 0.5 ** 4 + math.log(0.9) * 0.1 ** 2 * 1.0
    expected = -(pos + neg) / 1  # one positive: -(-0.0089257 - 0.0020063 - 0.0010536)
    assert math.isclose(expected, 0.0119856, rel_tol=1e-4)
    assert torch.isclose(focal_loss(logits, target), torch.tensor(expected), rtol=1e-5)


def test_focal_loss_without_objects_is_the_negative_term_and_finite():
    logits = torch.full((2, 1, 4, 4), -2.19)
    loss = focal_loss(logits, torch.zeros(2, 1, 4, 4))
    p = 1 / (1 + math.exp(2.19))
    assert torch.isclose(loss, torch.tensor(-32 * math.log(1 - p) * p * p), rtol=1e-5)
    half = focal_loss(logits.half(), torch.zeros(2, 1, 4, 4).half())
    assert torch.isfinite(half)


def test_masked_l1_uses_only_masked_slots():
    pred = torch.zeros(1, 2, 2, 2)
    pred[0, :, 1, 0] = torch.tensor([1.0, 3.0])  # flat index 2
    index = torch.tensor([[2, 0]])
    mask = torch.tensor([[True, False]])
    target = torch.tensor([[[2.0, 1.0], [99.0, 99.0]]])
    # |1-2| + |3-1| = 3 over 1 object x 2 channels (+1e-4)
    assert torch.isclose(masked_l1_loss(pred, index, mask, target), torch.tensor(3 / 2.0001), rtol=1e-5)


def test_classifier_reid_loss_hand_value():
    loss_fn = ClassifierReIDLoss(num_ids=5, emb_dim=2)
    with torch.no_grad():
        loss_fn.classifier.weight.copy_(torch.tensor([[1.0, 0], [0, 1.0], [-1.0, 0], [0, -1.0], [0, 0]]))
        loss_fn.classifier.bias.zero_()
    id_map = torch.zeros(1, 2, 1, 3)
    id_map[0, :, 0, 0] = torch.tensor([3.0, 0.0])  # normalised (1, 0)
    id_map[0, :, 0, 1] = torch.tensor([0.0, -2.0])  # normalised (0, -1); id unknown -> ignored
    index = torch.tensor([[0, 1]])
    mask = torch.tensor([[True, True]])
    ids = torch.tensor([[0, -1]])
    s = math.sqrt(2) * math.log(4)  # embedding scale for nID = 5
    assert math.isclose(embedding_scale(5), s)
    logits = [s, 0, -s, 0, 0]
    expected = -logits[0] + math.log(sum(math.exp(v) for v in logits))
    assert torch.isclose(loss_fn(id_map, index, mask, ids), torch.tensor(expected), rtol=1e-5)
    none = loss_fn(id_map, index, mask, torch.tensor([[-1, -1]]))
    assert none.item() == 0.0 and none.requires_grad


def test_uncertainty_weighting_formula():
    w = UncertaintyWeighting(-1.85, -1.05)
    total = w(torch.tensor(2.0), torch.tensor(3.0))
    expected = 0.5 * (math.exp(1.85) * 2.0 - 1.85 + math.exp(1.05) * 3.0 - 1.05)
    assert math.isclose(total.item(), expected, rel_tol=1e-6)
    assert math.isclose(w(torch.tensor(2.0), None).item(), 0.5 * (math.exp(1.85) * 2 - 1.85), rel_tol=1e-6)


def test_decode_recovers_encoded_boxes():
    boxes = np.array([[10.3, 20.7, 50.2, 90.9], [70.0, 8.0, 100.5, 60.25]], dtype=np.float32)
    t = encode_centernet_targets(boxes, np.array([0, 1]), 128, 96)
    h, w = t["hm"].shape[1:]
    outputs = {"hm": torch.logit(t["hm"].clamp(1e-6, 1 - 1e-6))[None],
               "wh": torch.zeros(1, 4, h, w), "reg": torch.zeros(1, 2, h, w),
               "id": torch.randn(1, 8, h, w)}
    for k in range(2):
        y, x = divmod(int(t["ind"][k]), w)
        outputs["wh"][0, :, y, x] = t["wh"][k]
        outputs["reg"][0, :, y, x] = t["reg"][k]
    out_boxes, scores, emb = decode_detections(outputs, k=2)
    order = torch.argsort(out_boxes[0, :, 0])
    assert torch.allclose(out_boxes[0][order], torch.from_numpy(boxes), atol=1e-4)
    assert torch.allclose(scores[0], torch.ones(2), atol=1e-5)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(1, 2), atol=1e-5)
