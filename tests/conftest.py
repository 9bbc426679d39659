"""Shared fixtures. Real data lives outside the repository, in the folder named by
``UTRACK_SHARED`` (``.ci/run`` sets it to ``../shared``); see ../shared/data/SOURCES.md."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

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
    return None


SHARED = _shared_dir()


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
