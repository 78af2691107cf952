"""Implicit solid shapes evaluated at points of the holder frame (mm).

A shape answers ``tissue(points)``: for an array of points ``(..., 3)`` it returns the tissue id
of each point inside the shape and ``-1`` outside. ``bbox`` bounds the shape so a renderer only
evaluates it where it can be. Organic shapes are made irregular by a smooth random field
(:class:`Wobble`, a sum of a few random plane waves in the shape's normalised coordinates).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

OUTSIDE = -1
Array = np.ndarray


@dataclasses.dataclass(frozen=True)
class Wobble:
    """A smooth random field ``sum_i w_i cos(k_i . q + phi_i)`` with ``|field| <= amplitude``."""

    k: Array  # (n, 3) wave vectors in normalised units
    phase: Array  # (n,)
    weight: Array  # (n,)

    @classmethod
    def random(
        cls, rng: np.random.Generator, amplitude: float, waves: int = 5, frequency: float = 2.5
    ) -> Wobble:
        """Random waves of about ``frequency`` rad per unit; the weights sum to ``amplitude``."""
        direction = rng.normal(size=(waves, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        k = direction * rng.uniform(0.6, 1.4, size=(waves, 1)) * frequency
        w = rng.uniform(0.5, 1.0, size=waves)
        w *= amplitude / w.sum()
        return cls(k.astype(np.float32), rng.uniform(0, 2 * np.pi, waves).astype(np.float32), w)

    @classmethod
    def none(cls) -> Wobble:
        """A field that is zero everywhere."""
        return cls(np.zeros((0, 3), np.float32), np.zeros(0, np.float32), np.zeros(0))

    def __call__(self, q: Array) -> Array | float:
        if len(self.weight) == 0:
            return 0.0
        arg = q @ self.k.T + self.phase
        return np.cos(arg) @ self.weight.astype(np.float32)


def _rotation(rotation: Array | None) -> Array:
    return np.eye(3, dtype=np.float32) if rotation is None else np.asarray(rotation, np.float32)


class Shape(abc.ABC):
    """Base class: a solid with a bounding box in the holder frame."""

    bbox: tuple[Array, Array]

    @abc.abstractmethod
    def tissue(self, points: Array) -> Array:
        """Tissue id per point (``-1`` outside)."""

    def inside(self, points: Array) -> Array:
        """Boolean mask of the points inside the shape."""
        return self.tissue(points) >= 0


def _bbox_of_box(center: Array, rotation: Array, half: Array) -> tuple[Array, Array]:
    extent = np.abs(rotation) @ half
    return (center - extent).astype(float), (center + extent).astype(float)


class Ellipsoid(Shape):
    """An ellipsoid (semi-axes ``axes`` along the columns of ``rotation``) with a wobbly surface."""

    def __init__(
        self,
        tissue_id: int,
        center: npt.ArrayLike,
        axes: npt.ArrayLike,
        rotation: Array | None = None,
        wobble: Wobble | None = None,
    ) -> None:
        self.tissue_id = tissue_id
        self.center = np.asarray(center, np.float32)
        self.axes = np.asarray(axes, np.float32)
        self.rotation = _rotation(rotation)
        self.wobble = wobble or Wobble.none()
        margin = 1.0 + float(np.sum(self.wobble.weight))
        self.bbox = _bbox_of_box(self.center, self.rotation, self.axes * margin)
        self._scaled = (self.rotation / self.axes).astype(np.float32)

    def radius(self, points: Array) -> Array:
        """Normalised radius minus the wobble: ``< 1`` inside."""
        q = (points - self.center) @ self._scaled
        r = np.sqrt(np.einsum("...i,...i->...", q, q))
        return r - self.wobble(q)

    def tissue(self, points: Array) -> Array:
        return np.where(self.radius(points) < 1.0, self.tissue_id, OUTSIDE).astype(np.int16)


class Shell(Ellipsoid):
    """The part of an ellipsoid's shell of ``thickness`` (normalised) where a band pattern is on.

    Used for the skull (no bands) and the rib cage (bands along the local z axis with
    ``period`` mm and ``duty`` fraction of bone), restricted to local ``z`` in ``z_range``.
    """

    def __init__(
        self,
        tissue_id: int,
        center: npt.ArrayLike,
        axes: npt.ArrayLike,
        thickness: float,
        rotation: Array | None = None,
        wobble: Wobble | None = None,
        period: float = 0.0,
        duty: float = 1.0,
        z_range: tuple[float, float] = (-np.inf, np.inf),
        min_y: float = -np.inf,
    ) -> None:
        super().__init__(tissue_id, center, axes, rotation, wobble)
        self.thickness = thickness
        self.period = period
        self.duty = duty
        self.z_range = z_range
        self.min_y = min_y

    def tissue(self, points: Array) -> Array:
        local = (points - self.center) @ self.rotation
        q = local / self.axes
        r = np.sqrt(np.einsum("...i,...i->...", q, q)) - self.wobble(q)
        on = (r < 1.0) & (r > 1.0 - self.thickness)
        on &= (local[..., 2] >= self.z_range[0]) & (local[..., 2] <= self.z_range[1])
        on &= local[..., 1] >= self.min_y
        if self.period > 0:
            phase = np.mod(local[..., 2] / self.period, 1.0)
            on &= phase < self.duty
        return np.where(on, self.tissue_id, OUTSIDE).astype(np.int16)


class Capsule(Shape):
    """All points within ``radius`` (wobbled) of the segment ``a``–``b``."""

    def __init__(
        self,
        tissue_id: int,
        a: npt.ArrayLike,
        b: npt.ArrayLike,
        radius: float,
        wobble: Wobble | None = None,
        radius_b: float | None = None,
    ) -> None:
        self.tissue_id = tissue_id
        self.a = np.asarray(a, np.float32)
        self.b = np.asarray(b, np.float32)
        self.r_a = radius
        self.r_b = radius if radius_b is None else radius_b
        self.wobble = wobble or Wobble.none()
        grow = max(self.r_a, self.r_b) * (1.0 + float(np.sum(self.wobble.weight)))
        lo = np.minimum(self.a, self.b) - grow
        hi = np.maximum(self.a, self.b) + grow
        self.bbox = (lo.astype(float), hi.astype(float))

    def tissue(self, points: Array) -> Array:
        ab = self.b - self.a
        t = np.clip(((points - self.a) @ ab) / float(ab @ ab), 0.0, 1.0)
        nearest = self.a + t[..., None] * ab
        d = points - nearest
        dist = np.sqrt(np.einsum("...i,...i->...", d, d))
        radius = self.r_a + (self.r_b - self.r_a) * t
        q = (points - self.a) / np.float32(max(self.r_a, self.r_b))
        inside = dist < radius * (1.0 + self.wobble(q))
        return np.where(inside, self.tissue_id, OUTSIDE).astype(np.int16)


class Cylinder(Shape):
    """A straight cylinder: ``center``, unit ``axis``, ``radius``, ``length`` (a marker hole)."""

    def __init__(
        self,
        tissue_id: int,
        center: npt.ArrayLike,
        axis: npt.ArrayLike,
        radius: float,
        length: float,
    ) -> None:
        self.tissue_id = tissue_id
        self.center = np.asarray(center, np.float32)
        axis_arr = np.asarray(axis, np.float32)
        self.axis = axis_arr / np.linalg.norm(axis_arr)
        self.radius = radius
        self.length = length
        extent = np.abs(self.axis) * length / 2 + radius * np.sqrt(
            np.clip(1.0 - self.axis**2, 0.0, 1.0)
        )
        self.bbox = ((self.center - extent).astype(float), (self.center + extent).astype(float))

    def tissue(self, points: Array) -> Array:
        d = points - self.center
        t = d @ self.axis
        radial = np.einsum("...i,...i->...", d, d) - t * t
        inside = (np.abs(t) <= self.length / 2) & (radial <= self.radius**2)
        return np.where(inside, self.tissue_id, OUTSIDE).astype(np.int16)


class Box(Shape):
    """An axis-aligned box in the holder frame (the holder's plastic parts)."""

    def __init__(self, tissue_id: int, lo: npt.ArrayLike, hi: npt.ArrayLike) -> None:
        self.tissue_id = tissue_id
        self.lo = np.asarray(lo, np.float32)
        self.hi = np.asarray(hi, np.float32)
        self.bbox = (self.lo.astype(float), self.hi.astype(float))

    def tissue(self, points: Array) -> Array:
        inside = np.all((points >= self.lo) & (points <= self.hi), axis=-1)
        return np.where(inside, self.tissue_id, OUTSIDE).astype(np.int16)


class Clipped(Shape):
    """``shape`` restricted to the inside of ``within`` (e.g. a fat pad clipped to the body)."""

    def __init__(self, shape: Shape, within: Shape) -> None:
        self.shape = shape
        self.within = within
        lo = np.maximum(shape.bbox[0], within.bbox[0])
        hi = np.minimum(shape.bbox[1], within.bbox[1])
        self.bbox = (lo, hi)

    def tissue(self, points: Array) -> Array:
        t = self.shape.tissue(points)
        return np.where(self.within.inside(points), t, OUTSIDE).astype(np.int16)


class Union(Shape):
    """Inside any of ``shapes``; the tissue is the last shape's that contains the point."""

    def __init__(self, shapes: Sequence[Shape]) -> None:
        self.shapes = list(shapes)
        lo = np.min([s.bbox[0] for s in self.shapes], axis=0)
        hi = np.max([s.bbox[1] for s in self.shapes], axis=0)
        self.bbox = (lo, hi)

    def tissue(self, points: Array) -> Array:
        out = np.full(points.shape[:-1], OUTSIDE, np.int16)
        for s in self.shapes:
            t = s.tissue(points)
            out = np.where(t >= 0, t, out)
        return out
