"""Forward + backward time and peak memory: vectorised matching/CycAs losses vs per-pair loops.

The naive versions below loop over the pairs of the batch and slice each pair's objects out of
the padded (B, K, D) tensors with its masks, the way a per-pair implementation (such as the
official UTrack release) consumes a FairMOT-style batch. Both run side by side in one process:
repetitions are interleaved (naive, vectorised, naive, ...; the order alternates) and medians
reported, so load from other processes on the machine hits both alike. Each row checks first
that the two implementations give the same loss.

Peak memory: CPU has no allocator statistics like ``torch.cuda.max_memory_allocated``, so one
extra forward + backward runs under ``torch.profiler`` with ``profile_memory=True``, which
records every CPU allocation and free (with its size) made by PyTorch's allocator; the peak is
the maximum of their running sum, i.e. the most memory held at once by tensors created inside
the step (activations, the autograd graph, gradients), beyond the inputs that existed before.

Threads: one by default. The machine this was written on has 2 cores shared with other jobs;
there, two OpenMP threads per process spin against the other jobs and every time (both sides)
becomes several times slower and erratic. Per-thread CPU time is printed next to wall time: it
leaves out the time spent waiting for a core (with one thread it covers all of the step).

Run: ``python benchmarks/bench_matching_loss.py [--reps 25] [--threads N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from utrack.losses.cycas import cycas_loss
from utrack.losses.matching import matching_loss

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def naive_matching(emb_a: torch.Tensor, emb_b: torch.Tensor, mask_a: torch.Tensor,
                   mask_b: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    """Per-pair loop: UTrack loss, mean placeholder, adaptive T, all terms, positives only."""
    losses = []
    for b in range(emb_a.shape[0]):
        fa, fb = emb_a[b, mask_a[b]], emb_b[b, mask_b[b]]
        n, m = fa.shape[0], fb.shape[0]
        if n == 0 or m == 0:
            continue
        k = n + m
        f = F.normalize(torch.cat([fa, fb]), dim=1)
        sim = f @ f.t()
        diag = torch.eye(k, dtype=torch.bool)
        p = sim.detach()[~diag].mean()
        s_prime = torch.cat([sim.masked_fill(diag, float("-inf")), p.expand(k, 1)], 1)
        mat = torch.softmax(2 * math.log(k + 2) * s_prime, dim=1)
        intra = mat[:n, :n].sum() + mat[n:k, n:k].sum()
        top2 = mat.topk(2, dim=1).values
        inter = torch.relu(top2[:, 1] + margin - top2[:, 0]).sum()
        cycle = (mat[n:k, :n] - mat[:n, n:k].t()).abs().sum()
        losses.append((intra + inter + cycle) / k)
    return torch.stack(losses).mean()


def naive_cycas(emb_a: torch.Tensor, emb_b: torch.Tensor, mask_a: torch.Tensor,
                mask_b: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    """Per-pair loop: CycAs loss, the smaller frame first."""
    losses = []
    for b in range(emb_a.shape[0]):
        fa, fb = emb_a[b, mask_a[b]], emb_b[b, mask_b[b]]
        if fa.shape[0] == 0 or fb.shape[0] == 0:
            continue
        if fa.shape[0] > fb.shape[0]:
            fa, fb = fb, fa
        n, m = fa.shape[0], fb.shape[0]
        sim = F.normalize(fa, dim=1) @ F.normalize(fb, dim=1).t()
        a12 = torch.softmax(2 * math.log(m + 1) * sim, dim=1)
        a21 = torch.softmax(2 * math.log(n + 1) * sim.t(), dim=1)
        cyc = a12 @ a21
        diag = cyc.diagonal()
        off = cyc.masked_fill(torch.eye(n, dtype=torch.bool), 0.0)
        row = torch.relu(off.amax(1) - diag + margin).sum()
        col = torch.relu(off.amax(0) - diag + margin).sum()
        losses.append((row + col) / n)
    return torch.stack(losses).mean()


def vectorised_matching(emb_a: torch.Tensor, emb_b: torch.Tensor, mask_a: torch.Tensor,
                        mask_b: torch.Tensor) -> torch.Tensor:
    return matching_loss(emb_a, emb_b, mask_a, mask_b)[0]


def vectorised_cycas(emb_a: torch.Tensor, emb_b: torch.Tensor, mask_a: torch.Tensor,
                     mask_b: torch.Tensor) -> torch.Tensor:
    return cycas_loss(emb_a, emb_b, mask_a, mask_b)[0]


def make_batch(batch: int, sizes_a: list[int], sizes_b: list[int], dim: int, seed: int) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    k1, k2 = max(sizes_a), max(sizes_b)
    emb_a = torch.randn(batch, k1, dim, generator=gen).requires_grad_(True)
    emb_b = torch.randn(batch, k2, dim, generator=gen).requires_grad_(True)
    mask_a = torch.arange(k1)[None, :] < torch.tensor(sizes_a)[:, None]
    mask_b = torch.arange(k2)[None, :] < torch.tensor(sizes_b)[:, None]
    return emb_a, emb_b, mask_a, mask_b


def step(fn: Callable[..., torch.Tensor], batch: Batch) -> tuple[float, float]:
    """One forward + backward; returns (wall seconds, CPU seconds of this thread)."""
    emb_a, emb_b = batch[0], batch[1]
    emb_a.grad = emb_b.grad = None
    wall, cpu = time.perf_counter(), time.thread_time()
    fn(*batch).backward()
    return time.perf_counter() - wall, time.thread_time() - cpu


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence the profiler's C++ start/stop chatter on file descriptor 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def peak_memory(fn: Callable[..., torch.Tensor], batch: Batch) -> int:
    """Peak bytes held at once by tensors allocated during one forward + backward."""
    batch[0].grad = batch[1].grad = None
    with quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(*batch).backward()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trace.json")
        with quiet_stderr():
            prof.export_chrome_trace(path)
        with open(path) as handle:
            events = json.load(handle)["traceEvents"]
    memory = sorted((e for e in events if e.get("name") == "[memory]"),
                    key=lambda e: (e["ts"], e["args"].get("Ev Idx", 0)))
    live = peak = 0
    for event in memory:
        live += int(event["args"]["Bytes"])
        peak = max(peak, live)
    return peak


def compare(naive: Callable[..., torch.Tensor], fast: Callable[..., torch.Tensor], batch: Batch,
            reps: int, warmup: int = 3) -> dict[str, float]:
    with torch.no_grad():
        ref, got = naive(*batch).item(), fast(*batch).item()
    if not math.isclose(ref, got, rel_tol=1e-4, abs_tol=1e-5):
        raise AssertionError(f"naive {ref} and vectorised {got} disagree")
    for _ in range(warmup):
        step(naive, batch)
        step(fast, batch)
    runs: dict[str, list[tuple[float, float]]] = {"naive": [], "fast": []}
    for r in range(reps):
        order = [("naive", naive), ("fast", fast)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            runs[name].append(step(fn, batch))
    out = {}
    for name, times in runs.items():
        out[f"{name}_ms"] = 1e3 * statistics.median(t[0] for t in times)
        out[f"{name}_cpu_ms"] = 1e3 * statistics.median(t[1] for t in times)
        out[f"{name}_mb"] = peak_memory(naive if name == "naive" else fast, batch) / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--reps", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1: fair on a shared machine, see above)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    sizes = [10, 50, 150]
    configs: list[tuple[str, list[int], list[int]]] = [
        (f"N={n:<3} M={m:<3}", [n] * args.batch, [m] * args.batch) for n in sizes for m in sizes]
    gen = torch.Generator().manual_seed(0)
    configs.append(("ragged 1..150",
                    torch.randint(1, 151, (args.batch,), generator=gen).tolist(),
                    torch.randint(1, 151, (args.batch,), generator=gen).tolist()))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), B={args.batch}, "
          f"D={args.dim}, forward+backward, median of {args.reps} interleaved repetitions; "
          "ms = wall clock, cpu = this thread's CPU time")
    header = (f"{'loss':<9}{'pairs':<15}{'naive ms':>9}{'vec ms':>8}{'x':>6}"
              f"{'naive cpu':>10}{'vec cpu':>8}{'x':>6}{'naive MB':>9}{'vec MB':>8}")
    print(header)
    print("-" * len(header))
    for name, naive, fast in [("matching", naive_matching, vectorised_matching),
                              ("cycas", naive_cycas, vectorised_cycas)]:
        for i, (label, sizes_a, sizes_b) in enumerate(configs):
            batch = make_batch(args.batch, sizes_a, sizes_b, args.dim, seed=i)
            r = compare(naive, fast, batch, args.reps)
            print(f"{name:<9}{label:<15}{r['naive_ms']:>9.2f}{r['fast_ms']:>8.2f}"
                  f"{r['naive_ms'] / r['fast_ms']:>5.1f}x{r['naive_cpu_ms']:>10.2f}"
                  f"{r['fast_cpu_ms']:>8.2f}{r['naive_cpu_ms'] / r['fast_cpu_ms']:>5.1f}x"
                  f"{r['naive_mb']:>9.2f}{r['fast_mb']:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
