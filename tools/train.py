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
from utrack.cli import add_config_args, build_config, default_config_files, run_cli
from utrack.engine.runtime import seed_everything, setup_runtime, teardown_runtime
from utrack.engine.setup import build_training_data, evaluate_after_training, initialise_weights
from utrack.engine.trainer import Trainer, TrainStep


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    parser.add_argument("--arch", choices=["fairmot", "centertrack"], default=None)
    parser.add_argument("--reid", choices=["supervised", "none", "unsupervised", "cycas"],
                        default=None, help="re-ID learning (default: the config's, supervised)")
    parser.add_argument("--occ", action="store_true",
                        help="add occlusion estimation and lost-object refinding")
    parser.add_argument("--data", nargs="+", default=None, metavar="DIR",
                        help="MOTChallenge dataset roots or sequence folders (default: synthetic)")
    parser.add_argument("--out", default=None, help="output folder (checkpoints, logs, results)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--resume", default=None, metavar="CKPT",
                        help="continue a run exactly from its checkpoint")
    parser.add_argument("--init", default=None, metavar="CKPT",
                        help="start from weights (pretraining or published); heads whose "
                             "shapes differ are reported and skipped")
    parser.add_argument("--no-eval", action="store_true",
                        help="skip tracking + evaluation of the held-out data after training")
    return parser.parse_args(argv)


def config_flags(args: argparse.Namespace) -> dict:
    """The dedicated flags as a config dict layered between the files and ``--set``."""
    extra: dict = {}

    def put(section: str, key: str, value) -> None:
        if value is not None:
            extra.setdefault(section, {})[key] = value

    put("model", "arch", args.arch)
    put("reid", "mode", args.reid)
    if args.occ:
        put("occlusion", "enabled", True)
    put("data", "roots", args.data)
    put("train", "out", args.out)
    put("train", "epochs", args.epochs)
    put("train", "batch_size", args.batch_size)
    put("train", "device", args.device)
    put("train", "init", args.init)
    if args.no_eval:
        put("train", "eval_after", False)
    return extra


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    defaults = default_config_files(args.arch or "fairmot", synthetic=not args.data)
    cfg = build_config(args, config_flags(args), defaults)
    runtime = setup_runtime(cfg.train.device, cfg.train.amp)
    try:
        seed_everything(cfg.train.seed)
        data = build_training_data(cfg, runtime)
        plugins = build_plugins(cfg)
        baseline = build_baseline(cfg, plugins)
        model = baseline.build_model()
        if cfg.train.init:
            initialise_weights(model, cfg.train.init, verbose=runtime.is_main)
        criterion = baseline.build_criterion(data.identities.num_ids)
        step = TrainStep(model, criterion, baseline.forward_train)
        dataset = data.make_dataset(baseline, plugins)
        meta = {"arch": cfg.model.arch, "num_ids": data.identities.num_ids,
                "train_sequences": [s.info.name for s in data.train_sequences]}
        trainer = Trainer(step, dataset, data.collate_fn(baseline), cfg, runtime,
                          cfg.train.out, meta)
        if args.resume:
            trainer.resume(args.resume)
        if runtime.is_main:
            print(f"training {cfg.model.arch} ({cfg.model.backbone}, reid={cfg.reid.mode}, "
                  f"occlusion={cfg.occlusion.enabled}) on {len(dataset)} samples from "
                  f"{len(data.train_sequences)} sequences, {data.identities.num_ids} identities, "
                  f"device {runtime.device}, {runtime.world_size} process(es); out: {cfg.train.out}")
        trainer.fit()
        if runtime.is_main and cfg.train.eval_after:
            evaluate_after_training(baseline, model, data, cfg, runtime.device)
    finally:
        teardown_runtime(runtime)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
