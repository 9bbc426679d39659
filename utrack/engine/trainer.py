"""The training loop shared by tools/train.py and tools/pretrain_crowdhuman.py.

Plain loop, one concern: epochs of (forward, loss, backward, step) over a DataLoader, with
mixed precision on CUDA, DistributedDataParallel under ``torchrun``, tqdm progress, tensorboard
scalars for every loss term, and an atomic checkpoint after every epoch holding everything a
resumed run needs to continue exactly (model, loss-owned parameters, optimizer, scheduler,
grad scaler, epoch, step, config, RNG states).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from utrack import __version__
from utrack.config import Config, config_to_dict, save_config
from utrack.engine.runtime import Runtime, reduce_mean, rng_state, set_rng_state
from utrack.errors import CheckpointError
from utrack.models.checkpoint import load_checkpoint, save_checkpoint

CHECKPOINT_FORMAT = "utrack-checkpoint-1"


def images_per_item(dataset: Any) -> int:
    """Images an item puts through the network: ``dataset.frames_per_item`` (both training
    datasets have it; 1 for any other dataset)."""
    return int(getattr(dataset, "frames_per_item", 1))


class TrainStep(nn.Module):
    """Model and loss in one module, so that DDP synchronises the loss-owned parameters
    (FairMOT's identity classifier, the uncertainty weights, plugin parameters) too.

    ``forward_fn(model, batch) -> outputs`` is the baseline's training forward (CenterTrack
    passes the previous frame); ``criterion(outputs, batch) -> (loss, terms)``.
    """

    def __init__(self, model: nn.Module, criterion: nn.Module,
                 forward_fn: Callable[[nn.Module, dict], dict]) -> None:
        super().__init__()
        self.model = model
        self.criterion = criterion
        self._forward_fn = forward_fn

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        outputs = self._forward_fn(self.model, batch)
        return self.criterion(outputs, batch)


def move_to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Tensors (also inside dicts, lists and tuples) to ``device``; everything else unchanged.
    With ``channels_last``, 4-D tensors get the NHWC memory format."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, dict):
        return {k: move_to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return type(batch)(move_to_device(v, device, channels_last) for v in batch)
    return batch


@dataclass
class TrainState:
    epoch: int = 0  # completed epochs
    global_step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)  # per-epoch mean terms


class Trainer:
    """Runs epochs and writes ``checkpoint_last.pth`` in ``out_dir`` after each of them."""

    def __init__(self, step: TrainStep, dataset: Any, collate_fn: Callable, cfg: Config,
                 runtime: Runtime, out_dir: str | Path, meta: dict[str, Any] | None = None) -> None:
        self.cfg = cfg
        self.runtime = runtime
        self.out_dir = Path(out_dir)
        self.meta = dict(meta or {})
        self.dataset = dataset
        self.step_module = step.to(runtime.device)
        if cfg.train.channels_last:
            self.step_module.to(memory_format=torch.channels_last)
        params = [p for p in self.step_module.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=list(cfg.train.lr_step), gamma=cfg.train.lr_gamma)
        self.scaler = torch.amp.GradScaler("cuda", enabled=runtime.amp)
        self.sampler = DistributedSampler(dataset, num_replicas=runtime.world_size,
                                          rank=runtime.rank, shuffle=True, seed=cfg.train.seed,
                                          drop_last=False)
        # train.batch_size counts images: runs on frame pairs (or items of k frames) and on
        # single frames make the same number of steps over the same number of images when an
        # epoch of pairs has half as many items (data.pair_epoch_fraction 0.5; k-frame items
        # use 2 / k of it)
        per_rank_batch = max(1, cfg.train.batch_size
                             // (runtime.world_size * images_per_item(dataset)))
        self.loader = DataLoader(dataset, batch_size=per_rank_batch, sampler=self.sampler,
                                 num_workers=cfg.data.num_workers, collate_fn=collate_fn,
                                 pin_memory=runtime.device.type == "cuda", drop_last=False)
        self.ddp: nn.Module = self.step_module
        if runtime.distributed:
            self.ddp = DistributedDataParallel(
                self.step_module,
                device_ids=[runtime.device.index] if runtime.device.type == "cuda" else None,
                find_unused_parameters=True)
        self.state = TrainState()
        self._epoch_samples = 0
        self.writer = None
        if runtime.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.out_dir / "config.yaml")
            self.writer = SummaryWriter(str(self.out_dir / "tensorboard"))

    # ------------------------------------------------------------------------------------------
    @property
    def model(self) -> nn.Module:
        return self.step_module.model

    @property
    def criterion(self) -> nn.Module:
        return self.step_module.criterion

    def checkpoint_payload(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "utrack_version": __version__,
            "model": self.model.state_dict(),
            "loss": self.criterion.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.state.epoch,
            "global_step": self.state.global_step,
            "history": self.state.history,
            "config": config_to_dict(self.cfg),
            "rng": rng_state(),
            "meta": self.meta,
        }

    def save(self) -> Path | None:
        """Rank 0 writes the checkpoint atomically; other ranks write nothing."""
        if not self.runtime.is_main:
            return None
        last = save_checkpoint(self.checkpoint_payload(), self.out_dir / "checkpoint_last.pth")
        return last

    def resume(self, path: str | Path) -> None:
        """Restore everything from a checkpoint written by ``save``."""
        ckpt = load_checkpoint(path)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path}: not a utrack training checkpoint (use --init to start "
                                  "from published or pretrained weights)")
        try:
            self.model.load_state_dict(ckpt["model"])
            self.criterion.load_state_dict(ckpt["loss"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            self.scaler.load_state_dict(ckpt["scaler"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{path}: does not fit this model/config: {exc}") from exc
        self.state = TrainState(epoch=int(ckpt["epoch"]), global_step=int(ckpt["global_step"]),
                                history=list(ckpt.get("history", [])))
        set_rng_state(ckpt["rng"])

    # ------------------------------------------------------------------------------------------
    def fit(self) -> TrainState:
        cfg = self.cfg.train
        for epoch in range(self.state.epoch, cfg.epochs):
            means = self.train_one_epoch(epoch)
            self.scheduler.step()
            self.state.epoch = epoch + 1
            self.state.history.append(means)
            samples = self.samples_per_rank()
            if self.runtime.is_main:
                summary = "  ".join(f"{k} {v:.4f}" for k, v in means.items())
                tqdm.write(f"epoch {epoch + 1}/{cfg.epochs}: {summary}")
                if self.runtime.distributed:
                    tqdm.write(f"epoch {epoch + 1}: samples per rank {samples}")
            path = self.save()
            if path is not None:
                tqdm.write(f"rank {self.runtime.rank} wrote {path}")
            self.runtime.barrier()
        if self.writer is not None:
            self.writer.flush()
        return self.state

    def samples_per_rank(self) -> list[int]:
        """How many samples each rank trained on in the last epoch (shows every rank works)."""
        count = torch.tensor([self._epoch_samples], device=self.runtime.device)
        if not self.runtime.distributed:
            return [int(count)]
        gathered = [torch.zeros_like(count) for _ in range(self.runtime.world_size)]
        torch.distributed.all_gather(gathered, count)
        return [int(c) for c in gathered]

    def train_one_epoch(self, epoch: int) -> dict[str, float]:
        cfg = self.cfg.train
        self.sampler.set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        self.ddp.train()
        sums: dict[str, float] = {}
        count = 0
        bad_steps = 0
        self._epoch_samples = 0
        bar = tqdm(self.loader, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not self.runtime.is_main, dynamic_ncols=True, leave=False)
        for batch in bar:
            batch = move_to_device(batch, self.runtime.device, cfg.channels_last)
            with self.runtime.autocast():
                loss, terms = self.ddp(batch)
            if not torch.isfinite(loss):
                bad_steps += 1
                warnings.warn(f"non-finite loss at step {self.state.global_step}: "
                              + ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items()))
                if bad_steps >= 10:
                    raise FloatingPointError("10 consecutive non-finite losses; stopping")
                self.optimizer.zero_grad(set_to_none=True)
                continue
            bad_steps = 0
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.step_module.parameters(), cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.state.global_step += 1
            self._epoch_samples += int(batch["image"].shape[0])
            logged = {"total": loss.detach(), **{k: v.detach() for k, v in terms.items()}}
            logged = {k: float(reduce_mean(torch.as_tensor(v, device=self.runtime.device),
                                           self.runtime)) for k, v in logged.items()}
            for key, value in logged.items():
                sums[key] = sums.get(key, 0.0) + value
            count += 1
            if self.runtime.is_main:
                bar.set_postfix(loss=f"{logged['total']:.3f}")
                if self.writer is not None and self.state.global_step % max(1, cfg.log_every) == 0:
                    for key, value in logged.items():
                        self.writer.add_scalar(f"loss/{key}", value, self.state.global_step)
                    self.writer.add_scalar("lr", self.optimizer.param_groups[0]["lr"],
                                           self.state.global_step)
                    for name, param in self.criterion.named_parameters():
                        if param.numel() == 1:
                            self.writer.add_scalar(f"weights/{name}", float(param.detach()),
                                                   self.state.global_step)
        return {k: v / max(count, 1) for k, v in sums.items()} if count else {"total": math.nan}
