"""Run a trained tracker: ``python tools/track.py --ckpt CKPT --input PATH [--out DIR] [--save-video]``.

PATH is a video file, an image folder, a MOTChallenge sequence folder (seqinfo.ini) or a dataset
root holding many sequences. Writes one MOTChallenge results file per sequence
(``frame,id,x,y,w,h,score,-1,-1,-1``), optionally an mp4 with boxes and ids, and prints frames
per second split into network and association time. The checkpoint's own config rebuilds the
model; ``--set tracker.conf_thres=0.5`` and similar override tracking settings.

Tracker-only replay (no network, no images; a sequence folder with seqinfo.ini is enough):
``python tools/track.py --dets DIR/det/det.txt --input DIR --out OUT --reid none
--occ-source oracle`` runs the tracker on given detections, with occlusion centres from the
ground truth (``oracle``), a ``frame,x,y[,score]`` file, or nowhere (``none``); ``--emb-source
gt`` gives detections identity-derived embeddings (an appearance upper bound).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from baselines import build_baseline
from plugins import build_plugins
from utrack.cli import (add_config_args, checkpoint_config, default_config_files,
                        flat_overrides, run_cli)
from utrack.config import load_config, save_config
from utrack.data.datasets import SequenceFrames
from utrack.data.mot import MOTSequence, find_sequences, read_seqinfo, split_frame_range
from utrack.engine.inference import run_tracker, write_run
from utrack.engine.replay import external_occlusion_centers, replay_sequence
from utrack.engine.runtime import resolve_device
from utrack.errors import ConfigError, DataFormatError
from utrack.models.checkpoint import load_checkpoint, load_model_weights
from utrack.occlusion.step import CENTERS, HEATMAP, LETTERBOX, STRIDE, refind_unmatched_tracks
from utrack.vis.draw import VideoSink, draw_tracks, heatmap_to_image, overlay_heatmap

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    parser.add_argument("--ckpt", default=None, help="a utrack checkpoint (or published weights "
                        "together with --config); not used with --dets")
    parser.add_argument("--dets", default=None, metavar="FILE",
                        help="replay: track these MOTChallenge detections instead of running a network "
                        "(PATH must be one sequence folder)")
    parser.add_argument("--occ-source", default="model",
                        help="occlusion centres for refinding: model (the network's head), oracle "
                        "(ground truth), none (no refinding), or a frame,x,y[,score] file; with "
                        "--ckpt, oracle and a file replace the head's centres")
    parser.add_argument("--emb-source", default="none", choices=["none", "gt"],
                        help="replay embeddings: none, or gt (identity-derived, an upper bound)")
    parser.add_argument("--reid", default=None, choices=["supervised", "none", "unsupervised", "cycas"],
                        help="replay: 'none' tracks on IoU and motion alone")
    parser.add_argument("--min-score", type=float, default=None,
                        help="replay: drop detections below this score (default tracker.conf_thres)")
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
        cap = cv2.VideoCapture(str(p))
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        cap.release()
        return [(p.stem, p, float(fps))]
    if (p / "seqinfo.ini").is_file() or any((c / "seqinfo.ini").is_file() for c in p.iterdir()
                                            if c.is_dir()) or (p / "train").is_dir():
        return [(read_seqinfo(s).name, s, read_seqinfo(s).frame_rate) for s in find_sequences(p)]
    return [(p.name, p, 30.0)]  # a plain image folder


def draw_frame(image, results, dets, frame_id: int, down_ratio: int):
    """Tracks on the frame; with the occlusion plugin, its heatmap underneath and the decoded
    occlusion centres as crosses (refound boxes are dashed: paper Fig. 8-9)."""
    heatmap = dets.extras.get(HEATMAP)
    if heatmap is not None:
        image = overlay_heatmap(image, heatmap_to_image(heatmap, dets.extras[LETTERBOX],
                                                        image.shape, down_ratio))
        for x, y in np.asarray(dets.extras.get(CENTERS, np.zeros((0, 2)))):
            cv2.drawMarker(image, (int(x), int(y)), (255, 255, 255), cv2.MARKER_TILTED_CROSS, 10, 2)
    return draw_tracks(image, results, frame_id)


def use_external_centers(baseline, cfg, occ_source: str, num_inputs: int) -> None:
    """``--occ-source oracle|FILE`` with a network: its detections, refinding from the given
    centres. A model trained without ``--occ`` gets the refinding step (with the config's
    ``occlusion.tau_w`` and ``tau_o``) added to its trackers."""
    if occ_source != "oracle" and num_inputs != 1:
        raise ConfigError(f"--occ-source {occ_source}: a centre file belongs to one sequence, "
                          f"but --input holds {num_inputs}")
    if not cfg.occlusion.enabled:
        occ = cfg.occlusion

        def refind_step(tracker, context) -> None:
            refind_unmatched_tracks(tracker, context, tau_w=occ.tau_w, tau_o=occ.tau_o,
                                    default_stride=cfg.model.down_ratio)

        baseline.steps.setdefault("after_association", []).append(refind_step)


def replay_main(args: argparse.Namespace) -> int:
    """Tracker-only replay of a detection file on one sequence."""
    extra: dict = {}
    if args.reid:
        extra["reid"] = {"mode": args.reid}
    use_occ = args.occ_source != "none"
    if args.occ_source == "model":
        raise ConfigError("--occ-source model needs a network; with --dets use oracle, none or a file")
    if use_occ:
        extra["occlusion"] = {"enabled": True}
    files = args.config or default_config_files("fairmot", synthetic=False)
    cfg = load_config(files, flat_overrides(args), extra)
    seq_dir = Path(args.input)
    info = read_seqinfo(seq_dir)
    baseline = build_baseline(cfg, build_plugins(cfg))
    tracker = baseline.make_tracker(info.frame_rate)
    if args.emb_source == "none" and cfg.reid.mode != "none":
        print("note: replay without embeddings tracks on IoU and motion (as --reid none)")
    out_dir = Path(args.out)
    save_config(cfg, out_dir)
    run = replay_sequence(seq_dir, args.dets, tracker,
                          frames=split_frame_range(info.seq_length, args.split),
                          min_score=cfg.tracker.conf_thres if args.min_score is None else args.min_score,
                          occ_source=args.occ_source if use_occ else "none",
                          emb_source=args.emb_source, tau=cfg.occlusion.tau,
                          input_size=tuple(cfg.data.input_size), down_ratio=cfg.model.down_ratio,
                          min_box_area=cfg.tracker.min_box_area, max_aspect=cfg.tracker.max_aspect,
                          seed=cfg.train.seed, progress=not args.quiet)
    path = write_run(run, out_dir)
    print(f"{run.timing_line()}; {len(run.refound)} refound boxes -> {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dets:
        return replay_main(args)
    if not args.ckpt:
        raise ConfigError("--ckpt is required (or --dets for tracker-only replay)")
    ckpt = load_checkpoint(args.ckpt)
    cfg = checkpoint_config(ckpt, args, default_config_files("fairmot", synthetic=False), args.ckpt)
    device = resolve_device(args.device)
    if args.occ_source == "none":
        cfg.occlusion.tau_w = 0  # the heads still decode (pictures), nothing is refound
    baseline = build_baseline(cfg, build_plugins(cfg))
    model = baseline.build_model()
    load_model_weights(model, ckpt, strict=True)
    model.to(device).eval()
    inputs = resolve_inputs(args.input)
    external = args.occ_source not in ("model", "none")
    if external:
        use_external_centers(baseline, cfg, args.occ_source, len(inputs))
    out_dir = Path(args.out)
    save_config(cfg, out_dir)
    total_frames, total_net, total_assoc = 0, 0.0, 0.0
    for name, path, fps in inputs:
        tracker = baseline.make_tracker(fps)
        frames = SequenceFrames(path, cfg.data.input_size, split=args.split)
        sink = VideoSink(out_dir / f"{name}.mp4", fps) if args.save_video else None
        centers_of = (external_occlusion_centers(MOTSequence(path), args.occ_source,
                                                 cfg.occlusion.tau) if external else None)

        def detect(frame_id: int, net_input: torch.Tensor, letterbox):
            dets = baseline.detect(model, tracker, net_input.unsqueeze(0).to(device), letterbox)
            if centers_of is not None:  # the given centres replace the head's
                dets.extras[CENTERS] = centers_of(frame_id)
                dets.extras[STRIDE] = cfg.model.down_ratio / letterbox.scale
            return dets

        def on_frame(frame_id, original, results, dets):
            if sink is not None:
                sink.write(draw_frame(original, results, dets, frame_id, cfg.model.down_ratio))

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
