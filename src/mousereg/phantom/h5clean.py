"""Make HDF5 files reproducible: zero the object timestamps that the HDF5 library writes.

ITK writes transforms (``.h5``) with HDF5's default "track times" on, so two writes of the same
transform differ in the access/modification/change/birth times of every version-2 object header.
:func:`clear_timestamps` sets those times to 0 and recomputes each header's Jenkins lookup3
checksum (the one HDF5 uses), so the same seed gives byte-identical truth files.
"""

from __future__ import annotations

import os
from pathlib import Path

_M = 0xFFFFFFFF
_TIMES_FLAG = 0x20
_PHASE_FLAG = 0x10


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' ``hashlittle`` (lookup3), as HDF5's ``H5_checksum_lookup3``."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _M
    i = 0
    while length > 12:
        a = (a + int.from_bytes(data[i : i + 4], "little")) & _M
        b = (b + int.from_bytes(data[i + 4 : i + 8], "little")) & _M
        c = (c + int.from_bytes(data[i + 8 : i + 12], "little")) & _M
        a = (a - c) & _M ^ _rot(c, 4)
        c = (c + b) & _M
        b = (b - a) & _M ^ _rot(a, 6)
        a = (a + c) & _M
        c = (c - b) & _M ^ _rot(b, 8)
        b = (b + a) & _M
        a = (a - c) & _M ^ _rot(c, 16)
        c = (c + b) & _M
        b = (b - a) & _M ^ _rot(a, 19)
        a = (a + c) & _M
        c = (c - b) & _M ^ _rot(b, 4)
        b = (b + a) & _M
        length -= 12
        i += 12
    if length == 0:
        return c
    tail = data[i:] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & _M
    b = (b + int.from_bytes(tail[4:8], "little")) & _M
    c = (c + int.from_bytes(tail[8:12], "little")) & _M
    c = ((c ^ b) - _rot(b, 14)) & _M
    a = ((a ^ c) - _rot(c, 11)) & _M
    b = ((b ^ a) - _rot(a, 25)) & _M
    c = ((c ^ b) - _rot(b, 16)) & _M
    a = ((a ^ c) - _rot(c, 4)) & _M
    b = ((b ^ a) - _rot(a, 14)) & _M
    c = ((c ^ b) - _rot(b, 24)) & _M
    return c


def _clear_header(buf: bytearray, start: int) -> bool:
    """Zero the times of the v2 object header at ``start``; False if it is not a valid one."""
    if buf[start + 4] != 2:
        return False
    flags = buf[start + 5]
    pos = start + 6
    times = None
    if flags & _TIMES_FLAG:
        times = pos
        pos += 16
    if flags & _PHASE_FLAG:
        pos += 4
    width = 1 << (flags & 3)
    size = int.from_bytes(buf[pos : pos + width], "little")
    end = pos + width + size
    if times is None or end + 4 > len(buf):
        return False
    stored = int.from_bytes(buf[end : end + 4], "little")
    if lookup3(bytes(buf[start:end])) != stored:
        return False
    buf[times : times + 16] = bytes(16)
    buf[end : end + 4] = lookup3(bytes(buf[start:end])).to_bytes(4, "little")
    return True


def clear_timestamps(path: str | os.PathLike[str]) -> int:
    """Zero every object header timestamp of an HDF5 file in place; returns how many headers."""
    p = Path(path)
    buf = bytearray(p.read_bytes())
    count = 0
    at = buf.find(b"OHDR")
    while at >= 0:
        count += _clear_header(buf, at)
        at = buf.find(b"OHDR", at + 4)
    p.write_bytes(bytes(buf))
    return count
