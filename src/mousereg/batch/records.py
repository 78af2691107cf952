"""Done-records: what a finished job was made from, so a re-run can skip it or redo it.

Every published job folder holds ``done.json``::

    {"job": "register/m01", "kind": "register-pair", "kind_version": "1",
     "fingerprint": "<sha256>", "params": {...},
     "inputs": {"ct": {"path": "...", "sha256": "..."}, ...},
     "upstream": {"register/m01": "<fingerprint>"},
     "versions": {"mousereg": "...", "SimpleITK": "...", ...},
     "outputs": {"transform.h5": {"bytes": 1234, "sha256": "..."}},
     "started": "...", "seconds": 12.3, "host": "...", "pid": 123, "attempt": 1}

The fingerprint hashes the kind and its version, the parameters, the content of every input
file and the fingerprints of the needed jobs. A job is done when its folder's record carries the
fingerprint the runner computes now; anything else is redone. Library versions are recorded for
provenance but are not part of the fingerprint (upgrading SimpleITK does not redo a study).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mousereg.io.atomic import write_text

RECORD = "done.json"
RESULT = "result.json"
_CHUNK = 1 << 20
VERSIONED = ("mousereg", "numpy", "SimpleITK", "itk-elastix", "antspyx", "dask", "distributed")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a folder (sorted relative names and contents, e.g. OME-Zarr)."""
    h = hashlib.sha256()
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f.relative_to(path).as_posix().encode())
            h.update(b"\0")
            h.update(file_sha256(f).encode())
        return h.hexdigest()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class ChecksumCache:
    """Checksums keyed by (path, size, mtime) so one run hashes each input once."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int], str] = {}

    def __call__(self, path: Path) -> str:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if key not in self._cache:
            self._cache[key] = file_sha256(path)
        return self._cache[key]


def fingerprint(
    kind: str,
    kind_version: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, str],
    upstream: Mapping[str, str],
) -> str:
    """The SHA-256 of everything that decides a job's outputs."""
    doc = {
        "kind": kind,
        "kind_version": kind_version,
        "params": params,
        "inputs": dict(sorted(inputs.items())),
        "upstream": dict(sorted(upstream.items())),
    }
    text = json.dumps(doc, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def versions() -> dict[str, str]:
    """Versions of mousereg and the libraries that shape its outputs."""
    found = {}
    for name in VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def output_listing(folder: Path) -> dict[str, dict[str, Any]]:
    """Every file under ``folder`` (relative name -> size and SHA-256), records excluded."""
    out = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = f.relative_to(folder).as_posix()
        if rel in (RECORD,):
            continue
        out[rel] = {"bytes": f.stat().st_size, "sha256": file_sha256(f)}
    return out


def write_record(folder: Path, record: Mapping[str, Any]) -> None:
    """Write ``done.json`` into ``folder`` atomically."""
    write_text(folder / RECORD, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")


def read_record(folder: Path) -> dict[str, Any] | None:
    """The done-record of a published job folder, or None (missing or unreadable)."""
    path = folder / RECORD
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def read_result(folder: Path) -> dict[str, Any]:
    """The ``result.json`` of a job folder ({} when absent)."""
    try:
        doc = json.loads((folder / RESULT).read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def is_done(folder: Path, expected: str) -> bool:
    """True when ``folder`` holds a record with fingerprint ``expected`` and its outputs."""
    record = read_record(folder)
    if record is None or record.get("fingerprint") != expected:
        return False
    outputs = record.get("outputs", {})
    return all((folder / name).is_file() for name in outputs)


def relpath(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` when below it, else absolute."""
    try:
        return path.resolve().relative_to(start.resolve()).as_posix()
    except ValueError:
        return os.fspath(path)
