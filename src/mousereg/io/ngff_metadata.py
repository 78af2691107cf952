"""The OME-NGFF metadata mousereg writes and reads (0.4 on Zarr v2, 0.5 on Zarr v3).

NGFF has scale and translation but no rotation. mousereg writes level 0's scale = spacing and
translation = origin (both reversed to (z, y, x)), and keeps the direction matrix in the
namespaced attribute ``"mousereg"``. A point in NGFF coordinates ``c`` maps to LPS as
``origin + direction @ (c - origin)``: with an identity direction the NGFF space *is* LPS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mousereg.labels import Label, LabelTable

NGFF_VERSIONS = ("0.4", "0.5")
NAMESPACE = "mousereg"
FORMAT_VERSION = 1
SPATIAL_AXES = ("z", "y", "x")


def axes(multichannel: bool) -> list[dict[str, str]]:
    """NGFF axes: optional ``c`` (channel) then ``z, y, x`` in millimetres."""
    spatial = [{"name": n, "type": "space", "unit": "millimeter"} for n in SPATIAL_AXES]
    return ([{"name": "c", "type": "channel"}] if multichannel else []) + spatial


def multiscale(
    name: str,
    scales_zyx: Sequence[Sequence[float]],
    translations_zyx: Sequence[Sequence[float]],
    *,
    multichannel: bool,
    version: str,
    labels: bool,
) -> dict[str, Any]:
    """One ``multiscales`` entry with a dataset ``"<level>"`` per scale."""
    lead = [1.0] if multichannel else []
    lead_t = [0.0] if multichannel else []
    datasets = [
        {
            "path": str(i),
            "coordinateTransformations": [
                {"type": "scale", "scale": lead + [float(v) for v in s]},
                {"type": "translation", "translation": lead_t + [float(v) for v in t]},
            ],
        }
        for i, (s, t) in enumerate(zip(scales_zyx, translations_zyx, strict=True))
    ]
    entry: dict[str, Any] = {
        "name": name,
        "axes": axes(multichannel),
        "datasets": datasets,
        "type": "subsample" if labels else "mean",
    }
    if version == "0.4":
        entry["version"] = "0.4"
    return entry


def omero(channel_names: Sequence[str], windows: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """``omero`` channel metadata: names (labels), grey colour, display window."""
    return {
        "channels": [
            {
                "label": name,
                "color": "FFFFFF",
                "active": True,
                "window": {"min": lo, "max": hi, "start": lo, "end": hi},
            }
            for name, (lo, hi) in zip(channel_names, windows, strict=True)
        ],
        "rdefs": {"model": "greyscale"},
    }


def image_label(table: LabelTable, version: str) -> dict[str, Any]:
    """``image-label`` metadata: a colour and a property (name, IRI) per label value."""
    doc: dict[str, Any] = {
        "colors": [{"label-value": lab.value, "rgba": [*lab.colour, 255]} for lab in table],
        "properties": [
            {"label-value": lab.value, "name": lab.name, "iri": lab.iri} for lab in table
        ],
        "source": {"image": "../../"},
    }
    if version == "0.4":
        doc["version"] = "0.4"
    return doc


def label_table_from(image_label_doc: Mapping[str, Any]) -> LabelTable:
    """Inverse of :func:`image_label`."""
    colours = {
        int(c["label-value"]): tuple(int(v) for v in c.get("rgba", (128, 128, 128))[:3])
        for c in image_label_doc.get("colors", [])
    }
    labels = []
    for prop in image_label_doc.get("properties", []):
        value = int(prop["label-value"])
        labels.append(
            Label(
                value,
                str(prop.get("name", f"label_{value}")),
                colours.get(value, (128, 128, 128)),  # type: ignore[arg-type]
                str(prop.get("iri", "")),
            )
        )
    return LabelTable(labels)


def mousereg_attrs(
    *,
    direction: np.ndarray,
    origin: Sequence[float],
    spacing: Sequence[float],
    dtype: str,
    modality: str,
    channel_names: Sequence[str],
    label_group: str | None,
) -> dict[str, Any]:
    """The namespaced ``"mousereg"`` attribute that restores what NGFF cannot hold."""
    return {
        "version": FORMAT_VERSION,
        "direction": [float(v) for v in np.asarray(direction, dtype=float).reshape(-1)],
        "origin": [float(v) for v in origin],
        "spacing": [float(v) for v in spacing],
        "dtype": dtype,
        "modality": modality,
        "channel_names": list(channel_names),
        "label_group": label_group,
    }


def wrap(attrs: dict[str, Any], version: str) -> dict[str, Any]:
    """Place NGFF keys at the top (0.4) or under ``"ome"`` with a version (0.5).

    The ``mousereg`` key always stays at the top level.
    """
    own = attrs.pop(NAMESPACE, None)
    doc = attrs if version == "0.4" else {"ome": {"version": "0.5", **attrs}}
    if own is not None:
        doc[NAMESPACE] = own
    return doc


def unwrap(attrs: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The NGFF keys of a group's attributes and its NGFF version (``None`` if not NGFF)."""
    if "ome" in attrs and isinstance(attrs["ome"], Mapping):
        ome = dict(attrs["ome"])
        return ome, str(ome.get("version", "0.5"))
    if "multiscales" in attrs or "labels" in attrs or "image-label" in attrs:
        ms = attrs.get("multiscales") or [{}]
        version = ms[0].get("version") if isinstance(ms, list) and ms else None
        return dict(attrs), str(version or "0.4")
    return {}, None
