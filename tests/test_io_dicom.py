"""DICOM series from pydicom's bundled test data (files no one here wrote).

Used (all under ``pydicom/data/test_files/dicomdirtests/``):

* ``98892001/CT5N``  5 axial CT slices, 16x16, 0.488281 mm pixels, 2.5 mm apart (one series);
* ``98892001``       that series plus a 2-file scout series: two series -> an error;
* ``77654033/CT2``   4 CT slices of which 3 are contiguous (1.25 mm) and one 200 mm away;
* ``98892003/MR700`` 7 radial MR slices (orientations differ) -> an error;
* ``98892003/MR1``   3 single-slice sagittal MR localizer series;
* ``CT_small.dcm``, ``MR_small.dcm`` single slices (from ``pydicom/data/test_files``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from mousereg.errors import InputError
from mousereg.io import read_volume

DATA = Path(pydicom.__file__).parent / "data" / "test_files"
DIRTESTS = DATA / "dicomdirtests"


def _headers(folder: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in sorted(folder.iterdir()) if p.is_file()]


def _expected(datasets: list[pydicom.Dataset]) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Voxels, direction and spacing computed from pydicom's own header values."""
    iop = np.asarray(datasets[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    order = sorted(datasets, key=lambda d: float(np.dot(d.ImagePositionPatient, normal)))
    planes = [
        d.pixel_array * float(d.get("RescaleSlope", 1)) + float(d.get("RescaleIntercept", 0))
        for d in order
    ]
    positions = np.asarray([np.dot(d.ImagePositionPatient, normal) for d in order])
    dz = float(np.diff(positions).mean()) if len(order) > 1 else float(order[0].SliceThickness)
    ps = [float(v) for v in order[0].PixelSpacing]
    direction = np.column_stack([iop[:3], iop[3:], normal])
    return np.stack(planes), direction, [ps[1], ps[0], dz]


def test_ct_series_stacks_with_header_geometry() -> None:
    folder = DIRTESTS / "98892001" / "CT5N"
    vol = read_volume(folder)
    datasets = _headers(folder)
    voxels, direction, spacing = _expected(datasets)
    assert vol.shape == (5, 16, 16)
    assert vol.modality == "CT"
    np.testing.assert_allclose(vol.spacing, [0.488281, 0.488281, 2.5], atol=1e-6)
    np.testing.assert_allclose(vol.spacing, spacing, atol=1e-9)
    np.testing.assert_allclose(vol.direction, direction, atol=1e-9)
    lowest = min(datasets, key=lambda d: float(d.ImagePositionPatient[2]))
    np.testing.assert_allclose(vol.origin, [float(v) for v in lowest.ImagePositionPatient])
    np.testing.assert_array_equal(vol.compute(), voxels)
    # last voxel centre = the top slice's position
    top = max(datasets, key=lambda d: float(d.ImagePositionPatient[2]))
    corner = vol.index_to_physical([0, 0, 4])
    np.testing.assert_allclose(corner, [float(v) for v in top.ImagePositionPatient], atol=1e-6)


def test_two_series_need_a_uid() -> None:
    folder = DIRTESTS / "98892001"
    with pytest.raises(InputError) as err:
        read_volume(folder)
    text = str(err.value)
    assert "\n" not in text
    assert "--series" in text
    for uid in (
        "1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.2",
        "1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.6",
    ):
        assert uid in text
    vol = read_volume(folder, series="1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.6")
    np.testing.assert_array_equal(vol.compute(), read_volume(folder / "CT5N").compute())
    with pytest.raises(InputError, match=r"no series 1\.2\.3"):
        read_volume(folder, series="1.2.3")


def test_gap_in_series_is_refused_and_contiguous_part_reads(tmp_path: Path) -> None:
    folder = DIRTESTS / "77654033" / "CT2"
    with pytest.raises(InputError, match="uneven"):
        read_volume(folder)
    for name in ("17136", "17166", "17196"):
        shutil.copy(folder / name, tmp_path / name)
    vol = read_volume(tmp_path)
    voxels, direction, spacing = _expected(_headers(tmp_path))
    np.testing.assert_allclose(vol.spacing, spacing, atol=1e-9)
    assert vol.spacing[2] == pytest.approx(1.25, abs=1e-4)
    np.testing.assert_allclose(vol.direction, direction, atol=1e-9)
    np.testing.assert_array_equal(vol.compute(), voxels)


def test_radial_slices_are_refused() -> None:
    with pytest.raises(InputError, match="different orientations"):
        read_volume(DIRTESTS / "98892003" / "MR700")


def test_sagittal_single_slice_orientation() -> None:
    folder = DIRTESTS / "98892003" / "MR1"
    uid = "1.3.6.1.4.1.5962.1.1.0.0.0.1196533885.18148.0.475"
    vol = read_volume(folder, series=uid)
    ds = pydicom.dcmread(folder / "15820")
    assert vol.shape == (1, int(ds.Rows), int(ds.Columns))
    np.testing.assert_allclose(vol.direction[:, 0], [0, 1, 0], atol=1e-9)  # rows run P
    np.testing.assert_allclose(vol.direction[:, 1], [0, 0, -1], atol=1e-9)  # columns run I
    np.testing.assert_allclose(vol.direction[:, 2], [-1, 0, 0], atol=1e-9)
    np.testing.assert_allclose(vol.origin, [float(v) for v in ds.ImagePositionPatient])
    np.testing.assert_array_equal(vol.compute()[0], ds.pixel_array)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_single_files(name: str, tmp_path: Path) -> None:
    shutil.copy(DATA / name, tmp_path / name)
    vol = read_volume(tmp_path)
    voxels, direction, spacing = _expected(_headers(tmp_path))
    np.testing.assert_allclose(vol.direction, direction, atol=1e-9)
    np.testing.assert_allclose(vol.spacing[:2], spacing[:2], atol=1e-9)
    np.testing.assert_array_equal(vol.compute(), voxels)


def test_folder_without_dicom(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(InputError, match="no DICOM images"):
        read_volume(tmp_path)
