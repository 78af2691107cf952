"""I/O benchmark: a >= 2 GiB uncompressed NIfTI -> OME-Zarr in bounded memory; CLI start-up.

Generates the NIfTI (int16, oblique header, smooth phantom + noise) slab by slab in a temporary
folder, converts it with ``mousereg convert`` in a child process, reads that process's peak RSS
from ``getrusage(RUSAGE_CHILDREN)``, spot-checks voxels of the result against the source, and
deletes everything. Then times ``mousereg --help`` (median of 5). Prints a markdown table.

Usage: .venv/bin/python benchmarks/bench_io.py [--size 1024] [--ngff 0.4] [--keep-tmp DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.spatial.transform import Rotation

BIN = Path(sys.executable).parent


def make_nifti(path: Path, n: int) -> int:
    """Write an n^3 int16 NIfTI plane by plane; return its size in bytes."""
    affine = np.eye(4)
    affine[:3, :3] = Rotation.from_euler("xyz", [5, -8, 12], degrees=True).as_matrix() @ np.diag(
        [0.14, 0.14, 0.14]
    )
    affine[:3, 3] = [-70.0, -70.0, -70.0]
    header = nib.Nifti1Header()
    header.set_data_shape((n, n, n))
    header.set_data_dtype(np.int16)
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    header.set_xyzt_units("mm")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:n, 0:n].astype(np.float32) / n - 0.5
    texture = (1000.0 + 300.0 * np.sin(20 * x) * np.cos(15 * y)).astype(np.int16)
    with open(path, "wb") as fh:
        header.write_to(fh)
        fh.write(b"\0" * (int(header.get_data_offset()) - fh.tell()))
        for k in range(n):
            z = k / n - 0.5
            body = (x**2 / 0.16 + y**2 / 0.09 + z**2 / 0.2) < 1.0
            plane = np.where(body, texture, np.int16(-1000))
            plane += rng.integers(-40, 41, size=plane.shape, dtype=np.int16)  # noise
            fh.write(plane.astype("<i2").tobytes(order="C"))  # (y, x) C order = x fastest
    return path.stat().st_size


def convert_in_child(src: Path, dst: Path, ngff: str) -> tuple[float, float, float]:
    """Run ``mousereg convert``; return (wall s, child CPU s, child peak RSS in MiB)."""
    start = time.perf_counter()
    subprocess.run(
        [str(BIN / "mousereg"), "convert", str(src), str(dst), "--ngff", ngff], check=True
    )
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def spot_check(src: Path, dst: Path) -> tuple[int, int]:
    """Compare 8 random 32^3 blocks of level 0 with the source; return (levels, mismatches)."""
    import zarr

    from mousereg.io import read_volume

    vol = read_volume(dst)
    ref = read_volume(src)
    rng = np.random.default_rng(1)
    bad = 0
    for _ in range(8):
        z, y, x = (int(rng.integers(0, s - 32)) for s in vol.shape)
        sl = (slice(z, z + 32), slice(y, y + 32), slice(x, x + 32))
        bad += int(np.count_nonzero(vol.data[sl].compute() != ref.data[sl].compute()))
    levels = len([k for k in zarr.open_group(str(dst), mode="r").array_keys()])
    return levels, bad


def help_time() -> float:
    """Median wall time of ``mousereg --help`` over 5 runs (seconds)."""
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([str(BIN / "mousereg"), "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="edge of the cube (1024 = 2 GiB)")
    parser.add_argument("--ngff", default="0.4", choices=["0.4", "0.5"])
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the temporary files")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_io_", dir=args.tmp))
    try:
        src, dst = tmp / "big.nii", tmp / "big.zarr"
        t0 = time.perf_counter()
        size = make_nifti(src, args.size)
        gen = time.perf_counter() - t0
        load_before = os.getloadavg()[0]
        wall, cpu, peak = convert_in_child(src, dst, args.ngff)
        load_after = os.getloadavg()[0]
        levels, bad = spot_check(src, dst)
        out = folder_bytes(dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    helps = help_time()
    rows = [
        ("input", f"NIfTI int16 {args.size}^3, uncompressed, {size / 2**30:.2f} GiB"),
        ("generate input (s)", f"{gen:.1f}"),
        (f"convert -> OME-Zarr {args.ngff} (s)", f"{wall:.1f}"),
        ("throughput (MB/s of input, wall clock)", f"{size / 1e6 / wall:.1f}"),
        ("CPU time of the converting process (s)", f"{cpu:.1f}"),
        ("throughput per CPU-second (MB/s, load-independent)", f"{size / 1e6 / cpu:.1f}"),
        ("peak RSS of the converting process (MiB)", f"{peak:.0f}"),
        ("pyramid levels / output size (GiB)", f"{levels} / {out / 2**30:.2f}"),
        ("spot-check mismatches (8 blocks of 32^3)", f"{bad}"),
        ("`mousereg --help` median of 5 (s)", f"{helps:.3f}"),
        ("load average (1 min) before / after converting", f"{load_before:.1f} / {load_after:.1f}"),
    ]
    print(f"Machine: {platform.node()} - 2 cores, 24 GiB RAM; Python {platform.python_version()}")
    print()
    print("| measure | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
