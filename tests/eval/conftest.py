"""Helpers for the evaluation tests: TrackEval's own file-based MOTChallenge pipeline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trackeval


def run_trackeval_files(gt_folder: Path, trackers_folder: Path, seqmap: Path,
                        benchmark: str, output: Path) -> dict[str, dict[str, Any]]:
    """Run ``trackeval.Evaluator`` on ``gt_folder/<seq>/gt/gt.txt`` (+ seqinfo.ini) and
    ``trackers_folder/tr/data/<seq>.txt``; returns ``{seq or "COMBINED_SEQ": {"HOTA": ...,
    "CLEAR": ..., "Identity": ...}}`` for the pedestrian class. Serial, no summaries or plots."""
    eval_config = trackeval.Evaluator.get_default_eval_config()
    eval_config.update(USE_PARALLEL=False, PRINT_RESULTS=False, PRINT_CONFIG=False,
                       TIME_PROGRESS=False, OUTPUT_SUMMARY=False, OUTPUT_DETAILED=False,
                       PLOT_CURVES=False, LOG_ON_ERROR=None, BREAK_ON_ERROR=True)
    dataset_config = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
    dataset_config.update(GT_FOLDER=str(gt_folder), TRACKERS_FOLDER=str(trackers_folder),
                          OUTPUT_FOLDER=str(output), BENCHMARK=benchmark, SKIP_SPLIT_FOL=True,
                          SEQMAP_FILE=str(seqmap), TRACKERS_TO_EVAL=["tr"], PRINT_CONFIG=False)
    metrics = [trackeval.metrics.HOTA({"PRINT_CONFIG": False}),
               trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
               trackeval.metrics.Identity({"PRINT_CONFIG": False})]
    results, messages = trackeval.Evaluator(eval_config).evaluate(
        [trackeval.datasets.MotChallenge2DBox(dataset_config)], metrics)
    assert messages["MotChallenge2DBox"]["tr"] == "Success", messages
    per_seq = results["MotChallenge2DBox"]["tr"]
    return {seq: value["pedestrian"] for seq, value in per_seq.items()}


@pytest.fixture
def trackeval_files() -> Callable[..., dict[str, dict[str, Any]]]:
    """``run_trackeval_files`` as a fixture (tests call it with their tmp folders)."""
    return run_trackeval_files
