"""`make_pair`: one mouse scanned by micro-CT and then by Dixon MRI, with the ground truth.

Anatomy and holder are solids in the holder frame. The CT grid samples them through the CT pose;
the MRI grid samples them through the true MRI→CT mapping (holder rigid motion after the tissue
displacement), so labels, landmarks, holes and transforms agree by construction.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import dask.array as da
import numpy as np
from scipy import ndimage

from mousereg.errors import InputError
from mousereg.labels import LabelTable
from mousereg.phantom import scanners
from mousereg.phantom.anatomy import Subject, mouse_shapes
from mousereg.phantom.holder import (
    DEFAULT_DESIGN,
    FILL_RANGE,
    HolderDesign,
    filled_holes,
    holder_shapes,
    spurious_blob_centres,
    vaseline_plugs,
)
from mousereg.phantom.landmarks import organ_landmarks
from mousereg.phantom.motion import (
    DisplacementGrid,
    Pose,
    TissueMotion,
    axis_rotations,
    displacement_in_scanner,
    small_rotation,
)
from mousereg.phantom.physics import KVP
from mousereg.phantom.render import GridMap, paint
from mousereg.phantom.shapes import Ellipsoid, Shape
from mousereg.phantom.tissues import label_lut, tid
from mousereg.phantom.transforms import composite, euler
from mousereg.volume import Volume

RESOLUTIONS = ("full", "test")
CT_SPACING = {"full": 0.14, "test": 0.28}
CT_BOX = (np.array([-21.0, -6.0, -55.0]), np.array([21.0, 19.0, 55.0]))  # holder frame, mm
MR_FOV = np.array([80.0, 55.0, 17.6])  # along index x, y, z (mm)
MR_MATRIX = {"full": (384, 264, 44), "test": (192, 132, 22)}
# slab axes in the holder frame: frequency head->tail, phase across, slices dorsal->ventral
SLAB_AXES = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])
MOVING_BOX = (np.array([-15.0, 0.0, -66.0]), np.array([15.0, 20.0, 52.0]))
MAX_TILT_DEG = 2.5
MAX_OFFSET_MM = 100.0
CHUNKS = 128


@dataclasses.dataclass(frozen=True, eq=False)
class PhantomPair:
    """A CT/MRI pair of one synthetic mouse with its ground truth (see docs/phantom.md)."""

    ct: Volume
    mr: Volume
    ct_labels: Volume
    mr_labels: Volume
    mu511: Volume
    transform: Any  # SimpleITK transform, MRI point -> CT point
    inverse: Any  # SimpleITK transform, CT point -> MRI point
    rigid: Any  # SimpleITK Euler3DTransform, holder's rigid MRI -> CT mapping
    holes_ct: np.ndarray
    holes_mr: np.ndarray
    holes_in_mr: np.ndarray
    hole_ids: np.ndarray
    hole_diameters: np.ndarray
    hole_lengths: np.ndarray
    hole_axes_ct: np.ndarray  # (N, 3) unit axes in CT space
    hole_axes_mr: np.ndarray  # (N, 3) unit axes in MRI space
    landmarks: dict[str, np.ndarray]
    kvp: int
    info: dict[str, Any]


def _mr_grid_map(
    pose: Pose,
    origin: np.ndarray,
    direction: np.ndarray,
    spacing: np.ndarray,
    size: np.ndarray,
    holder_shift: np.ndarray,
    dz: float,
) -> GridMap:
    """Index -> holder map of the MRI grid (sub-sample offset ``dz`` slices), deformation incl.

    ``holder_shift`` ``(z, y, x, 3)`` is the tissue displacement at each voxel centre, in the
    holder frame (the ±1/3-slice sub-samples reuse the centre's value; the field is smooth).
    """
    lin_phys = direction * spacing  # columns: physical step per index
    origin_dz = origin + lin_phys[:, 2] * dz
    affine = np.eye(4)
    affine[:3, :3] = pose.rotation.T @ lin_phys
    affine[:3, 3] = pose.rotation.T @ (origin_dz - pose.translation)

    def warp(z0: int, pts: np.ndarray) -> np.ndarray:
        return pts + holder_shift[z0 : z0 + pts.shape[0]]

    return GridMap((int(size[2]), int(size[1]), int(size[0])), affine, warp, margin=1.0)


def _voxel_shift(
    pose: Pose, origin: np.ndarray, direction: np.ndarray, spacing: np.ndarray,
    size: np.ndarray, field: DisplacementGrid,
) -> np.ndarray:  # fmt: skip
    """The displacement at every MRI voxel centre, rotated into the holder frame (float32).

    The field's grid shares the MRI's axes, so the sampling is separable (an axis-wise affine).
    """
    if not np.allclose(field.direction, direction):
        msg = "the displacement grid must share the MRI grid's axes"
        raise ValueError(msg)
    scale = spacing / field.spacing  # (x, y, z)
    offset = field.index_of(origin[None, :])[0]
    out = np.empty((*size[::-1], 3), np.float32)
    for c in range(3):
        out[..., c] = ndimage.affine_transform(
            field.field[..., c].astype(np.float32),
            np.diag(scale[::-1]),
            offset=offset[::-1],
            output_shape=tuple(int(n) for n in size[::-1]),
            order=1,
            mode="constant",
        )
    return out @ pose.rotation.astype(np.float32)


def _bladder_center(shapes: list[Shape]) -> np.ndarray:
    for s in shapes:
        if isinstance(s, Ellipsoid) and s.tissue_id == tid("bladder"):
            return np.asarray(s.center, float)
    return np.array([0.0, 5.0, -36.0])


def _volume(arr: np.ndarray, origin: np.ndarray, spacing: np.ndarray, direction: np.ndarray,
            **kw: Any) -> Volume:  # fmt: skip
    chunks = (1, CHUNKS, CHUNKS, CHUNKS) if arr.ndim == 4 else CHUNKS
    return Volume(
        da.from_array(arr, chunks=chunks),
        spacing=tuple(spacing),
        origin=tuple(origin),
        direction=direction,
        **kw,
    )


def make_pair(
    seed: int = 0,
    resolution: str = "test",
    frame: int | None = None,
    holes_outside_mr: int = 2,
    spurious_blobs: int = 0,
    design: HolderDesign = DEFAULT_DESIGN,
    ct_spacing: float | None = None,
    hole_fill: tuple[float, float] = FILL_RANGE,
) -> PhantomPair:
    """Make one synthetic CT/MRI pair with ground truth.

    Args:
        seed: random seed; the same seed gives the same pair.
        resolution: ``"full"`` (CT 140 µm, MRI 384×264×44) or ``"test"`` (about 1/8 voxels).
        frame: index 0..23 of the axis-aligned rotation between the CT and MRI frames
            (None = random).
        holes_outside_mr: how many of the holder's outer holes are filled (they lie outside the
            MRI slab).
        spurious_blobs: vaseline smears on the holder that are not marker holes.
        design: the holder design.
        ct_spacing: CT voxel size in mm (default 0.14 at "full", 0.28 at "test").
        hole_fill: range of the fraction of each hole's length that this preparation's vaseline
            plug fills (``(1, 1)``: every hole full); the truth gives the plugs' centres.
    """
    if resolution not in RESOLUTIONS:
        msg = f"resolution={resolution!r}: use 'full' or 'test'"
        raise InputError(msg)
    rotations = axis_rotations()
    if frame is not None and not 0 <= frame < len(rotations):
        msg = f"frame={frame}: use 0..23 (an axis-aligned rotation) or None for random"
        raise InputError(msg)
    if ct_spacing is not None and not 0.05 <= ct_spacing <= 2.0:
        msg = f"ct_spacing={ct_spacing}: use a voxel size between 0.05 and 2 mm"
        raise InputError(msg)
    if spurious_blobs < 0:
        msg = f"spurious_blobs={spurious_blobs}: use 0 or more"
        raise InputError(msg)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)]
    rng_body, rng_holder, rng_pose, rng_ct, rng_mr = streams

    subject = Subject.draw(rng_body)
    blobs = spurious_blob_centres(design, spurious_blobs, rng_holder)
    holes = vaseline_plugs(filled_holes(design, holes_outside_mr), rng_holder, hole_fill)
    body = mouse_shapes(subject, rng_body)
    shapes = body + holder_shapes(design, holes, blobs)

    # --- poses -------------------------------------------------------------------------------
    ct_pose = Pose(np.eye(3), rng_pose.uniform(-10.0, 10.0, 3))
    k = int(rng_pose.integers(len(rotations))) if frame is None else frame
    tilt = small_rotation(rng_pose, MAX_TILT_DEG)
    offset_dir = rng_pose.normal(size=3)
    offset = offset_dir / np.linalg.norm(offset_dir) * rng_pose.uniform(20.0, MAX_OFFSET_MM)
    mr_pose = Pose(rotations[k] @ tilt, offset)
    motion = TissueMotion.draw(rng_pose, _bladder_center(body), rail_x=15.0)
    slab_center = np.asarray(design.slab_center) + rng_pose.uniform(-0.3, 0.3, 3)

    # --- CT ----------------------------------------------------------------------------------
    ct_sp = CT_SPACING[resolution] if ct_spacing is None else float(ct_spacing)
    lo, hi = CT_BOX
    ct_size = np.round((hi - lo) / ct_sp).astype(int) + 1
    ct_affine = np.eye(4)
    ct_affine[:3, :3] = np.eye(3) * ct_sp
    ct_affine[:3, 3] = lo
    ct_grid = GridMap((int(ct_size[2]), int(ct_size[1]), int(ct_size[0])), ct_affine)
    ct_tissue = paint(shapes, ct_grid)
    hu, mu = scanners.ct_images(ct_tissue, rng_ct, resolution)
    ct_origin = ct_pose.apply(lo)
    ct_steps = np.full(3, ct_sp)

    # --- MRI ---------------------------------------------------------------------------------
    mr_size = np.array(MR_MATRIX[resolution])
    mr_sp = MR_FOV / mr_size
    mr_dir = rotations[k] @ SLAB_AXES
    # the slab's axes follow the scanner (R_k); the holder is tilted inside it
    mr_origin = mr_pose.apply(slab_center) - mr_dir @ (mr_sp * (mr_size - 1) / 2)
    field = displacement_in_scanner(motion, mr_pose, *MOVING_BOX, direction=mr_dir)
    shift = _voxel_shift(mr_pose, mr_origin, mr_dir, mr_sp, mr_size, field)
    samples = [
        paint(shapes, _mr_grid_map(mr_pose, mr_origin, mr_dir, mr_sp, mr_size, shift, dz))
        for dz in (-1 / 3, 0.0, 1 / 3)
    ]
    water, fat = scanners.mr_images(samples, rng_mr)
    mr_tissue = samples[1]

    # --- truth -------------------------------------------------------------------------------
    rigid_matrix = ct_pose.rotation @ mr_pose.rotation.T
    rigid_t = ct_pose.translation - rigid_matrix @ mr_pose.translation
    rigid = euler(rigid_matrix, rigid_t)
    rigid_inv = euler(rigid_matrix.T, -rigid_matrix.T @ rigid_t)
    inverse_field = field.inverted()
    transform = composite([rigid, field.to_sitk()])
    inverse = composite([inverse_field.to_sitk(), rigid_inv])

    hole_centres = np.array([h.center for h in holes], float)
    hole_axes = np.array([h.axis for h in holes], float)
    hole_axes /= np.linalg.norm(hole_axes, axis=1, keepdims=True)
    holes_ct = ct_pose.apply(hole_centres)
    holes_mr = mr_pose.apply(hole_centres)
    idx = ((holes_mr - mr_origin) @ mr_dir) / mr_sp
    holes_in_mr = np.all((idx >= -0.5) & (idx <= mr_size - 0.5), axis=1)

    def ct_to_mr(points: np.ndarray) -> np.ndarray:
        """Exact inverse of ``transform``: solve ``p + u(p) = rigid⁻¹(x)`` by fixed point."""
        r = (points - rigid_t) @ rigid_matrix  # rigid inverse
        p = r + inverse_field.at(r)
        for _ in range(8):
            p = r - field.at(p)
        return p

    def in_mr(points: np.ndarray) -> np.ndarray:
        i = ((points - mr_origin) @ mr_dir) / mr_sp
        return np.all((i >= 1.0 / mr_sp) & (i <= mr_size - 1 - 1.0 / mr_sp), axis=1)

    landmarks = organ_landmarks(shapes, ct_tissue, ct_grid, ct_pose, ct_to_mr, in_mr, rng_body)

    table = LabelTable.default()
    lut = label_lut()
    mr_frame = (mr_origin, mr_sp, mr_dir)
    ct_frame = (ct_origin, ct_steps, ct_pose.rotation)
    info = {
        "seed": seed,
        "resolution": resolution,
        "frame": k,
        "tilt_matrix": tilt.round(8).tolist(),
        "mr_offset_mm": offset.round(6).tolist(),
        "ct_offset_mm": ct_pose.translation.round(6).tolist(),
        "deformation_peak_mm": float(np.sqrt((field.field**2).sum(-1)).max()),
        "subject": {**dataclasses.asdict(subject), "weight_g": subject.weight_g},
        "holes_outside_mr": holes_outside_mr,
        "spurious_blobs": [{"center": c.tolist(), "radius": r} for c, r in blobs],
        "kvp": KVP,
    }
    return PhantomPair(
        ct=_volume(hu, *ct_frame, modality="CT"),
        mr=_volume(
            np.stack([water, fat]), *mr_frame, channel_names=("water", "fat"), modality="MR"
        ),
        ct_labels=_volume(lut[ct_tissue], *ct_frame, modality="labels", labels=table),
        mr_labels=_volume(lut[mr_tissue], *mr_frame, modality="labels", labels=table),
        mu511=_volume(mu, *ct_frame, modality="mu511"),
        transform=transform,
        inverse=inverse,
        rigid=rigid,
        holes_ct=holes_ct,
        holes_mr=holes_mr,
        holes_in_mr=holes_in_mr,
        hole_ids=np.array([h.id for h in holes]),
        hole_diameters=np.array([h.diameter for h in holes]),
        hole_lengths=np.array([h.length for h in holes]),
        hole_axes_ct=hole_axes @ ct_pose.rotation.T,
        hole_axes_mr=hole_axes @ mr_pose.rotation.T,
        landmarks=landmarks,
        kvp=KVP,
        info=info,
    )
