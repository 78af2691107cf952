"""Matching unlabelled marker sets: subsets, spurious points, symmetric layouts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from mousereg.errors import RegistrationError
from mousereg.fiducials.match import match_points


def _layout(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-30, 30, (n, 3)) * [1.0, 0.6, 0.35]


@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15])
def test_match_with_missing_and_spurious_points(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = _layout(12, seed)
    rot = Rotation.random(random_state=seed).as_matrix()
    b_true = a @ rot.T + rng.uniform(-100, 100, 3) + rng.normal(0, 0.05, a.shape)
    b = np.vstack([b_true[2:], b_true.mean(0) + rng.uniform(-25, 25, (3, 3))])
    perm = rng.permutation(len(b))
    b = b[perm]
    m = match_points(a, b)
    truth = {(i + 2, int(np.flatnonzero(perm == i)[0])) for i in range(10)}
    assert {(int(i), int(j)) for i, j in m.pairs} == truth
    assert m.runner_up < m.support
    assert np.allclose(m.transform.rotation, rot, atol=5e-3)


def test_symmetric_layout_is_ambiguous() -> None:
    box = np.array([[x, y, z] for x in (0, 10) for y in (0, 16) for z in (0, 6)], dtype=float)
    rot = Rotation.from_euler("z", 30, degrees=True).as_matrix()
    with pytest.raises(RegistrationError, match="ambiguous"):
        match_points(box, box @ rot.T + 5.0)


def test_too_few_points_names_the_counts() -> None:
    a = _layout(6, 1)
    with pytest.raises(RegistrationError, match="6 found in the fixed scan and 2 in the moving"):
        match_points(a, a[:2])


def test_unrelated_layouts_do_not_match() -> None:
    a = _layout(10, 2)
    b = _layout(10, 3)
    with pytest.raises(RegistrationError):
        match_points(a, b)
