"""NIfTI-1/2 reading through nibabel, in the frame SimpleITK reports.

``.nii`` is read lazily: each dask block memory-maps the file, copies out its (z, y, x) region
and unmaps again, so only blocks in flight occupy memory (one whole-file map would keep every
page it touched resident). ``.nii.gz`` is decompressed once (gzip cannot seek cheaply).

The frame is converted to LPS exactly as SimpleITK/ITK reads it
(:mod:`mousereg.io.nifti_frame`); ``scl_slope``/``scl_inter`` are applied as ITK does (to
float32). One deliberate difference: ITK reads NaN voxels as 0; mousereg keeps them.
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


class _Layout:
    """How a NIfTI file's (x, y, z[, t, c]) Fortran array maps to our (c,) z, y, x array."""

    def __init__(self, proxy: Any, shape_f: tuple[int, ...], channels: int) -> None:
        self.offset = int(proxy.offset)
        self.file_dtype = np.dtype(proxy.dtype)
        self.shape_f = shape_f
        slope, inter = float(proxy.slope), float(proxy.inter)
        self.scaled = bool(np.isfinite(slope) and slope != 0 and (slope != 1 or inter != 0))
        self.slope, self.inter = slope, inter
        native = self.file_dtype.newbyteorder("=")
        if self.scaled:
            native = np.dtype(np.float64 if native == np.float64 else np.float32)
        self.dtype = native
        x, y, z = shape_f[:3]
        self.shape = (channels, z, y, x) if channels > 1 else (z, y, x)
        self.ndim = len(self.shape)

    def view(self, raw: np.ndarray) -> np.ndarray:
        """The (c,) z, y, x view of the file's Fortran-ordered array."""
        out = raw.reshape((*self.shape_f[:3], -1), order="F").transpose(3, 2, 1, 0)
        return out[0] if self.ndim == 3 else out

    def finish(self, block: np.ndarray) -> np.ndarray:
        """Native byte order, then ITK's rescale (to float32) when the header asks for one."""
        out = np.array(block, dtype=self.file_dtype.newbyteorder("="))
        if self.scaled:
            out = out.astype(self.dtype) * self.dtype.type(self.slope)
            out += self.dtype.type(self.inter)
        return out


class _MappedRegions:
    """Array-like for dask: every ``[...]`` maps the file, copies the region and unmaps it."""

    def __init__(self, path: Path, layout: _Layout) -> None:
        self.path, self.layout = path, layout
        self.shape, self.dtype, self.ndim = layout.shape, layout.dtype, layout.ndim

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        from nibabel.volumeutils import array_from_file

        lay = self.layout
        with open(self.path, "rb") as fh:
            mm = array_from_file(lay.shape_f, lay.file_dtype, fh, lay.offset, "F", mmap="r")
            out = lay.finish(lay.view(mm)[key])
            del mm
        return out


def _load(path: Path) -> Any:
    import nibabel as nib

    try:
        return nib.load(str(path), mmap=True)
    except Exception as exc:
        msg = f"{path}: cannot be read as NIfTI ({type(exc).__name__}: {exc}); is it truncated?"
        raise InputError(msg) from exc


def _read_compressed(path: Path, img: Any, layout: _Layout) -> np.ndarray:
    from nibabel.volumeutils import array_from_file

    try:
        with img.dataobj._get_fileobj() as fh:
            raw = array_from_file(
                layout.shape_f, layout.file_dtype, fh, layout.offset, "F", mmap=False
            )
    except Exception as exc:
        msg = f"{path}: cannot be read ({type(exc).__name__}: {exc}); is it truncated?"
        raise InputError(msg) from exc
    return layout.finish(layout.view(raw))


def read_nifti(path: Path) -> Volume:
    """Read a ``.nii`` (lazily, ~32 MiB z-slab blocks) or ``.nii.gz`` as a Volume."""
    img = _load(path)
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
    layout = _Layout(img.dataobj, (*shape[:3], channels), channels)
    frame = frame_from_header(header, str(path))
    plane = shape[0] * shape[1] * layout.dtype.itemsize
    kz = max(1, min(shape[2], BLOCK_BYTES // max(plane, 1)))
    chunks: tuple[int, ...] = (kz, shape[1], shape[0])
    if layout.ndim == 4:
        chunks = (1, *chunks)
    if path.name.lower().endswith(".gz"):
        data = da.from_array(_read_compressed(path, img, layout), chunks=chunks)
    else:
        needed = layout.offset + math.prod(layout.shape_f) * layout.file_dtype.itemsize
        size = os.path.getsize(path)
        if size < needed:
            msg = f"{path}: is truncated ({size} of {needed} bytes); copy it again"
            raise InputError(msg)
        stat = path.stat()
        token = da.core.tokenize(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        data = da.from_array(
            _MappedRegions(path, layout),
            chunks=chunks,
            lock=False,
            name=f"nifti-{token}",
            meta=np.empty((0,) * layout.ndim, dtype=layout.dtype),
        )
    return Volume(data=data, spacing=frame.spacing, origin=frame.origin, direction=frame.direction)
