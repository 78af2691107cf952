"""Synthetic paired mouse CT/MRI studies with ground truth (demo data and test fixtures).

Public API: :func:`make_pair`, :class:`PhantomPair`, :func:`write_study`.
"""

from __future__ import annotations

from mousereg.phantom.pair import PhantomPair, make_pair
from mousereg.phantom.study import write_study

__all__ = ["PhantomPair", "make_pair", "write_study"]
