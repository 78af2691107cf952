"""What happens between the scans: the holder's rigid move and the soft tissue's smooth deformation.

* Poses: the holder frame sits in the CT scanner frame with an identity rotation and an offset; in
  the MRI scanner frame it is turned by one of the 24 axis-aligned rotations, tilted by a few
  degrees and shifted by up to 100 mm.
* Deformation: tissue at MRI-time holder position ``h`` was at ``h + w(h)`` at CT time. ``w``
  combines breathing (cranio-caudal motion around the diaphragm), bladder filling (radial) and a
  weak random field, is zero within 2.5 mm of the bed and 2 mm of the rails (the holder never
  deforms; the grid's 1.5 mm cells never reach from a moving node into the plastic), and its
  largest value is at most 1 mm.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
from scipy import ndimage


def axis_rotations() -> list[np.ndarray]:
    """The 24 proper rotations that map coordinate axes to coordinate axes (identity first)."""
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3))
            for row, (col, sign) in enumerate(zip(perm, signs, strict=True)):
                m[row, col] = sign
            if np.linalg.det(m) > 0:
                out.append(m)
    return out


def small_rotation(rng: np.random.Generator, max_degrees: float) -> np.ndarray:
    """A rotation by at most ``max_degrees`` about a random axis (Rodrigues)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.deg2rad(rng.uniform(0.3, 1.0) * max_degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


@dataclasses.dataclass(frozen=True)
class Pose:
    """A rigid placement of the holder frame in a scanner frame: ``x = R h + t``."""

    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, h: np.ndarray) -> np.ndarray:
        """Holder-frame points -> scanner points."""
        return np.asarray(h) @ self.rotation.T + self.translation

    def invert(self, x: np.ndarray) -> np.ndarray:
        """Scanner points -> holder-frame points."""
        return (np.asarray(x) - self.translation) @ self.rotation


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


@dataclasses.dataclass(frozen=True)
class TissueMotion:
    """Parameters of the soft-tissue displacement ``w`` (holder frame, mm)."""

    breathing: float  # cranio-caudal amplitude at the diaphragm
    diaphragm_z: float
    bladder: float  # radial amplitude at the bladder wall
    bladder_center: np.ndarray
    waves_k: np.ndarray  # (n, 3) random field wave vectors (rad/mm)
    waves_phase: np.ndarray  # (n, 3)
    waves_amp: np.ndarray  # (n, 3)
    rail_x: float  # |x| beyond which nothing moves
    bed_y: float  # y below which nothing moves
    peak: float  # the largest |w| after normalisation (<= 1 mm)

    @classmethod
    def draw(
        cls, rng: np.random.Generator, bladder_center: np.ndarray, rail_x: float
    ) -> TissueMotion:
        """Random breathing phase, bladder filling change and weak random field."""
        n = 4
        return cls(
            breathing=float(rng.uniform(-1.0, 1.0)),
            diaphragm_z=float(rng.uniform(3.0, 7.0)),
            bladder=float(rng.uniform(-1.0, 1.0)),
            bladder_center=np.asarray(bladder_center, float),
            waves_k=rng.normal(size=(n, 3)) * (2 * np.pi / 25.0),
            waves_phase=rng.uniform(0, 2 * np.pi, size=(n, 3)),
            waves_amp=rng.uniform(0.05, 0.12, size=(n, 3)),
            rail_x=rail_x - 2.0,
            bed_y=2.5,
            peak=float(rng.uniform(0.5, 1.0)),
        )

    def raw(self, h: np.ndarray) -> np.ndarray:
        """The unnormalised displacement at holder points ``(..., 3)``."""
        x, y, z = h[..., 0], h[..., 1], h[..., 2]
        w = np.zeros(h.shape, dtype=float)
        breath = self.breathing * np.exp(-(((z - self.diaphragm_z) / 9.0) ** 2) - (x / 9.0) ** 2)
        w[..., 2] += breath
        d = h - self.bladder_center
        r2 = np.sum(d * d, axis=-1)
        w += (self.bladder / 4.0) * d * np.exp(-r2 / (2 * 4.0**2))[..., None]
        for k, ph, amp in zip(self.waves_k, self.waves_phase, self.waves_amp, strict=True):
            w += amp * np.cos((h @ k)[..., None] + ph)
        fade = _smoothstep((y - self.bed_y) / 2.0) * _smoothstep((self.rail_x - np.abs(x)) / 2.0)
        return w * fade[..., None]


@dataclasses.dataclass(frozen=True)
class DisplacementGrid:
    """A displacement field sampled on a regular grid in a scanner frame (ITK layout).

    ``field`` is ``(z, y, x, 3)`` physical displacements (mm); linear interpolation, zero outside
    the grid (as ITK's DisplacementFieldTransform).
    """

    field: np.ndarray
    origin: np.ndarray
    spacing: np.ndarray
    direction: np.ndarray

    def index_of(self, points: np.ndarray) -> np.ndarray:
        """Continuous (x, y, z) indices of physical points."""
        return ((np.asarray(points) - self.origin) @ self.direction) / self.spacing

    def at(self, points: np.ndarray) -> np.ndarray:
        """Displacement at physical points ``(..., 3)`` by trilinear interpolation."""
        shape = points.shape
        idx = self.index_of(points.reshape(-1, 3))
        coords = idx[:, ::-1].T  # (z, y, x) rows for ndimage
        out = np.stack(
            [
                ndimage.map_coordinates(self.field[..., c], coords, order=1, mode="constant")
                for c in range(3)
            ],
            axis=-1,
        )
        return out.reshape(shape)

    def node_points(self) -> np.ndarray:
        """Physical positions of all nodes, ``(z, y, x, 3)``."""
        nz, ny, nx = self.field.shape[:3]
        k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
        idx = np.stack([i, j, k], axis=-1).astype(float)
        return (idx * self.spacing) @ self.direction.T + self.origin

    def inverted(self, iterations: int = 12) -> DisplacementGrid:
        """The field ``v`` with ``x + v(x) = p`` whenever ``p + u(p) = x`` (fixed-point).

        Only nodes within 2 mm of a moving node can have ``v != 0``; the others stay zero.
        """
        moving = np.sqrt(np.sum(self.field**2, axis=-1)) > 0
        near = ndimage.binary_dilation(moving, iterations=2)
        nodes = self.node_points()[near]
        v = -self.field[near]
        for _ in range(iterations):
            v = -self.at(nodes + v)
        field = np.zeros_like(self.field)
        field[near] = v
        return dataclasses.replace(self, field=field)

    def to_sitk(self) -> object:
        """A SimpleITK DisplacementFieldTransform."""
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(self.field.astype(np.float64), isVector=True)
        img.SetOrigin(tuple(float(v) for v in self.origin))
        img.SetSpacing(tuple(float(v) for v in self.spacing))
        img.SetDirection(tuple(float(v) for v in self.direction.reshape(-1)))
        return sitk.DisplacementFieldTransform(img)


def displacement_in_scanner(
    motion: TissueMotion,
    pose: Pose,
    lo: np.ndarray,
    hi: np.ndarray,
    direction: np.ndarray,
    spacing: float = 1.5,
) -> DisplacementGrid:
    """Sample ``u(p) = R w(R^T (p - t))`` on a grid (axes ``direction``) covering the holder box.

    ``lo``/``hi`` bound the moving region in the holder frame; the grid adds a 4 mm margin of
    zeros. The field is scaled so its largest node value is ``motion.peak`` (<= 1 mm).
    """
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1])
                        for c in (lo[2], hi[2])])  # fmt: skip
    phys = pose.apply(corners)
    local = phys @ direction  # coordinates along the grid axes
    first = local.min(axis=0) - 4.0
    last = local.max(axis=0) + 4.0
    size = np.ceil((last - first) / spacing).astype(int) + 1
    origin = direction @ first
    grid = DisplacementGrid(
        np.zeros((size[2], size[1], size[0], 3)), origin, np.full(3, spacing), direction
    )
    nodes = grid.node_points()
    w = motion.raw(pose.invert(nodes))
    peak = float(np.sqrt(np.sum(w * w, axis=-1)).max())
    if peak > 0:
        w *= motion.peak / peak
    return dataclasses.replace(grid, field=w @ pose.rotation.T)
