"""Chunked warping of a >= 4 GiB float32 Zarr volume with bounded memory (issue 5).

Makes a smooth float32 volume of N^3 voxels (default 1024^3 = 4 GiB) chunk by chunk with zarr,
warps it through a rigid transform (10 degree rotation + shift about the centre, linear
interpolation) with ``mousereg.resample`` and ``dask.array.store`` into another Zarr store on a
threaded scheduler with 2 threads, and compares with ``sitk.Resample`` of a 1 GiB subset in memory
(the whole 4 GiB in and out of SimpleITK would need about 12 GiB on a machine other jobs share).
Every case runs in its own subprocess; the peak RSS is that process's ``ru_maxrss``.

    .venv/bin/python benchmarks/bench_resample.py [--size 1024] [--chunk 128] [--workdir DIR]

Prints a markdown table (paste it into benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

THREADS = 2
SPACING = 0.14  # mm, the CT's voxel size
ANGLE_DEG = 10.0
SHIFT_MM = (1.3, -0.7, 2.1)


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB -> GiB


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_volume(path: Path, size: int, chunk: int) -> float:
    """Write a smooth N^3 float32 volume chunk by chunk; returns seconds."""
    import zarr

    t0 = time.perf_counter()
    arr = zarr.create_array(
        store=str(path),
        shape=(size,) * 3,
        chunks=(chunk,) * 3,
        dtype="float32",
        compressors=None,
        overwrite=True,
    )
    for z in range(0, size, chunk):
        zz = np.arange(z, min(z + chunk, size), dtype=np.float32)[:, None, None]
        for y in range(0, size, chunk):
            yy = np.arange(y, min(y + chunk, size), dtype=np.float32)[None, :, None]
            for x in range(0, size, chunk):
                xx = np.arange(x, min(x + chunk, size), dtype=np.float32)[None, None, :]
                block = np.sin(xx / 37.0) * np.cos(yy / 23.0) + np.sin(zz / 51.0) + 0.001 * xx
                arr[z : z + chunk, y : y + chunk, x : x + chunk] = block
    return time.perf_counter() - t0


def _transform(centre: np.ndarray):  # -> Transform
    from mousereg.registration import Transform

    a = np.deg2rad(ANGLE_DEG)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return Transform.from_matrix(rot, translation=SHIFT_MM, center=centre)


def _source(path: Path, subset: int | None):  # -> Volume
    import dask.array as da

    from mousereg.volume import Volume

    data = da.from_zarr(str(path))
    if subset is not None:
        data = data[:subset]
    return Volume(data, spacing=(SPACING,) * 3)


def child_mousereg(path: Path, out: Path, subset: int | None) -> dict[str, float]:
    """Chunked Zarr -> Zarr warp with mousereg.resample + dask.array.store."""
    import dask
    import dask.array as da
    import zarr

    from mousereg.resample import resample

    src = _source(path, subset)
    t = _transform(src.center())
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    warped = resample(src, src, t, interpolation="linear")
    target = zarr.create_array(
        store=str(out),
        shape=warped.data.shape,
        chunks=tuple(c[0] for c in warped.data.chunks),
        dtype="float32",
        compressors=None,
        overwrite=True,
    )
    with dask.config.set(scheduler="threads", num_workers=THREADS):
        da.store(warped.data, target, lock=False)
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    return {
        "seconds": seconds,
        "cpu_s": cpu,
        "bytes": float(warped.data.nbytes),
        "rss_gib": _peak_rss_gib(),
    }


def child_sitk(path: Path, subset: int, compare: Path | None) -> dict[str, float]:
    """In-memory sitk.Resample of the subset (load time excluded), then an equality check."""
    import SimpleITK as sitk
    import zarr

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(THREADS)
    src = _source(path, subset)
    t = _transform(src.center())
    image = sitk.GetImageFromArray(np.asarray(zarr.open_array(str(path))[:subset]))
    image.SetSpacing(src.spacing)
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    out = sitk.Resample(image, image, t.to_sitk(), sitk.sitkLinear, 0.0)
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    result = {
        "seconds": seconds,
        "cpu_s": cpu,
        "bytes": float(src.data.nbytes),
        "rss_gib": _peak_rss_gib(),
    }
    if compare is not None:
        del image
        ours = zarr.open_array(str(compare))
        expected = sitk.GetArrayViewFromImage(out)
        diff = 0.0
        for z in range(0, subset, 64):
            diff = max(diff, float(np.abs(ours[z : z + 64] - expected[z : z + 64]).max()))
        result["max_abs_diff"] = diff
    return result


def _run_child(*args: str) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", *args]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="edge of the N^3 volume")
    parser.add_argument("--chunk", type=int, default=128)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", nargs="+", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path, rest = args.child[0], Path(args.child[1]), args.child[2:]
        if kind == "mousereg":
            subset = int(rest[1]) if rest[1] != "all" else None
            doc = child_mousereg(path, Path(rest[0]), subset)
        else:
            doc = child_sitk(path, int(rest[0]), Path(rest[1]) if len(rest) > 1 else None)
        print(json.dumps(doc))
        return
    work = Path(tempfile.mkdtemp(prefix="bench_resample_", dir=args.workdir))
    try:
        src = work / "source.zarr"
        gen = make_volume(src, args.size, args.chunk)
        subset = max(1, args.size // 4)  # a quarter of the slabs: 1 GiB of 4 GiB
        rows = [
            ("mousereg chunked, Zarr -> Zarr", _run_child("mousereg", str(src),
             str(work / "out_all.zarr"), "all")),
            ("mousereg chunked, Zarr -> Zarr", _run_child("mousereg", str(src),
             str(work / "out_sub.zarr"), str(subset))),
            ("SimpleITK Resample in memory", _run_child("sitk", str(src),
             str(subset), str(work / "out_sub.zarr"))),
        ]  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sitk_rate = rows[2][1]["bytes"] / rows[2][1]["seconds"] / 2**20
    n = args.size
    print(f"volume {n}^3 float32 = {n**3 * 4 / 2**30:.2f} GiB, chunks {args.chunk}^3, "
          f"generated in {gen:.0f} s; subset {subset}x{n}x{n} = {subset * n * n * 4 / 2**30:.2f} "
          f"GiB; rigid {ANGLE_DEG:g} deg + shift, linear; {THREADS} threads")  # fmt: skip
    print()
    print(
        "| case | volume | wall (s) | CPU (s) | throughput (MB/s) | vs SimpleITK | peak RSS (GiB) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in rows:
        rate = r["bytes"] / r["seconds"] / 2**20
        size = f"{r['bytes'] / 2**30:.2f} GiB"
        print(
            f"| {name} | {size} | {r['seconds']:.1f} | {r['cpu_s']:.1f} | {rate:.1f} | "
            f"{rate / sitk_rate:.2f} | {r['rss_gib']:.2f} |"
        )
    print()
    diff = rows[2][1].get("max_abs_diff", float("nan"))
    print(f"max |mousereg - SimpleITK| on the subset: {diff:.2e}")


if __name__ == "__main__":
    main()
