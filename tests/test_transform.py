"""Tests for mousereg.registration.transform: points, composition, inversion, files."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import SimpleITK as sitk

from mousereg.errors import InputError
from mousereg.registration import Transform
from mousereg.volume import Volume

SPACING = (0.5, 0.5, 0.5)
ORIGIN = (-8.0, -8.0, -7.0)


def _sitk_points(t: sitk.Transform, pts: np.ndarray) -> np.ndarray:
    return np.array([t.TransformPoint(tuple(p)) for p in pts])


@pytest.fixture(scope="module")
def grid() -> Volume:
    return Volume(da.zeros((30, 32, 34), chunks=16), spacing=SPACING, origin=ORIGIN)


@pytest.fixture(scope="module")
def field(grid: Volume) -> Transform:
    """A smooth displacement field of up to 0.8 mm."""
    z, y, x = np.meshgrid(*(np.arange(n) for n in grid.shape), indexing="ij")
    f = np.stack(
        [0.8 * np.sin(x / 8.0) * np.cos(y / 9.0), 0.6 * np.cos(z / 7.0), 0.5 * np.sin((x + y) / 10)]
    )
    return Transform.from_displacement_field(grid.with_array(f, channel_names=("x", "y", "z")))


@pytest.fixture(scope="module")
def rigid() -> Transform:
    return Transform(sitk.Euler3DTransform((1.0, 2.0, 3.0), 0.2, 0.1, -0.3, (1.0, 2.0, 0.5)))


def test_linear_points_match_sitk(rigid: Transform) -> None:
    pts = np.random.default_rng(0).normal(size=(200, 3)) * 10
    assert np.abs(rigid.transform_points(pts) - _sitk_points(rigid.to_sitk(), pts)).max() < 1e-12
    a, b = rigid.matrix, rigid.translation
    np.testing.assert_allclose(pts @ a.T + b, rigid.transform_points(pts), atol=1e-12)
    np.testing.assert_allclose(rigid.as_matrix4()[:3, :3], a)


def test_field_points_match_sitk_inside_and_outside() -> None:
    rng = np.random.default_rng(1)
    img = sitk.GetImageFromArray(rng.normal(size=(8, 9, 10, 3)), isVector=True)
    img.SetSpacing((0.7, 0.8, 0.9))
    img.SetOrigin((-3.0, -3.0, -3.0))
    img.SetDirection((1, 0, 0, 0, 0, 1, 0, -1, 0))
    df = sitk.DisplacementFieldTransform(sitk.Image(img))
    pts = rng.uniform(-6, 9, size=(3000, 3))  # many fall outside the field
    got = Transform(df).transform_points(pts)
    assert np.abs(got - _sitk_points(df, pts)).max() < 1e-12


def test_bspline_points_match_sitk() -> None:
    rng = np.random.default_rng(2)
    image = sitk.Image([5, 6, 7], sitk.sitkFloat32)
    image.SetSpacing((0.5, 0.5, 1.0))
    b = sitk.BSplineTransformInitializer(image, [3, 3, 3])
    b.SetParameters(rng.normal(size=len(b.GetParameters())))
    pts = rng.uniform(-2, 8, size=(2000, 3))
    assert np.abs(Transform(b).transform_points(pts) - _sitk_points(b, pts)).max() < 1e-12


def test_then_applies_self_first(rigid: Transform, field: Transform) -> None:
    pts = np.random.default_rng(3).uniform(-6, 6, size=(500, 3))
    both = field.then(rigid)
    expected = rigid.transform_points(field.transform_points(pts))
    np.testing.assert_allclose(both.transform_points(pts), expected, atol=1e-12)
    assert isinstance(both.to_sitk(), sitk.CompositeTransform)
    np.testing.assert_allclose(_sitk_points(both.to_sitk(), pts), expected, atol=1e-12)


def test_linear_inverse_is_exact(rigid: Transform) -> None:
    pts = np.random.default_rng(4).normal(size=(100, 3)) * 20
    inv = rigid.inverse()
    assert inv.is_linear
    assert np.abs(inv.transform_points(rigid.transform_points(pts)) - pts).max() < 1e-12
    composite = Transform(sitk.TranslationTransform(3, (1.0, 2.0, 3.0))).then(rigid)
    np.testing.assert_allclose(
        composite.inverse().transform_points(composite.transform_points(pts)), pts, atol=1e-12
    )


def test_deformable_inverse_and_consistency(
    rigid: Transform, field: Transform, grid: Volume
) -> None:
    t = field.then(rigid)
    assert not t.is_linear
    moving_grid = grid  # the rigid part is small: the grid covers the moving space too
    inv = t.inverse(moving_grid)
    report = inv.inverse_consistency
    assert report is not None and report["mean_mm"] < 0.05
    # Away from the field's edges, T^-1(T(p)) = p to a few micrometres (linear interpolation).
    p = grid.center() + np.random.default_rng(5).uniform(-3, 3, size=(2000, 3))
    assert np.abs(inv.transform_points(t.transform_points(p)) - p).max() < 0.01
    with pytest.raises(InputError, match="reference grid"):
        t.inverse()


def test_to_displacement_field_matches_sitk(rigid: Transform, field: Transform, grid: Volume):
    t = field.then(rigid)
    dfv = t.to_displacement_field(grid, chunks=17)
    assert dfv.data.shape == (3, *grid.shape)
    img = sitk.TransformToDisplacementField(
        t.to_sitk(), sitk.sitkVectorFloat64, grid.size, grid.origin, grid.spacing,
        tuple(grid.direction.ravel()),
    )  # fmt: skip
    expected = np.moveaxis(sitk.GetArrayFromImage(img), -1, 0)
    assert np.abs(dfv.compute() - expected).max() < 1e-5  # float32 storage
    back = Transform.from_displacement_field(dfv)
    pts = grid.index_to_physical(np.random.default_rng(6).uniform(0, 29, size=(300, 3)))
    assert np.abs(back.transform_points(pts) - t.transform_points(pts)).max() < 0.01


def test_write_read_roundtrip(tmp_path: Path, rigid: Transform, field: Transform) -> None:
    t = field.then(rigid)
    pts = np.random.default_rng(7).uniform(-6, 6, size=(300, 3))
    t.write(tmp_path / "t.h5")
    read_sitk = sitk.ReadTransform(str(tmp_path / "t.h5"))
    assert np.abs(_sitk_points(read_sitk, pts) - t.transform_points(pts)).max() < 1e-12
    again = Transform.read(tmp_path / "t.h5")
    assert np.abs(again.transform_points(pts) - t.transform_points(pts)).max() < 1e-12
    rigid.write(tmp_path / "r.tfm")
    np.testing.assert_allclose(
        Transform.read(tmp_path / "r.tfm").as_matrix4(), rigid.as_matrix4(), atol=1e-12
    )
    with pytest.raises(InputError, match=r"\.h5"):
        t.write(tmp_path / "t.tfm")
    assert not list(tmp_path.glob(".*tmp*"))


def test_read_rejects_bad_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such transform"):
        Transform.read(tmp_path / "missing.h5")
    bad = tmp_path / "notes.h5"
    bad.write_text("this is not a transform\n")
    with pytest.raises(InputError, match="not an ITK transform"):
        Transform.read(bad)
    params = tmp_path / "TransformParameters.0.txt"
    params.write_text('(Transform "EulerTransform")\n(NumberOfParameters 6)\n')
    with pytest.raises(InputError, match="not an ITK transform"):
        Transform.read(params)
    image = tmp_path / "image.nii.gz"
    sitk.WriteImage(sitk.Image([4, 4, 4], sitk.sitkUInt8), str(image))
    with pytest.raises(InputError, match="not an ITK transform"):
        Transform.read(image)


def test_from_matrix_and_identity() -> None:
    t = Transform.from_matrix(np.diag([2.0, 1.0, 1.0]), translation=(1, 0, 0), center=(1, 1, 1))
    np.testing.assert_allclose(t.transform_points([[1.0, 1.0, 1.0]]), [[2.0, 1.0, 1.0]])
    np.testing.assert_allclose(Transform.identity().as_matrix4(), np.eye(4))
    with pytest.raises(InputError):
        Transform.from_matrix(np.eye(2))


def test_displacement_field_needs_three_channels(grid: Volume) -> None:
    with pytest.raises(InputError, match="3 channels"):
        Transform.from_displacement_field(grid)


def test_write_displacement_field_nifti(tmp_path: Path, field: Transform, grid: Volume) -> None:
    from mousereg.io import read_volume

    field.write_displacement_field(tmp_path / "field.nii.gz", grid)
    back = read_volume(tmp_path / "field.nii.gz")
    np.testing.assert_allclose(
        back.compute(), field.to_displacement_field(grid).compute(), atol=1e-6
    )


def test_write_displacement_field_ome_zarr(tmp_path: Path, field: Transform, grid: Volume) -> None:
    from mousereg.io import read_volume

    field.write_displacement_field(tmp_path / "field.zarr", grid)
    back = read_volume(tmp_path / "field.zarr")
    assert back.n_channels == 3 and back.same_grid(grid, tol=1e-6)
    again = Transform.from_displacement_field(back)
    pts = grid.index_to_physical(np.random.default_rng(8).uniform(0, 29, size=(300, 3)))
    assert np.abs(again.transform_points(pts) - field.transform_points(pts)).max() < 1e-5
