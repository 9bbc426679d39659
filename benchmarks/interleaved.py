"""Interleaved timing for the benchmarks that compare variants side by side in one process."""

from __future__ import annotations

import time
from collections.abc import Callable


def time_interleaved(calls: dict[str, Callable[[], object]], reps: int) -> dict[str, list[float]]:
    """Seconds per call of each callable over ``reps`` repetitions.

    Each callable runs once untimed first (allocation, kernel choice); then every repetition
    calls each of them once, in turn, so that load from other processes hits them alike.
    """
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(reps):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return times
