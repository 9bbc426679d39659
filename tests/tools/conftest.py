"""Running the command-line tools as a user would, in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_tool(*args: str, cwd: Path | None = None, timeout: int = 900,
             env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("OMP_NUM_THREADS", "2")
    return subprocess.run([sys.executable, *args], cwd=cwd or REPO, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@pytest.fixture()
def tool():
    return run_tool
