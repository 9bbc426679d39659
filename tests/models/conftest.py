"""Model tests run single-threaded: on a shared 2-core machine OpenMP threads waiting on each
other make tiny forwards 10-20x slower than one thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
