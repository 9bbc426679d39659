"""Training data loader throughput against CPU training speed.

Loader: ``MOTTrainDataset`` on PETS09-S2L1 (real 768x576 jpgs) at input 1088x608 with the default
augmentation and CenterNet targets, through ``torch.utils.data.DataLoader`` with
``collate_frames``, batch size 4, for each worker count. Training: forward + backward + Adam step
of the FairMOT model (heads hm 1, wh 4, reg 2, id 128) at 1088x608, batch 1, on CPU, with the sum
of the outputs' means as the loss. The ratio loader images/s / training images/s must be >= 2 so
that the loader never starves training.

    UTRACK_SHARED=../shared python benchmarks/bench_loader.py [--batches 25] [--steps 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from utrack.config import DataConfig
from utrack.data.collate import collate_frames
from utrack.data.datasets import MOTTrainDataset

FAIRMOT_HEADS = {"hm": 1, "wh": 4, "reg": 2, "id": 128}
INPUT = [1088, 608]
BATCH = 4


def default_data() -> Path:
    shared = Path(os.environ.get("UTRACK_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    return shared / "data" / "PETS09-S2L1-train" / "PETS09-S2L1"


def loader_images_per_second(dataset: MOTTrainDataset, workers: int, batches: int) -> float:
    """Images/s over ``batches`` batches after the first (worker start-up is not counted)."""
    generator = torch.Generator().manual_seed(0)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers,
                        collate_fn=collate_frames, generator=generator)
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(it)
        assert batch["image"].shape == (BATCH, 3, INPUT[1], INPUT[0])
    return batches * BATCH / (time.perf_counter() - start)


def train_images_per_second(backbone: str, steps: int) -> float:
    """1 / median seconds per training step (batch 1) after one warm-up step."""
    from utrack.models import build_model

    torch.manual_seed(0)
    model = build_model(backbone, FAIRMOT_HEADS).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    image = torch.rand(1, 3, INPUT[1], INPUT[0])
    times = []
    for step in range(steps + 1):
        start = time.perf_counter()
        outputs = model(image)
        loss = sum(v.float().mean() for v in outputs.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step:
            times.append(time.perf_counter() - start)
    return 1.0 / statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data(), help="a MOT sequence folder")
    parser.add_argument("--batches", type=int, default=25, help="timed batches per worker count")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per backbone")
    parser.add_argument("--backbones", nargs="+", default=["dla34", "mobilenet_v2"])
    args = parser.parse_args(argv)

    cfg = DataConfig(input_size=INPUT, split="all")
    dataset = MOTTrainDataset([args.data], cfg, seed=0)
    print(f"data: {args.data} ({len(dataset)} frames), input {INPUT[0]}x{INPUT[1]}, batch {BATCH}, "
          f"augmentation on, torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}")
    loader = {}
    for workers in args.workers:
        loader[workers] = loader_images_per_second(dataset, workers, args.batches)
        print(f"loader  num_workers={workers}: {loader[workers]:7.2f} images/s")

    try:
        from utrack.models import build_model  # noqa: F401
    except ImportError:
        print("utrack.models.build_model is not available yet: training speed not measured")
        return
    for backbone in args.backbones:
        train = train_images_per_second(backbone, args.steps)
        print(f"train   {backbone:>12}: {train:7.3f} images/s (forward + backward + Adam, batch 1)")
        for workers, speed in loader.items():
            ratio = speed / train
            verdict = "ok" if ratio >= 2 else "LOADER TOO SLOW"
            print(f"ratio   {backbone:>12}, num_workers={workers}: loader / train = {ratio:6.1f} "
                  f"({verdict}, need >= 2)")


if __name__ == "__main__":
    main()
