"""ITK transform files (``.h5``, ``.tfm``, ``.txt``) through SimpleITK, safe from several threads.

The HDF5 library inside ITK is built without thread safety: two threads that write or read ``.h5``
transforms at the same time fail ("H5Dwrite failed") or crash. Every transform file access in
mousereg goes through :func:`read_transform` / :func:`write_transform`, which hold one lock.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from mousereg.io.atomic import atomic_path

if TYPE_CHECKING:
    import SimpleITK as sitk

HDF5_LOCK = threading.RLock()


def read_transform(path: str | os.PathLike[str]) -> sitk.Transform:
    """``SimpleITK.ReadTransform`` under the process-wide HDF5 lock (errors as SimpleITK's)."""
    import SimpleITK as sitk

    with HDF5_LOCK:
        return sitk.ReadTransform(os.fspath(path))


def write_transform(transform: sitk.Transform, path: str | os.PathLike[str]) -> None:
    """Write ``transform`` atomically under the process-wide HDF5 lock."""
    import SimpleITK as sitk

    with HDF5_LOCK, atomic_path(path) as tmp:
        sitk.WriteTransform(transform, str(tmp))
