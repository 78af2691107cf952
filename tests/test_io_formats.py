"""Format details: suffix dispatch, detached headers, MINC files no one here wrote."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from mousereg.errors import InputError
from mousereg.io import read_volume, suffix_of, write_volume
from mousereg.volume import Volume

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"


@pytest.mark.parametrize(
    ("name", "suffix"),
    [
        ("a.nii.gz", ".nii.gz"),
        ("a.NII", ".nii"),
        ("b.zarr", ".zarr"),
        ("c.mhd", ".mhd"),
        ("d.tar.gz", ".gz"),
    ],
)
def test_suffix_of(name: str, suffix: str) -> None:
    assert suffix_of(Path(name)) == suffix


@pytest.mark.parametrize("suffix", [".mhd", ".nhdr"])
def test_detached_header_pairs(suffix: str, tmp_path: Path) -> None:
    vol = Volume(
        data=np.arange(60, dtype=np.int16).reshape(3, 4, 5),
        spacing=(0.5, 0.6, 0.7),
        origin=(1.0, 2.0, 3.0),
    )
    path = tmp_path / f"img{suffix}"
    write_volume(vol, path)
    write_volume(vol, path)  # overwrite in place
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([f"img{suffix}", "img.raw"])
    back = read_volume(path)
    assert back.same_grid(vol, tol=1e-12)
    np.testing.assert_array_equal(back.compute(), vol.compute())


@pytest.mark.parametrize("name", ["small.mnc", "minc2_1_scale.mnc", "minc2_4d.mnc"])
def test_minc2_files_read_as_simpleitk_does(name: str) -> None:
    path = NIBABEL_DATA / name
    vol = read_volume(path)
    img = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(img)
    if img.GetNumberOfComponentsPerPixel() > 1:
        arr = np.moveaxis(arr, -1, 0)
    np.testing.assert_array_equal(vol.compute(), arr)
    np.testing.assert_allclose(vol.spacing, img.GetSpacing())
    np.testing.assert_allclose(vol.direction.reshape(-1), img.GetDirection())


def test_minc1_is_refused_in_one_line() -> None:
    with pytest.raises(InputError) as err:
        read_volume(NIBABEL_DATA / "tiny.mnc")
    assert "\n" not in str(err.value)
    assert "cannot be read" in str(err.value)
