"""Train a tracker: ``python tools/train.py [--reid unsupervised] [--occ] [--data DIR ...]``.

With no ``--data`` it generates the built-in synthetic MOT sequences, trains on them (with
``configs/synthetic.yaml``, a CPU-sized recipe), then tracks the held-out synthetic sequence and
prints MOTA / IDF1 / HOTA. With ``--data`` it uses ``configs/<arch>.yaml`` (paper defaults)
unless ``--config`` is given. Launch with ``torchrun --nproc_per_node N`` for
DistributedDataParallel (gloo on CPU, NCCL on CUDA); rank 0 alone writes checkpoints and logs.
"""

from __future__ import annotations

import argparse
import sys

from baselines import build_baseline
from plugins import build_plugins
from utrack.cli import (add_config_args, add_training_args, build_config, config_layer,
                        default_config_files, run_cli, training_flags)
from utrack.engine.runtime import seed_everything, setup_runtime, teardown_runtime
from utrack.engine.setup import build_training_data, evaluate_after_training, prepare_trainer


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    parser.add_argument("--arch", choices=["fairmot", "centertrack"], default=None)
    add_training_args(parser, reid_choices=["supervised", "none", "unsupervised", "cycas"],
                      reid_help="re-ID learning (default: the config's, supervised)",
                      data_help="MOTChallenge dataset roots or sequence folders "
                                "(default: synthetic)")
    parser.add_argument("--init", default=None, metavar="CKPT",
                        help="start from weights (pretraining or published); heads whose "
                             "shapes differ are reported and skipped")
    parser.add_argument("--no-eval", action="store_true",
                        help="skip tracking + evaluation of the held-out data after training")
    return parser.parse_args(argv)


def config_flags(args: argparse.Namespace) -> dict:
    """The dedicated flags as a config dict layered between the files and ``--set``."""
    return config_layer({"model.arch": args.arch, **training_flags(args),
                         "train.init": args.init,
                         "train.eval_after": False if args.no_eval else None})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    defaults = default_config_files(args.arch or "fairmot", synthetic=not args.data)
    cfg = build_config(args, config_flags(args), defaults)
    runtime = setup_runtime(cfg.train.device, cfg.train.amp, cfg.train.cpu_bf16)
    try:
        seed_everything(cfg.train.seed)
        data = build_training_data(cfg, runtime)
        plugins = build_plugins(cfg)
        baseline = build_baseline(cfg, plugins)
        trainer = prepare_trainer(cfg, runtime, data, baseline, plugins, resume=args.resume)
        trainer.fit()
        if runtime.is_main and cfg.train.eval_after:
            evaluate_after_training(baseline, trainer.model, data, cfg, runtime.device)
    finally:
        teardown_runtime(runtime)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
