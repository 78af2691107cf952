"""A seeded shape model of a 20–30 g nude mouse lying prone in the holder.

Mouse frame (mm): x to the mouse's left, y dorsal (up, away from the bed), z towards the nose;
``y = 0`` is the bed's top surface. Sizes below are for a 25 g mouse (scale 1); a subject draws
a body scale, per-organ size and position jitter, fat amount, bladder filling, spine curvature
and its pose in the holder (shift and yaw). :func:`mouse_shapes` returns the solids in painting
order (later shapes overwrite earlier ones), already placed in the holder frame.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from mousereg.phantom.gut import Intestine
from mousereg.phantom.shapes import Capsule, Clipped, Ellipsoid, Shape, Shell, Union, Wobble
from mousereg.phantom.spine import Midline, SpinalCord, VertebralColumn
from mousereg.phantom.tissues import tid


def rot_y(degrees: float) -> np.ndarray:
    """Rotation about the y (dorsal) axis."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_x(degrees: float) -> np.ndarray:
    """Rotation about the x (left) axis."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


@dataclasses.dataclass(frozen=True)
class Subject:
    """The random draws that make one mouse."""

    scale: float  # body length factor (25 g = 1)
    fat: float  # fat depot size factor
    bladder_fill: float  # bladder volume factor
    hump: float  # spine curvature (mm)
    bend: float  # lateral bend (mm)
    shift: tuple[float, float, float]  # mouse position in the holder (mm)
    yaw: float  # rotation about the vertical axis (degrees)

    @property
    def weight_g(self) -> float:
        """Approximate body weight (g): 25 g at scale 1, proportional to volume."""
        return 25.0 * self.scale**3

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Subject:
        """A random subject (20–30 g)."""
        weight = rng.uniform(20.5, 29.5)
        return cls(
            scale=float((weight / 25.0) ** (1 / 3)),
            fat=float(rng.uniform(0.6, 1.6)),
            bladder_fill=float(rng.uniform(0.4, 2.0)),
            hump=float(rng.uniform(2.0, 3.4)),
            bend=float(rng.uniform(-1.0, 1.0)),
            shift=(float(rng.uniform(-0.6, 0.6)), 0.0, float(rng.uniform(-2.0, 2.0))),
            yaw=float(rng.uniform(-2.5, 2.5)),
        )


class _Placer:
    """Scales mouse-frame geometry, jitters it, and places it in the holder frame."""

    def __init__(self, subject: Subject, rng: np.random.Generator) -> None:
        self.s = subject.scale
        self.rotation = rot_y(subject.yaw)
        self.shift = np.asarray(subject.shift)
        self.rng = rng

    def point(self, p: npt.ArrayLike, jitter: float = 0.0) -> np.ndarray:
        q = np.asarray(p, float) * self.s
        if jitter:
            q = q + self.rng.normal(0.0, jitter, 3) * np.array([1.0, 0.5, 1.0])
        return self.rotation @ q + self.shift

    def size(self, axes: npt.ArrayLike, spread: float = 0.0) -> np.ndarray:
        f = float(np.clip(self.rng.normal(1.0, spread), 1 - 2 * spread, 1 + 2 * spread))
        return np.asarray(axes, float) * self.s * f

    def orient(self, rotation: np.ndarray | None = None) -> np.ndarray:
        return self.rotation if rotation is None else self.rotation @ rotation

    def wobble(self, amplitude: float) -> Wobble:
        return Wobble.random(self.rng, amplitude)

    def ellipsoid(
        self,
        tissue: str,
        center: npt.ArrayLike,
        axes: npt.ArrayLike,
        rotation: np.ndarray | None = None,
        rough: float = 0.08,
        spread: float = 0.035,
        jitter: float = 0.4,
    ) -> Ellipsoid:
        return Ellipsoid(
            tid(tissue),
            self.point(center, jitter),
            self.size(axes, spread),
            self.orient(rotation),
            self.wobble(rough),
        )

    def capsule(
        self,
        tissue: str,
        a: npt.ArrayLike,
        b: npt.ArrayLike,
        radius: float,
        radius_b: float | None = None,
        rough: float = 0.0,
    ) -> Capsule:
        rb = None if radius_b is None else radius_b * self.s
        return Capsule(
            tid(tissue), self.point(a), self.point(b), radius * self.s, self.wobble(rough), rb
        )

    def mirrored(self, fn_name: str, *args: object, **kwargs: object) -> list[Shape]:
        """Left and right copies of a lateral structure (x mirrored)."""
        out: list[Shape] = []
        for side in (-1.0, 1.0):
            mirrored = [
                (side * a[0], *a[1:]) if isinstance(a, tuple) and len(a) == 3 else a for a in args
            ]
            out.append(getattr(self, fn_name)(*mirrored, **kwargs))
        return out


def _body(pl: _Placer) -> tuple[list[Shape], Union]:
    trunk = [
        pl.ellipsoid("muscle", (0, 6.0, 36.0), (6.5, 5.6, 10.5), rough=0.03, spread=0.03),
        pl.ellipsoid("muscle", (0, 7.6, 13.0), (11.8, 7.7, 18.0), rough=0.03, spread=0.03),
        pl.ellipsoid("muscle", (0, 8.0, -15.5), (13.3, 8.0, 28.0), rough=0.03, spread=0.03),
        pl.ellipsoid("muscle", (0, 7.2, -35.0), (11.0, 7.2, 11.0), rough=0.03, spread=0.03),
    ]
    limbs: list[Shape] = []
    limbs += pl.mirrored("capsule", "muscle", (6.0, 4.5, 20.0), (9.5, 1.8, 29.5), 1.8, 1.2)
    limbs += pl.mirrored("capsule", "muscle", (7.0, 5.0, -36.0), (11.0, 3.2, -30.0), 2.8, 2.2)
    limbs += pl.mirrored("capsule", "muscle", (11.0, 3.2, -30.0), (10.2, 1.6, -42.0), 1.6, 1.1)
    limbs += pl.mirrored("capsule", "muscle", (10.2, 1.2, -42.0), (9.6, 0.9, -48.0), 0.9)
    limbs.append(pl.capsule("muscle", (0, 2.0, -44.0), (0, 1.3, -64.0), 1.7, 1.0))
    body = Union(trunk)
    return [*trunk, *limbs], body


def _fat(pl: _Placer, fat: float, body: Shape) -> list[Shape]:
    f = fat ** (1 / 3)
    pads: list[Shape] = [
        pl.ellipsoid("subcutaneous fat", (0, 13.4, 20.0), np.multiply((4.5, 1.6, 4.5), f)),
        pl.ellipsoid("subcutaneous fat", (0, 14.6, -12.0), np.multiply((6.0, 0.9, 9.0), f)),
    ]
    pads += pl.mirrored(
        "ellipsoid", "subcutaneous fat", (10.2, 3.8, -27.0), np.multiply((2.6, 2.2, 6.0), f)
    )
    pads += pl.mirrored(
        "ellipsoid", "subcutaneous fat", (11.8, 7.5, -8.0), np.multiply((1.0, 3.0, 8.0), f)
    )
    visceral = pl.mirrored(
        "ellipsoid", "visceral fat", (6.3, 6.0, -28.0), np.multiply((3.0, 2.6, 5.8), f), rough=0.12
    )
    visceral += [
        pl.ellipsoid("visceral fat", (-5.4, 10.0, -9.0), np.multiply((3.8, 3.5, 6.6), f)),
        pl.ellipsoid("visceral fat", (5.4, 10.0, -11.5), np.multiply((3.8, 3.5, 6.6), f)),
    ]
    return [Clipped(s, body) for s in (*pads, *visceral)]


def _abdomen(pl: _Placer, subject: Subject, rng: np.random.Generator) -> list[Shape]:
    gut_region = pl.ellipsoid("intestine wall", (-0.5, 6.2, -20.0), (9.5, 4.8, 10.5), rough=0.06)
    shapes: list[Shape] = [
        Intestine(gut_region, rng, fat_fraction=0.08 * subject.fat),
        # liver lobes: right, median, left lateral (the largest) and caudate
        pl.ellipsoid("liver", (-5.0, 8.2, 0.5), (5.9, 5.2, 5.0), rot_y(-20), rough=0.12),
        pl.ellipsoid("liver", (-0.5, 6.0, 3.2), (6.5, 4.2, 4.0), rot_x(-15), rough=0.12),
        pl.ellipsoid("liver", (4.8, 7.2, 1.2), (6.9, 5.2, 4.9), rot_y(25), rough=0.12),
        pl.ellipsoid("liver", (1.5, 10.2, -2.5), (2.6, 2.0, 2.8), rough=0.12),
        pl.ellipsoid("gall bladder", (-2.2, 3.2, 1.0), (1.2, 1.0, 1.6), rough=0.05),
    ]
    stomach = pl.ellipsoid("stomach", (5.2, 8.0, -3.6), (4.4, 3.5, 4.2), rot_y(30), rough=0.11)
    gas = pl.ellipsoid("stomach gas", (5.8, 10.6, -3.2), (2.4, 1.2, 2.2), rough=0.1, jitter=0.2)
    shapes += [stomach, Clipped(gas, stomach)]
    shapes.append(pl.ellipsoid("spleen", (9.0, 8.0, -9.5), (2.1, 1.5, 8.0), rot_y(35), rough=0.14))
    shapes.append(pl.ellipsoid("caecum", (4.2, 5.2, -23.0), (3.2, 2.8, 6.0), rot_y(40), rough=0.14))
    shapes.append(pl.capsule("colon", (-5.5, 7.0, -12.0), (1.5, 9.0, -14.0), 1.3, rough=0.08))
    shapes.append(pl.capsule("colon", (1.5, 9.0, -14.0), (0.0, 8.6, -41.0), 1.3, 1.1, rough=0.08))
    shapes.append(pl.ellipsoid("kidney", (-5.4, 10.0, -9.0), (3.0, 2.8, 5.6), rough=0.07))
    shapes.append(pl.ellipsoid("kidney", (5.4, 10.0, -11.5), (3.0, 2.8, 5.6), rough=0.07))
    fill = subject.bladder_fill ** (1 / 3)
    shapes.append(
        pl.ellipsoid(
            "bladder", (0, 3.6 + 1.0 * fill, -36.0), np.multiply((2.8, 2.6, 3.4), fill), rough=0.04
        )
    )
    return shapes


def _thorax_head(pl: _Placer) -> list[Shape]:
    return [
        pl.ellipsoid("lung", (-4.2, 8.4, 14.2), (3.8, 4.4, 7.5), rot_y(-8), rough=0.08),
        pl.ellipsoid("lung", (4.2, 8.4, 13.6), (3.1, 4.0, 7.0), rot_y(8), rough=0.08),
        pl.ellipsoid("heart", (1.0, 6.0, 14.0), (2.7, 2.8, 3.5), rot_y(25), rough=0.05),
        *pl.mirrored(
            "ellipsoid", "thyroid", (1.6, 4.2, 25.5), np.array([0.6, 0.5, 1.3]), rough=0.0
        ),
        pl.ellipsoid("brain", (0, 6.9, 33.5), (4.4, 3.2, 6.4), rot_x(-6), rough=0.05, spread=0.015),
    ]


def _skeleton(pl: _Placer, subject: Subject) -> list[Shape]:
    s = pl.s
    midline = Midline(11.8 * s, -6.0 * s, 34.0 * s, subject.hump, subject.bend, -45 * s, 27 * s)
    bones: list[Shape] = [
        Shell(
            tid("bone"),
            pl.point((0, 7.6, 14.0)),
            pl.size((9.8, 6.3, 11.0)),
            0.055,
            pl.orient(),
            pl.wobble(0.02),
            period=1.9 * s,
            duty=0.32,
            z_range=(-8.0 * s, 9.5 * s),
        ),
        pl.capsule("bone", (0, 1.7, 7.5), (0, 2.0, 21.5), 0.45),
        VertebralColumn(
            tid("bone"), midline, pl.orient(), pl.point((0, 0, 0)), 0.85 * s, s, 2.7 * s
        ),
        Shell(
            tid("bone"),
            pl.point((0, 6.8, 34.3)),
            pl.size((5.5, 4.2, 8.8)),
            0.08,
            pl.orient(rot_x(-6)),
            pl.wobble(0.02),
            min_y=-2.8 * s,
        ),
        Shell(
            tid("bone"),
            pl.point((0, 5.4, 41.5)),
            pl.size((2.2, 2.0, 5.2)),
            0.12,
            pl.orient(),
            z_range=(-2.0 * s, 5.0 * s),
        ),
    ]
    bones += pl.mirrored("capsule", "bone", (2.6, 2.6, 31.0), (1.0, 2.4, 42.0), 0.5)
    bones += pl.mirrored("capsule", "bone", (2.8, 9.6, -29.5), (4.2, 7.0, -39.0), 0.75)
    bones += pl.mirrored("capsule", "bone", (4.2, 7.0, -39.0), (2.0, 6.4, -44.0), 0.5)
    bones += pl.mirrored("capsule", "bone", (4.8, 6.6, -37.5), (10.5, 3.6, -30.5), 0.65)
    bones += pl.mirrored("capsule", "bone", (10.8, 3.3, -30.5), (10.2, 1.6, -42.0), 0.45)
    bones += pl.mirrored("capsule", "bone", (5.5, 5.0, 21.0), (8.5, 2.6, 25.5), 0.5)
    bones += pl.mirrored("capsule", "bone", (8.8, 2.4, 25.5), (9.5, 1.6, 29.0), 0.35)
    bones.append(pl.capsule("bone", (0, 2.0, -45.0), (0, 1.3, -64.0), 0.55, 0.4))
    cord_line = dataclasses.replace(midline, z_lo=-30.0 * s, z_hi=27.5 * s)
    bones.append(SpinalCord(tid("spinal cord"), cord_line, pl.orient(), pl.point((0, 0, 0)), 0.7))
    return bones


def mouse_shapes(subject: Subject, rng: np.random.Generator) -> list[Shape]:
    """The mouse's solids in painting order, placed in the holder frame."""
    pl = _Placer(subject, rng)
    body_parts, body = _body(pl)
    return [
        *body_parts,
        *_fat(pl, subject.fat, body),
        *_abdomen(pl, subject, rng),
        *_thorax_head(pl),
        *_skeleton(pl, subject),
    ]
