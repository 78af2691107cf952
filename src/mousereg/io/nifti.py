"""Uncompressed NIfTI (``.nii``) read lazily: nibabel memory-maps the file region by region.

Each dask block maps the file, copies out its (z, y, x) region and unmaps it again, so only the
blocks in flight occupy memory (a whole-file map would keep every page it touched resident).
The frame is converted to LPS exactly as SimpleITK reads it (:mod:`mousereg.io.nifti_frame`);
``scl_slope``/``scl_inter`` are applied as ITK does (to float32), and NaN voxels read as 0, as
ITK's NIfTI reader returns them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from mousereg.errors import InputError
from mousereg.io.nifti_frame import frame_from_header
from mousereg.volume import Volume

BLOCK_BYTES = 32 * 2**20


class _RegionReader:
    """Array-like view ``(c, z, y, x)`` of a NIfTI file; each ``[...]`` maps, copies, unmaps."""

    def __init__(self, path: Path, proxy: Any, shape_f: tuple[int, ...], channels: int) -> None:
        self.path = path
        self.offset = int(proxy.offset)
        self.file_dtype = np.dtype(proxy.dtype)
        self.shape_f = shape_f
        slope, inter = float(proxy.slope), float(proxy.inter)
        self.scaled = np.isfinite(slope) and slope != 0 and (slope != 1 or inter != 0)
        self.slope, self.inter = slope, inter
        native = self.file_dtype.newbyteorder("=")
        if self.scaled:
            native = np.dtype(np.float64 if native == np.float64 else np.float32)
        self.dtype = native
        x, y, z = shape_f[:3]
        self.shape = (channels, z, y, x) if channels > 1 else (z, y, x)
        self.ndim = len(self.shape)

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        from nibabel.volumeutils import array_from_file

        with open(self.path, "rb") as fh:
            mm = array_from_file(self.shape_f, self.file_dtype, fh, self.offset, "F", mmap="r")
            view = mm.reshape((*self.shape_f[:3], -1), order="F").transpose(3, 2, 1, 0)
            if self.ndim == 3:
                view = view[0]
            out = np.array(view[key], dtype=self.file_dtype.newbyteorder("="))
            del view, mm
        if self.scaled:
            out = (out.astype(self.dtype) * self.dtype.type(self.slope)) + self.dtype.type(
                self.inter
            )
        if out.dtype.kind == "f":
            np.nan_to_num(out, copy=False, nan=0.0, posinf=np.inf, neginf=-np.inf)
        return out


def read_nifti_lazy(path: Path) -> Volume:
    """Read an uncompressed ``.nii`` as a lazily chunked Volume (z-slab blocks of ~32 MiB)."""
    import nibabel as nib

    try:
        img: Any = nib.load(str(path), mmap=True)
    except Exception as exc:
        msg = f"{path}: cannot be read as NIfTI ({type(exc).__name__}: {exc}); is it a NIfTI file?"
        raise InputError(msg) from exc
    header = img.header
    shape = tuple(int(n) for n in img.shape)
    if len(shape) < 3:
        msg = f"{path}: has {len(shape)} dimensions; mousereg reads 3-D volumes"
        raise InputError(msg)
    extra = shape[3:]
    if sum(1 for n in extra if n > 1) > 1:
        msg = (
            f"{path}: has dimensions {shape}; only one axis beyond x, y, z (channels) is supported"
        )
        raise InputError(msg)
    channels = math.prod(extra) if extra else 1
    shape_f = (*shape[:3], channels)
    needed = int(img.dataobj.offset) + math.prod(shape_f) * np.dtype(img.dataobj.dtype).itemsize
    if os.path.getsize(path) < needed:
        msg = f"{path}: is truncated ({os.path.getsize(path)} of {needed} bytes); copy it again"
        raise InputError(msg)
    frame = frame_from_header(header, str(path))
    reader = _RegionReader(path, img.dataobj, shape_f, channels)
    plane = shape[0] * shape[1] * reader.dtype.itemsize
    kz = max(1, min(shape[2], BLOCK_BYTES // max(plane, 1)))
    chunks: tuple[int, ...] = (kz, shape[1], shape[0])
    if reader.ndim == 4:
        chunks = (1, *chunks)
    stat = path.stat()
    data = da.from_array(
        reader,
        chunks=chunks,
        lock=False,
        name=f"nifti-{da.core.tokenize(str(path.resolve()), stat.st_mtime_ns, stat.st_size)}",
        meta=np.empty((0,) * reader.ndim, dtype=reader.dtype),
    )
    return Volume(data=data, spacing=frame.spacing, origin=frame.origin, direction=frame.direction)
