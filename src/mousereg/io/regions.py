"""Chunk-aligned regions and bounded-memory streaming of dask arrays into Zarr arrays."""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dask
import dask.array as da
import dask.threaded
import numpy as np
from dask.base import get_scheduler

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


@contextlib.contextmanager
def _joined_pool(sample: da.Array) -> Iterator[dict[str, Any]]:
    """``compute`` options for a private thread pool that is joined on exit.

    With dask's shared pool a failing task returns control while the other workers still
    write chunks; joining ours guarantees nothing writes after the caller cleans up. Other
    schedulers (a distributed client) are left as configured.
    """
    if get_scheduler(collections=[sample]) is not dask.threaded.get:
        yield {}
        return
    workers = int(dask.config.get("num_workers", None) or os.cpu_count() or 1)
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        yield {"scheduler": "threads", "pool": pool}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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
    with _joined_pool(source) as options:
        for region in iter_regions(tuple(target.shape), block):
            sizes = tuple(min(c, r.stop - r.start) for c, r in zip(chunks, region, strict=True))
            da.store(source[region].rechunk(sizes), target, regions=region, lock=False, **options)
