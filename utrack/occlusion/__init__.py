"""Occlusion estimation (paper Sec. 3.2): targets from boxes, decoding predicted occlusion
centres, and refinding lost objects from them (Algorithm 1 step 5, Eq. 15-16)."""

from utrack.occlusion.decode import decode_occlusion_centers, oracle_occlusion_centers
from utrack.occlusion.refind import RefindResult, recover_box, refind_lost_box, refind_lost_boxes
from utrack.occlusion.targets import encode_occlusion_targets, occlusion_pairs

__all__ = [
    "RefindResult",
    "decode_occlusion_centers",
    "encode_occlusion_targets",
    "occlusion_pairs",
    "oracle_occlusion_centers",
    "recover_box",
    "refind_lost_box",
    "refind_lost_boxes",
]
