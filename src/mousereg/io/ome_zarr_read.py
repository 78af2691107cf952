"""Read OME-Zarr (NGFF 0.4 / 0.5) images and label maps lazily as :class:`Volume`.

The direction, dtype, modality and channel names come from the ``"mousereg"`` attribute when
present (identity direction otherwise). Stores mousereg wrote are checked for missing
chunks (they are written with every chunk present), so a truncated copy is an error rather
than silent zeros.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from mousereg.errors import InputError
from mousereg.io import ngff_metadata as meta
from mousereg.labels import LabelTable
from mousereg.volume import Volume, check_direction


def _is_plain_array(path: Path) -> bool:
    if (path / ".zarray").is_file():
        return True
    meta_file = path / "zarr.json"
    if not meta_file.is_file():
        return False
    try:
        return bool(json.loads(meta_file.read_text()).get("node_type") == "array")
    except (json.JSONDecodeError, AttributeError):
        return False


def _open_group(path: Path) -> Any:
    import zarr

    if _is_plain_array(path):
        msg = f"{path}: a plain Zarr array, not an OME-NGFF image group; convert it to OME-Zarr"
        raise InputError(msg)
    try:
        return zarr.open_group(str(path), mode="r")
    except (FileNotFoundError, KeyError, ValueError) as exc:
        msg = f"{path}: not a readable Zarr group (metadata missing or broken); is it truncated?"
        raise InputError(msg) from exc
    except Exception as exc:
        if type(exc).__name__ in ("GroupNotFoundError", "NodeTypeValidationError"):
            msg = f"{path}: no Zarr group metadata (.zgroup / zarr.json); is the copy truncated?"
            raise InputError(msg) from exc
        raise


def _open_array(group: Any, key: str, where: Path) -> Any:
    try:
        arr = group[key]
    except (KeyError, FileNotFoundError, ValueError) as exc:
        msg = (
            f"{where}: array {key!r} of the multiscales metadata is missing; the store is truncated"
        )
        raise InputError(msg) from exc
    if not hasattr(arr, "shape") or not hasattr(arr, "chunks"):
        msg = f"{where}: {key!r} is a group, not an array; the NGFF metadata is inconsistent"
        raise InputError(msg)
    return arr


def _check_complete(arr: Any, key: str, where: Path) -> None:
    found, expected = int(arr.nchunks_initialized), int(arr.nchunks)
    if found < expected:
        msg = (
            f"{where}: array {key!r} has {found} of {expected} chunks; the store is truncated, "
            "copy or convert it again"
        )
        raise InputError(msg)


def _transforms(items: list[Mapping[str, Any]], ndim: int) -> tuple[np.ndarray, np.ndarray]:
    scale, shift = np.ones(ndim), np.zeros(ndim)
    for t in items or []:
        if t.get("type") == "scale":
            scale = scale * np.asarray(t["scale"], dtype=float)
            shift = shift * np.asarray(t["scale"], dtype=float)
        elif t.get("type") == "translation":
            shift = shift + np.asarray(t["translation"], dtype=float)
    return scale, shift


def _spatial_view(data: da.Array, names: list[str], where: Path) -> tuple[da.Array, list[int]]:
    """Drop a singleton ``t`` axis and order the array (c,) z, y, x; return spatial indices."""
    if "t" in names:
        ti = names.index("t")
        if data.shape[ti] != 1:
            msg = f"{where}: has {data.shape[ti]} time points; convert one time point at a time"
            raise InputError(msg)
        data = data[tuple(0 if i == ti else slice(None) for i in range(data.ndim))]
        names = [n for n in names if n != "t"]
    if [n for n in names if n != "c"] != list(meta.SPATIAL_AXES):
        msg = f"{where}: axes {names} are not (c,) z, y, x; mousereg reads 3-D volumes only"
        raise InputError(msg)
    if "c" in names and names.index("c") != 0:
        data = da.moveaxis(data, names.index("c"), 0)
        names = ["c", *[n for n in names if n != "c"]]
    if "c" in names and data.shape[0] == 1:
        data = data[0]
        names = names[1:]
    return data, [names.index(n) for n in meta.SPATIAL_AXES]


def read_ome_zarr(path: str | os.PathLike[str]) -> Volume:
    """Read the full-resolution level of an OME-Zarr image (or image-label) group lazily."""
    where = Path(path)
    group = _open_group(where)
    attrs = dict(group.attrs)
    ngff, version = meta.unwrap(attrs)
    if version is None or not ngff.get("multiscales"):
        msg = (
            f"{where}: a Zarr store but not an OME-NGFF image (no 'multiscales' metadata); "
            "write it with mousereg convert"
        )
        raise InputError(msg)
    own: Mapping[str, Any] = attrs.get(meta.NAMESPACE) or {}
    ms = ngff["multiscales"][0]
    try:
        names = [str(a["name"] if isinstance(a, Mapping) else a) for a in ms["axes"]]
        datasets = ms["datasets"]
        first = datasets[0]
    except (KeyError, IndexError, TypeError) as exc:
        msg = f"{where}: malformed NGFF multiscales metadata ({exc}); the store cannot be read"
        raise InputError(msg) from exc
    arrays = [_open_array(group, str(d["path"]), where) for d in datasets]
    if own:
        for d, arr in zip(datasets, arrays, strict=True):
            _check_complete(arr, str(d["path"]), where)
    level0 = arrays[0]
    scale, shift = _transforms(first.get("coordinateTransformations", []), len(names))
    outer_scale, outer_shift = _transforms(ms.get("coordinateTransformations", []), len(names))
    scale, shift = scale * outer_scale, shift * outer_scale + outer_shift
    data, spatial = _spatial_view(da.from_zarr(level0), names, where)
    spacing = [float(scale[i]) for i in reversed(spatial)]
    origin = [float(shift[i]) for i in reversed(spatial)]
    if own.get("origin") is not None:
        origin = [float(v) for v in own["origin"]]
        spacing = [float(v) for v in own.get("spacing", spacing)]
    direction = check_direction(own.get("direction", np.eye(3).reshape(-1)), source=str(where))
    channel_names = tuple(own.get("channel_names") or ())
    if not channel_names and data.ndim == 4 and ngff.get("omero"):
        channel_names = tuple(
            str(c.get("label", f"c{i}")) for i, c in enumerate(ngff["omero"]["channels"])
        )
    if data.ndim == 3 and len(channel_names) > 1:
        channel_names = ()
    table = _label_table(group, ngff, own, where)
    return Volume(
        data=data,
        spacing=(spacing[0], spacing[1], spacing[2]),
        origin=(origin[0], origin[1], origin[2]),
        direction=direction,
        channel_names=channel_names,
        modality=str(own.get("modality", "")),
        labels=table,
    )


def _label_table(
    group: Any, ngff: Mapping[str, Any], own: Mapping[str, Any], where: Path
) -> LabelTable | None:
    if "image-label" in ngff:
        return meta.label_table_from(ngff["image-label"])
    name = own.get("label_group")
    if not name:
        return None
    try:
        sub = group["labels"][name]
    except (KeyError, FileNotFoundError) as exc:
        msg = f"{where}: label group 'labels/{name}' is missing; the store is truncated"
        raise InputError(msg) from exc
    sub_ngff, _ = meta.unwrap(dict(sub.attrs))
    if "image-label" not in sub_ngff:
        msg = f"{where}: 'labels/{name}' has no image-label metadata; the store is damaged"
        raise InputError(msg)
    return meta.label_table_from(sub_ngff["image-label"])


def label_names(path: str | os.PathLike[str]) -> list[str]:
    """Names of the label maps in an OME-Zarr image's ``labels/`` group."""
    group = _open_group(Path(path))
    if "labels" not in group:
        return []
    ngff, _ = meta.unwrap(dict(group["labels"].attrs))
    return [str(n) for n in ngff.get("labels", [])]


def read_ome_zarr_labels(path: str | os.PathLike[str], name: str | None = None) -> Volume:
    """Read the label map ``labels/<name>`` (the only one when ``name`` is None)."""
    names = label_names(path)
    if not names:
        msg = f"{path}: has no labels/ group; it holds no label maps"
        raise InputError(msg)
    if name is None:
        if len(names) > 1:
            msg = f"{path}: holds label maps {names}; pass the one to read"
            raise InputError(msg)
        name = names[0]
    if name not in names:
        msg = f"{path}: no label map {name!r}; it holds {names}"
        raise InputError(msg)
    return read_ome_zarr(Path(path) / "labels" / name)
