"""Re-ID quality of a trained model: ``python tools/eval_reid.py --ckpt CKPT --data DIR``.

Features are taken from the embedding head at the ground-truth boxes of every frame (of
``--split``); each track is split in time into a first half (queries) and a second half
(gallery), as in the paper's Table 7, and every query is ranked against the gallery of all
sequences (cross-sequence distractors included); the same within each sequence only (the people
a tracker has to tell apart) is reported beside it. Prints rank-1 and mAP, writes them as JSON,
and draws the embeddings in 2-D coloured by identity (paper Fig. 6) and the assignment matrix
M' of a frame pair (Fig. 7) as PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from baselines import build_baseline
from plugins import build_plugins
from utrack.cli import add_config_args, checkpoint_config, run_cli
from utrack.config import save_config
from utrack.data.mot import MOTSequence, find_sequences
from utrack.data.transforms import letterbox, letterbox_boxes, to_tensor
from utrack.engine.inference import embeddings_at_boxes
from utrack.engine.runtime import resolve_device
from utrack.errors import ConfigError
from utrack.eval.reid import rank1_and_map, split_query_gallery
from utrack.losses.matching import assignment_matrix
from utrack.models.checkpoint import load_checkpoint, load_model_weights
from utrack.vis.embeddings import plot_assignment, plot_embeddings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--data", required=True, nargs="+", help="sequence folders or roots")
    parser.add_argument("--split", default="all", choices=["all", "train_half", "val_half"])
    parser.add_argument("--out", default="runs/eval_reid")
    parser.add_argument("--pair-gap", type=int, default=5,
                        help="frame distance of the pair drawn as an assignment matrix")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def collect(model, sequences, split, input_size, down_ratio, device, progress):
    """Embeddings at gt boxes: features (N, D), labels (N,) unique across sequences, frames."""
    feats, labels, frames, seq_index = [], [], [], []
    offset = 0
    for s, seq in enumerate(sequences):
        ids_seen = []
        for frame in tqdm(seq.frames(split), desc=seq.name, disable=not progress, leave=False):
            boxes, ids = seq.annotations(frame)
            if len(boxes) == 0:
                continue
            image, record = letterbox(seq.read_image(frame), *input_size)
            tensor = to_tensor(image)[None].to(device)
            feats.append(embeddings_at_boxes(model, tensor, letterbox_boxes(boxes, record), down_ratio))
            labels.append(ids + offset)
            frames.append(np.full(len(ids), frame))
            seq_index.append(np.full(len(ids), s))
            ids_seen.append(ids)
        if ids_seen:
            offset += int(np.concatenate(ids_seen).max()) + 1
    if not feats:
        raise ConfigError("no ground-truth boxes in the given data and split")
    return (np.concatenate(feats), np.concatenate(labels), np.concatenate(frames),
            np.concatenate(seq_index))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ckpt = load_checkpoint(args.ckpt)
    cfg = checkpoint_config(ckpt, args, source=args.ckpt)
    if cfg.reid.mode == "none":
        raise ConfigError(f"{args.ckpt} was trained with reid.mode=none: it has no embedding head")
    device = resolve_device(args.device)
    baseline = build_baseline(cfg, build_plugins(cfg))
    model = baseline.build_model()
    load_model_weights(model, ckpt, strict=True)
    model.to(device).eval()
    sequences = [MOTSequence(d) for root in args.data for d in find_sequences(root)]
    input_size = tuple(cfg.data.input_size)
    feats, labels, frames, seq_index = collect(model, sequences, args.split, input_size,
                                               cfg.model.down_ratio, device, not args.quiet)
    query, gallery = split_query_gallery(labels, frames)
    result = rank1_and_map(feats[query], labels[query], feats[gallery], labels[gallery])
    within = rank1_and_map(feats[query], labels[query], feats[gallery], labels[gallery],
                           groups=(seq_index[query], seq_index[gallery]))
    result["within_sequence"] = within
    result.update(identities=int(len(np.unique(labels))), boxes=int(len(labels)),
                  sequences=[s.name for s in sequences], split=args.split, ckpt=str(args.ckpt))
    out = Path(args.out)
    save_config(cfg, out)
    (out / "reid_metrics.json").write_text(json.dumps(result, indent=2))
    print(f"rank-1 {100 * result['rank1']:.1f}  mAP {100 * result['mAP']:.1f}  "
          f"({result['queries']} queries, {result['identities']} identities, "
          f"{len(sequences)} sequences); within each sequence: rank-1 "
          f"{100 * within['rank1']:.1f}  mAP {100 * within['mAP']:.1f}")
    plot_embeddings(feats, labels, out / "embeddings.png", title=f"{cfg.reid.mode} re-ID")

    # one frame pair of the first sequence, drawn as M' (paper Fig. 7)
    seq = sequences[0]
    frames_with_objects = [f for f in seq.frames(args.split) if len(seq.annotations(f)[0])]
    if len(frames_with_objects) > args.pair_gap:
        fa = frames_with_objects[0]
        fb = frames_with_objects[args.pair_gap]
        emb = []
        for frame in (fa, fb):
            image, record = letterbox(seq.read_image(frame), *input_size)
            boxes = letterbox_boxes(seq.annotations(frame)[0], record)
            emb.append(torch.from_numpy(embeddings_at_boxes(
                model, to_tensor(image)[None].to(device), boxes, cfg.model.down_ratio)))
        m = cfg.reid.matching
        matrix = assignment_matrix(emb[0][None], emb[1][None], placeholder=m.placeholder,
                                   temperature=m.temperature)[0].numpy()
        plot_assignment(matrix, len(emb[0]), len(emb[1]), out / "assignment.png",
                        title=f"M' for {seq.name} frames {fa} and {fb}")
    print(f"wrote {out / 'reid_metrics.json'}, {out / 'embeddings.png'}, {out / 'assignment.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
