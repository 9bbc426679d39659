"""CPU time of one training step (forward, loss, backward, Adam): NCHW, channels_last, and
channels_last with bfloat16 autocast.

``train.channels_last`` switches the model and the batch to the NHWC memory format and
``train.cpu_bf16`` runs the forward under bfloat16 autocast. Whether either is faster depends on
the CPU (bf16 needs AVX512-BF16 or AMX to pay), the threads and the network, so measure it here
before turning them on. The variants run interleaved in one process (one step of each per
repetition, in turn), so that load from other processes hits them alike; the table shows medians
and the ratio to NCHW float32 (below 1: faster).

The default is the synthetic recipe's network (configs/synthetic.yaml: ResNet-18 body, 64-channel
neck and heads, FairMOT's heads, 320x192, 8 images a step):

    python benchmarks/bench_train_step.py --reps 6
    python benchmarks/bench_train_step.py --backbone mobilenet_v2 --size 384 288   # configs/pets09.yaml
"""

from __future__ import annotations

import argparse
import statistics

import torch
from interleaved import time_interleaved

from utrack.engine.runtime import Runtime
from utrack.models import build_model

FAIRMOT_HEADS = {"hm": 1, "wh": 4, "reg": 2, "id": 128}


def make_step(channels_last: bool, bf16: bool, args: argparse.Namespace):
    """A closure running one training step of a fresh model in the given memory format,
    under ``Runtime.autocast`` with ``cpu_bf16=bf16`` (bfloat16 autocast, as training uses)."""
    torch.manual_seed(0)
    model = build_model(args.backbone, FAIRMOT_HEADS, head_conv=args.head_conv,
                        neck_channels=args.neck_channels).train()
    width, height = args.size
    image = torch.rand(args.batch, 3, height, width)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        image = image.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    runtime = Runtime(torch.device("cpu"), cpu_bf16=bf16)

    def step() -> None:
        with runtime.autocast():
            outputs = model(image)
        # a stand-in loss touching every head; the backward cost is the network's, not the loss's
        loss = sum(out.float().square().mean() for out in outputs.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="timed steps per variant")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (0: torch's default, as training uses)")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--head-conv", type=int, default=64)
    parser.add_argument("--neck-channels", type=int, default=64)
    parser.add_argument("--size", type=int, nargs=2, default=(320, 192), metavar=("W", "H"))
    parser.add_argument("--batch", type=int, default=8, help="images per step")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    steps = {"NCHW": make_step(False, False, args),
             "channels_last": make_step(True, False, args),
             "channels_last+bf16": make_step(True, True, args)}
    times = time_interleaved(steps, args.reps)

    w, h = args.size
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, reps {args.reps}, "
          f"{args.backbone} {w}x{h}, batch {args.batch}, train step with Adam")
    base = statistics.median(times["NCHW"])
    print(f"{'variant':<19} {'ms/step':>9} {'vs NCHW':>9}")
    for name, values in times.items():
        ms = statistics.median(values)
        print(f"{name:<19} {ms * 1e3:9.1f} {ms / base:9.2f}")


if __name__ == "__main__":
    main()
