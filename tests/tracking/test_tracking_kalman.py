"""Kalman filter: hand-computed values and independent per-track matrix formulas."""

from __future__ import annotations

import numpy as np
import pytest

from utrack.tracking.kalman import CHI2_95, KalmanFilter, boxes_to_xyah, xyah_to_boxes

KF = KalmanFilter()
F = np.block([[np.eye(4), np.eye(4)], [np.zeros((4, 4)), np.eye(4)]])
H = np.eye(4, 8)


def random_states(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n states with heights 50..200 and random SPD covariances."""
    mean = np.c_[rng.uniform(0, 500, (n, 2)), rng.uniform(0.3, 0.6, n), rng.uniform(50, 200, n),
                 rng.normal(size=(n, 4))]
    a = rng.normal(size=(n, 8, 8))
    cov = a @ a.transpose(0, 2, 1) + 0.5 * np.eye(8)
    return mean, cov


def noise(h: float, weights: list[float], fixed: dict[int, float]) -> np.ndarray:
    std = np.array([w * h for w in weights])
    for i, v in fixed.items():
        std[i] = v
    return np.diag(std ** 2)


def test_chi2_gate_value():
    assert CHI2_95[4] == 9.4877


def test_box_conversions_by_hand():
    xyah = boxes_to_xyah(np.array([[10.0, 20.0, 50.0, 100.0]]))
    np.testing.assert_allclose(xyah, [[30.0, 60.0, 0.5, 80.0]])
    np.testing.assert_allclose(xyah_to_boxes(xyah), [[10.0, 20.0, 50.0, 100.0]])
    # states (8 columns) convert too
    np.testing.assert_allclose(xyah_to_boxes(np.array([[30.0, 60.0, 0.5, 80.0, 1, 2, 3, 4]])),
                               [[10.0, 20.0, 50.0, 100.0]])


def test_initiate_by_hand():
    mean, cov = KF.initiate(np.array([[100.0, 200.0, 0.5, 80.0]]))
    np.testing.assert_array_equal(mean, [[100, 200, 0.5, 80, 0, 0, 0, 0]])
    # std: 2/20*80 = 8 (positions), 0.01 (aspect), 10/160*80 = 5 (velocities), 1e-5 (aspect vel.)
    np.testing.assert_allclose(cov[0], np.diag([64, 64, 1e-4, 64, 25, 25, 1e-10, 25]))


def test_predict_by_hand():
    mean, cov = KF.initiate(np.array([[100.0, 200.0, 0.5, 80.0]]))
    mean[0, 4:] = [1.0, 2.0, 0.0, 3.0]
    new_mean, new_cov = KF.predict(mean, cov)
    np.testing.assert_allclose(new_mean, [[101, 202, 0.5, 83, 1, 2, 0, 3]])
    # Q std at h=80: 80/20 = 4 (positions), 0.01 (aspect), 80/160 = 0.5 (velocities), 1e-5
    # P'[x,x] = 64 + 25 + 16, P'[x,vx] = 25, P'[vx,vx] = 25 + 0.25
    assert new_cov[0, 0, 0] == pytest.approx(105.0)
    assert new_cov[0, 3, 3] == pytest.approx(105.0)
    assert new_cov[0, 0, 4] == pytest.approx(25.0)
    assert new_cov[0, 4, 0] == pytest.approx(25.0)
    assert new_cov[0, 4, 4] == pytest.approx(25.25)
    assert new_cov[0, 2, 2] == pytest.approx(1e-4 + 1e-10 + 1e-4)
    assert new_cov[0, 0, 1] == 0.0  # x and y stay independent
    # the inputs are not modified
    np.testing.assert_array_equal(mean[0, :4], [100, 200, 0.5, 80])


def test_predict_matches_matrix_formula():
    mean, cov = random_states(np.random.default_rng(0), 6)
    new_mean, new_cov = KF.predict(mean, cov)
    for i in range(6):
        q = noise(mean[i, 3], [1 / 20] * 4 + [1 / 160] * 4, {2: 1e-2, 6: 1e-5})
        np.testing.assert_allclose(new_mean[i], F @ mean[i])
        np.testing.assert_allclose(new_cov[i], F @ cov[i] @ F.T + q, rtol=1e-12)


def test_update_by_hand():
    mean, cov = KF.initiate(np.array([[100.0, 200.0, 0.5, 80.0]]))
    new_mean, new_cov = KF.update(mean, cov, np.array([[110.0, 200.0, 0.5, 80.0]]))
    # x: prior var 64, measurement var (80/20)^2 = 16 -> gain 0.8, posterior var 12.8
    assert new_mean[0, 0] == pytest.approx(108.0)
    assert new_cov[0, 0, 0] == pytest.approx(12.8)
    # no prior position-velocity correlation: the velocity does not move
    assert new_mean[0, 4] == pytest.approx(0.0)
    np.testing.assert_allclose(new_mean[0, 1:4], [200.0, 0.5, 80.0])


def test_update_matches_matrix_formula():
    rng = np.random.default_rng(1)
    mean, cov = random_states(rng, 5)
    z = mean[:, :4] + rng.normal(scale=5.0, size=(5, 4))
    new_mean, new_cov = KF.update(mean, cov, z)
    for i in range(5):
        r = noise(mean[i, 3], [1 / 20] * 4, {2: 1e-1})
        s = H @ cov[i] @ H.T + r
        k = cov[i] @ H.T @ np.linalg.inv(s)
        np.testing.assert_allclose(new_mean[i], mean[i] + k @ (z[i] - H @ mean[i]), rtol=1e-9)
        np.testing.assert_allclose(new_cov[i], cov[i] - k @ s @ k.T, rtol=1e-8, atol=1e-9)


def test_project_adds_measurement_noise():
    mean, cov = random_states(np.random.default_rng(2), 3)
    pm, pc = KF.project(mean, cov)
    for i in range(3):
        r = noise(mean[i, 3], [1 / 20] * 4, {2: 1e-1})
        np.testing.assert_allclose(pm[i], mean[i, :4])
        np.testing.assert_allclose(pc[i], cov[i, :4, :4] + r)


def test_gating_distance_equals_per_track_loop():
    rng = np.random.default_rng(3)
    mean, cov = random_states(rng, 7)
    z = np.c_[rng.uniform(0, 500, (9, 2)), rng.uniform(0.3, 0.6, 9), rng.uniform(50, 200, 9)]
    got = KF.gating_distance(mean, cov, z)
    assert got.shape == (7, 9)
    for t in range(7):
        r = noise(mean[t, 3], [1 / 20] * 4, {2: 1e-1})
        s_inv = np.linalg.inv(cov[t, :4, :4] + r)
        for n in range(9):
            d = z[n] - mean[t, :4]
            assert got[t, n] == pytest.approx(d @ s_inv @ d, rel=1e-9)


def test_gating_distance_empty():
    mean, cov = random_states(np.random.default_rng(4), 2)
    assert KF.gating_distance(mean, cov, np.zeros((0, 4))).shape == (2, 0)
    empty = KF.gating_distance(np.zeros((0, 8)), np.zeros((0, 8, 8)), np.ones((3, 4)))
    assert empty.shape == (0, 3)
