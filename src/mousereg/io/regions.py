"""Chunk-aligned regions and bounded-memory streaming of dask arrays into Zarr arrays."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import dask.array as da
import numpy as np

Region = tuple[slice, ...]
DEFAULT_REGION_BYTES = 64 * 2**20


def region_shape(
    shape: tuple[int, ...], chunks: tuple[int, ...], itemsize: int, max_bytes: int
) -> tuple[int, ...]:
    """The largest chunk-aligned block under ``max_bytes``, grown from the last axis to the first.

    Growing the fastest (last) axis first keeps each region contiguous in C- and F-ordered
    sources alike for full rows.
    """
    block = list(chunks)
    for axis in reversed(range(len(shape))):
        per_chunk = itemsize * math.prod(block)
        n = max(1, min(math.ceil(shape[axis] / chunks[axis]), max_bytes // max(per_chunk, 1)))
        block[axis] = min(shape[axis], chunks[axis] * n)
        if n * chunks[axis] < shape[axis]:
            break
    return tuple(min(b, s) for b, s in zip(block, shape, strict=True))


def iter_regions(shape: tuple[int, ...], block: tuple[int, ...]) -> Iterator[Region]:
    """Every region of size ``block`` (the last ones clipped) tiling ``shape``, C order."""
    starts = [range(0, n, b) for n, b in zip(shape, block, strict=True)]
    for corner in itertools.product(*starts):
        yield tuple(slice(c, min(c + b, n)) for c, b, n in zip(corner, block, shape, strict=True))


def store_by_regions(
    source: da.Array, target: Any, *, max_bytes: int = DEFAULT_REGION_BYTES
) -> None:
    """Write ``source`` into the Zarr array ``target`` one chunk-aligned region at a time.

    Only one region (plus the dask tasks that produce it) is in memory at once, so a volume
    larger than memory streams through.
    """
    if tuple(source.shape) != tuple(target.shape):
        msg = f"internal error: source shape {source.shape} != target shape {target.shape}"
        raise ValueError(msg)
    chunks = tuple(int(c) for c in target.chunks)
    block = region_shape(tuple(target.shape), chunks, np.dtype(target.dtype).itemsize, max_bytes)
    for region in iter_regions(tuple(target.shape), block):
        part = source[region].rechunk(
            tuple(min(c, r.stop - r.start) for c, r in zip(chunks, region, strict=True))
        )
        da.store(part, target, regions=region, lock=False, compute=True)
