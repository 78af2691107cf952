"""Numbers of the atlas arithmetic: shape update, warps, label probabilities, label fusion."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import dask.array as da
import numpy as np
import pytest

from mousereg.atlas import format as fmt
from mousereg.atlas import fusion
from mousereg.atlas import template as tpl
from mousereg.atlas.fusion import (
    joint_weights,
    local_weights,
    majority_vote,
    one_hot,
    soft_scores,
    weighted_vote,
)
from mousereg.atlas.load import Atlas
from mousereg.atlas.output import label_probabilities, max_probability_labels
from mousereg.atlas.segment import segment_spacing
from mousereg.labels import LabelTable
from mousereg.volume import Volume


@pytest.fixture(scope="module")
def grid() -> Volume:
    return Volume(da.zeros((12, 16, 20), dtype=np.uint8), spacing=(0.5, 0.5, 0.5))


def test_shape_update_of_a_constant_field_is_its_negation(grid: Volume) -> None:
    mean = np.zeros((*grid.shape, 3), np.float32)
    mean[..., 0] = 0.8  # mm along x
    update = tpl.shape_update_field(mean, grid, step=0.25, compositions=4)
    inner = update[3:-3, 3:-3, 3:-3]
    assert np.allclose(inner[..., 0], -0.8, atol=1e-5)
    assert np.allclose(inner[..., 1:], 0.0)


def test_warp_array_shifts_by_the_field(grid: Volume) -> None:
    img = np.zeros(grid.shape, np.float32)
    img[:, :, 10] = 1.0
    field = np.zeros((*grid.shape, 3), np.float32)
    field[..., 0] = 1.0  # sample 1 mm = 2 voxels further along x
    out = tpl.warp_array(img, field, grid, order=1)
    assert out[:, :, 8].min() == 1.0
    assert out[:, :, 10].max() == 0.0


def test_compose_fields_adds_translations(grid: Volume) -> None:
    a = np.zeros((*grid.shape, 3), np.float32)
    b = np.zeros((*grid.shape, 3), np.float32)
    a[..., 1], b[..., 1] = 0.5, 0.25
    c = tpl.compose_fields(a, b, grid)
    assert np.allclose(c[2:-2, 2:-2, 2:-2, 1], 0.75)


def test_sharpness_and_displacement_figures(grid: Volume) -> None:
    ramp = np.broadcast_to(np.arange(grid.shape[2], dtype=np.float32), grid.shape) * 0.5
    mask = np.ones(grid.shape, bool)
    # 0.5 per voxel over 0.5 mm voxels = 1 intensity unit per mm
    assert tpl.mean_gradient_magnitude(ramp, grid, mask) == pytest.approx(1.0)
    f1 = np.zeros((*grid.shape, 3), np.float32)
    f2 = np.zeros((*grid.shape, 3), np.float32)
    f1[..., 0], f2[..., 0] = 1.0, -1.0
    assert tpl.mean_displacement([f1, f2], mask) == pytest.approx(0.0)
    assert tpl.mean_displacement([f1, f1], mask) == pytest.approx(1.0)
    assert tpl.relative_change(ramp * 1.1, ramp) == pytest.approx(0.1)


def test_label_probabilities_pool_only_annotating_maps() -> None:
    table = LabelTable.default().subset([2, 3, 11])  # bone (CT only), brain (MR only), liver
    u = fmt.UNKNOWN_LABEL
    # two subjects, each with (ct_labels, mr_labels) over 4 voxels
    s1 = np.array([[2, 11, 0, u], [3, 11, 11, 0]], np.uint8)
    s2 = np.array([[2, 0, 11, 0], [0, 11, 0, 0]], np.uint8)
    p = label_probabilities([s1, s2], table)
    bone, brain, liver = p
    assert bone.tolist() == [1.0, 0.0, 0.0, 0.0]  # only CT maps vote, voxel 3 known once
    assert brain.tolist() == [1.0, 0.0, 0.0, 0.0]  # s2 has no brain label: it does not vote
    assert liver.tolist() == pytest.approx([0.0, 0.75, 0.5, 0.0])
    labels = max_probability_labels(p, table)
    assert labels.tolist() == [2, 11, 0, 0]


def test_majority_and_weighted_vote() -> None:
    maps = [np.array([1, 1, 2]), np.array([1, 2, 2]), np.array([2, 2, fmt.UNKNOWN_LABEL])]
    assert majority_vote(maps, [1, 2]).tolist() == [1, 2, 2]
    target = np.zeros((1, 1, 3), np.float32)
    images = [np.zeros((1, 1, 3), np.float32), np.ones((1, 1, 3)), np.ones((1, 1, 3))]
    images = [i.astype(np.float32) for i in images]
    maps3 = [m.reshape(1, 1, 3).astype(np.uint8) for m in maps]
    # the first subject matches the target exactly and dominates the locally weighted vote
    fused = weighted_vote(maps3, images, target, (1.0, 1.0, 1.0), [1, 2])
    assert fused.ravel().tolist() == [1, 1, 2]


def test_soft_scores_weight_the_indicator_maps() -> None:
    a = one_hot(np.array([1, 1, fmt.UNKNOWN_LABEL], np.uint8), [1, 2])
    assert a.tolist() == [[0, 0, 0], [1, 1, 0], [0, 0, 0]]  # unknown votes for nothing
    b = np.array([[0.0, 0.0, 0.0], [0.25, 0.0, 0.0], [0.75, 1.0, 1.0]], np.float32)  # soft edge
    scores = soft_scores([a, b], [np.array([1.0, 1.0, 1.0]), np.array([2.0, 1.0, 1.0])])
    np.testing.assert_allclose(scores, [[0, 0, 0], [1.5, 1, 0], [1.5, 1, 1]])
    assert np.argmax(scores, axis=0).tolist() == [1, 1, 2]  # the tie goes to the first candidate


def _three_atlases() -> tuple[list[np.ndarray], np.ndarray]:
    """Subjects 0 and 1 make the same errors, subject 2 errors of the same size elsewhere."""
    rng = np.random.default_rng(3)
    target = rng.random((20, 12, 14)).astype(np.float32) + 1.0
    shared = rng.normal(0, 0.2, target.shape).astype(np.float32)
    own = rng.normal(0, 0.2, target.shape).astype(np.float32)
    return [target + shared, target + shared, target + own], target


def test_joint_weights_share_one_vote_between_subjects_that_fail_alike() -> None:
    images, target = _three_atlases()
    w = joint_weights(images, target, (0.5, 0.5, 0.5), sigma_mm=1.0)
    np.testing.assert_allclose(w[0] + w[1] + w[2], 1.0, atol=1e-5)
    np.testing.assert_allclose(w[0], w[1], atol=1e-5)
    inner = (slice(4, -4), slice(4, -4), slice(4, -4))
    # E|a||b| / E[a^2] = 2/pi for independent errors: w2 ~ 0.42 against 0.29 each for 0 and 1
    assert float(np.median(w[2][inner])) > float(np.median(w[0][inner])) + 0.08
    # the locally weighted vote sees three equally good subjects
    lw = local_weights(images, target, (0.5, 0.5, 0.5))
    ratio = lw[2][inner] / lw[0][inner]
    assert 0.7 < float(np.median(ratio)) < 1.4


def test_joint_weights_in_slabs_equal_the_whole_volume(monkeypatch: pytest.MonkeyPatch) -> None:
    images, target = _three_atlases()
    monkeypatch.setattr(fusion, "_SLAB", 1000)
    whole = joint_weights(images, target, (0.5, 0.4, 0.3), sigma_mm=0.8)
    monkeypatch.setattr(fusion, "_SLAB", 3)
    slabs = joint_weights(images, target, (0.5, 0.4, 0.3), sigma_mm=0.8)
    for a, b in zip(whole, slabs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("template", "build", "finest", "expected"),
    [(0.4, 0.8, 0.5, 0.5), (0.4, 0.8, 0.4, 0.4), (0.65, 1.2, 0.4, 0.65), (0.4, 0.45, 0.5, 0.45)],
)
def test_segmentation_registers_finer_than_the_build(
    template: float, build: float, finest: float, expected: float
) -> None:
    meta = {
        "grid": {"spacing_xyz_mm": [template] * 3},
        "parameters": {"registration_spacing": build},
    }
    atlas = cast(Atlas, SimpleNamespace(meta=meta))
    assert segment_spacing(atlas, finest) == expected
