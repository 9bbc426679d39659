"""CenterTrack tests: a small CenterTrack config."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from utrack.cli import default_config_files
from utrack.config import Config, load_config


def small_config(*overrides: str) -> Config:
    """configs/centertrack.yaml with a ResNet-18, narrow heads and a 128x64 input."""
    return load_config(default_config_files("centertrack", synthetic=False),
                       ["model.backbone=resnet18", "model.head_conv=16",
                        "data.input_size=[128, 64]", "data.num_workers=0", *overrides])


@pytest.fixture()
def make_cfg() -> Callable[..., Config]:
    """``make_cfg("a.b=c", ...)``: ``small_config`` with more overrides."""
    return small_config
