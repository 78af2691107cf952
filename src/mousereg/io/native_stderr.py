"""Capture what C++ libraries (ITK, MetaIO, GDCM, MINC) print straight to file descriptor 2.

Their messages would otherwise break the command line's one-line error contract; captured,
they become the reason in an :class:`~mousereg.errors.InputError` or a debug log record.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

log = logging.getLogger(__name__)


@contextlib.contextmanager
def native_stderr() -> Iterator[list[str]]:
    """Redirect fd 2 to a temporary file; yield a list that receives its non-empty lines."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode(errors="replace")
            lines.extend(ln.strip() for ln in text.splitlines() if ln.strip())
            for ln in lines:
                log.debug("native library: %s", ln)


def reason(exc: BaseException, lines: list[str]) -> str:
    """A short reason: the first captured library line, else the exception's last line."""
    if lines:
        return lines[0][:160]
    text = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    last = text[-1] if text else type(exc).__name__
    return last.split(": ", 1)[-1][:160]
