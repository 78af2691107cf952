"""Bad input on the command line: exit status 2, one line naming the input, no traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import zarr
from click.testing import CliRunner

from mousereg.cli import main
from mousereg.io import write_volume
from mousereg.volume import Volume

DICOM_TWO_SERIES = Path(pydicom.__file__).parent / "data/test_files/dicomdirtests/98892001"


def _small() -> Volume:
    arr = np.arange(20 * 21 * 22, dtype=np.int16).reshape(20, 21, 22)
    return Volume(data=arr, spacing=(0.5, 0.5, 1.0), origin=(1.0, 2.0, 3.0))


def _missing(tmp: Path) -> Path:
    return tmp / "nowhere.nii.gz"


def _garbage(tmp: Path) -> Path:
    path = tmp / "garbage.nrrd"
    path.write_bytes(b"NRRD0004\nthis is not a header\n\x00\x01")
    return path


def _truncated_nii(tmp: Path) -> Path:
    path = tmp / "cut.nii"
    write_volume(_small(), path)
    path.write_bytes(path.read_bytes()[:-500])
    return path


def _truncated_mha(tmp: Path) -> Path:
    path = tmp / "cut.mha"
    noise = np.random.default_rng(0).integers(0, 30000, size=(20, 21, 22)).astype(np.int16)
    write_volume(_small().with_array(noise), path)
    path.write_bytes(path.read_bytes()[:-500])
    return path


def _truncated_zarr(tmp: Path) -> Path:
    path = tmp / "cut.zarr"
    write_volume(_small(), path)
    shutil.rmtree(path / "0" / "0")
    return path


def _zarr_metadata_gone(tmp: Path) -> Path:
    path = tmp / "nometa.zarr"
    write_volume(_small(), path)
    (path / ".zattrs").unlink()
    (path / ".zgroup").unlink()
    return path


def _not_ngff(tmp: Path) -> Path:
    path = tmp / "plain.zarr"
    zarr.open_group(str(path), mode="w").create_array("0", shape=(4, 4, 4), dtype="u1")
    return path


def _sheared_nifti(tmp: Path) -> Path:
    aff = np.array([[1.0, 0.4, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    img = nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), aff)
    img.set_qform(None, code=0)
    img.set_sform(aff, code=1)
    path = tmp / "sheared.nii"
    nib.save(img, path)
    return path


def _sheared_mha(tmp: Path) -> Path:
    path = tmp / "sheared.mha"
    write_volume(_small(), path)
    text = path.read_bytes()
    text = text.replace(
        b"TransformMatrix = 1 0 0 0 1 0 0 0 1", b"TransformMatrix = 1 0.5 0 0 1 0 0 0 1"
    )
    path.write_bytes(text)
    return path


def _unknown_suffix(tmp: Path) -> Path:
    path = tmp / "scan.tif"
    path.write_bytes(b"II*\x00")
    return path


CASES = {
    "missing path": (_missing, "no such file"),
    "unreadable file": (_garbage, "cannot be read"),
    "truncated nii": (_truncated_nii, "truncated"),
    "truncated mha": (_truncated_mha, "data not read completely"),
    "truncated zarr chunks": (_truncated_zarr, "truncated"),
    "truncated zarr metadata": (_zarr_metadata_gone, "truncated"),
    "zarr not ngff": (_not_ngff, "not an OME-NGFF image"),
    "sheared nifti": (_sheared_nifti, "not orthonormal"),
    "sheared mha": (_sheared_mha, "not orthonormal"),
    "unknown suffix": (_unknown_suffix, "unknown image suffix"),
}


def _check_one_line(result_code: int, stderr: str, path: Path, expect: str) -> None:
    assert result_code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("mousereg: error: ")
    assert str(path) in lines[0]
    assert expect in lines[0]
    assert "Traceback" not in stderr


@pytest.mark.parametrize("case", list(CASES))
def test_info_bad_input(case: str, tmp_path: Path) -> None:
    make, expect = CASES[case]
    path = make(tmp_path)
    result = CliRunner().invoke(main, ["info", str(path)])
    _check_one_line(result.exit_code, result.stderr, path, expect)


@pytest.mark.parametrize("case", list(CASES))
def test_convert_bad_input_writes_nothing(case: str, tmp_path: Path) -> None:
    make, expect = CASES[case]
    (tmp_path / "in").mkdir()
    path = make(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(main, ["convert", str(path), str(out / "x.zarr")])
    _check_one_line(result.exit_code, result.stderr, path, expect)
    assert list(out.iterdir()) == []


def test_two_dicom_series(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["info", str(DICOM_TWO_SERIES)])
    _check_one_line(result.exit_code, result.stderr, DICOM_TWO_SERIES, "pass --series UID")
    uid = "1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.6"
    out = tmp_path / "ct.zarr"
    ok = CliRunner().invoke(main, ["convert", str(DICOM_TWO_SERIES), str(out), "--series", uid])
    assert ok.exit_code == 0, ok.output
    info = CliRunner().invoke(main, ["info", str(out)])
    assert '"shape_zyx": [\n    5,\n    16,\n    16\n  ]' in info.stdout


def test_unknown_output_suffix(tmp_path: Path) -> None:
    src = tmp_path / "a.nrrd"
    write_volume(_small(), src)
    dst = tmp_path / "a.tiff"
    result = CliRunner().invoke(main, ["convert", str(src), str(dst)])
    _check_one_line(result.exit_code, result.stderr, dst, "unknown image suffix")
    assert not dst.exists()


@pytest.mark.parametrize("case", ["truncated zarr chunks", "truncated mha", "sheared nifti"])
def test_real_process_exit_status(case: str, tmp_path: Path) -> None:
    """A real process (C++ libraries print to fd 2 too): status 2, one line; --debug shows more."""
    make, expect = CASES[case]
    path = make(tmp_path)
    cmd = [sys.executable, "-m", "mousereg.cli", "info", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    _check_one_line(proc.returncode, proc.stderr, path, expect)
    debug = subprocess.run(
        [sys.executable, "-m", "mousereg.cli", "--debug", "info", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" in debug.stderr
