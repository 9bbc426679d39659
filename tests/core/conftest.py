"""Small synthetic data and configs shared by the core tests."""

from pathlib import Path

import pytest

from utrack.config import load_config
from utrack.data.synthetic import generate_sequence


@pytest.fixture(scope="session")
def tiny_sequences(tmp_path_factory) -> list[Path]:
    """Two generated sequences of 12 frames at 256x160 (seconds to make)."""
    root = tmp_path_factory.mktemp("tiny_synthetic")
    return [generate_sequence(root / f"SYN-T{i}", seed=100 + i, frames=12, width=256, height=160,
                              max_people=4) for i in range(2)]


@pytest.fixture()
def tiny_cfg(tmp_path):
    """A small FairMOT config: ResNet-18, 128x64 input, narrow heads."""
    return load_config([], ["model.backbone=resnet18", "model.head_conv=16",
                            "data.input_size=[128, 64]", "data.num_workers=0",
                            "train.batch_size=2", "train.epochs=1", f"train.out={tmp_path / 'run'}"])
