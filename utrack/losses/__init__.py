"""Losses any tracker can import (torch only).

UTrack: ``matching_loss`` / ``MatchingLoss`` (unsupervised re-ID, paper Eq. 3-8),
``occlusion_loss`` (Eq. 11-14). Baselines: ``cycas_loss`` / ``CycasLoss`` (CycAs),
``ClassifierReIDLoss`` (FairMOT's supervised re-ID), ``focal_loss``, ``masked_l1_loss``,
``UncertaintyWeighting``.
"""

from utrack.losses.classifier import ClassifierReIDLoss
from utrack.losses.cycas import CycasLoss, cycas_loss
from utrack.losses.focal import focal_loss
from utrack.losses.masked import masked_logsumexp, masked_softmax, pad_embeddings
from utrack.losses.matching import MatchingLoss, assignment_matrix, matching_loss
from utrack.losses.occlusion import occlusion_loss
from utrack.losses.regression import gather_at, masked_l1_loss
from utrack.losses.uncertainty import UncertaintyWeighting

__all__ = [
    "ClassifierReIDLoss",
    "CycasLoss",
    "MatchingLoss",
    "UncertaintyWeighting",
    "assignment_matrix",
    "cycas_loss",
    "focal_loss",
    "gather_at",
    "masked_l1_loss",
    "masked_logsumexp",
    "masked_softmax",
    "matching_loss",
    "occlusion_loss",
    "pad_embeddings",
]
