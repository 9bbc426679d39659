"""Pretrain a tracker on static images (CrowdHuman or COCO): detection + re-ID (+ occlusion).

``python tools/pretrain_crowdhuman.py --data DIR [--reid unsupervised|cycas|supervised] [--occ]
[--neg-ratio 0.25] [--out DIR] [--epochs N] [--batch-size N] [--device D] [--resume CKPT]``

Re-ID on images (UTrack paper Sec. 3.1.2, Eq. 7-8): ``unsupervised`` treats two augmentations of
one image as a positive pair and two images of different scenes as a negative pair, with
Nneg / Npos = ``--neg-ratio`` (``data.neg_ratio``, default 0.25); ``cycas`` trains on positive
pairs only (it has no negative term, so no negatives are made unless ``--neg-ratio`` or
``--set data.neg_ratio`` asks); ``supervised`` is FairMOT's pretraining: single images, every
annotated box its own identity, a classifier over all of them.

``--data`` is a CrowdHuman folder (``annotation_train.odgt`` + ``Images/``) or ``.odgt`` files
(``data.format: crowdhuman``, the default), or COCO JSON files (``--set data.format=coco``).
The defaults come from ``configs/crowdhuman.yaml`` (a CPU-sized recipe; override the model and
input size for the real CrowdHuman). Same trainer, checkpoints, tensorboard and ``--resume`` as
``tools/train.py``; its ``checkpoint_last.pth`` is what ``tools/train.py --init`` fine-tunes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from baselines import build_baseline
from plugins import build_plugins
from utrack.cli import (add_config_args, add_training_args, build_config, config_layer, run_cli,
                        training_flags)
from utrack.config import CONFIG_DIR, Config
from utrack.data.images import DEFAULT_SCENE_PATTERN
from utrack.engine.runtime import seed_everything, setup_runtime, teardown_runtime
from utrack.engine.setup import build_image_training_data, prepare_trainer

DEFAULT_CONFIG = CONFIG_DIR / "crowdhuman.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    add_training_args(
        parser, reid_choices=["unsupervised", "cycas", "supervised", "none"],
        reid_help="re-ID learning (default: the config's, unsupervised)",
        data_help="CrowdHuman folders (annotation_train.odgt + Images/) or .odgt files; COCO "
                  ".json files with --set data.format=coco",
        out_help="output folder (checkpoints, logs)")
    parser.add_argument("--neg-ratio", type=float, default=None, metavar="R",
                        help="negative / positive pairs (data.neg_ratio; paper: 0.25, >= 1 does "
                             "not converge); CycAs defaults to 0")
    parser.add_argument("--images", default=None, metavar="DIR",
                        help="images folder (default: Images/ beside the .odgt; the JSON's "
                             "folder for COCO)")
    parser.add_argument("--category", default="person",
                        help="COCO category to train on, by name or id (default: person)")
    parser.add_argument("--scene-pattern", default=DEFAULT_SCENE_PATTERN, metavar="REGEX",
                        help="regular expression with a group (?P<scene>...) that reads the "
                             "scene from an image ID (negative pairs never share a scene); "
                             "'' makes every image its own scene (default: <scene>_<frame>)")
    return parser.parse_args(argv)


def config_flags(args: argparse.Namespace) -> dict:
    """The dedicated flags as a config dict layered between the files and ``--set``."""
    neg_ratio = args.neg_ratio
    if neg_ratio is None and args.reid == "cycas":
        neg_ratio = 0.0  # CycAs leaves negative pairs out of its loss: do not spend steps on them
    return config_layer({**training_flags(args), "data.neg_ratio": neg_ratio})


def finetune_hint(cfg: Config, checkpoint: Path) -> str:
    """The tools/train.py command that fine-tunes this checkpoint with the same network."""
    m = cfg.model
    sets = [f"model.backbone={m.backbone}", f"model.head_conv={m.head_conv}",
            f"model.neck_channels={m.neck_channels}", f"model.input_norm={m.input_norm}",
            f"reid.dim={cfg.reid.dim}"]
    return (f"fine-tune on video: python tools/train.py --data MOT_ROOT --init {checkpoint} "
            f"--set {' '.join(sets)}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = build_config(args, config_flags(args), [DEFAULT_CONFIG])
    runtime = setup_runtime(cfg.train.device, cfg.train.amp, cfg.train.cpu_bf16)
    try:
        seed_everything(cfg.train.seed)
        data = build_image_training_data(cfg, args.images, category=args.category,
                                         scene_pattern=args.scene_pattern or None)
        plugins = build_plugins(cfg)
        baseline = build_baseline(cfg, plugins)
        if runtime.is_main:
            for image_set in data.image_sets:
                print(image_set.summary())
            if baseline.needs_pairs and cfg.data.neg_ratio >= 1:
                print(f"note: data.neg_ratio={cfg.data.neg_ratio}: the paper reports that the "
                      "re-ID loss does not converge with Nneg/Npos >= 1 (Table 8)")
        trainer = prepare_trainer(cfg, runtime, data, baseline, plugins, resume=args.resume)
        trainer.fit()
        if runtime.is_main:
            print(finetune_hint(cfg, Path(cfg.train.out) / "checkpoint_last.pth"))
    finally:
        teardown_runtime(runtime)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
