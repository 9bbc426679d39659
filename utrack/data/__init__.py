"""Data: MOTChallenge readers, the synthetic generator, augmentation, CenterNet targets,
datasets and batching."""

from utrack.data.collate import collate_frames, collate_pairs
from utrack.data.datasets import (MOTTrainDataset, SequenceFrames, pair_offset,
                                  training_sequence_dirs)
from utrack.data.mot import (DISTRACTOR_CLASSES, IdentityIndex, MOTSequence, SeqInfo, find_sequences,
                             load_det, load_gt, read_image, read_seqinfo, split_frame_range)
from utrack.data.synthetic import generate_dataset, generate_sequence
from utrack.data.targets import encode_centernet_targets
from utrack.data.transforms import (AffineParams, Letterbox, letterbox, letterbox_inverse,
                                    sample_affine, transform_frame)

__all__ = [
    "AffineParams", "DISTRACTOR_CLASSES", "IdentityIndex", "Letterbox", "MOTSequence",
    "MOTTrainDataset", "SeqInfo", "SequenceFrames", "collate_frames", "collate_pairs",
    "encode_centernet_targets", "find_sequences", "generate_dataset", "generate_sequence",
    "letterbox", "letterbox_inverse", "load_det", "load_gt", "pair_offset", "read_image",
    "read_seqinfo", "sample_affine", "split_frame_range", "training_sequence_dirs",
    "transform_frame",
]
