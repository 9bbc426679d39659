"""Command-line pieces every tool shares: config files, ``--set`` overrides, error reporting."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from utrack.config import CONFIG_DIR, Config, load_config
from utrack.errors import UtrackError


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", action="append", default=None, metavar="FILE",
                        help="YAML config (may repeat: later files override earlier ones)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], nargs="+",
                        metavar="KEY=VALUE", help="override config values, e.g. train.lr=2e-4")


def flat_overrides(args: argparse.Namespace) -> list[str]:
    return [item for group in args.overrides for item in group]


def default_config_files(arch: str, synthetic: bool) -> list[Path]:
    """``configs/<arch>.yaml`` (paper defaults), plus ``configs/synthetic.yaml`` (small model and
    input for the built-in generated data, CPU-friendly) when no dataset is given."""
    files = [CONFIG_DIR / f"{arch}.yaml"]
    if synthetic:
        files.append(CONFIG_DIR / "synthetic.yaml")
    return files


def build_config(args: argparse.Namespace, extra: dict[str, Any],
                 default_files: list[Path]) -> Config:
    files = args.config if args.config else default_files
    return load_config(files, flat_overrides(args), extra)


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run a tool's ``main``; a ``UtrackError`` (bad config, data or checkpoint) prints one line
    and exits with status 2 instead of a traceback."""
    try:
        return int(main(argv) or 0)
    except UtrackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
