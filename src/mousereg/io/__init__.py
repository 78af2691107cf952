"""Reading and writing volumes, dispatching on the path's suffix.

Public API: :func:`read_volume`, :func:`write_volume`, :func:`convert`.
"""

from __future__ import annotations

from mousereg.io.dispatch import convert, read_volume, write_volume

__all__ = ["convert", "read_volume", "write_volume"]
