"""Lazy NIfTI reading: voxels and frame agree with SimpleITK on real and crafted headers."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

from mousereg.errors import InputError
from mousereg.io import read_volume, write_volume
from mousereg.io.nifti import read_nifti
from mousereg.volume import Volume

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"
# nibabel's bundled 3-D orientation test images (LAS, RAS, LAS with 8 mm slices)
ORIENTATION_IMAGES = ("anatomical.nii", "reoriented_anat_moved.nii", "resampled_anat_moved.nii")


def assert_agrees_with_sitk(path: Path) -> None:
    """Same voxels, spacing, origin and direction as SimpleITK.ReadImage."""
    vol = read_nifti(path)
    img = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(img)
    if img.GetNumberOfComponentsPerPixel() > 1:
        arr = np.moveaxis(arr, -1, 0)
    assert isinstance(vol.data, da.Array)
    assert vol.dtype == arr.dtype
    got = vol.compute()
    np.testing.assert_array_equal(np.where(np.isnan(got), 0, got), arr)  # ITK reads NaN as 0
    np.testing.assert_allclose(vol.spacing, img.GetSpacing(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(vol.origin, img.GetOrigin(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(vol.direction.reshape(-1), img.GetDirection(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ORIENTATION_IMAGES)
def test_nibabel_orientation_images_agree_with_sitk(name: str) -> None:
    assert_agrees_with_sitk(NIBABEL_DATA / name)


def _save(tmp: Path, name: str, arr: np.ndarray, affine: np.ndarray, **header: object) -> Path:
    img = nib.Nifti1Image(arr, affine)
    for key, value in header.items():
        if key == "qform_code":
            img.set_qform(affine if value else None, code=int(value))  # type: ignore[call-overload]
        elif key == "sform_code":
            img.set_sform(affine if value else None, code=int(value))  # type: ignore[call-overload]
        elif key == "units":
            img.header.set_xyzt_units(str(value))
        elif key == "slope":
            img.header.set_slope_inter(float(value), 1.5)  # type: ignore[arg-type]
    path = tmp / name
    nib.save(img, path)
    return path


def _oblique_affine() -> np.ndarray:
    aff = np.eye(4)
    aff[:3, :3] = Rotation.from_euler("xyz", [12, -25, 40], degrees=True).as_matrix() @ np.diag(
        [0.14, 0.208, 0.4]
    )
    aff[:3, 3] = [12.5, -40.25, 7.0]
    return aff


@pytest.mark.parametrize(
    "header",
    [
        {},
        {"sform_code": 0},
        {"qform_code": 0},
        {"sform_code": 2},
        {"units": "micron"},
        {"units": "meter"},
    ],
    ids=["both", "qform-only", "sform-only", "sform-aligned", "micron", "meter"],
)
def test_crafted_headers_agree_with_sitk(tmp_path: Path, header: dict[str, object]) -> None:
    arr = np.arange(7 * 8 * 9, dtype=np.int16).reshape(7, 8, 9)
    assert_agrees_with_sitk(_save(tmp_path, "x.nii", arr, _oblique_affine(), **header))


def test_scaled_and_nan_voxels_as_itk(tmp_path: Path) -> None:
    arr = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    assert_agrees_with_sitk(_save(tmp_path, "s.nii", arr, _oblique_affine(), slope=2.0))
    flt = np.linspace(0, 1, 60, dtype=np.float32).reshape(3, 4, 5)
    flt[1, 2, 3] = np.nan
    assert_agrees_with_sitk(_save(tmp_path, "n.nii", flt, _oblique_affine()))


def test_vector_nifti_written_by_sitk(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vol = Volume(
        data=rng.integers(0, 1000, size=(3, 6, 7, 8)).astype(np.int16),
        spacing=(0.3, 0.4, 0.5),
        origin=(1.0, -2.0, 3.0),
        direction=Rotation.from_euler("z", 30, degrees=True).as_matrix(),
    )
    path = tmp_path / "v.nii"
    write_volume(vol, path)
    assert_agrees_with_sitk(path)


def test_blocks_are_z_slabs_and_lazy(tmp_path: Path) -> None:
    arr = np.zeros((64, 32, 40), dtype=np.float32)  # x, y, z on disk
    path = _save(tmp_path, "big.nii", arr, np.eye(4))
    vol = read_volume(path)
    assert vol.shape == (40, 32, 64)
    assert vol.data.chunks[1:] == ((32,), (64,))


def test_truncated_nifti_is_refused(tmp_path: Path) -> None:
    arr = np.ones((20, 20, 20), dtype=np.int16)
    path = _save(tmp_path, "t.nii", arr, np.eye(4))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(InputError, match="truncated"):
        read_volume(path)
    gz = tmp_path / "t.nii.gz"
    noise = np.random.default_rng(0).integers(0, 30000, size=(20, 20, 20)).astype(np.int16)
    nib.save(nib.Nifti1Image(noise, np.eye(4)), gz)
    gz.write_bytes(gz.read_bytes()[:2000])
    with pytest.raises(InputError, match="cannot be read"):
        read_volume(gz)


@pytest.mark.parametrize("name", ORIENTATION_IMAGES)
@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_nibabel_images_survive_ome_zarr(name: str, version: str, tmp_path: Path) -> None:
    """Real files no one here wrote: .nii -> OME-Zarr -> .nii, voxels and affine unchanged."""
    src = NIBABEL_DATA / name
    zarr_path = tmp_path / "x.zarr"
    back = tmp_path / name
    write_volume(read_volume(src), zarr_path, ngff_version=version)
    write_volume(read_volume(zarr_path), back)
    a, b = nib.load(src), nib.load(back)
    np.testing.assert_array_equal(np.asarray(b.dataobj), np.asarray(a.dataobj))
    np.testing.assert_allclose(b.affine, a.affine, rtol=0, atol=1e-5)
    assert nib.aff2axcodes(b.affine) == nib.aff2axcodes(a.affine)
