"""Tracker building blocks: Kalman filter, association costs and assignment, track state, and
the tracker base class with the plugin stages and the refinding interface."""

from utrack.tracking.association import (embedding_distance, fuse_motion, iou_distance,
                                         iou_matrix, linear_assignment)
from utrack.tracking.base import (TRACKER_STAGES, BaseTracker, Detections, FrameContext,
                                  TrackLike, TrackResult, filter_results)
from utrack.tracking.kalman import CHI2_95, KalmanFilter, boxes_to_xyah, xyah_to_boxes
from utrack.tracking.track import Track, TrackState, smooth_features

__all__ = [
    "TRACKER_STAGES", "BaseTracker", "Detections", "FrameContext", "TrackLike", "TrackResult",
    "filter_results", "CHI2_95", "KalmanFilter", "boxes_to_xyah", "xyah_to_boxes",
    "embedding_distance", "fuse_motion", "iou_distance", "iou_matrix", "linear_assignment",
    "Track", "TrackState", "smooth_features",
]
