"""Evaluate MOTChallenge tracking results: CLEAR-MOT, Identity and HOTA metrics.

    python tools/eval.py --gt ROOT --results DIR [--json FILE] [--split all|train_half|val_half]
                         [--seqs NAME ...]

ROOT is one sequence folder (with seqinfo.ini and gt/gt.txt) or a dataset root holding sequence
folders (directly or under train/); DIR holds one ``<sequence>.txt`` per sequence. Prints a table
per sequence plus the combined row. ``--json`` writes ``{"sequences": {NAME: METRICS},
"combined": METRICS, "extra": {...}}`` where METRICS holds MOTA, IDF1, HOTA (fractions) and MT,
ML, FP, FN, IDS, Frag (integers); "extra" has the same layout with the other metrics.
Bad input (missing folder or file, malformed line) exits with code 2 and a one-line error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from utrack.data.mot import SPLITS
from utrack.cli import run_cli
from utrack.errors import UtrackError
from utrack.eval.mot import SUMMARY_KEYS, evaluate_folder, format_table


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eval.py", description="Evaluate MOTChallenge tracking results (CLEAR, IDF1, HOTA).")
    parser.add_argument("--gt", required=True, type=Path,
                        help="a sequence folder or a dataset root of sequence folders")
    parser.add_argument("--results", required=True, type=Path,
                        help="folder with one <sequence>.txt results file per sequence")
    parser.add_argument("--json", type=Path, default=None, help="also write the metrics here")
    parser.add_argument("--split", choices=SPLITS, default="all",
                        help="frames of each sequence to evaluate (default: all)")
    parser.add_argument("--seqs", nargs="+", default=None, metavar="NAME",
                        help="evaluate only these sequences (folder names)")
    return parser


def json_report(report: dict[str, Any]) -> dict[str, Any]:
    """Split ``evaluate_folder``'s output into the summary keys and an "extra" section."""

    def split(metrics: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        main = {k: metrics[k] for k in SUMMARY_KEYS}
        extra = {k: v for k, v in metrics.items() if k not in main}
        return main, extra

    out: dict[str, Any] = {"sequences": {}, "combined": None,
                           "extra": {"sequences": {}, "combined": None}}
    for name, metrics in report["sequences"].items():
        out["sequences"][name], out["extra"]["sequences"][name] = split(metrics)
    out["combined"], out["extra"]["combined"] = split(report["combined"])
    return out


def run(argv: list[str] | None = None) -> int:
    """Evaluate, print the table and write the JSON; bad input raises a ``UtrackError``."""
    args = build_parser().parse_args(argv)
    report = evaluate_folder(args.gt, args.results, split=args.split, sequences=args.seqs)
    print(format_table(report))
    if args.json is not None:
        text = json.dumps(json_report(report), indent=2, allow_nan=False) + "\n"
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(text)
        except OSError as exc:
            raise UtrackError(f"{args.json}: cannot write the metrics: {exc}") from exc
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line: returns the exit code (2 with a one-line error on bad input)."""
    return run_cli(run, argv)


if __name__ == "__main__":
    sys.exit(main())
