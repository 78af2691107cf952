"""Reading and writing the atlas's zarr volumes, checksums and ``atlas.json`` (atomic writes).

Each ``*.zarr`` of an atlas is a zarr group holding one array ``"0"`` (a one-level OME-NGFF-style
multiscale) with ``multiscales`` metadata (scale and translation in z, y, x) and the full frame
(spacing, origin, direction, channel names) under the ``"mousereg"`` attribute.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from mousereg.atlas import format as fmt
from mousereg.errors import InputError
from mousereg.io.atomic import atomic_path, write_text
from mousereg.volume import Volume


def _ngff_attrs(volume: Volume) -> dict[str, Any]:
    sx, sy, sz = volume.spacing
    ox, oy, oz = volume.origin
    axes = [{"name": n, "type": "space", "unit": "millimeter"} for n in ("z", "y", "x")]
    scale = [sz, sy, sx]
    translation = [oz, oy, ox]
    if volume.is_multichannel:
        axes = [{"name": "c", "type": "channel"}, *axes]
        scale = [1.0, *scale]
        translation = [0.0, *translation]
    return {
        "multiscales": [
            {
                "version": "0.4",
                "axes": axes,
                "datasets": [
                    {
                        "path": "0",
                        "coordinateTransformations": [
                            {"type": "scale", "scale": scale},
                            {"type": "translation", "translation": translation},
                        ],
                    }
                ],
            }
        ],
        "mousereg": {
            "spacing_xyz_mm": list(volume.spacing),
            "origin_xyz_mm": list(volume.origin),
            "direction": volume.direction.round(10).tolist(),
            "channel_names": list(volume.channel_names),
            "modality": volume.modality,
        },
    }


def write_zarr(volume: Volume, path: str | os.PathLike[str], dtype: np.dtype[Any]) -> None:
    """Write ``volume`` as ``dtype`` to a zarr group at ``path`` (atomically)."""
    import zarr
    from numcodecs import Blosc

    data = volume.data.astype(dtype)
    chunks: tuple[int, ...] = (fmt.CHUNK_EDGE,) * 3
    if volume.is_multichannel:
        chunks = (1, *chunks)
    data = data.rechunk(tuple(min(c, n) for c, n in zip(chunks, data.shape, strict=True)))
    with atomic_path(path) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        group.attrs.update(_ngff_attrs(volume))
        arr = group.create_array(
            "0",
            shape=data.shape,
            dtype=dtype,
            chunks=data.chunksize,
            fill_value=0,
            compressors=[Blosc(cname="zstd", clevel=5, shuffle=Blosc.SHUFFLE)],
        )
        da.store(data, arr, lock=False)  # type: ignore[arg-type]


def read_zarr(path: str | os.PathLike[str], *, modality: str = "") -> Volume:
    """Read a volume written by :func:`write_zarr` (lazily)."""
    import zarr

    p = Path(path)
    if not p.exists():
        msg = f"{p}: atlas volume missing; rebuild the atlas or restore the file"
        raise InputError(msg)
    try:
        group = zarr.open_group(str(p), mode="r")
        frame: dict[str, Any] = dict(group.attrs["mousereg"])  # type: ignore[arg-type]
        arr = group["0"]
    except (KeyError, ValueError, OSError) as exc:
        msg = f"{p}: not a mousereg atlas volume ({exc}); rebuild the atlas"
        raise InputError(msg) from exc
    data = da.from_zarr(arr)
    if data.dtype == np.float16:  # half precision is a storage format only
        data = data.astype(np.float32)
    return Volume(
        data=data,
        spacing=_float3(frame["spacing_xyz_mm"]),
        origin=_float3(frame["origin_xyz_mm"]),
        direction=np.asarray(frame["direction"]),
        channel_names=tuple(frame.get("channel_names", ())),
        modality=modality or str(frame.get("modality", "")),
    )


def _float3(values: Any) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in values)
    return (x, y, z)


def checksum_tree(path: str | os.PathLike[str]) -> str:
    """SHA-256 over every file below ``path`` (relative names and bytes, sorted)."""
    root = Path(path)
    h = hashlib.new(fmt.CHECKSUM_ALGORITHM)
    files = [root] if root.is_file() else sorted(q for q in root.rglob("*") if q.is_file())
    for q in files:
        h.update(q.relative_to(root).as_posix().encode() if q != root else b"")
        h.update(b"\0")
        h.update(q.read_bytes())
    return f"{fmt.CHECKSUM_ALGORITHM}:{h.hexdigest()}"


def write_json(path: str | os.PathLike[str], doc: dict[str, Any]) -> None:
    """Write ``doc`` as indented JSON (atomically)."""
    write_text(path, json.dumps(doc, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON object, with a one-line error naming the file."""
    p = Path(path)
    if not p.exists():
        msg = f"{p}: not found; is this an atlas folder (it needs {fmt.ATLAS_JSON})?"
        raise InputError(msg)
    try:
        doc = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        msg = f"{p}: not valid JSON ({exc.msg} at line {exc.lineno}); restore the file"
        raise InputError(msg) from exc
    if not isinstance(doc, dict):
        msg = f"{p}: expected a JSON object at the top level"
        raise InputError(msg)
    return doc
