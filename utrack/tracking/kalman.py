"""Constant-velocity Kalman filter on boxes, batched over tracks.

State (8,): ``cx, cy, a, h, vcx, vcy, va, vh`` with ``a = w / h``; measurement (4,):
``cx, cy, a, h``.
The noise model is the one of DeepSORT, JDE and FairMOT: position and velocity standard
deviations proportional to the box height (weights 1/20 and 1/160), tiny fixed values for the
aspect ratio. Every method works on a leading batch axis so that a tracker predicts, gates and
updates all its tracks with a handful of array operations instead of a loop over tracks.
"""

from __future__ import annotations

import numpy as np

#: 0.95 quantile of the chi-square distribution by degrees of freedom (the gating threshold).
CHI2_95 = {1: 3.8415, 2: 5.9915, 3: 7.8147, 4: 9.4877, 5: 11.070, 6: 12.592, 7: 14.067,
           8: 15.507, 9: 16.919}


def boxes_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) ``x1, y1, x2, y2`` -> (N, 4) ``cx, cy, w / h, h`` (Kalman measurements)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    wh = boxes[:, 2:] - boxes[:, :2]
    out = np.empty_like(boxes)
    out[:, :2] = boxes[:, :2] + wh / 2
    out[:, 2] = wh[:, 0] / wh[:, 1]
    out[:, 3] = wh[:, 1]
    return out


def xyah_to_boxes(xyah: np.ndarray) -> np.ndarray:
    """(N, >=4) ``cx, cy, a, h, ...`` (measurements or states) -> (N, 4) ``x1, y1, x2, y2``."""
    xyah = np.asarray(xyah, dtype=np.float64)
    wh = xyah[:, 2:4].copy()
    wh[:, 0] *= wh[:, 1]
    out = np.empty((len(xyah), 4))
    out[:, :2] = xyah[:, :2] - wh / 2
    out[:, 2:] = out[:, :2] + wh
    return out


class KalmanFilter:
    """Batched constant-velocity Kalman filter (time step 1 frame).

    All methods take and return batches: means (T, 8), covariances (T, 8, 8),
    measurements (T, 4) or (N, 4).
    """

    ndim = 4

    def __init__(self, std_weight_position: float = 1.0 / 20,
                 std_weight_velocity: float = 1.0 / 160):
        self.std_weight_position = std_weight_position
        self.std_weight_velocity = std_weight_velocity
        wp, wv = std_weight_position, std_weight_velocity
        # Standard deviations are (height-proportional part) * h + (fixed part), per state entry.
        self._init_scale = np.array([2 * wp, 2 * wp, 0, 2 * wp, 10 * wv, 10 * wv, 0, 10 * wv])
        self._init_fixed = np.array([0, 0, 1e-2, 0, 0, 0, 1e-5, 0])
        self._proc_scale = np.array([wp, wp, 0, wp, wv, wv, 0, wv])
        self._proc_fixed = np.array([0, 0, 1e-2, 0, 0, 0, 1e-5, 0])
        self._meas_scale = np.array([wp, wp, 0, wp])
        self._meas_fixed = np.array([0, 0, 1e-1, 0])
        self.motion_mat = np.eye(8)
        self.motion_mat[:4, 4:] = np.eye(4)
        self._diag8 = np.arange(8)
        self._diag4 = np.arange(4)

    def initiate(self, measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New tracks from (N, 4) ``cx, cy, a, h`` -> means (N, 8) with zero velocity and
        covariances (N, 8, 8)."""
        z = np.asarray(measurements, dtype=np.float64).reshape(-1, 4)
        mean = np.zeros((len(z), 8))
        mean[:, :4] = z
        std = z[:, 3:4] * self._init_scale + self._init_fixed
        cov = np.zeros((len(z), 8, 8))
        cov[:, self._diag8, self._diag8] = std * std
        return mean, cov

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step ahead: (T, 8), (T, 8, 8) -> predicted (T, 8), (T, 8, 8) (new arrays)."""
        std = mean[:, 3:4] * self._proc_scale + self._proc_fixed
        new_mean = mean.copy()
        new_mean[:, :4] += mean[:, 4:]
        # F P F^T with F = [[I, I], [0, I]], written with blocks instead of two 8x8 products.
        pp, pv, vp, vv = cov[:, :4, :4], cov[:, :4, 4:], cov[:, 4:, :4], cov[:, 4:, 4:]
        new_cov = np.empty_like(cov)
        top = pv + vv
        new_cov[:, :4, :4] = pp + vp + top
        new_cov[:, :4, 4:] = top
        new_cov[:, 4:, :4] = vp + vv
        new_cov[:, 4:, 4:] = vv
        new_cov[:, self._diag8, self._diag8] += std * std
        return new_mean, new_cov

    def project(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """State -> measurement space: (T, 8), (T, 8, 8) -> (T, 4), (T, 4, 4), the latter with
        the measurement noise added."""
        std = mean[:, 3:4] * self._meas_scale + self._meas_fixed
        proj_cov = cov[:, :4, :4].copy()
        proj_cov[:, self._diag4, self._diag4] += std * std
        return mean[:, :4].copy(), proj_cov

    def update(self, mean: np.ndarray, cov: np.ndarray,
               measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct (T, 8), (T, 8, 8) with one (T, 4) measurement each -> new (T, 8), (T, 8, 8)."""
        proj_mean, proj_cov = self.project(mean, cov)
        # Kalman gain K = P H^T S^-1; H selects the first 4 entries and S is symmetric, so
        # K^T = S^-1 (H P). A batched 4x4 inverse is much cheaper than a batched solve in numpy.
        gain_t = np.matmul(np.linalg.inv(proj_cov), cov[:, :4, :])  # (T, 4, 8)
        innovation = np.asarray(measurements, dtype=np.float64).reshape(-1, 4) - proj_mean
        new_mean = mean + np.matmul(innovation[:, None, :], gain_t)[:, 0, :]
        new_cov = cov - np.matmul(gain_t.transpose(0, 2, 1), np.matmul(proj_cov, gain_t))
        return new_mean, new_cov

    def gating_distance(self, means: np.ndarray, covs: np.ndarray,
                        measurements: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distances (T, N) between every track's projected state and every
        (N, 4) measurement; compare with ``CHI2_95[4]``."""
        measurements = np.asarray(measurements, dtype=np.float64).reshape(-1, 4)
        if len(means) == 0 or len(measurements) == 0:
            return np.zeros((len(means), len(measurements)))
        proj_mean, proj_cov = self.project(means, covs)
        # Whiten with W = L^-1 (S = L L^T): d^T S^-1 d = |W z - W m|^2, and W z for all tracks
        # and measurements is one (4T x 4) @ (4 x N) product.
        whiten = np.linalg.inv(np.linalg.cholesky(proj_cov))  # (T, 4, 4)
        r = (whiten.reshape(-1, 4) @ measurements.T).reshape(len(means), 4, len(measurements))
        r -= np.matmul(whiten, proj_mean[:, :, None])
        r *= r
        return r.sum(axis=1)
