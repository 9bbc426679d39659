"""Putting a training run together from a config: data (real or generated), weights, and the
tracking + evaluation of held-out sequences. Baselines and plugins are passed in, never imported
(utrack imports nothing from baselines/ or plugins/)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from utrack.config import Config, save_config
from utrack.data.collate import collate_frames, collate_pairs
from utrack.data.datasets import MOTTrainDataset, SequenceFrames
from utrack.data.mot import IdentityIndex, MOTSequence, find_sequences, read_seqinfo
from utrack.data.synthetic import generate_dataset
from utrack.engine.inference import run_tracker, write_run
from utrack.engine.runtime import Runtime
from utrack.eval.mot import evaluate_folder, format_table
from utrack.models.checkpoint import extract_state_dict, load_checkpoint, load_matching_weights


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
                               mode="pair" if baseline.needs_pairs else "single",
                               target_builders=[p.build_targets for p in plugins],
                               seed=self.cfg.train.seed)

    def collate_fn(self, baseline: Any) -> Callable:
        return collate_pairs if baseline.needs_pairs else collate_frames


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


def initialise_weights(model: nn.Module, path: str, verbose: bool = True) -> None:
    """Fine-tuning start: load every tensor whose name and shape match; report the rest."""
    report = load_matching_weights(model, extract_state_dict(load_checkpoint(path)))
    if verbose:
        print(f"--init {path}: loaded {len(report.loaded)} tensors; "
              f"skipped {len(report.skipped_shape)} with other shapes "
              f"{[name for name, *_ in report.skipped_shape][:8]}; "
              f"{len(report.missing)} missing from the checkpoint "
              f"{report.missing[:8]}; {len(report.unexpected)} unused")


def track_sequences(baseline: Any, model: nn.Module, seq_dirs: list[Path], split: str,
                    out_dir: str | Path, device: torch.device, progress: bool = True) -> list[Any]:
    """Track each sequence (its frames in ``split``) and write MOTChallenge results files."""
    model.eval()
    runs = []
    for seq_dir in seq_dirs:
        info = read_seqinfo(seq_dir)
        frames = SequenceFrames(seq_dir, baseline.cfg.data.input_size, split=split)
        tracker = baseline.make_tracker(info.frame_rate)

        def detect(net_input: torch.Tensor, letterbox: Any) -> Any:
            return baseline.detect(model, tracker, net_input.unsqueeze(0).to(device), letterbox)

        run = run_tracker(info.name, frames, detect, tracker,
                          min_box_area=baseline.cfg.tracker.min_box_area,
                          max_aspect=baseline.cfg.tracker.max_aspect, device=device,
                          progress=progress)
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
    return metrics
