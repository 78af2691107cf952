"""Registration: transforms, fiducial and intensity registration.

Public API: :class:`Transform`, :func:`register` (the whole CT<->MRI registration of one pair).
"""

from __future__ import annotations

from mousereg.registration.pipeline import register
from mousereg.registration.transform import Transform

__all__ = ["Transform", "register"]
