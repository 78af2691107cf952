"""Correspondence between unlabelled marker sets from rigid-invariant distances.

Exhaustive triplet hypotheses: every pair of ``a`` is paired with the pairs of ``b`` of the same
length (within ``tol_mm``), every third point with the points of ``b`` at consistent distances to
both; each triangle gives a rigid fit, whose consensus (mutual nearest neighbours within
``tol_mm``) is refined by refitting until stable. Triangles already explained by a found solution
are skipped, so the search is fast for the sizes of a holder (tens of holes). The best solution
must have more support than any other *different* transform: a symmetric layout, where two fits
explain the same number of markers, is refused rather than guessed.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import numpy.typing as npt

from mousereg.errors import RegistrationError
from mousereg.fiducials.fit import PointTransform, umeyama

#: Default distance tolerance (mm) for "same distance" and "same point".
DEFAULT_TOL_MM = 0.5
#: Triangles thinner than this (smallest height, mm) give no reliable rotation.
MIN_TRIANGLE_HEIGHT_MM = 1.0


@dataclasses.dataclass(frozen=True)
class Match:
    """Corresponding indices ``pairs[:, 0]`` in ``a`` and ``pairs[:, 1]`` in ``b``.

    Attributes:
        pairs: ``(K, 2)`` index pairs.
        transform: rigid ``a -> b`` fitted on the pairs.
        rms_mm: RMS distance of the pairs after the fit.
        runner_up: support of the best solution with a different transform (0 if none).
        hypotheses: number of triangle hypotheses tried.
    """

    pairs: np.ndarray
    transform: PointTransform
    rms_mm: float
    runner_up: int
    hypotheses: int

    @property
    def support(self) -> int:
        """Number of matched pairs."""
        return len(self.pairs)


def _pairwise(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)


def _consensus(
    a: np.ndarray, b: np.ndarray, t: PointTransform, tol: float
) -> list[tuple[int, int]]:
    """Mutual nearest neighbours closer than ``tol`` after mapping ``a`` by ``t``."""
    d = np.linalg.norm(t.apply(a)[:, None, :] - b[None, :, :], axis=-1)
    nn_ab = d.argmin(axis=1)
    nn_ba = d.argmin(axis=0)
    return [(i, int(j)) for i, j in enumerate(nn_ab) if nn_ba[j] == i and d[i, j] < tol]


def _refine(
    a: np.ndarray, b: np.ndarray, pairs: list[tuple[int, int]], tol: float
) -> tuple[frozenset[tuple[int, int]], PointTransform]:
    """Refit on the consensus until it stops changing."""
    current = frozenset(pairs)
    t = umeyama(a[[p[0] for p in pairs]], b[[p[1] for p in pairs]])
    for _ in range(10):
        found = _consensus(a, b, t, tol)
        if len(found) < 3:
            break
        new = frozenset(found)
        idx = sorted(new)
        t = umeyama(a[[p[0] for p in idx]], b[[p[1] for p in idx]])
        if new == current:
            break
        current = new
    return current, t


def _triangle_height(p: np.ndarray) -> float:
    """Smallest height of the triangle ``p`` (3, 3): small for thin or collinear triangles."""
    area2 = float(np.linalg.norm(np.cross(p[1] - p[0], p[2] - p[0])))
    longest = max(float(np.linalg.norm(p[i] - p[j])) for i, j in ((0, 1), (0, 2), (1, 2)))
    return area2 / max(longest, 1e-12)


def _same_transform(t1: PointTransform, t2: PointTransform, pts: np.ndarray, tol: float) -> bool:
    return bool(np.linalg.norm(t1.apply(pts) - t2.apply(pts), axis=1).max() < tol)


def _too_few(na: int, nb: int, names: tuple[str, str]) -> RegistrationError:
    msg = (
        f"cannot match markers: {na} found in the {names[0]} scan and {nb} in the "
        f"{names[1]} scan, at least 3 are needed in each (and 3 in common); check that the "
        "holder's marker holes are in both fields of view, or pass points by hand with "
        "--fixed-points/--moving-points"
    )
    return RegistrationError(msg)


def match_points(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    tol_mm: float = DEFAULT_TOL_MM,
    min_pairs: int = 4,
    names: tuple[str, str] = ("fixed", "moving"),
) -> Match:
    """Find which points of ``a`` correspond to which of ``b`` under an unknown rigid motion.

    Args:
        a: ``(N, 3)`` points (mm).
        b: ``(M, 3)`` points (mm); N and M may differ (markers outside one field of view,
            spurious candidates).
        tol_mm: distance tolerance for equal lengths and for a matched pair.
        min_pairs: fewest pairs accepted (3 points always fit a congruent triangle, so an
            automatic match needs a 4th to be checked).
        names: how to call the two sets in messages.

    Raises:
        RegistrationError: fewer than ``min_pairs`` consistent pairs, or an ambiguous answer.
    """
    pa = np.asarray(a, dtype=float).reshape(-1, 3)
    pb = np.asarray(b, dtype=float).reshape(-1, 3)
    if len(pa) < 3 or len(pb) < 3:
        raise _too_few(len(pa), len(pb), names)
    da, db = _pairwise(pa), _pairwise(pb)
    solutions: dict[frozenset[tuple[int, int]], PointTransform] = {}
    hypotheses = 0
    base_pairs = sorted(itertools.combinations(range(len(pa)), 2), key=lambda ij: -da[ij])
    for i, j in base_pairs:
        cand_pq = np.argwhere(np.abs(db - da[i, j]) < tol_mm)
        for p, q in cand_pq:
            if p == q:
                continue
            for k in range(len(pa)):
                if k in (i, j):
                    continue
                ok = (np.abs(db[p] - da[i, k]) < tol_mm) & (np.abs(db[q] - da[j, k]) < tol_mm)
                for c in np.flatnonzero(ok):
                    if c in (p, q):
                        continue
                    triple = ((i, int(p)), (j, int(q)), (k, int(c)))
                    if any(all(tp in s for tp in triple) for s in solutions):
                        continue
                    if _triangle_height(pa[[i, j, k]]) < MIN_TRIANGLE_HEIGHT_MM:
                        continue
                    hypotheses += 1
                    t = umeyama(pa[[i, j, k]], pb[[p, q, c]])
                    found = _consensus(pa, pb, t, tol_mm)
                    if len(found) < 3:
                        continue
                    support, t = _refine(pa, pb, found, tol_mm)
                    solutions.setdefault(support, t)
    if not solutions:
        raise _too_few(len(pa), len(pb), names)
    ranked = sorted(solutions.items(), key=lambda kv: -len(kv[0]))
    best_pairs, best_t = ranked[0]
    runner_up = 0
    for pairs, t in ranked[1:]:
        if not _same_transform(best_t, t, pa, tol_mm):
            runner_up = len(pairs)
            break
    if len(best_pairs) < min_pairs:
        msg = (
            f"only {len(best_pairs)} markers could be matched between the {names[0]} scan "
            f"({len(pa)} found) and the {names[1]} scan ({len(pb)} found); an automatic match "
            f"needs {min_pairs} (3 points always fit a triangle): pass points by hand with "
            "--fixed-points/--moving-points"
        )
        raise RegistrationError(msg)
    if runner_up >= len(best_pairs):
        msg = (
            f"ambiguous marker match between the {names[0]} and {names[1]} scans: two different "
            f"rigid fits each explain {len(best_pairs)} markers (the layout of the found holes is "
            "symmetric); pass points by hand with --fixed-points/--moving-points or use a "
            "holder profile whose layout breaks the symmetry"
        )
        raise RegistrationError(msg)
    idx = np.array(sorted(best_pairs), dtype=int)
    rms = float(np.sqrt(np.mean(np.sum((best_t.apply(pa[idx[:, 0]]) - pb[idx[:, 1]]) ** 2, 1))))
    return Match(idx, best_t, rms, runner_up, hypotheses)
