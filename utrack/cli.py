"""Command-line pieces every tool shares: config files, ``--set`` overrides, error reporting."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from utrack.config import CONFIG_DIR, Config, load_config
from utrack.errors import ConfigError, UtrackError


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", action="append", default=None, metavar="FILE",
                        help="YAML config (may repeat: later files override earlier ones)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], nargs="+",
                        metavar="KEY=VALUE", help="override config values, e.g. train.lr=2e-4")


def add_training_args(parser: argparse.ArgumentParser, *, reid_choices: list[str],
                      reid_help: str, data_help: str,
                      out_help: str = "output folder (checkpoints, logs, results)") -> None:
    """The options every training tool has (tools/train.py, tools/pretrain_crowdhuman.py):
    ``--reid --occ --data --out --epochs --batch-size --device --resume``."""
    parser.add_argument("--reid", choices=reid_choices, default=None, help=reid_help)
    parser.add_argument("--occ", action="store_true",
                        help="add occlusion estimation and lost-object refinding")
    parser.add_argument("--data", nargs="+", default=None, metavar="DIR", help=data_help)
    parser.add_argument("--out", default=None, help=out_help)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--resume", default=None, metavar="CKPT",
                        help="continue a run exactly from its checkpoint")


def config_layer(values: dict[str, Any]) -> dict:
    """``{"section.key": value}`` -> ``{"section": {"key": value}}``, leaving out None values:
    the dedicated flags of a tool, layered between the config files and ``--set``."""
    extra: dict = {}
    for dotted, value in values.items():
        if value is None:
            continue
        section, key = dotted.split(".", 1)
        extra.setdefault(section, {})[key] = value
    return extra


def training_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``add_training_args`` as ``{"section.key": value}`` (None: not given)."""
    return {"reid.mode": args.reid, "occlusion.enabled": True if args.occ else None,
            "data.roots": args.data, "train.out": args.out, "train.epochs": args.epochs,
            "train.batch_size": args.batch_size, "train.device": args.device}


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


def checkpoint_config(ckpt: dict[str, Any], args: argparse.Namespace,
                      fallback: list[Path] | None = None, source: str = "checkpoint") -> Config:
    """The config a model was trained with: ``--config`` files when given, else the one saved in
    the checkpoint, else ``fallback`` files (published weights hold none); then ``--set``."""
    if args.config:
        return load_config(args.config, flat_overrides(args))
    if "config" in ckpt:
        return load_config([], flat_overrides(args), extra=ckpt["config"])
    if fallback is None:
        raise ConfigError(f"{source} holds no config: give the model's --config")
    return load_config(fallback, flat_overrides(args))


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run a tool's ``main``; a ``UtrackError`` (bad config, data or checkpoint) prints one line
    and exits with status 2 instead of a traceback."""
    try:
        return int(main(argv) or 0)
    except UtrackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
