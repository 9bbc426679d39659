"""Evaluation: ``utrack.eval.mot`` (CLEAR-MOT, Identity and HOTA metrics of tracking results).

Submodules are imported explicitly so that ``import utrack.eval`` stays light (motmetrics pulls
in pandas, TrackEval its own dependencies).
"""
