"""Run a trained tracker: ``python tools/track.py --ckpt CKPT --input PATH [--out DIR] [--save-video]``.

PATH is a video file, an image folder, a MOTChallenge sequence folder (seqinfo.ini) or a dataset
root holding many sequences. Writes one MOTChallenge results file per sequence
(``frame,id,x,y,w,h,score,-1,-1,-1``), optionally an mp4 with boxes and ids, and prints frames
per second split into network and association time. The checkpoint's own config rebuilds the
model; ``--set tracker.conf_thres=0.5`` and similar override tracking settings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from baselines import build_baseline
from plugins import build_plugins
from utrack.cli import add_config_args, default_config_files, flat_overrides, run_cli
from utrack.config import load_config, merge_dicts, save_config
from utrack.data.datasets import SequenceFrames
from utrack.data.mot import find_sequences, read_seqinfo
from utrack.engine.inference import run_tracker, write_run
from utrack.engine.runtime import resolve_device
from utrack.errors import DataFormatError
from utrack.models.checkpoint import load_checkpoint, load_model_weights
from utrack.vis.draw import VideoSink, draw_tracks

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    parser.add_argument("--ckpt", required=True, help="a utrack checkpoint (or published weights "
                        "together with --config)")
    parser.add_argument("--input", required=True, help="video, image folder, sequence or root")
    parser.add_argument("--out", default="runs/track", help="results folder")
    parser.add_argument("--split", default="all", choices=["all", "train_half", "val_half"],
                        help="frames of MOTChallenge sequences to track")
    parser.add_argument("--save-video", action="store_true", help="write <out>/<name>.mp4")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def resolve_inputs(path: str) -> list[tuple[str, Path, float]]:
    """(name, path, frame rate) of each sequence to track."""
    p = Path(path)
    if not p.exists():
        raise DataFormatError(f"--input {path}: no such file or folder")
    if p.is_file():
        if p.suffix.lower() not in VIDEO_EXTENSIONS:
            raise DataFormatError(f"--input {path}: not a video file ({', '.join(sorted(VIDEO_EXTENSIONS))})")
        import cv2

        cap = cv2.VideoCapture(str(p))
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        cap.release()
        return [(p.stem, p, float(fps))]
    if (p / "seqinfo.ini").is_file() or any((c / "seqinfo.ini").is_file() for c in p.iterdir()
                                            if c.is_dir()) or (p / "train").is_dir():
        return [(read_seqinfo(s).name, s, read_seqinfo(s).frame_rate) for s in find_sequences(p)]
    return [(p.name, p, 30.0)]  # a plain image folder


def load_tracking_setup(args: argparse.Namespace):
    """The config stored in the checkpoint (or given files), with ``--set`` overrides."""
    ckpt = load_checkpoint(args.ckpt)
    if args.config:
        cfg = load_config(args.config, flat_overrides(args))
    elif "config" in ckpt:
        base = ckpt["config"]
        cfg = load_config([], flat_overrides(args), extra=merge_dicts({}, base))
    else:
        cfg = load_config(default_config_files("fairmot", synthetic=False), flat_overrides(args))
    return ckpt, cfg


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ckpt, cfg = load_tracking_setup(args)
    device = resolve_device(args.device)
    baseline = build_baseline(cfg, build_plugins(cfg))
    model = baseline.build_model()
    load_model_weights(model, ckpt, strict=True)
    model.to(device).eval()
    out_dir = Path(args.out)
    save_config(cfg, out_dir)
    total_frames, total_net, total_assoc = 0, 0.0, 0.0
    for name, path, fps in resolve_inputs(args.input):
        tracker = baseline.make_tracker(fps)
        frames = SequenceFrames(path, cfg.data.input_size, split=args.split)
        sink = VideoSink(out_dir / f"{name}.mp4", fps) if args.save_video else None

        def detect(net_input: torch.Tensor, letterbox):
            return baseline.detect(model, tracker, net_input.unsqueeze(0).to(device), letterbox)

        def on_frame(frame_id, original, results, dets):
            if sink is not None:
                sink.write(draw_tracks(original, results, frame_id))

        try:
            run = run_tracker(name, frames, detect, tracker,
                              min_box_area=cfg.tracker.min_box_area,
                              max_aspect=cfg.tracker.max_aspect, device=device,
                              on_frame=on_frame, progress=not args.quiet)
        finally:
            if sink is not None:
                sink.close()
        path_out = write_run(run, out_dir)
        print(f"{run.timing_line()} -> {path_out}")
        total_frames += run.frames
        total_net += run.network_s
        total_assoc += run.association_s
    if total_frames:
        print(f"all: {total_frames} frames, {total_frames / (total_net + total_assoc):.1f} fps "
              f"(network {1000 * total_net / total_frames:.1f} ms/frame, association "
              f"{1000 * total_assoc / total_frames:.2f} ms/frame)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
