"""Intensity registration: Jacobian statistics, body masks, elastix conversion, the refine stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from mousereg.errors import InputError
from mousereg.phantom import PhantomPair
from mousereg.registration import elastix_backend, intensity, masks
from mousereg.registration.jacobian import jacobian_determinant, jacobian_statistics
from mousereg.registration.transform import Transform


def _field(u_zyx3: np.ndarray, spacing: tuple[float, ...], direction: np.ndarray) -> sitk.Image:
    img = sitk.GetImageFromArray(u_zyx3, isVector=True)
    img.SetSpacing(spacing)
    img.SetDirection(tuple(direction.reshape(-1)))
    return img


def _rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.deg2rad(degrees)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def _affine_field(a: np.ndarray, spacing: tuple[float, ...], direction: np.ndarray) -> np.ndarray:
    """u(p) = (A - I) p on a (12, 14, 16) grid with the given frame."""
    shape = (12, 14, 16)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape[::-1]], indexing="ij"), -1)
    idx = idx.transpose(2, 1, 0, 3).astype(float)  # (z, y, x, 3) with (x, y, z) indices
    pts = idx @ (direction @ np.diag(spacing)).T
    return np.asarray(pts @ (a - np.eye(3)).T)


def test_jacobian_of_affine_field_is_det_a_in_a_rotated_anisotropic_frame() -> None:
    direction = _rotation(np.array([1.0, 2.0, 0.5]), 30)
    spacing = (0.3, 0.5, 0.8)
    a = np.array([[1.1, 0.05, 0.0], [0.02, 0.9, 0.1], [0.0, -0.03, 1.2]])
    u = _affine_field(a, spacing, direction)
    det = jacobian_determinant(u, spacing, direction)
    np.testing.assert_allclose(det, np.linalg.det(a), rtol=1e-4)
    stats = jacobian_statistics(_field(u, spacing, direction))
    assert stats["n_folding"] == 0
    assert stats["min"] == pytest.approx(np.linalg.det(a), rel=1e-4)


def test_jacobian_counts_folding_voxels() -> None:
    # u_x = -2 x inside a slab: det = 1 - 2 = -1 there, folding.
    shape = (8, 8, 20)
    u = np.zeros((*shape, 3))
    x = np.arange(shape[2], dtype=float)
    ux = np.where((x >= 5) & (x <= 12), -2.0 * (x - 5), -2.0 * 7 * (x > 12))
    u[..., 0] = ux[None, None, :]
    stats = jacobian_statistics(_field(u, (1.0, 1.0, 1.0), np.eye(3)))
    det = jacobian_determinant(u, (1.0, 1.0, 1.0), np.eye(3))
    assert stats["n_folding"] == int((det <= 0).sum()) > 0
    assert stats["min"] == pytest.approx(-1.0)
    with pytest.raises(InputError):
        jacobian_determinant(np.zeros((4, 4, 3)), (1, 1, 1), np.eye(3))


def test_body_masks_cover_the_organs_and_leave_the_holes_out(phantom_pair: PhantomPair) -> None:
    pair = phantom_pair
    ct_mask = sitk.GetArrayFromImage(masks.ct_body_mask(pair.ct.to_sitk())) > 0
    mr_mask = sitk.GetArrayFromImage(masks.mr_body_mask(intensity.mr_signal(pair.mr))) > 0
    for mask, labels, holes, vol in (
        (ct_mask, pair.ct_labels.compute(), pair.holes_ct, pair.ct),
        (mr_mask, pair.mr_labels.compute(), pair.holes_mr, pair.mr),
    ):
        organs = labels > 0
        assert (mask & organs).sum() / organs.sum() > 0.99
        # the body is not the whole field of view (holder and air are out)
        assert mask.mean() < 0.6
        idx = np.round(vol.physical_to_index(holes)).astype(int)
        inside = np.all((idx >= 0) & (idx < np.array(vol.size)), axis=1)
        for x, y, z in idx[inside]:
            assert not mask[z, y, x]


def test_elastix_rigid_recovers_a_known_motion_and_keeps_parameter_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    arr = ndimage.gaussian_filter(rng.normal(size=(24, 40, 48)), 2.5).astype(np.float32) * 100
    fixed = sitk.GetImageFromArray(arr)
    fixed.SetSpacing((0.4, 0.4, 0.5))
    fixed.SetOrigin((-9.0, -8.0, -6.0))
    truth = sitk.Euler3DTransform((0.0, 0.0, 0.0), 0.03, -0.02, 0.04, (0.35, -0.25, 0.2))
    moving = sitk.Resample(fixed, fixed, truth.GetInverse(), sitk.sitkLinear, 0.0)
    found = elastix_backend.register_linear(
        fixed, moving, "rigid", outdir=tmp_path, threads=1, iterations=200
    )
    pts = np.array([[0.0, 0.0, 0.0], [4.0, -3.0, 2.0], [-5.0, 4.0, -3.0]])
    err = np.linalg.norm(
        Transform(found).transform_points(pts) - Transform(truth).transform_points(pts), axis=1
    )
    assert err.max() < 0.08
    assert (tmp_path / "TransformParameters.rigid.0.txt").read_text().count("EulerTransform")


BREATHING_ORGANS = ("lung", "heart")  # where the phantom's soft tissue moves most


@pytest.fixture(scope="module")
def refined(
    phantom_pair: PhantomPair, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Transform, Transform, dict[str, Any], Path]:
    """The deformable elastix stage on the test pair from the holder's true rigid mapping."""
    out = tmp_path_factory.mktemp("refine")
    start = Transform(phantom_pair.rigid)  # the holder's mapping: what the holes give
    t, report = intensity.refine(
        phantom_pair.mr,
        phantom_pair.ct,
        start,
        mode="deformable",
        backend="elastix",
        outdir=out,
        iterations=150,
    )
    return start, t, report, out


def test_refine_follows_the_breathing_and_keeps_the_holder(
    phantom_pair: PhantomPair, refined: tuple[Transform, Transform, dict[str, Any], Path]
) -> None:
    start, t, report, out = refined
    lm = phantom_pair.landmarks
    organ = np.array([str(n).rsplit("_", 1)[0] for n in lm["name"]])
    moving = np.isin(organ, BREATHING_ORGANS)
    before = np.linalg.norm(start.transform_points(lm["mr"]) - lm["ct"], axis=1)
    after = np.linalg.norm(t.transform_points(lm["mr"]) - lm["ct"], axis=1)
    assert after[moving].mean() < 0.75 * before[moving].mean()
    holes = np.linalg.norm(
        t.transform_points(phantom_pair.holes_mr) - phantom_pair.holes_ct, axis=1
    )
    assert holes.max() < 1e-6  # the holder keeps the fiducial mapping exactly
    assert report["jacobian"]["n_folding"] == 0
    assert report["jacobian"]["min"] > 0.3
    sim = report["similarity"]
    assert sim["final"] > sim["start"]
    assert (out / "TransformParameters.bspline.0.txt").exists()


def test_refine_rejects_an_unknown_mode(phantom_pair: PhantomPair, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="mode"):
        intensity.refine(
            phantom_pair.mr,
            phantom_pair.ct,
            None,
            mode="similarity",
            backend="elastix",
            outdir=tmp_path,
        )


def test_transform_file_that_is_not_itk_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "TransformParameters.0.txt"
    bad.write_text('(Transform "EulerTransform")\n(TransformParameters 0 0 0 1 2 3)\n')
    with pytest.raises(InputError, match="not an ITK transform"):
        Transform.read(bad)


def test_missing_parameter_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="parameter file"):
        elastix_backend.parameter_file("bspline", tmp_path)


def _smooth_image(seed: int) -> sitk.Image:
    rng = np.random.default_rng(seed)
    arr = ndimage.gaussian_filter(rng.normal(size=(24, 40, 48)), 2.5).astype(np.float32) * 100
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.4, 0.4, 0.5))
    img.SetOrigin((-9.0, -8.0, -6.0))
    return img


def test_ants_rigid_recovers_a_known_motion(tmp_path: Path) -> None:
    from mousereg.registration import ants_backend

    fixed = _smooth_image(4)
    truth = sitk.Euler3DTransform((0.0, 0.0, 0.0), 0.03, -0.02, 0.04, (0.35, -0.25, 0.2))
    moving = sitk.Resample(fixed, fixed, truth.GetInverse(), sitk.sitkLinear, 0.0)
    found = ants_backend.register_linear(fixed, moving, "rigid", outdir=tmp_path, threads=1)
    pts = np.array([[0.0, 0.0, 0.0], [4.0, -3.0, 2.0], [-5.0, 4.0, -3.0]])
    err = np.linalg.norm(
        Transform(found).transform_points(pts) - Transform(truth).transform_points(pts), axis=1
    )
    assert err.max() < 0.1
    assert (tmp_path / "ants_rigid.mat").exists()


def test_ants_syn_field_maps_fixed_points_to_moving_points(tmp_path: Path) -> None:
    from mousereg.registration import ants_backend

    fixed = _smooth_image(5)
    _, y, x = np.meshgrid(*[np.arange(n, dtype=float) for n in (24, 40, 48)], indexing="ij")
    u = np.zeros((24, 40, 48, 3))
    u[..., 0] = 0.5 * np.sin(np.pi * x / 47) * np.sin(np.pi * y / 39)
    field = sitk.GetImageFromArray(u, isVector=True)
    field.CopyInformation(fixed)
    truth = sitk.DisplacementFieldTransform(sitk.Image(field))
    # a(p) = b(p + u(p)): registering a (fixed) with b (moving) must give T(p) = p + u(p)
    a = sitk.Resample(fixed, fixed, truth, sitk.sitkLinear, 0.0)
    found = ants_backend.register_deformable(a, fixed, outdir=tmp_path, threads=1)
    est = sitk.GetArrayFromImage(found)
    inner = (slice(4, -4), slice(8, -8), slice(8, -8))
    err = np.abs(est[inner][..., 0] - u[inner][..., 0]).mean()
    assert err < 0.5 * np.abs(u[inner][..., 0]).mean()


def test_holder_mask_covers_the_plastic_and_not_the_body(phantom_pair: PhantomPair) -> None:
    ct = sitk.Cast(phantom_pair.ct.to_sitk(), sitk.sitkFloat32)
    body = masks.ct_body_mask(ct)
    holder = sitk.GetArrayFromImage(intensity.holder_mask(ct, body, ct, None)) > 0
    hu = sitk.GetArrayFromImage(ct)
    plastic = (hu > 150) & (hu < 300) & (sitk.GetArrayFromImage(body) == 0)
    assert holder[plastic].mean() > 0.99
    labels = phantom_pair.ct_labels.compute() > 0
    assert holder[labels].mean() < 0.02  # only the margin touches organs that lie on the bed
