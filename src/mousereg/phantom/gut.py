"""The small intestine: a wobbly abdominal region filled with a convoluted loop texture.

Real segmentations label the intestinal package as one region; inside it the loops show wall,
fluid content, gas pockets and mesenteric fat. The loops are drawn by a gyroid-like periodic field
(channels about ``period`` mm across), shifted by a random phase per subject.
"""

from __future__ import annotations

import numpy as np

from mousereg.phantom.shapes import OUTSIDE, Array, Ellipsoid
from mousereg.phantom.tissues import tid


class Intestine(Ellipsoid):
    """An ellipsoidal region whose inside is wall, content, gas or mesenteric fat by texture."""

    def __init__(
        self,
        ellipsoid: Ellipsoid,
        rng: np.random.Generator,
        period: float = 3.2,
        fat_fraction: float = 0.1,
    ) -> None:
        super().__init__(
            tid("intestine wall"),
            ellipsoid.center,
            ellipsoid.axes,
            ellipsoid.rotation,
            ellipsoid.wobble,
        )
        self.k = np.float32(2 * np.pi / period)
        self.shift = rng.uniform(0, 2 * np.pi, size=3).astype(np.float32)
        # domain warp: a smooth random displacement (about 1.5 mm, wavelength about 9 mm) bends
        # the periodic loops so they do not look like a lattice
        self.warp_k = (rng.normal(size=(3, 3)) * (2 * np.pi / 9.0)).astype(np.float32)
        self.warp_phase = rng.uniform(0, 2 * np.pi, size=3).astype(np.float32)
        self.warp_amp = np.float32(1.6)
        self.gas_shift = rng.uniform(0, 2 * np.pi, size=3).astype(np.float32)
        # a fraction ``fat_fraction`` of the region is mesenteric fat (the field's upper tail)
        self.fat_level = np.float32(1.35 - 1.6 * fat_fraction)

    def tissue(self, points: Array) -> Array:
        inside = self.radius(points) < 1.0
        local = points - self.center
        bent = local + self.warp_amp * np.sin(local @ self.warp_k.T + self.warp_phase)
        p = bent * self.k + self.shift
        sx, sy, sz = np.sin(p[..., 0]), np.sin(p[..., 1]), np.sin(p[..., 2])
        cx, cy, cz = np.cos(p[..., 0]), np.cos(p[..., 1]), np.cos(p[..., 2])
        g = sx * cy + sy * cz + sz * cx
        q = (points - self.center) * (self.k * np.float32(0.43)) + self.gas_shift
        h = np.sin(q[..., 0]) * np.sin(q[..., 1]) * np.sin(q[..., 2])
        out = np.full(points.shape[:-1], tid("intestine wall"), np.int16)
        content = np.abs(g) < 0.5
        out[content] = tid("intestine content")
        out[content & (h > 0.55)] = tid("intestine gas")
        out[g > self.fat_level] = tid("mesenteric fat")
        return np.where(inside, out, OUTSIDE).astype(np.int16)
