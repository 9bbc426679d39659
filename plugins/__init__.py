"""UTrack's modules as plugins for any baseline (see utrack/plugin.py for the interface).

``build_plugins(cfg)`` returns the plugins a config asks for, in a fixed order:
``reid.mode: unsupervised`` -> the UTrack matching loss, ``reid.mode: cycas`` -> CycAs (both
replace the baseline's supervised ``reid`` term and train on frame pairs), and
``occlusion.enabled: true`` -> occlusion estimation with lost-object refinding.
"""

from __future__ import annotations

from utrack.config import Config
from utrack.plugin import Plugin


def build_plugins(cfg: Config) -> list[Plugin]:
    plugins: list[Plugin] = []
    if cfg.reid.mode in ("unsupervised", "cycas"):
        from plugins.unsupervised_reid import build_reid_plugin

        plugins.append(build_reid_plugin(cfg))
    if cfg.occlusion.enabled:
        from plugins.occlusion import OcclusionPlugin

        plugins.append(OcclusionPlugin(cfg))
    return plugins
