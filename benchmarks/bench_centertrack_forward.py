"""CPU forward time per frame of CenterTrack next to FairMOT, same backbone and input size.

Both models come from their baselines with the recipes' heads (configs/centertrack.yaml: hm 1,
reg 2, wh 2, tracking 2, ltrb_amodal 4, plus the previous-image and previous-heatmap stems;
configs/fairmot.yaml: hm 1, wh 4, reg 2, id 128), head_conv 256, random weights (speed does not
depend on them), batch 1, eval mode, no_grad. CenterTrack gets ``(image, pre_image, pre_hm)``,
FairMOT ``image``. The two are measured interleaved in one process (FairMOT then CenterTrack
at each repetition) so load from other processes hits them alike; the table shows medians and
the ratio CenterTrack / FairMOT.

    python benchmarks/bench_centertrack_forward.py --reps 5 --threads 1
"""

from __future__ import annotations

import argparse
import statistics

import torch
from interleaved import time_interleaved

from baselines import build_baseline
from utrack.cli import default_config_files
from utrack.config import load_config

BACKBONES = ("dla34", "resnet18", "mobilenet_v2")
SIZES = ((1088, 608), (576, 320))  # width x height, multiples of 32


def build(arch: str, backbone: str) -> torch.nn.Module:
    cfg = load_config(default_config_files(arch, synthetic=False),
                      [f"model.backbone={backbone}", "model.head_conv=256"])
    return build_baseline(cfg, []).build_model().eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="timed forwards per model and size")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (0: torch's default); on a machine shared "
                             "with other jobs 1 thread gives far steadier numbers")
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=BACKBONES)
    parser.add_argument("--sizes", nargs="+", default=[f"{w}x{h}" for w, h in SIZES],
                        help="input sizes WxH (multiples of 32)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]
    torch.manual_seed(0)
    times: dict[tuple[tuple[int, int], str, str], list[float]] = {}
    with torch.no_grad():
        for backbone in args.backbones:
            models = {"fairmot": build("fairmot", backbone),
                      "centertrack": build("centertrack", backbone)}
            for w, h in sizes:
                image, pre_image = torch.rand(1, 3, h, w), torch.rand(1, 3, h, w)
                pre_hm = torch.zeros(1, 1, h, w)
                pre_hm[..., h // 3, w // 4] = 1.0
                inputs = {"fairmot": (image,), "centertrack": (image, pre_image, pre_hm)}
                calls = {arch: (lambda model=model, x=inputs[arch]: model(*x))
                         for arch, model in models.items()}
                for arch, values in time_interleaved(calls, args.reps).items():
                    times[((w, h), backbone, arch)] = values

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, reps {args.reps}, "
          "batch 1, eval, no_grad, head_conv 256")
    print(f"{'size':>9}  {'backbone':<13} {'FairMOT ms':>10} {'CenterTrack ms':>14} "
          f"{'CT / FairMOT':>12}")
    for w, h in sizes:
        for backbone in args.backbones:
            fair = statistics.median(times[((w, h), backbone, "fairmot")]) * 1e3
            ct = statistics.median(times[((w, h), backbone, "centertrack")]) * 1e3
            print(f"{f'{w}x{h}':>9}  {backbone:<13} {fair:10.1f} {ct:14.1f} {ct / fair:12.2f}")


if __name__ == "__main__":
    main()
