"""File-level entry points: read a scan's images, detect its markers, write the markers files."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mousereg.fiducials.detect import Detection, as_scan, detect
from mousereg.fiducials.markers import write_markers
from mousereg.volume import Volume

_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".zarr", ".nhdr", ".mnc")


def _stem(path: Path) -> str:
    name = path.name
    for s in _IMAGE_SUFFIXES:
        if name.lower().endswith(s):
            return name[: -len(s)]
    return path.stem


def load_scan(paths: Sequence[str | os.PathLike[str]]) -> Volume:
    """One scan from one image or several channel images (named after their files).

    A file called ``*fat*`` or ``*inphase*`` is taken as the image the holes show in, one called
    ``*water*`` as a water image (see :func:`mousereg.fiducials.detect.channel_role`).
    """
    from mousereg.io import read_volume

    vols = []
    for p in map(Path, paths):
        vol = read_volume(p)
        if not vol.is_multichannel and not vol.channel_names:
            vol = dataclasses.replace(vol, channel_names=(_stem(p),))
        vols.append(vol)
    if len(vols) > 1:
        return dataclasses.replace(as_scan(vols), modality="MR")
    return vols[0]


def detect_files(
    images: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    modality: str | None = None,
) -> dict[str, Any]:
    """Detect the marker holes of one scan and write ``output`` (.json) and its ``.mrk.json``.

    Returns the detection summary with the files written.
    """
    scan = load_scan(images)
    det: Detection = detect(scan, modality=modality, source=", ".join(map(str, images)))
    out = Path(output)
    name = out.name
    base = name[: -len(".mrk.json")] if name.endswith(".mrk.json") else out.stem
    json_path = out.with_name(f"{base}.json")
    mrk_path = out.with_name(f"{base}.mrk.json")
    write_markers(det.markers, json_path)
    write_markers(det.markers, mrk_path)
    return {**det.summary(), "written": [str(json_path), str(mrk_path)]}
