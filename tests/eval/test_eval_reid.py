"""Re-ID metrics on hand-made cases."""

import numpy as np
import pytest

from utrack.eval.reid import rank1_and_map, split_query_gallery


def test_split_query_gallery_first_half_in_time():
    labels = np.array([7, 7, 7, 7, 7, 3, 3, 9])
    times = np.array([5, 1, 4, 2, 3, 10, 11, 1])
    query, gallery = split_query_gallery(labels, times)
    # id 7 at times 1,2,3 (ceil(5/2)=3) are queries, 4,5 gallery; id 3: t10 query, t11 gallery;
    # id 9 seen once: query only
    assert query.tolist() == [False, True, False, True, True, True, False, True]
    assert (gallery == ~query).all()


def test_rank1_and_map_hand_values():
    e = np.eye(3)
    gallery = np.array([e[0], e[1], 0.9 * e[0] + 0.1 * e[1], e[2]])
    gallery_labels = np.array([1, 2, 2, 3])
    query = np.array([e[0], e[1]])
    query_labels = np.array([2, 2])
    out = rank1_and_map(query, query_labels, gallery, gallery_labels)
    # query e0 (label 2): ranking g0 (1), g2 (2, sim .994), g1 (2), g3 -> hits at ranks 2, 3:
    # AP = (1/2 + 2/3) / 2 = 0.58333; rank-1 miss
    # query e1 (label 2): ranking g1 (2), g2 (2, sim .110), then g0/g3 -> hits at ranks 1, 2: AP 1
    assert out["rank1"] == pytest.approx(0.5)
    assert out["mAP"] == pytest.approx((0.583333 + 1.0) / 2, abs=1e-5)
    assert out["queries"] == 2 and out["skipped"] == 0


def test_queries_without_gallery_match_are_skipped():
    # query 0 (label 5) has no gallery entry; query 1 (e1, label 1) finds g1 (e1, label 1) first
    out = rank1_and_map(np.eye(2), np.array([5, 1]), np.eye(2), np.array([1, 1]))
    assert out["queries"] == 1 and out["skipped"] == 1 and out["rank1"] == 1.0


def test_rank1_and_map_within_groups_hand_values():
    e = np.eye(2)
    # g0: label 1 in sequence 1 (a distractor for sequence 0); g1, g2: sequence 0
    gallery = np.array([e[0], 0.9 * e[0] + 0.1 * e[1], e[1]])
    gallery_labels, gallery_seq = np.array([1, 2, 3]), np.array([1, 0, 0])
    query, query_labels, query_seq = np.array([e[0], e[1]]), np.array([2, 1]), np.array([0, 0])
    across = rank1_and_map(query, query_labels, gallery, gallery_labels)
    # q0 (label 2): g0 (1, sim 1), g1 (2, .994), g2 -> hit at rank 2, AP 1/2
    # q1 (label 1): g2 (3, sim 1), g1 (.110), g0 (1, sim 0) -> hit at rank 3, AP 1/3
    assert across["rank1"] == 0.0 and across["queries"] == 2
    assert across["mAP"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    within = rank1_and_map(query, query_labels, gallery, gallery_labels,
                           groups=(query_seq, gallery_seq))
    # q0 against g1, g2 only: hit at rank 1; q1's identity is not in its sequence: skipped
    assert within == {"rank1": 1.0, "mAP": 1.0, "queries": 1, "skipped": 1}


def test_occlusion_center_precision_recall_hand_case():
    from utrack.eval.occlusion import center_precision_recall

    predicted = {1: np.array([[10.0, 10.0], [50.0, 50.0]]), 2: np.array([[0.0, 0.0]])}
    truth = {1: np.array([[12.0, 10.0], [11.0, 10.0]]), 3: np.array([[5.0, 5.0]])}
    # frame 1: (10,10) can take one of the two true centres (1 px away <= 4); (50,50) matches
    # nothing; frame 2: a prediction with no truth; frame 3: a truth with no prediction
    out = center_precision_recall(predicted, truth, tolerance=4.0)
    assert out["tp"] == 1 and out["num_pred"] == 3 and out["num_true"] == 3
    assert out["precision"] == pytest.approx(1 / 3) and out["recall"] == pytest.approx(1 / 3)
    assert center_precision_recall(predicted, truth, tolerance=0.5)["tp"] == 0


@pytest.mark.parametrize("pre_inputs", [False, True])
def test_embeddings_at_boxes_reads_the_id_map_at_box_centres(pre_inputs):
    """FairMOT-style gather at floor(centre / 4); a CenterTrack model sees the image as its
    own previous frame with an empty previous heatmap (the first frames of its training pairs)."""
    import torch

    from utrack.engine.inference import embeddings_at_boxes
    from utrack.models.centernet import build_model

    torch.manual_seed(0)
    model = build_model("resnet18", {"hm": 1, "id": 8}, head_conv=8, neck_channels=16,
                        pre_inputs=pre_inputs).eval()
    image = torch.rand(1, 3, 64, 96)
    boxes = np.array([[0.0, 0.0, 9.0, 9.0], [40.0, 20.0, 60.0, 63.0], [90.0, 50.0, 130.0, 80.0]])
    got = embeddings_at_boxes(model, image, boxes)
    with torch.no_grad():
        extra = (image, torch.zeros(1, 1, 64, 96)) if pre_inputs else ()
        id_map = torch.nn.functional.normalize(model(image, *extra)["id"], dim=1)[0]
    # centres (4.5, 4.5), (50, 41.5), (110, 65) -> cells (1, 1), (12, 10), clipped (23, 15)
    expected = torch.stack([id_map[:, 1, 1], id_map[:, 10, 12], id_map[:, 15, 23]]).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
