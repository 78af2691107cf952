"""The animal holder: a plastic bed with two rails and vaseline-filled marker holes.

The holes are filled by hand for each preparation and sealed with a stopper of plastic-like
resin, so the vaseline plug rarely fills a hole: it takes :data:`FILL_RANGE` of the hole's length
from one end (:func:`vaseline_plugs`) and the stopper the rest. Both scans of one preparation see
the same plugs; scans of two preparations (two animals) see plugs whose centres differ by tenths
of a millimetre, which the marker fit's residual (FRE) shows.

The design (bed, rails, holes in the holder frame) is the holder profile
``pipelines/holders/default.yaml``; :data:`DEFAULT_DESIGN` is the same design in code so the
phantom works from an installed package (a test checks that the two agree).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from mousereg.errors import InputError
from mousereg.phantom.shapes import Box, Cylinder, Ellipsoid, Shape
from mousereg.phantom.tissues import tid


@dataclasses.dataclass(frozen=True)
class Hole:
    """One marker hole: a cylinder of vaseline in the plastic."""

    id: int
    center: tuple[float, float, float]
    axis: tuple[float, float, float]
    diameter: float
    length: float
    in_slab: bool


@dataclasses.dataclass(frozen=True)
class HolderDesign:
    """Bed, rails (axis-aligned boxes) and marker holes, in the holder frame (mm)."""

    name: str
    bed: tuple[tuple[float, ...], tuple[float, ...]]
    rails: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]
    slab_center: tuple[float, float, float]
    holes: tuple[Hole, ...]

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> HolderDesign:
        """Read a holder profile (see ``pipelines/holders/default.yaml``)."""
        import yaml

        p = Path(path)
        if not p.exists():
            msg = f"{p}: holder profile not found; check the path"
            raise InputError(msg)
        doc = yaml.safe_load(p.read_text())
        try:
            return cls.from_dict(doc)
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"{p}: not a holder profile ({exc}); see pipelines/holders/default.yaml"
            raise InputError(msg) from exc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> HolderDesign:
        """Build a design from the YAML profile's mapping."""

        def box(d: dict[str, Any]) -> tuple[tuple[float, ...], tuple[float, ...]]:
            return (tuple(float(v) for v in d["lo"]), tuple(float(v) for v in d["hi"]))

        holes = tuple(
            Hole(
                int(h["id"]),
                tuple(float(v) for v in h["center"]),  # type: ignore[arg-type]
                tuple(float(v) for v in h["axis"]),  # type: ignore[arg-type]
                float(h["diameter"]),
                float(h["length"]),
                bool(h["in_slab"]),
            )
            for h in doc["holes"]
        )
        return cls(
            str(doc["name"]),
            box(doc["bed"]),
            tuple(box(r) for r in doc["rails"]),
            tuple(float(v) for v in doc["slab_center"]),  # type: ignore[arg-type]
            holes,
        )

    def hole_array(self) -> np.ndarray:
        """Hole centres ``(N, 3)``."""
        return np.array([h.center for h in self.holes], dtype=float)


def _hole(i: int, c: tuple[float, float, float], a: tuple[float, float, float], d: float,
          length: float, in_slab: bool) -> Hole:  # fmt: skip
    return Hole(i, c, a, d, length, in_slab)


DEFAULT_DESIGN = HolderDesign(
    name="mousereg-phantom-default",
    bed=((-19.0, -4.0, -58.0), (19.0, 0.0, 56.0)),
    rails=(
        ((-19.0, 0.0, -58.0), (-15.0, 10.0, 56.0)),
        ((15.0, 0.0, -58.0), (19.0, 10.0, 56.0)),
    ),
    slab_center=(0.0, 7.8, 2.0),
    holes=(
        _hole(1, (-17.0, 6.5, 31.0), (0.0, 0.0, 1.0), 1.0, 4.0, True),
        _hole(2, (-16.8, 3.0, 12.5), (0.0, 1.0, 0.0), 1.6, 3.0, True),
        _hole(3, (-17.2, 7.5, -9.0), (1.0, 0.0, 0.0), 1.2, 3.0, True),
        _hole(4, (-17.0, 4.5, -28.0), (0.0, 0.6, 0.8), 1.0, 4.5, True),
        _hole(5, (17.0, 5.0, 25.0), (0.0, 1.0, 0.0), 2.0, 5.0, True),
        _hole(6, (16.9, 8.0, 4.0), (0.0, 0.0, 1.0), 0.8, 2.5, True),
        _hole(7, (17.1, 2.5, -17.0), (0.6, 0.0, 0.8), 1.2, 3.0, True),
        _hole(8, (16.8, 7.0, -33.0), (1.0, 0.0, 0.0), 1.4, 3.2, True),
        _hole(9, (-17.0, 4.0, 50.0), (0.0, 0.0, 1.0), 1.4, 4.0, False),
        _hole(10, (5.0, -2.8, -12.0), (1.0, 0.0, 0.0), 1.0, 5.0, False),
        _hole(11, (17.0, 6.0, -47.0), (0.0, 1.0, 0.0), 1.8, 4.0, False),
    ),
)


def filled_holes(design: HolderDesign, outside: int) -> list[Hole]:
    """The holes filled with vaseline: every in-slab hole and the first ``outside`` others."""
    outer = [h for h in design.holes if not h.in_slab]
    if not 0 <= outside <= len(outer):
        msg = f"holes_outside_mr={outside}: the holder has {len(outer)} holes outside the slab"
        raise InputError(msg)
    return [h for h in design.holes if h.in_slab] + outer[:outside]


#: Fraction of a hole's length the vaseline plug fills (uniform), one preparation per pair.
FILL_RANGE = (0.6, 1.0)


def vaseline_plugs(
    holes: list[Hole], rng: np.random.Generator, fill: tuple[float, float] = FILL_RANGE
) -> list[Hole]:
    """The vaseline actually in each hole: a plug of ``fill`` of its length, from either end."""
    lo, hi = fill
    if not 0.0 < lo <= hi <= 1.0:
        msg = f"hole fill {fill}: use fractions with 0 < low <= high <= 1"
        raise InputError(msg)
    plugs = []
    for h in holes:
        f = float(rng.uniform(lo, hi))
        end = float(rng.choice([-1.0, 1.0]))
        axis = np.asarray(h.axis, float) / np.linalg.norm(h.axis)
        centre = np.asarray(h.center, float) + end * (1.0 - f) * h.length / 2.0 * axis
        x, y, z = (float(v) for v in centre)
        plugs.append(dataclasses.replace(h, center=(x, y, z), length=f * h.length))
    return plugs


def spurious_blob_centres(
    design: HolderDesign, count: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, float]]:
    """Vaseline smears on the rails' outer faces and tops (not holes): ``(centre, radius)``."""
    rail_top = design.rails[0][1][1]
    outer_x = max(abs(design.rails[0][0][0]), abs(design.rails[1][1][0]))
    sc = design.slab_center
    out = []
    for _ in range(count):
        r = float(rng.uniform(0.6, 1.1))
        z = float(rng.uniform(sc[2] - 32.0, sc[2] + 32.0))
        side = float(rng.choice([-1.0, 1.0]))
        if rng.uniform() < 0.5:  # on a rail's outer face
            c = np.array([side * (outer_x + 0.6 * r), rng.uniform(1.5, 8.0), z])
        else:  # on a rail's top
            c = np.array([side * (outer_x - 2.0), rail_top + 0.6 * r, z])
        out.append((c, r))
    return out


def holder_shapes(
    design: HolderDesign, holes: list[Hole], blobs: list[tuple[np.ndarray, float]]
) -> list[Shape]:
    """The holder's solids in painting order: plastic (with the stoppers), vaseline, smears."""
    plastic = tid("plastic")
    vaseline = tid("vaseline")
    shapes: list[Shape] = [Box(plastic, *design.bed)]
    shapes += [Box(plastic, *r) for r in design.rails]
    shapes += [Cylinder(vaseline, h.center, h.axis, h.diameter / 2, h.length) for h in holes]
    shapes += [Ellipsoid(vaseline, c, (r, r, r)) for c, r in blobs]
    return shapes
