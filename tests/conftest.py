"""Shared fixtures. Real data lives outside the repository, in the folder named by
``UTRACK_SHARED`` (``.ci/run`` sets it to ``../shared``; without the variable, a ``../shared``
beside the clone is used); see ../shared/data/SOURCES.md."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from utrack.config import load_config
from utrack.data.synthetic import generate_sequence

REPO = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path | None:
    value = os.environ.get("UTRACK_SHARED")
    if value:
        path = Path(value)
        if not (path / "data").is_dir():
            raise RuntimeError(f"UTRACK_SHARED={value} has no data/ folder")
        return path
    if os.environ.get("CI"):
        raise RuntimeError("UTRACK_SHARED is not set: CI must point it at the shared data folder")
    beside = REPO.parent / "shared"  # the layout CI uses: ../shared next to the clone
    return beside if (beside / "data").is_dir() else None


SHARED = _shared_dir()


@pytest.fixture(autouse=True)
def _single_thread():
    """Unit tests run torch on one thread: their forwards are tiny, and on a busy 2-core
    machine OpenMP threads waiting on each other make them 10-20x slower. (Tools started in
    subprocesses keep their own thread settings.)"""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared folder (data/, weights/, reference/); skips locally when it is not set."""
    if SHARED is None:
        pytest.skip("set UTRACK_SHARED to the folder holding data/, weights/, reference/")
    return SHARED


@pytest.fixture(scope="session")
def shared_data(shared: Path) -> Path:
    return shared / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable


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
