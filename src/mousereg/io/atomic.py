"""Atomic writes: build the output in a temporary sibling, then rename it into place.

A failed or interrupted write leaves no half-written file or folder under the final name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def temporary_sibling(path: str | os.PathLike[str]) -> Path:
    """A unique, hidden path in the same folder as ``path`` (same file system, so rename works).

    The suffix of ``path`` is kept (``.nii.gz``, ``.zarr`` ...) so writers that dispatch on it work.
    """
    target = Path(path)
    suffix = "".join(target.suffixes)
    stem = target.name[: len(target.name) - len(suffix)] if suffix else target.name
    return target.with_name(f".{stem}.tmp-{uuid.uuid4().hex[:8]}{suffix}")


def replace(tmp: Path, target: Path) -> None:
    """Move ``tmp`` onto ``target``; an existing folder at ``target`` is replaced as a whole."""
    if target.is_dir() and not target.is_symlink():
        trash = temporary_sibling(target)
        os.replace(target, trash)
        os.replace(tmp, target)
        _remove(trash)
    else:
        os.replace(tmp, target)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling path to write to; rename it to ``path`` only on success.

    Example:
        >>> with atomic_path("out.nii.gz") as tmp:  # doctest: +SKIP
        ...     sitk.WriteImage(image, str(tmp))
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(target)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if not tmp.exists():
        msg = f"internal error: nothing was written to the temporary file for {target}"
        raise RuntimeError(msg)
    replace(tmp, target)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a binary file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
