"""utrack: one-shot multi-object tracking research.

UTrack's unsupervised re-ID matching loss and occlusion estimation with lost-object refinding,
as plugins on two complete baselines (FairMOT and CenterTrack). See README.md.
"""

__version__ = "0.1.0"
