"""CenterTrack: CenterNet detection conditioned on the previous frame, tracking offsets and a
greedy offset-matching tracker (DESIGN.md section 6)."""

from baselines.centertrack.system import CenterTrack

__all__ = ["CenterTrack"]
