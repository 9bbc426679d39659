"""Complete baseline trackers built on utrack: FairMOT and CenterTrack.

``build_baseline(cfg, plugins)`` picks the family from ``cfg.model.arch``; the tools compose it
with the plugins that ``plugins.build_plugins(cfg)`` returns.
"""

from __future__ import annotations

from utrack.config import Config
from utrack.plugin import Plugin


def build_baseline(cfg: Config, plugins: list[Plugin]):
    if cfg.model.arch == "fairmot":
        from baselines.fairmot import FairMOT

        return FairMOT(cfg, plugins)
    if cfg.model.arch == "centertrack":
        from baselines.centertrack import CenterTrack

        return CenterTrack(cfg, plugins)
    raise NotImplementedError(f"model.arch={cfg.model.arch!r} is not available yet")
