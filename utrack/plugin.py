"""The plugin interface: how UTrack's modules attach to a baseline without editing it.

A plugin is one object with four optional hooks (DESIGN.md section 2):

- ``extra_heads() -> {name: channels}``: heads added to the baseline's head dict.
- ``build_targets(sample) -> dict``: extra training targets computed from one sample's boxes
  (dataset side, after augmentation and the baseline's own targets).
- ``loss_terms(outputs, batch) -> {name: scalar}``: named losses. The baseline's loss composer
  multiplies each by ``term_weights.get(name, 1.0)``, sums them into the detection group (or the
  identity group for the term named ``"reid"``) and logs each one. Names containing ``/`` (for
  example ``"reid/intra"``) are diagnostics: logged, never summed.
- ``tracker_steps() -> {stage: callable}``: steps run by the tracker at named stages
  (see ``utrack.tracking.base.TRACKER_STAGES``).

A plugin may also replace named baseline loss terms (``replaces``; the unsupervised re-ID plugin
replaces ``"reid"``), ask for frame pairs in training (``needs_pairs``), and own parameters
(plugins are ``nn.Module``s: their state is saved with the loss in every checkpoint).

Plugins are plain objects built explicitly by the tools from the config (``plugins.build_plugins``);
nothing registers itself on import.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn


class Plugin(nn.Module):
    """Base class: every hook is optional and does nothing by default."""

    name: str = "plugin"
    #: baseline loss terms this plugin replaces (for example ``("reid",)``)
    replaces: tuple[str, ...] = ()
    #: training samples must come as frame pairs (both frames go through the network)
    needs_pairs: bool = False
    #: weight of each loss term this plugin returns (default 1.0)
    term_weights: dict[str, float] = {}

    def extra_heads(self) -> dict[str, int]:
        return {}

    def build_targets(self, sample: dict[str, Any]) -> dict[str, Any]:
        return {}

    def loss_terms(self, outputs: dict[str, torch.Tensor],
                   batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {}

    def tracker_steps(self) -> dict[str, Callable[..., Any]]:
        return {}

    def extra_repr(self) -> str:
        return f"name={self.name!r}, replaces={self.replaces}, needs_pairs={self.needs_pairs}"


def collect_heads(base_heads: dict[str, int], plugins: list[Plugin]) -> dict[str, int]:
    """The baseline's heads plus every plugin's extra heads; a name clash is an error."""
    heads = dict(base_heads)
    for plugin in plugins:
        for name, channels in plugin.extra_heads().items():
            if name in heads:
                raise ValueError(f"plugin {plugin.name!r} adds head {name!r}, which already exists")
            heads[name] = channels
    return heads


def is_diagnostic(term: str) -> bool:
    """Loss-term names with a ``/`` are logged but not part of the loss."""
    return "/" in term


def replaced_terms(plugins: list[Plugin]) -> set[str]:
    """Names of baseline loss terms that some plugin replaces."""
    return {term for plugin in plugins for term in plugin.replaces}


def collect_tracker_steps(plugins: list[Plugin]) -> dict[str, list[Callable[..., Any]]]:
    """Stage name -> the plugins' steps for it, in plugin order."""
    steps: dict[str, list[Callable[..., Any]]] = {}
    for plugin in plugins:
        for stage, fn in plugin.tracker_steps().items():
            steps.setdefault(stage, []).append(fn)
    return steps
