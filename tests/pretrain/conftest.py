"""Fixtures of the image-pretraining tests: crowdhuman-mini copies and a tool runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def crowdhuman_mini(shared_data: Path) -> Path:
    return shared_data / "crowdhuman-mini"


@pytest.fixture()
def crowdhuman_copy(crowdhuman_mini: Path, tmp_path: Path) -> Path:
    """A writable copy of crowdhuman-mini: the .odgt copied, the images linked."""
    root = tmp_path / "crowdhuman"
    (root / "Images").mkdir(parents=True)
    shutil.copy(crowdhuman_mini / "annotation_train.odgt", root / "annotation_train.odgt")
    for image in (crowdhuman_mini / "Images").iterdir():
        (root / "Images" / image.name).symlink_to(image)
    return root


@pytest.fixture()
def run_tool():
    """Run a tool script in a subprocess with one OpenMP thread (the machine's 2 cores are
    shared: two threads per process spin against other jobs and run several times slower)."""

    def run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                              timeout=timeout, env=env)

    return run
