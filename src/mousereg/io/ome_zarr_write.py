"""Write a :class:`~mousereg.volume.Volume` as OME-Zarr (NGFF 0.4 on Zarr v2, 0.5 on Zarr v3).

Layout (docs/formats.md): the image pyramid at the root (arrays ``0``, ``1``, ...), and label
maps in ``labels/<name>/`` with ``image-label`` metadata. Every level is streamed region by
region; level ``n+1`` is computed from level ``n`` as stored, never from the whole volume.
The store is built in a temporary sibling folder and renamed into place on success.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import dask.array as da
import numpy as np

from mousereg.errors import InputError
from mousereg.io import ngff_metadata as meta
from mousereg.io.atomic import atomic_path
from mousereg.io.pyramid import Level, downsample, plan_levels
from mousereg.io.regions import DEFAULT_REGION_BYTES, store_by_regions
from mousereg.volume import Volume

DEFAULT_CHUNK = 128
CHUNK_RANGE = (16, 512)
ZSTD_LEVEL = 3


def _compressor(zarr_format: int) -> Any:
    if zarr_format == 2:
        from numcodecs import Blosc

        return Blosc(cname="zstd", clevel=ZSTD_LEVEL, shuffle=Blosc.SHUFFLE)
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="zstd", clevel=ZSTD_LEVEL, shuffle="shuffle")


def _check_options(version: str, chunks: int | None) -> int:
    if version not in meta.NGFF_VERSIONS:
        msg = f"NGFF version {version!r} is not supported; use one of {meta.NGFF_VERSIONS}"
        raise InputError(msg)
    edge = DEFAULT_CHUNK if chunks is None else int(chunks)
    if not CHUNK_RANGE[0] <= edge <= CHUNK_RANGE[1]:
        msg = f"chunk edge {edge} is out of range; pass --chunks between 64 and 128"
        raise InputError(msg)
    return edge


def _group_name(volume: Volume) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", volume.modality).strip("_.")
    return name or "segmentation"


def _create_array(group: Any, name: str, shape: tuple[int, ...], edge: int, dtype: Any) -> Any:
    zarr_format = group.metadata.zarr_format
    lead = len(shape) - 3
    chunks = (1,) * lead + tuple(min(edge, n) for n in shape[lead:])
    options: dict[str, Any] = {}
    if zarr_format == 2:
        options["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
    else:
        options["dimension_names"] = (["c"] if lead else []) + list(meta.SPATIAL_AXES)
    return group.create_array(
        name,
        shape=shape,
        chunks=chunks,
        dtype=np.dtype(dtype),
        compressors=_compressor(zarr_format),
        fill_value=0,
        config={"write_empty_chunks": True},
        **options,
    )


def _write_pyramid(
    group: Any,
    data: da.Array,
    levels: list[Level],
    edge: int,
    *,
    labels: bool,
    max_bytes: int,
) -> list[Any]:
    """Write ``data`` as level 0 and each coarser level from the one below it."""
    lead = tuple(data.shape[: data.ndim - 3])
    arrays: list[Any] = []
    for i, level in enumerate(levels):
        target = _create_array(group, str(i), (*lead, *level.shape), edge, data.dtype)
        if i == 0:
            source, budget = data, max_bytes
        else:
            source = downsample(da.from_zarr(arrays[-1]), level.factors, labels=labels)
            budget = max(1, max_bytes // math.prod(level.factors))  # bounds the input read
        store_by_regions(source, target, max_bytes=budget)
        arrays.append(target)
    return arrays


def _windows(coarsest: Any, n_channels: int, multichannel: bool) -> list[tuple[float, float]]:
    arr = np.asarray(coarsest[...])
    planes = arr if multichannel else arr[np.newaxis]
    return [(float(p.min()), float(p.max())) for p in planes[:n_channels]]


def _multiscale_doc(
    name: str, volume: Volume, levels: list[Level], version: str, *, labels: bool
) -> dict[str, Any]:
    origin_zyx = volume.origin[::-1]
    return meta.multiscale(
        name,
        [lv.spacing for lv in levels],
        [tuple(o + d for o, d in zip(origin_zyx, lv.offset, strict=True)) for lv in levels],
        multichannel=volume.is_multichannel,
        version=version,
        labels=labels,
    )


def _own_attrs(volume: Volume, label_group: str | None) -> dict[str, Any]:
    return meta.mousereg_attrs(
        direction=volume.direction,
        origin=volume.origin,
        spacing=volume.spacing,
        dtype=str(volume.dtype),
        modality=volume.modality,
        channel_names=volume.channel_names,
        label_group=label_group,
    )


def _write_label_group(
    root: Any,
    name: str,
    volume: Volume,
    edge: int,
    version: str,
    max_bytes: int,
    copy_from: list[Any] | None = None,
) -> None:
    table = volume.labels
    if table is None or volume.is_multichannel:
        msg = f"label map {name!r} needs a label table and one channel"
        raise InputError(msg)
    group = root.require_group("labels").create_group(name)
    levels = plan_levels(volume.shape, volume.spacing[::-1], labels=True)
    if copy_from is not None:
        for i, src in enumerate(copy_from):
            store_by_regions(
                da.from_zarr(src),
                _create_array(group, str(i), src.shape, edge, src.dtype),
                max_bytes=max_bytes,
            )
    else:
        _write_pyramid(group, volume.data, levels, edge, labels=True, max_bytes=max_bytes)
    attrs = {
        "multiscales": [_multiscale_doc(name, volume, levels, version, labels=True)],
        "image-label": meta.image_label(table, version),
        meta.NAMESPACE: _own_attrs(volume, None),
    }
    group.attrs.update(meta.wrap(attrs, version))


def write_ome_zarr(
    volume: Volume,
    path: str | os.PathLike[str],
    *,
    ngff_version: str = "0.4",
    chunks: int | None = None,
    labels: Mapping[str, Volume] | None = None,
    max_region_bytes: int = DEFAULT_REGION_BYTES,
) -> None:
    """Write ``volume`` (and optional named label maps on its grid) as an OME-Zarr store.

    Args:
        volume: the image; when ``volume.labels`` is set it is a label map and is also written
            as ``labels/<modality or "segmentation">`` with its label table.
        path: the ``.zarr`` folder to create (replaced atomically if it exists).
        ngff_version: ``"0.4"`` (Zarr v2, default) or ``"0.5"`` (Zarr v3).
        chunks: spatial chunk edge (default 128); channels are one per chunk.
        labels: extra label maps (``Volume`` with ``labels`` set) on the same grid.
        max_region_bytes: memory bound of one streamed region.
    """
    import zarr

    edge = _check_options(ngff_version, chunks)
    extra = dict(labels or {})
    for name, lab in extra.items():
        if not volume.same_grid(lab):
            msg = f"label map {name!r} is not on the image grid; resample it first"
            raise InputError(msg)
    is_label_map = volume.labels is not None
    own_name = _group_name(volume) if is_label_map else None
    zarr_format: Literal[2, 3] = 2 if ngff_version == "0.4" else 3
    with atomic_path(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=zarr_format)
        levels = plan_levels(volume.shape, volume.spacing[::-1], labels=is_label_map)
        arrays = _write_pyramid(
            root, volume.data, levels, edge, labels=is_label_map, max_bytes=max_region_bytes
        )
        attrs: dict[str, Any] = {
            "multiscales": [
                _multiscale_doc(Path(path).stem, volume, levels, ngff_version, labels=is_label_map)
            ],
            meta.NAMESPACE: _own_attrs(volume, own_name),
        }
        if not is_label_map:
            attrs["omero"] = meta.omero(
                volume.channel_names or (volume.modality or "intensity",),
                _windows(arrays[-1], volume.n_channels, volume.is_multichannel),
            )
        if own_name is not None:
            _write_label_group(
                root, own_name, volume, edge, ngff_version, max_region_bytes, copy_from=arrays
            )
        for name, lab in extra.items():
            _write_label_group(root, name, lab, edge, ngff_version, max_region_bytes)
        names = ([own_name] if own_name else []) + list(extra)
        if names:
            root["labels"].attrs.update(meta.wrap({"labels": names}, ngff_version))
        root.attrs.update(meta.wrap(attrs, ngff_version))
