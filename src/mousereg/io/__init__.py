"""Reading and writing volumes, dispatching on the path's suffix (docs/formats.md).

Public API: :func:`read_volume`, :func:`write_volume`, :func:`convert`, :func:`read_labels`.
"""

from __future__ import annotations

from mousereg.io.dispatch import convert, read_volume, suffix_of, write_volume
from mousereg.io.ome_zarr_read import label_names
from mousereg.io.ome_zarr_read import read_ome_zarr_labels as read_labels

__all__ = ["convert", "label_names", "read_labels", "read_volume", "suffix_of", "write_volume"]
