"""Shared, session-scoped fixtures: a synthetic CT/MRI pair and a small study (test resolution)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mousereg.phantom import PhantomPair, make_pair, write_study


@pytest.fixture(scope="session")
def phantom_pair() -> PhantomPair:
    """``make_pair(seed=0, resolution="test")``: one mouse, CT + Dixon MRI + ground truth."""
    return make_pair(seed=0, resolution="test")


@pytest.fixture(scope="session")
def phantom_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-subject test-resolution study on disk (NIfTI); returns the manifest.csv path."""
    out = tmp_path_factory.mktemp("phantom_study")
    return write_study(out, subjects=4, seed=0, resolution="test")
