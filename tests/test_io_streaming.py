"""Bounded memory: a NIfTI several times the memory budget converts in a child process whose
peak RSS stays far below the file size (the benchmark does the 2 GiB case)."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mousereg.io import read_volume

SIZE = 640  # 640^3 int16 = 500 MiB


def _write_nifti(path: Path, n: int) -> None:
    header = nib.Nifti1Header()
    header.set_data_shape((n, n, n))
    header.set_data_dtype(np.int16)
    header.set_sform(np.diag([0.14, 0.14, 0.14, 1.0]), code=1)
    with open(path, "wb") as fh:
        header.write_to(fh)
        fh.write(b"\0" * (int(header.get_data_offset()) - fh.tell()))
        plane = (np.arange(n * n) % 30000).reshape(n, n)
        for k in range(n):
            fh.write((plane + k).astype("<i2").tobytes())


@pytest.mark.slow
def test_large_nifti_streams_in_bounded_memory(tmp_path: Path) -> None:
    src, dst = tmp_path / "big.nii", tmp_path / "big.zarr"
    _write_nifti(src, SIZE)
    code = f"from mousereg.io import convert; convert({str(src)!r}, {str(dst)!r})"
    subprocess.run([sys.executable, "-c", code], check=True)
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert peak_mib < 400, f"peak RSS {peak_mib:.0f} MiB for a {src.stat().st_size >> 20} MiB file"
    vol = read_volume(dst)
    assert vol.shape == (SIZE, SIZE, SIZE)
    block = vol.data[300:310, 17:40, 600:640].compute()
    k, j, i = np.meshgrid(
        np.arange(300, 310), np.arange(17, 40), np.arange(600, 640), indexing="ij"
    )
    np.testing.assert_array_equal(block, ((j * SIZE + i) % 30000 + k).astype(np.int16))
