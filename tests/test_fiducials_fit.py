"""Umeyama fit, FLE from residuals, outlier rejection and predicted TRE against Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from mousereg.errors import RegistrationError
from mousereg.fiducials.fit import check_not_collinear, fit_points, fle_from_fre, umeyama
from mousereg.fiducials.tre import combined_fle, predicted_tre, tre_summary


def _layout(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-20, 20, (n, 3)) * [1.0, 0.7, 0.4]


def test_umeyama_recovers_rigid_and_similarity() -> None:
    src = _layout(8, 1)
    rot = Rotation.random(random_state=2).as_matrix()
    t = np.array([12.0, -40.0, 7.5])
    fit = umeyama(src, src @ rot.T + t)
    assert np.allclose(fit.rotation, rot, atol=1e-10)
    assert np.allclose(fit.translation, t, atol=1e-9)
    sim = umeyama(src, 1.03 * src @ rot.T + t, similarity=True)
    assert sim.scale == pytest.approx(1.03, abs=1e-10)
    assert np.allclose(sim.inverse().apply(sim.apply(src)), src, atol=1e-9)


def test_umeyama_reflection_guard_returns_a_rotation() -> None:
    src = _layout(6, 3)
    mirrored = src * [-1.0, 1.0, 1.0]  # the best orthogonal fit is a reflection
    fit = umeyama(src, mirrored)
    assert np.linalg.det(fit.rotation) == pytest.approx(1.0, abs=1e-10)
    assert np.allclose(fit.rotation @ fit.rotation.T, np.eye(3), atol=1e-10)


def test_fre_fle_relation_monte_carlo() -> None:
    rng = np.random.default_rng(4)
    src = _layout(10, 5)
    fle = 0.1
    fre2 = []
    for _ in range(3000):
        noisy = src + rng.normal(0, fle / np.sqrt(3), src.shape)
        fit = umeyama(src, noisy)
        fre2.append(np.mean(np.sum((fit.apply(src) - noisy) ** 2, axis=1)))
    assert np.mean(fre2) == pytest.approx((1 - 2 / 10) * fle**2, rel=0.05)
    assert fle_from_fre(float(np.sqrt(np.mean(fre2))), 10) == pytest.approx(fle, rel=0.03)


def test_predicted_tre_matches_monte_carlo() -> None:
    rng = np.random.default_rng(6)
    markers = _layout(8, 7)
    targets = np.array([[0.0, 0.0, 0.0], [30.0, 5.0, -3.0], [-10.0, 25.0, 15.0]])
    fle = 0.2
    sq = np.zeros(len(targets))
    trials = 4000
    for _ in range(trials):
        noisy = markers + rng.normal(0, fle / np.sqrt(3), markers.shape)
        fit = umeyama(markers, noisy)
        sq += np.sum((fit.apply(targets) - targets) ** 2, axis=1)
    measured = np.sqrt(sq / trials)
    predicted = predicted_tre(markers, fle, targets)
    assert np.allclose(predicted, measured, rtol=0.1)
    # at the marker centroid TRE = FLE / sqrt(N)
    assert predicted_tre(markers, fle, markers.mean(0))[0] == pytest.approx(fle / np.sqrt(8))
    s = tre_summary(markers, fle, targets)
    assert s["at_body_centroid_mm"] <= s["p95_over_body_mm"] <= s["max_over_body_mm"]
    assert combined_fle(0.03, 0.04) == pytest.approx(0.05)


def test_outlier_is_rejected_and_residuals_reported() -> None:
    rng = np.random.default_rng(8)
    src = _layout(10, 9)
    rot = Rotation.random(random_state=10).as_matrix()
    dst = src @ rot.T + [5.0, 6.0, 7.0] + rng.normal(0, 0.03, src.shape)
    dst[3] += [1.5, 0.0, 0.0]
    res = fit_points(src, dst)
    assert not res.inliers[3]
    assert res.inliers.sum() == 9
    assert res.residuals[3] > 1.0
    assert res.fre_rms < 0.06
    assert np.allclose(res.transform.rotation, rot, atol=2e-3)
    clean = fit_points(src[res.inliers], dst[res.inliers])
    assert clean.inliers.all()


def test_collinear_and_too_few_points_are_refused() -> None:
    line = np.outer(np.linspace(0, 30, 5), [1.0, 0.5, 0.0])
    with pytest.raises(RegistrationError, match="one line"):
        check_not_collinear(line, "fixed scan")
    with pytest.raises(RegistrationError, match="at least 3"):
        umeyama(line[:2], line[:2])
