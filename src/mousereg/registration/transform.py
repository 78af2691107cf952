"""`Transform`: a spatial transform in ITK's convention (fixed physical point -> moving point).

A registration of MOVING onto FIXED returns a transform that maps LPS points (mm) of the fixed
space to the moving space, so ``sitk.Resample(moving, fixed, T)`` puts the moving image on the
fixed grid. `Transform` wraps a SimpleITK transform (linear, displacement field, B-spline or a
composite of those) and adds vectorised point mapping, composition, inversion and file export:
ITK ``.h5``/``.tfm`` (what SimpleITK, 3D Slicer and ANTs read), ANTs-style ``Warp.nii.gz`` and the
displacement field as a volume (OME-Zarr or NIfTI through :func:`mousereg.io.write_volume`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from mousereg.errors import InputError
from mousereg.io.atomic import atomic_path
from mousereg.io.transform_files import read_transform, write_transform
from mousereg.registration._inverse import consistency, grid_volume, inverse_residual_field
from mousereg.registration._points import PointMap, affine_step, flatten, linear_parts, make_step
from mousereg.resample import grid_columns
from mousereg.volume import Volume

ITK_SUFFIXES = (".h5", ".hdf5", ".tfm", ".txt", ".mat")
TEXT_SUFFIXES = (".tfm", ".txt", ".mat")
FIELD_CHANNELS = ("dx", "dy", "dz")


def _suffix(path: Path) -> str:
    return path.suffix.lower()


class Transform:
    """A 3-D spatial transform mapping fixed (reference) points to moving points.

    Args:
        transform: the SimpleITK transform to wrap (it is copied).
        inverse_consistency: for an inverse computed numerically, ``{"mean_mm", "max_mm"}`` of
            ``|T(T⁻¹(p)) - p|`` over its grid; ``None`` otherwise.

    Example:
        >>> t = Transform.from_matrix(np.eye(3), translation=(1.0, 0.0, 0.0))
        >>> t.transform_points([[0.0, 0.0, 0.0]]).tolist()
        [[1.0, 0.0, 0.0]]
    """

    def __init__(
        self,
        transform: sitk.Transform,
        *,
        inverse_consistency: dict[str, float] | None = None,
    ) -> None:
        if transform.GetDimension() != 3:
            msg = f"mousereg needs 3-D transforms; this one is {transform.GetDimension()}-D"
            raise InputError(msg)
        self._parts = flatten(transform)
        self._steps: list[PointMap] | None = None
        self._inverses: dict[tuple[Any, ...], Transform] = {}
        self.inverse_consistency = inverse_consistency

    # ---- constructors ------------------------------------------------------------------------
    @classmethod
    def identity(cls) -> Transform:
        """The identity transform."""
        return cls(sitk.AffineTransform(3))

    @classmethod
    def from_matrix(
        cls,
        matrix: npt.ArrayLike,
        translation: npt.ArrayLike = (0.0, 0.0, 0.0),
        center: npt.ArrayLike = (0.0, 0.0, 0.0),
    ) -> Transform:
        """``x -> A (x - c) + c + t`` (ITK's affine parameterisation) as an affine transform."""
        a = np.asarray(matrix, dtype=float)
        if a.shape != (3, 3):
            msg = f"matrix must be 3x3, got shape {a.shape}"
            raise InputError(msg)
        aff = sitk.AffineTransform(3)
        aff.SetMatrix(tuple(a.reshape(-1)))
        aff.SetTranslation(tuple(np.asarray(translation, dtype=float).reshape(3)))
        aff.SetCenter(tuple(np.asarray(center, dtype=float).reshape(3)))
        return cls(aff)

    @classmethod
    def from_sitk(cls, transform: sitk.Transform) -> Transform:
        """Wrap a SimpleITK transform."""
        return cls(transform)

    @classmethod
    def from_displacement_field(cls, field: Volume) -> Transform:
        """A displacement field transform from a 3-channel Volume of (dx, dy, dz) in mm, LPS."""
        if not field.is_multichannel or field.n_channels != 3:
            msg = (
                f"a displacement field needs 3 channels (dx, dy, dz in mm), got "
                f"{field.n_channels} channel(s) of shape {field.data.shape}"
            )
            raise InputError(msg)
        img = sitk.Cast(field.to_sitk(), sitk.sitkVectorFloat64)
        return cls(sitk.DisplacementFieldTransform(img))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Transform:
        """Read an ITK transform file (``.h5``, ``.tfm``, ``.txt``, ``.mat``; composites too)."""
        p = Path(path)
        if not p.is_file():
            msg = f"{p}: no such transform file; check the path"
            raise InputError(msg)
        if _suffix(p) not in ITK_SUFFIXES:
            msg = f"{p}: not an ITK transform file; use one of {', '.join(ITK_SUFFIXES)}"
            raise InputError(msg)
        try:
            t = read_transform(p)
        except RuntimeError as exc:
            msg = (
                f"{p}: not an ITK transform file (SimpleITK cannot read it); elastix "
                "TransformParameters files must be converted to ITK first"
            )
            raise InputError(msg) from exc
        return cls(t)

    # ---- the wrapped transform ---------------------------------------------------------------
    def to_sitk(self) -> sitk.Transform:
        """The transform as one SimpleITK transform (a CompositeTransform when it has parts)."""
        if len(self._parts) == 1:
            return sitk.Transform(self._parts[0]).Downcast()
        # CompositeTransform applies its last entry first: list the parts in reverse.
        return sitk.CompositeTransform([sitk.Transform(t) for t in reversed(self._parts)])

    @property
    def parts(self) -> list[sitk.Transform]:
        """The elementary transforms in the order they act on a point."""
        return list(self._parts)

    @property
    def is_linear(self) -> bool:
        """True when every part is linear (the whole is then one affine map)."""
        return all(t.IsLinear() for t in self._parts)

    def _require_linear(self) -> None:
        if not self.is_linear:
            msg = "this transform is deformable; it has no matrix (use to_displacement_field)"
            raise InputError(msg)

    def _affine(self) -> tuple[np.ndarray, np.ndarray]:
        return _linear_map(self._parts)

    @property
    def matrix(self) -> np.ndarray:
        """The 3×3 matrix ``A`` of a linear transform ``x -> A x + b``."""
        self._require_linear()
        return self._affine()[0]

    @property
    def translation(self) -> np.ndarray:
        """The offset ``b`` of a linear transform ``x -> A x + b`` (mm)."""
        self._require_linear()
        return self._affine()[1]

    def as_matrix4(self) -> np.ndarray:
        """The 4×4 homogeneous matrix of a linear transform (LPS mm)."""
        a, b = self.matrix, self.translation
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = a, b
        return m

    # ---- points ---------------------------------------------------------------------------
    def _point_steps(self) -> list[PointMap]:
        if self._steps is None:
            steps: list[PointMap] = []
            pending: list[sitk.Transform] = []
            for t in [*self._parts, None]:
                if t is not None and t.IsLinear():
                    pending.append(t)
                    continue
                if pending:  # merge runs of linear parts into one matrix product
                    a, b = _linear_map(pending)
                    steps.append(affine_step(a, b))
                    pending = []
                if t is not None:
                    steps.append(make_step(t))
            self._steps = steps
        return self._steps

    def transform_points(self, points: npt.ArrayLike) -> np.ndarray:
        """Map ``(N, 3)`` LPS points (mm) from the fixed to the moving space."""
        p = np.asarray(points, dtype=float)
        if p.ndim != 2 or p.shape[1] != 3:
            msg = f"points must have shape (N, 3), got {p.shape}"
            raise InputError(msg)
        return np.ascontiguousarray(self.transform_columns(np.ascontiguousarray(p.T)).T)

    def transform_columns(self, points: np.ndarray) -> np.ndarray:
        """Map ``(3, N)`` LPS points (rows x, y, z; mm): the fast layout for many points."""
        out = np.asarray(points, dtype=float)
        for step in self._point_steps():
            out = step(out)
        return out

    # ---- algebra --------------------------------------------------------------------------
    def then(self, other: Transform) -> Transform:
        """The composition ``x -> other(self(x))`` (a SimpleITK CompositeTransform)."""
        composite = sitk.CompositeTransform([other.to_sitk(), self.to_sitk()])
        return Transform(composite)

    def inverse(
        self,
        reference: Volume | None = None,
        *,
        spacing: float | None = None,
        iterations: int = 50,
        tolerance_mm: float = 1e-4,
    ) -> Transform:
        """The inverse transform (moving point -> fixed point).

        Linear transforms invert exactly. A deformable transform inverts numerically on the grid
        of ``reference`` (a grid in the MOVING space, optionally resampled to ``spacing`` mm):
        ``T⁻¹ = L⁻¹ ∘ (I + r)`` with ``L`` the linear parts and ``r`` a displacement field found
        by a preconditioned fixed-point iteration ``S ← S - A⁻¹ (T(S) - y)``. Its
        inverse-consistency error ``|T(T⁻¹(p)) - p|`` (mean, max in mm over the grid nodes and
        the cell centres) is stored in ``inverse_consistency``.
        """
        if self.is_linear:
            a, b = self._affine()
            a_inv = np.linalg.inv(a)
            return Transform.from_matrix(a_inv, translation=-a_inv @ b)
        if reference is None:
            msg = "inverting a deformable transform needs a reference grid in the moving space"
            raise InputError(msg)
        grid = grid_volume(reference, spacing)
        key = (
            grid.shape, grid.spacing, grid.origin, grid.direction.tobytes(), iterations,
            tolerance_mm,
        )  # fmt: skip
        if key in self._inverses:  # inverting twice on one grid (labels + field of view)
            return self._inverses[key]
        linear = [t for t in self._parts if t.IsLinear()]
        a, b = _linear_map(linear)
        a_inv = np.linalg.inv(a)
        residual = inverse_residual_field(self, grid, a, b, a_inv, iterations, tolerance_mm)
        field = grid.with_array(residual, channel_names=FIELD_CHANNELS)
        l_inv = Transform.from_matrix(a_inv, translation=-a_inv @ b)
        inv = Transform.from_displacement_field(field).then(l_inv)
        inv.inverse_consistency = consistency(self, inv, grid)
        self._inverses[key] = inv
        return inv

    # ---- fields ---------------------------------------------------------------------------
    def to_displacement_field(
        self, reference: Volume, chunks: int | tuple[int, int, int] | None = None
    ) -> Volume:
        """``T(p) - p`` on the grid of ``reference``: a lazy 3-channel (dx, dy, dz) Volume, mm."""
        if chunks is None:
            zyx_chunks: Any = reference.data.chunks[-3:]
        else:
            zyx_chunks = (chunks,) * 3 if isinstance(chunks, int) else tuple(chunks)
        template = da.zeros(reference.shape, chunks=zyx_chunks, dtype=np.float32)

        def block(x: np.ndarray, block_info: dict[Any, Any] | None = None) -> np.ndarray:
            assert block_info is not None
            loc = block_info[None]["array-location"]
            slices = tuple(slice(lo, hi) for lo, hi in loc[-3:])
            pts = grid_columns(reference, (slices[0], slices[1], slices[2]))
            disp = self.transform_columns(pts) - pts
            shape = tuple(hi - lo for lo, hi in loc[-3:])
            return disp.reshape((3, *shape)).astype(np.float32)

        data = template.map_blocks(
            block, new_axis=0, chunks=((3,), *template.chunks), dtype=np.float32
        )
        return Volume(
            data=data,
            spacing=reference.spacing,
            origin=reference.origin,
            direction=reference.direction,
            channel_names=FIELD_CHANNELS,
            modality="displacement",
        )

    # ---- files ----------------------------------------------------------------------------
    def write(self, path: str | os.PathLike[str]) -> None:
        """Write an ITK transform file atomically (``.h5`` for any; ``.tfm`` for linear)."""
        p = Path(path)
        suffix = _suffix(p)
        if suffix not in ITK_SUFFIXES:
            msg = f"{p}: unknown transform suffix; use .h5 (any transform) or .tfm (linear)"
            raise InputError(msg)
        if suffix in TEXT_SUFFIXES and (len(self._parts) > 1 or not self.is_linear):
            msg = f"{p}: composite and deformable transforms are written as .h5; change the suffix"
            raise InputError(msg)
        write_transform(self.to_sitk(), p)

    def write_ants_warp(self, path: str | os.PathLike[str], reference: Volume) -> None:
        """Write the displacement field on ``reference`` as an ANTs ``Warp.nii.gz``.

        A vector NIfTI (float32, LPS mm) that ``ants.apply_transforms`` and
        ``antsApplyTransforms`` accept as a transform from the reference (fixed) space.
        """
        p = Path(path)
        if not p.name.endswith((".nii.gz", ".nii")):
            msg = f"{p}: an ANTs warp is a NIfTI file; name it like Warp.nii.gz"
            raise InputError(msg)
        field = self.to_displacement_field(reference)
        img = sitk.Cast(field.to_sitk(), sitk.sitkVectorFloat32)
        with atomic_path(p) as tmp:
            sitk.WriteImage(img, str(tmp), useCompression=p.name.endswith(".gz"))

    def write_displacement_field(self, path: str | os.PathLike[str], reference: Volume) -> None:
        """Write the displacement field on ``reference`` as a volume (OME-Zarr, NIfTI, ...)."""
        from mousereg.io import write_volume

        write_volume(self.to_displacement_field(reference), path)

    def __repr__(self) -> str:
        names = ", ".join(t.GetName() for t in self._parts)
        return f"Transform({names})"


def _linear_map(parts: list[sitk.Transform]) -> tuple[np.ndarray, np.ndarray]:
    """``(A, b)`` of the composition of linear ``parts`` (in application order)."""
    a, b = np.eye(3), np.zeros(3)
    for t in parts:
        ai, bi = linear_parts(t)
        a, b = ai @ a, ai @ b + bi
    return a, b
