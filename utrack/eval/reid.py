"""Re-ID evaluation from tracking data (paper Sec. 4.3.3, Table 7): each ground-truth track is
cut in time into a first half (queries) and a second half (gallery); every query is ranked
against the whole gallery, other identities and other sequences included (distractors).
With ``groups`` the gallery of each query is its own sequence only: the people a tracker has to
tell apart, since it never compares people of two videos."""

from __future__ import annotations

import numpy as np


def split_query_gallery(labels: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (query, gallery) over N observations.

    Args:
        labels: (N,) identity of each observation (unique across sequences); times: (N,) frame.

    Observations of a track in time order: the first ``ceil(n / 2)`` are queries, the rest
    gallery; a track seen once has a query and no gallery entry (it cannot be found).
    """
    labels = np.asarray(labels)
    times = np.asarray(times)
    query = np.zeros(len(labels), dtype=bool)
    order = np.lexsort((times, labels))
    sorted_labels = labels[order]
    starts = np.r_[0, np.nonzero(sorted_labels[1:] != sorted_labels[:-1])[0] + 1]
    ends = np.r_[starts[1:], len(labels)]
    rank_in_track = np.arange(len(labels)) - np.repeat(starts, ends - starts)
    half = np.repeat((ends - starts + 1) // 2, ends - starts)
    query[order] = rank_in_track < half
    return query, ~query


def rank1_and_map(query: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray,
                  gallery_labels: np.ndarray,
                  groups: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """Rank-1 accuracy and mean average precision by cosine similarity.

    Args:
        query: (Q, D) and gallery: (G, D) embeddings (normalised here); labels (Q,), (G,).
        groups: optional ((Q,), (G,)) group of each entry (the sequence): a query is then
            ranked against the gallery entries of its own group only.

    Queries whose identity has no gallery entry (in their group) are left out (counted in
    ``skipped``).
    """
    q = query / np.linalg.norm(query, axis=1, keepdims=True).clip(min=1e-12)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True).clip(min=1e-12)
    sim = q @ g.T
    allowed = np.ones(sim.shape, dtype=bool)
    if groups is not None:
        allowed = np.asarray(groups[0])[:, None] == np.asarray(groups[1])[None, :]
        sim = np.where(allowed, sim, -np.inf)  # other groups rank last and never count as hits
    order = np.argsort(-sim, axis=1, kind="stable")
    hits = ((gallery_labels[order] == np.asarray(query_labels)[:, None])
            & np.take_along_axis(allowed, order, axis=1))  # (Q, G) in rank order
    has_match = hits.any(axis=1)
    hits = hits[has_match]
    if len(hits) == 0:
        return {"rank1": float("nan"), "mAP": float("nan"), "queries": 0,
                "skipped": int((~has_match).sum())}
    cum = np.cumsum(hits, axis=1)
    ranks = np.arange(1, hits.shape[1] + 1)
    ap = (hits * cum / ranks).sum(axis=1) / hits.sum(axis=1)
    return {"rank1": float(hits[:, 0].mean()), "mAP": float(ap.mean()),
            "queries": int(len(hits)), "skipped": int((~has_match).sum())}
