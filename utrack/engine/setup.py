"""Putting a training run together from a config: data (video sequences, real or generated, or
annotated images for pretraining), weights, the trainer, and the tracking + evaluation of
held-out sequences. ``tools/train.py`` and ``tools/pretrain_crowdhuman.py`` share all of it and
differ only in their data. Baselines and plugins are passed in, never imported (utrack imports
nothing from baselines/ or plugins/)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch
from torch import nn

from utrack.config import Config, save_config
from utrack.data.collate import collate_frames, collate_pairs
from utrack.data.datasets import MOTTrainDataset, SequenceFrames
from utrack.data.images import (DEFAULT_SCENE_PATTERN, ImageRecord, ImageSet,
                                ImageTrainDataset, read_image_sets)
from utrack.data.mot import IdentityIndex, MOTSequence, find_sequences, read_seqinfo
from utrack.data.synthetic import generate_dataset
from utrack.engine.inference import run_tracker, write_run
from utrack.engine.runtime import Runtime
from utrack.engine.trainer import Trainer, TrainStep
from utrack.errors import ConfigError
from utrack.eval.mot import evaluate_folder, format_table
from utrack.eval.occlusion import center_precision_recall
from utrack.occlusion import oracle_occlusion_centers
from utrack.occlusion.step import CENTERS, STRIDE
from utrack.models.checkpoint import (LoadReport, extract_state_dict, load_checkpoint,
                                     load_matching_weights)


class TrainingSource(Protocol):
    """What the trainer needs from a run's data, video or images."""

    @property
    def num_ids(self) -> int: ...  # identities of the supervised classifier

    def make_dataset(self, baseline: Any, plugins: list[Any]) -> Any: ...

    def collate_fn(self, baseline: Any) -> Callable: ...

    def description(self) -> str: ...  # what the run trains on, for the start line

    def meta(self) -> dict[str, Any]: ...  # stored in every checkpoint


@dataclass
class TrainingData:
    """Training sequences and identities, and what to track and evaluate afterwards."""

    cfg: Config
    train_sequences: list[MOTSequence]
    identities: IdentityIndex
    eval_dirs: list[Path]  # sequences to track after training ([] = none held out)
    eval_split: str

    def make_dataset(self, baseline: Any, plugins: list[Any]) -> MOTTrainDataset:
        return MOTTrainDataset(self.train_sequences, self.cfg.data, identity_index=self.identities,
                               target_builders=[p.build_targets for p in plugins],
                               seed=self.cfg.train.seed, down_ratio=self.cfg.model.down_ratio,
                               **baseline.dataset_options())

    def collate_fn(self, baseline: Any) -> Callable:
        return baseline.collate_fn()

    @property
    def num_ids(self) -> int:
        return self.identities.num_ids

    def description(self) -> str:
        return f"{len(self.train_sequences)} sequences, {self.identities.num_ids} identities"

    def meta(self) -> dict[str, Any]:
        return {"num_ids": self.identities.num_ids,
                "train_sequences": [s.info.name for s in self.train_sequences]}


def build_training_data(cfg: Config, runtime: Runtime) -> TrainingData:
    """Real sequences from ``data.roots``, or the generated synthetic set when it is empty.

    Held out for evaluation: the synthetic validation sequences; for real data trained on
    ``train_half``, the ``val_half`` of the same sequences; nothing for ``all``.
    """
    if cfg.data.roots:
        train_dirs = [seq for root in cfg.data.roots for seq in find_sequences(root)]
        eval_dirs = train_dirs if cfg.data.split == "train_half" else []
        eval_split = "val_half"
    else:
        if runtime.is_main:
            generate_dataset(cfg.data.synthetic.root, cfg.data.synthetic)
        runtime.barrier()  # other ranks wait for rank 0's generation
        train_dirs, eval_dirs = generate_dataset(cfg.data.synthetic.root, cfg.data.synthetic)
        eval_split = "all"
    sequences = [MOTSequence(d, min_visibility=cfg.data.min_visibility) for d in train_dirs]
    identities = IdentityIndex(sequences, split=cfg.data.split)
    return TrainingData(cfg, sequences, identities, [Path(d) for d in eval_dirs], eval_split)


@dataclass
class ImageTrainingData:
    """Annotated images (CrowdHuman or COCO) for pretraining; nothing is held out to track.

    Re-ID: ``unsupervised`` trains on positive / negative image pairs (``data.neg_ratio``),
    ``cycas`` on pairs, ``supervised`` (FairMOT's pretraining) on single images with one
    pseudo-identity per annotated box (``num_ids`` = the number of boxes).
    """

    cfg: Config
    image_sets: list[ImageSet]
    options: dict[str, Any]  # how the sets were read (images folder, category, scene pattern)

    @property
    def records(self) -> list[ImageRecord]:
        return [r for s in self.image_sets for r in s.records]

    @property
    def num_ids(self) -> int:
        return sum(s.num_boxes for s in self.image_sets)

    def mode(self, baseline: Any) -> str:
        """``"pair"`` when a plugin trains on pairs, else ``"single"``; a baseline asking for
        other items (CenterTrack's previous frame) is an error."""
        options = getattr(baseline, "dataset_options", None)
        mode = options()["mode"] if options is not None else (
            "pair" if baseline.needs_pairs else "single")
        if mode not in ("single", "pair"):
            raise ConfigError(f"model.arch={self.cfg.model.arch!r} trains on {mode!r} items, "
                              "which image pretraining does not make (single images or pairs)")
        return mode

    def make_dataset(self, baseline: Any, plugins: list[Any]) -> ImageTrainDataset:
        return ImageTrainDataset(self.records, self.cfg.data, mode=self.mode(baseline),
                                 target_builders=[p.build_targets for p in plugins],
                                 seed=self.cfg.train.seed, down_ratio=self.cfg.model.down_ratio)

    def collate_fn(self, baseline: Any) -> Callable:
        return collate_pairs if self.mode(baseline) == "pair" else collate_frames

    def description(self) -> str:
        records = self.records
        scenes = len({r.scene for r in records})
        ignore = sum(s.num_ignore for s in self.image_sets)
        reid = {"supervised": f"; {self.num_ids} pseudo-identities, one per box",
                "unsupervised": f"; neg_ratio {self.cfg.data.neg_ratio}",
                "cycas": f"; neg_ratio {self.cfg.data.neg_ratio}"}.get(self.cfg.reid.mode, "")
        return (f"{len(records)} images of {scenes} scenes ({self.num_ids} boxes, {ignore} ignore "
                f"regions{reid})")

    def meta(self) -> dict[str, Any]:
        return {"num_ids": self.num_ids, "pretraining": {
            "format": self.cfg.data.format, "sources": [str(s.source) for s in self.image_sets],
            "images": len(self.records), "boxes": self.num_ids,
            "missing_images": sum(len(s.missing) for s in self.image_sets), **self.options}}


def build_image_training_data(cfg: Config, images_dir: str | Path | None = None, *,
                              category: str | int = "person",
                              scene_pattern: str | None = DEFAULT_SCENE_PATTERN
                              ) -> ImageTrainingData:
    """Read every path of ``data.roots`` with the reader of ``data.format`` (``crowdhuman`` or
    ``coco``); see ``utrack.data.images.read_image_sets``."""
    if not cfg.data.roots:
        raise ConfigError("image pretraining needs annotations: --data (a CrowdHuman folder or "
                          ".odgt file, or a COCO .json with data.format=coco)")
    sets = read_image_sets(cfg.data.roots, cfg.data.format, images_dir=images_dir,
                           category=category, scene_pattern=scene_pattern)
    options = {"images_dir": None if images_dir is None else str(images_dir),
               "category": category, "scene_pattern": scene_pattern}
    return ImageTrainingData(cfg, sets, options)


def initialise_weights(model: nn.Module, path: str, verbose: bool = True) -> LoadReport:
    """Fine-tuning start: load every tensor whose name and shape match; report the rest."""
    report = load_matching_weights(model, extract_state_dict(load_checkpoint(path)))
    if verbose:
        print(f"--init {path}: loaded {len(report.loaded)} tensors; "
              f"skipped {len(report.skipped_shape)} with other shapes "
              f"{[name for name, *_ in report.skipped_shape][:8]}; "
              f"{len(report.missing)} missing from the checkpoint "
              f"{report.missing[:8]}; {len(report.unexpected)} unused")
    return report


def prepare_trainer(cfg: Config, runtime: Runtime, data: TrainingSource, baseline: Any,
                    plugins: list[Any], resume: str | None = None) -> Trainer:
    """The model (initialised from ``train.init`` when set), the baseline's loss, the dataset of
    ``data`` and a ``Trainer`` (resumed from ``resume`` when given); prints the start line."""
    model = baseline.build_model()
    if cfg.train.init:
        initialise_weights(model, cfg.train.init, verbose=runtime.is_main)
    criterion = baseline.build_criterion(data.num_ids)
    step = TrainStep(model, criterion, baseline.forward_train)
    dataset = data.make_dataset(baseline, plugins)
    meta = {"arch": cfg.model.arch, "precision": runtime.precision, **data.meta()}
    trainer = Trainer(step, dataset, data.collate_fn(baseline), cfg, runtime, cfg.train.out, meta)
    if resume:
        trainer.resume(resume)
    if runtime.is_main:
        print(f"training {cfg.model.arch} ({cfg.model.backbone}, reid={cfg.reid.mode}, "
              f"occlusion={cfg.occlusion.enabled}) on {len(dataset)} samples from "
              f"{data.description()}, device {runtime.device} ({runtime.precision}), "
              f"{runtime.world_size} process(es); "
              f"out: {cfg.train.out}")
    return trainer


def track_sequences(baseline: Any, model: nn.Module, seq_dirs: list[Path], split: str,
                    out_dir: str | Path, device: torch.device, progress: bool = True) -> list[Any]:
    """Track each sequence (its frames in ``split``) and write MOTChallenge results files."""
    model.eval()
    runs = []
    for seq_dir in seq_dirs:
        info = read_seqinfo(seq_dir)
        frames = SequenceFrames(seq_dir, baseline.cfg.data.input_size, split=split)
        tracker = baseline.make_tracker(info.frame_rate)

        def detect(_frame_id: int, net_input: torch.Tensor, letterbox: Any) -> Any:
            return baseline.detect(model, tracker, net_input.unsqueeze(0).to(device), letterbox)

        centers: dict[int, Any] = {}
        strides: dict[int, float] = {}

        def keep_centers(frame_id: int, _image: Any, _results: Any, dets: Any) -> None:
            if CENTERS in dets.extras:
                centers[frame_id] = dets.extras[CENTERS]
                strides[frame_id] = dets.extras[STRIDE]

        run = run_tracker(info.name, frames, detect, tracker,
                          min_box_area=baseline.cfg.tracker.min_box_area,
                          max_aspect=baseline.cfg.tracker.max_aspect, device=device,
                          on_frame=keep_centers, progress=progress)
        if centers:
            run.extra.update(occlusion_centers=centers, occlusion_stride=strides)
        write_run(run, out_dir)
        runs.append(run)
    return runs


def evaluate_after_training(baseline: Any, model: nn.Module, data: TrainingData, cfg: Config,
                            device: torch.device) -> dict | None:
    """Track the held-out sequences, evaluate them, print and save the metrics."""
    if not data.eval_dirs:
        print("no held-out sequences (use data.split=train_half to evaluate on the second "
              "half of each sequence)")
        return None
    out_dir = Path(cfg.train.out) / "results"
    save_config(cfg, out_dir)
    runs = track_sequences(baseline, model, data.eval_dirs, data.eval_split, out_dir, device)
    for run in runs:
        print(run.timing_line())
    metrics = evaluate_folder(data.eval_dirs, out_dir, split=data.eval_split)
    print(format_table(metrics))
    occlusion = occlusion_center_report(runs, data.eval_dirs, cfg)
    if occlusion is not None:
        metrics["occlusion_centers"] = occlusion
        print(f"occlusion centres within 1 output pixel: precision "
              f"{100 * occlusion['precision']:.1f}  recall {100 * occlusion['recall']:.1f} "
              f"({occlusion['tp']} of {occlusion['num_pred']} predicted, "
              f"{occlusion['num_true']} true)")
    if cfg.occlusion.enabled and cfg.occlusion.tau_w > 0:
        # the same model with the refinding step off: what refinding itself adds
        plain_dir = Path(cfg.train.out) / "results_without_refinding"
        with refinding_disabled(cfg):
            save_config(cfg, plain_dir)
            track_sequences(baseline, model, data.eval_dirs, data.eval_split, plain_dir, device)
        plain = evaluate_folder(data.eval_dirs, plain_dir, split=data.eval_split)
        print("without refinding (occlusion.tau_w=0), same model:")
        print(format_table(plain))
        metrics["without_refinding"] = plain
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


@contextmanager
def refinding_disabled(cfg: Config) -> Iterator[None]:
    """Within the block ``cfg.occlusion.tau_w`` is 0, so the occlusion plugin's tracker step
    refinds nothing (its heads and decode still run)."""
    tau_w = cfg.occlusion.tau_w
    cfg.occlusion.tau_w = 0
    try:
        yield
    finally:
        cfg.occlusion.tau_w = tau_w


def occlusion_center_report(runs: list[Any], seq_dirs: list[Path], cfg: Config) -> dict | None:
    """Precision/recall of the decoded occlusion centres against the ground-truth occlusions
    (pairs with overlap > tau) of the tracked frames, within one output pixel."""
    predicted, truth, tolerance = {}, {}, {}
    for index, (run, seq_dir) in enumerate(zip(runs, seq_dirs)):
        centers = run.extra.get("occlusion_centers")
        if not centers:
            continue
        seq = MOTSequence(seq_dir, min_visibility=cfg.data.min_visibility)
        for frame, value in centers.items():
            key = (index, frame)
            predicted[key] = value
            truth[key] = np.asarray(oracle_occlusion_centers(
                seq.annotations(frame)[0].astype(np.float64), cfg.occlusion.tau))
            tolerance[key] = run.extra["occlusion_stride"][frame]
    if not predicted:
        return None
    return center_precision_recall(predicted, truth, tolerance)
