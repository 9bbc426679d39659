"""What both baselines share: heads from config and plugins, model building, the training data
they ask for, plugin loss terms, detections in original image pixels, and the ``after_decode``
plugin stage."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from utrack.config import Config
from utrack.data.collate import collate_frames, collate_pairs
from utrack.data.datasets import PAIR_MODES
from utrack.data.transforms import letterbox_inverse
from utrack.models.centernet import CenterNet, build_model
from utrack.plugin import Plugin, collect_heads, collect_tracker_steps, is_diagnostic
from utrack.tracking.base import Detections

#: the identity loss term: FairMOT's classifier, or a plugin's (which then replaces it)
REID_TERM = "reid"


def add_plugin_terms(plugins: list[Plugin], outputs: dict[str, torch.Tensor],
                     batch: dict[str, Any], terms: dict[str, torch.Tensor],
                     weights: dict[str, float]) -> None:
    """Add every plugin's loss terms to ``terms`` and their weights to ``weights``, in place.

    A plugin term takes ``plugin.term_weights.get(name, 1.0)``, except the ``"reid"`` term,
    which keeps the baseline's weight (``weights["reid"]``, set from ``cfg.reid.weight``), and
    diagnostics (names with ``/``), which get no weight: they are logged, never summed. A name
    that is already in ``terms`` (a baseline term or another plugin's) is an error.
    """
    for plugin in plugins:
        for name, value in plugin.loss_terms(outputs, batch).items():
            if name in terms:
                raise ValueError(f"plugin {plugin.name!r} returns loss term {name!r} twice")
            terms[name] = value
            if name != REID_TERM and not is_diagnostic(name):
                weights[name] = plugin.term_weights.get(name, 1.0)


def weighted_groups(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The two task groups as weighted sums: detection (every term but ``"reid"`` and the
    diagnostics) and identity (``weights["reid"] * terms["reid"]``, None without that term)."""
    det = sum(weights[name] * value for name, value in terms.items()
              if name != REID_TERM and not is_diagnostic(name))
    reid = weights[REID_TERM] * terms[REID_TERM] if REID_TERM in terms else None
    return det, reid


class Baseline:
    """A tracker family: the model with its heads, its loss, its tracker, and per-frame inference.

    Subclasses define ``name``, ``base_heads``, ``build_criterion``, ``make_tracker``,
    ``forward_train`` and ``detect(model, tracker, image, letterbox) -> Detections``; a frame is
    tracked with ``tracker.update(baseline.detect(...))``.
    """

    name = "baseline"

    def __init__(self, cfg: Config, plugins: list[Plugin]) -> None:
        self.cfg = cfg
        self.plugins = list(plugins)
        self.heads = collect_heads(self.base_heads(cfg), self.plugins)
        self.steps = collect_tracker_steps(self.plugins)

    @staticmethod
    def base_heads(cfg: Config) -> dict[str, int]:
        raise NotImplementedError

    @property
    def needs_pairs(self) -> bool:
        """Training samples come as frame pairs when any plugin asks for them."""
        return any(p.needs_pairs for p in self.plugins)

    def dataset_options(self) -> dict[str, Any]:
        """Keyword arguments for ``MOTTrainDataset`` that this baseline decides: the ``mode``
        (``"pair"`` when a plugin needs pairs, else ``"single"``) and, for CenterTrack, the
        ``previous_builder``."""
        return {"mode": "pair" if self.needs_pairs else "single"}

    def collate_fn(self) -> Callable[[list[Any]], dict[str, Any]]:
        """The batching function for items of ``dataset_options()["mode"]``."""
        return collate_pairs if self.dataset_options()["mode"] in PAIR_MODES else collate_frames

    def build_model(self, pre_inputs: bool = False) -> CenterNet:
        m = self.cfg.model
        return build_model(m.backbone, self.heads, head_conv=m.head_conv,
                           neck_channels=m.neck_channels, pretrained=m.pretrained,
                           pre_inputs=pre_inputs, input_norm=m.input_norm)

    def build_criterion(self, num_ids: int) -> nn.Module:
        raise NotImplementedError

    def forward_train(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def make_tracker(self, frame_rate: float):
        raise NotImplementedError

    def to_detections(self, boxes: torch.Tensor, scores: torch.Tensor,
                      embeddings: torch.Tensor | None, letterbox: Any,
                      threshold: float) -> Detections:
        """One image's decoded boxes (network-input pixels) -> ``Detections`` in original image
        pixels, keeping scores above ``threshold``."""
        keep = scores > threshold
        boxes_np = letterbox_inverse(boxes[keep].cpu().numpy(), letterbox)
        emb = None if embeddings is None else embeddings[keep].cpu().numpy()
        return Detections(boxes_np, scores[keep].cpu().numpy(), emb)

    def run_after_decode(self, outputs: dict[str, torch.Tensor], detections: Detections,
                         meta: dict[str, Any]) -> None:
        for step in self.steps.get("after_decode", []):
            step(outputs, detections, meta)
