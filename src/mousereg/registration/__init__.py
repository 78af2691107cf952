"""Registration: transforms, fiducial and intensity registration.

Public API: :class:`Transform`.
"""

from __future__ import annotations

from mousereg.registration.transform import Transform

__all__ = ["Transform"]
