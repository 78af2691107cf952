"""``mousereg atlas info``: a JSON-friendly summary of an atlas folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mousereg.atlas import format as fmt
from mousereg.atlas.load import load_atlas


def _size_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6, 2)


def atlas_summary(path: str | Path) -> dict[str, Any]:
    """Name, format, grid, channels, labels, subjects, exclusions, history and size on disk."""
    atlas = load_atlas(path, checksums=False)
    meta = atlas.meta
    return {
        "path": str(atlas.path),
        "name": meta["name"],
        "format": f"{meta['format']} {meta['format_version']}",
        "strain": meta["strain"],
        "space": meta["space"],
        "grid": meta["grid"],
        "template_channels": list(fmt.TEMPLATE_CHANNELS),
        "labels": {lab.value: lab.name for lab in atlas.table},
        "subjects": atlas.subject_ids,
        "excluded": meta["excluded"],
        "parameters": meta["parameters"],
        "history": meta["history"],
        "size_mb": _size_mb(atlas.path),
        "created": meta["created"],
    }
