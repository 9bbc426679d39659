"""CPU forward time per frame of every backbone with FairMOT's heads (hm 1, wh 4, reg 2, id 128).

Batch 1, eval mode, no_grad, random weights (speed does not depend on them). Backbones are
measured interleaved in one process (one forward of each backbone per repetition, in turn) so
that load from other processes hits them alike; the table shows medians and the ratio to dla34
at the same size.

    python benchmarks/bench_model_forward.py --reps 5
"""

from __future__ import annotations

import argparse
import statistics

import torch
from interleaved import time_interleaved

from utrack.models import BACKBONES, build_model

FAIRMOT_HEADS = {"hm": 1, "wh": 4, "reg": 2, "id": 128}
SIZES = ((1088, 608), (576, 320))  # width x height, multiples of 32


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="timed forwards per backbone and size")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (0: torch's default); on a machine shared "
                             "with other jobs 1 thread gives far steadier numbers")
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=BACKBONES)
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {b: build_model(b, FAIRMOT_HEADS).eval() for b in args.backbones}
    times: dict[tuple[tuple[int, int], str], list[float]] = {}
    with torch.no_grad():
        for w, h in SIZES:
            image = torch.rand(1, 3, h, w)
            calls = {name: (lambda model=model, image=image: model(image))
                     for name, model in models.items()}
            for name, values in time_interleaved(calls, args.reps).items():
                times[((w, h), name)] = values

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, reps {args.reps}, "
          "batch 1, eval, no_grad")
    print(f"{'size':>9}  {'backbone':<13} {'ms/frame':>9} {'vs dla34':>9}")
    for w, h in SIZES:
        base = times.get(((w, h), "dla34"))
        base_ms = statistics.median(base) * 1e3 if base else None
        for name in args.backbones:
            ms = statistics.median(times[((w, h), name)]) * 1e3
            ratio = f"{ms / base_ms:9.2f}" if base_ms else f"{'-':>9}"
            print(f"{f'{w}x{h}':>9}  {name:<13} {ms:9.1f} {ratio}")


if __name__ == "__main__":
    main()
