"""The vertebral column and the spinal cord: tubes around a curved dorsal midline.

The midline is ``x = x_c(z)``, ``y = y_c(z)`` in the mouse frame (z grows towards the head): a
dorsal hump in the thorax and lumbar region and a slight lateral bend (pose). The cord fills the
canal; each vertebra is an arch ring plus a ventral body and transverse processes, repeated with
a period along z and separated by soft-tissue discs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mousereg.phantom.shapes import OUTSIDE, Array, Shape


@dataclasses.dataclass(frozen=True)
class Midline:
    """The spine's curve in the mouse frame: ``y_c(z) = y_mid - hump * ((z - z_mid)/half)**2``."""

    y_mid: float
    z_mid: float
    half: float
    hump: float
    bend: float
    z_lo: float
    z_hi: float

    def offsets(self, local: Array) -> tuple[Array, Array]:
        """(dx, dy) of local points from the curve at their own z."""
        z = local[..., 2]
        u = (z - self.z_mid) / self.half
        y_c = self.y_mid - self.hump * u * u
        x_c = self.bend * np.sin(np.pi * u)
        return local[..., 0] - x_c, local[..., 1] - y_c


class _OnMidline(Shape):
    def __init__(self, midline: Midline, rotation: Array, center: Array, reach: float) -> None:
        self.midline = midline
        self.rotation = np.asarray(rotation, np.float32)
        self.center = np.asarray(center, np.float32)
        z = np.linspace(midline.z_lo, midline.z_hi, 50)
        u = (z - midline.z_mid) / midline.half
        curve = np.stack(
            [midline.bend * np.sin(np.pi * u), midline.y_mid - midline.hump * u * u, z], axis=1
        )
        world = curve @ self.rotation.T + self.center
        self.bbox = (world.min(axis=0) - reach, world.max(axis=0) + reach)

    def _local(self, points: Array) -> Array:
        return (points - self.center) @ self.rotation


class SpinalCord(_OnMidline):
    """The spinal cord: a tube of ``radius`` mm along the midline."""

    def __init__(
        self, tissue_id: int, midline: Midline, rotation: Array, center: Array, radius: float
    ) -> None:
        super().__init__(midline, rotation, center, radius + 0.5)
        self.tissue_id = tissue_id
        self.radius = radius

    def tissue(self, points: Array) -> Array:
        local = self._local(points)
        dx, dy = self.midline.offsets(local)
        z = local[..., 2]
        inside = (dx * dx + dy * dy < self.radius**2) & (z >= self.midline.z_lo)
        inside &= z <= self.midline.z_hi
        return np.where(inside, self.tissue_id, OUTSIDE).astype(np.int16)


class VertebralColumn(_OnMidline):
    """Vertebrae: arch ring, ventral body and transverse processes, repeated every ``period`` mm."""

    def __init__(
        self,
        tissue_id: int,
        midline: Midline,
        rotation: Array,
        center: Array,
        canal: float,
        scale: float,
        period: float,
    ) -> None:
        super().__init__(midline, rotation, center, 3.0 * scale)
        self.tissue_id = tissue_id
        self.canal = canal
        self.scale = scale
        self.period = period

    def tissue(self, points: Array) -> Array:
        local = self._local(points)
        dx, dy = self.midline.offsets(local)
        z = local[..., 2]
        s = self.scale
        rho2 = dx * dx + dy * dy
        arch = (rho2 > self.canal**2) & (rho2 < (self.canal + 0.45 * s) ** 2)
        body = ((dx / (1.15 * s)) ** 2 + ((dy + 1.55 * s) / (0.85 * s)) ** 2) < 1.0
        process = (np.abs(dx) < 2.3 * s) & (np.abs(dy + 0.9 * s) < 0.3 * s)
        spinous = (np.abs(dx) < 0.25 * s) & (dy > 0) & (dy < self.canal + 1.1 * s)
        phase = np.mod((z - self.midline.z_lo) / self.period, 1.0)
        bone = (arch | body | process | spinous) & (phase < 0.82)
        bone &= (z >= self.midline.z_lo) & (z <= self.midline.z_hi)
        return np.where(bone, self.tissue_id, OUTSIDE).astype(np.int16)
