"""Re-ID cost against the number of identities: FairMOT's supervised classifier vs UTrack's
unsupervised matching loss (paper Sec. 4.3.3: pretraining on CrowdHuman, one pseudo-identity per
box, ~339k boxes).

For each identity count (default 1k, 10k, 100k, 339k):

- re-ID parameters: FairMOT's ``ClassifierReIDLoss`` is ``Linear(128 -> nID)`` with bias, i.e.
  ``129 * nID`` parameters; the unsupervised loss has none;
- training memory they add: weights + gradients + Adam's two moment buffers (4 bytes each), the
  Adam part measured from the optimizer state after a real step;
- training step time (forward, backward, Adam step) of the same small FairMOT (ResNet-18,
  320x192, 4 images per step: 4 single frames for the classifier, 2 frame pairs, one of them
  negative, for the matching loss), the two run side by side in this process with interleaved
  repetitions (median); wall time and this thread's CPU time (the ratio uses CPU time, which
  other jobs on a shared machine disturb less).

Then the paper's ratio: it quotes 54.0M classifier parameters against 19.4M for the rest of the
DLA-34 FairMOT. We count our DLA-34 FairMOT (``build_model("dla34", {hm 1, wh 4, reg 2, id 128})``)
and derive the identity count that gives a 54.0M classifier, and print both ratios.

Writes a PNG (parameters, memory, step time against the identity count) and a JSON of the
numbers. One thread by default (the machine this was written on has 2 shared cores).

Run: ``python benchmarks/bench_reid_scalability.py [--ids 1000 10000 100000 339000] [--reps 5]
[--out runs/bench/reid_scalability]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from baselines import build_baseline
from plugins import build_plugins
from utrack.config import Config, load_config
from utrack.data.collate import collate_frames, collate_pairs
from utrack.data.targets import encode_centernet_targets
from utrack.engine.trainer import TrainStep
from utrack.losses import ClassifierReIDLoss
from utrack.models.centernet import build_model

EMB_DIM = 128
PAPER_CLASSIFIER, PAPER_REST = 54.0e6, 19.4e6  # paper Sec. 4.3.3
PAPER_BOXES = 339_000  # "about 339K boxes in CrowdHuman"
MB = 2 ** 20


def classifier_memory(num_ids: int) -> dict[str, int]:
    """Parameters and training bytes FairMOT's classifier adds for ``num_ids`` identities; the
    Adam bytes are read from the optimizer's state after one step."""
    loss = ClassifierReIDLoss(num_ids, EMB_DIM)
    params = sum(p.numel() for p in loss.parameters())
    optimizer = torch.optim.Adam(loss.parameters(), lr=1e-4)
    emb = torch.randn(1, EMB_DIM, 2, 2, requires_grad=True)
    loss(emb, torch.tensor([[0, 3]]), torch.tensor([[True, True]]),
         torch.tensor([[0, num_ids - 1]])).backward()
    grad_bytes = sum(p.grad.numel() * p.grad.element_size() for p in loss.parameters())
    optimizer.step()
    adam_bytes = sum(t.numel() * t.element_size() for state in optimizer.state.values()
                     for t in state.values() if isinstance(t, torch.Tensor) and t.dim() > 0)
    weight_bytes = sum(p.numel() * p.element_size() for p in loss.parameters())
    return {"params": params, "weight_bytes": weight_bytes, "grad_bytes": grad_bytes,
            "adam_bytes": adam_bytes, "train_bytes": weight_bytes + grad_bytes + adam_bytes}


def bench_config(reid: str) -> Config:
    return load_config([Path(__file__).resolve().parents[1] / "configs" / "fairmot.yaml"],
                       ["model.backbone=resnet18", "data.input_size=[320, 192]",
                        f"reid.mode={reid}", "loss.uncertainty=true"])


def make_batch(num_ids: int, pairs: bool, seed: int = 0, objects: int = 20) -> dict[str, Any]:
    """4 images of 320x192 with ``objects`` random boxes each (as 4 frames, or 2 pairs)."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(4):
        xy = rng.uniform([0, 0], [280, 120], size=(objects, 2))
        wh = rng.uniform([10, 30], [40, 72], size=(objects, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
        sample = {"image": torch.rand(3, 192, 320), "boxes": torch.from_numpy(boxes)}
        sample.update(encode_centernet_targets(boxes, rng.integers(0, num_ids, objects), 320, 192))
        samples.append(sample)
    if not pairs:
        return collate_frames(samples)
    return collate_pairs([(samples[0], samples[2], False), (samples[1], samples[3], True)])


def make_step(reid: str, num_ids: int) -> tuple[TrainStep, torch.optim.Optimizer, dict]:
    cfg = bench_config(reid)
    plugins = build_plugins(cfg)
    baseline = build_baseline(cfg, plugins)
    torch.manual_seed(0)
    step = TrainStep(baseline.build_model(), baseline.build_criterion(num_ids), baseline.forward_train)
    optimizer = torch.optim.Adam(step.parameters(), lr=1e-4)
    return step, optimizer, make_batch(num_ids, pairs=baseline.needs_pairs)


def timed_step(step: TrainStep, optimizer: torch.optim.Optimizer, batch: dict
               ) -> tuple[float, float]:
    """Wall and this thread's CPU seconds of one forward + backward + Adam step. With one
    thread the CPU time covers the whole step and leaves out waiting for a busy core."""
    wall, cpu = time.perf_counter(), time.thread_time()
    loss, _ = step(batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - wall, time.thread_time() - cpu


def paper_ratio() -> dict[str, float]:
    """Our DLA-34 FairMOT against the paper's 19.4M, and the classifier sizes behind 54.0M."""
    dla = build_model("dla34", {"hm": 1, "wh": 4, "reg": 2, "id": EMB_DIM})
    ours = sum(p.numel() for p in dla.parameters())
    ids_54 = PAPER_CLASSIFIER / (EMB_DIM + 1)
    return {"dla34_fairmot_params": ours, "ids_for_54M_with_bias": ids_54,
            "ids_for_54M_without_bias": PAPER_CLASSIFIER / EMB_DIM,
            "classifier_at_339k": (EMB_DIM + 1) * PAPER_BOXES,
            "paper_ratio": PAPER_CLASSIFIER / PAPER_REST,
            "our_ratio_54M": PAPER_CLASSIFIER / ours,
            "our_ratio_339k": (EMB_DIM + 1) * PAPER_BOXES / ours}


def plot(rows: list[dict], base_params: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ids = [r["num_ids"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = [("re-ID parameters (M)", [r["params"] / 1e6 for r in rows], [0.0] * len(rows)),
              ("re-ID training memory (MiB): weights + grads + Adam",
               [r["train_bytes"] / MB for r in rows], [0.0] * len(rows)),
              ("step CPU s (fwd+bwd+Adam), ResNet-18 320x192, 4 images",
               [r["sup_cpu_s"] for r in rows], [r["unsup_cpu_s"] for r in rows])]
    for ax, (title, sup, unsup) in zip(axes, panels):
        ax.plot(ids, sup, "o-", label="FairMOT classifier (supervised)")
        ax.plot(ids, unsup, "s-", label="UTrack matching loss (unsupervised)")
        ax.set_xscale("log")
        ax.set_xlabel("identities (pseudo-identities = boxes)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
    axes[0].axhline(base_params / 1e6, color="grey", ls="--",
                    label="rest of the network (ResNet-18 FairMOT)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, nargs="+", default=[1_000, 10_000, 100_000, PAPER_BOXES])
    parser.add_argument("--reps", type=int, default=5, help="timed steps per side and count")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/reid_scalability"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    unsup, unsup_opt, unsup_batch = make_step("unsupervised", 1)
    assert sum(p.numel() for p in unsup.criterion.parameters()) == 2  # s_det, s_id only
    base_params = sum(p.numel() for p in unsup.model.parameters())
    rows = []
    print(f"ResNet-18 FairMOT at 320x192: {base_params / 1e6:.2f}M parameters; "
          f"{args.reps} interleaved steps per side, median; {args.threads} thread(s)")
    header = (f"{'identities':>10} {'classifier':>11} {'unsup':>6} {'+memory':>10} "
              f"{'of it Adam':>10} {'sup wall':>9} {'unsup wall':>10} {'sup cpu':>8} "
              f"{'unsup cpu':>9} {'sup/unsup':>9}")
    print(header)
    for num_ids in args.ids:
        mem = classifier_memory(num_ids)
        assert mem["params"] == (EMB_DIM + 1) * num_ids
        sup, sup_opt, sup_batch = make_step("supervised", num_ids)
        for _ in range(2):  # warm-up: allocator, Adam state
            timed_step(sup, sup_opt, sup_batch)
            timed_step(unsup, unsup_opt, unsup_batch)
        times: dict[str, list[tuple[float, float]]] = {"sup": [], "unsup": []}
        for rep in range(args.reps):
            order = [("sup", sup, sup_opt, sup_batch), ("unsup", unsup, unsup_opt, unsup_batch)]
            for name, step, opt, batch in (order if rep % 2 == 0 else order[::-1]):
                times[name].append(timed_step(step, opt, batch))
        row = {"num_ids": num_ids, **mem, "unsup_params": 0}
        for name in ("sup", "unsup"):
            row[f"{name}_step_s"] = statistics.median(t[0] for t in times[name])
            row[f"{name}_cpu_s"] = statistics.median(t[1] for t in times[name])
        rows.append(row)
        print(f"{num_ids:>10,} {mem['params'] / 1e6:>10.2f}M {0:>6} "
              f"{mem['train_bytes'] / MB:>7.0f}MiB {mem['adam_bytes'] / MB:>7.0f}MiB "
              f"{row['sup_step_s']:>8.3f}s {row['unsup_step_s']:>9.3f}s "
              f"{row['sup_cpu_s']:>7.3f}s {row['unsup_cpu_s']:>8.3f}s "
              f"{row['sup_cpu_s'] / row['unsup_cpu_s']:>8.2f}x")
        del sup, sup_opt

    ratio = paper_ratio()
    print()
    print(f"paper: classifier {PAPER_CLASSIFIER / 1e6:.1f}M vs rest {PAPER_REST / 1e6:.1f}M "
          f"-> ratio {ratio['paper_ratio']:.2f}")
    print(f"ours: DLA-34 FairMOT (hm 1, wh 4, reg 2, id 128) = "
          f"{ratio['dla34_fairmot_params'] / 1e6:.2f}M parameters")
    print(f"a 54.0M Linear(128 -> nID) needs nID = {ratio['ids_for_54M_with_bias']:,.0f} with bias "
          f"({ratio['ids_for_54M_without_bias']:,.0f} without), "
          f"{ratio['ids_for_54M_with_bias'] / PAPER_BOXES:.2f}x the {PAPER_BOXES:,} boxes the "
          f"paper mentions; at {PAPER_BOXES:,} the classifier has "
          f"{ratio['classifier_at_339k'] / 1e6:.1f}M")
    print(f"ratio classifier / our DLA-34 FairMOT: {ratio['our_ratio_54M']:.2f} at 54.0M, "
          f"{ratio['our_ratio_339k']:.2f} at {PAPER_BOXES:,} identities")

    args.out.mkdir(parents=True, exist_ok=True)
    plot(rows, base_params, args.out / "reid_scalability.png")
    (args.out / "reid_scalability.json").write_text(json.dumps(
        {"rows": rows, "paper": ratio, "base_params": base_params, "threads": args.threads,
         "reps": args.reps}, indent=1))
    print(f"wrote {args.out / 'reid_scalability.png'} and {args.out / 'reid_scalability.json'}")


if __name__ == "__main__":
    main()
