"""The pairwise registration the atlas builds on, behind one narrow callable.

``RegisterPair(fixed, moving, mode) -> sitk.Transform`` registers MOVING onto FIXED and returns
the transform mapping fixed physical points to moving physical points (ITK convention). The atlas
only ever needs the result as a dense displacement field on the fixed grid
(:func:`displacement_field`), so any backend that returns a SimpleITK transform fits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import dask.array as da
import numpy as np

from mousereg.volume import Volume

if TYPE_CHECKING:
    import SimpleITK as sitk

Mode = Literal["rigid", "affine", "deformable"]
RegisterPair = Callable[[Volume, Volume, Mode], "sitk.Transform"]


def displacement_field(transform: sitk.Transform, grid: Volume) -> np.ndarray:
    """``transform(x) - x`` sampled at the voxels of ``grid``: float32 ``(z, y, x, 3)`` in mm."""
    import SimpleITK as sitk

    conv = sitk.TransformToDisplacementFieldFilter()
    conv.SetReferenceImage(_reference(grid))
    conv.SetOutputPixelType(sitk.sitkVectorFloat64)
    field = conv.Execute(transform)
    return sitk.GetArrayFromImage(field).astype(np.float32)


def field_transform(field: np.ndarray, grid: Volume) -> sitk.Transform:
    """A SimpleITK displacement-field transform from a ``(z, y, x, 3)`` field on ``grid``."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.asarray(field, dtype=np.float64), isVector=True)
    img.SetSpacing(grid.spacing)
    img.SetOrigin(grid.origin)
    img.SetDirection(tuple(grid.direction.reshape(-1)))
    return sitk.DisplacementFieldTransform(img)


def _reference(grid: Volume) -> sitk.Image:
    import SimpleITK as sitk

    ref = sitk.Image(list(grid.size), sitk.sitkUInt8)
    ref.SetSpacing(grid.spacing)
    ref.SetOrigin(grid.origin)
    ref.SetDirection(tuple(grid.direction.reshape(-1)))
    return ref


@dataclasses.dataclass(frozen=True)
class BackendRegistration:
    """A :data:`RegisterPair` over the project's backends (``mousereg.registration``).

    Mouse-to-mouse MRI: both images are the sum of their channels (water + fat). The backend's
    linear stage (affine, Mattes MI) runs from the identity; for ``"deformable"`` its
    deformable stage (ANTs SyN or elastix B-spline) follows on the linearly resampled moving
    image, so ``T(p) = L(p + u(p))``.
    """

    backend: str = "ants"
    iterations: int = 40
    threads: int = 1

    def __call__(self, fixed: Volume, moving: Volume, mode: Mode) -> sitk.Transform:
        import SimpleITK as sitk

        from mousereg.registration import ants_backend, elastix_backend
        from mousereg.registration.intensity import mr_signal

        run = ants_backend if self.backend == "ants" else elastix_backend
        f, m = mr_signal(fixed), mr_signal(moving)
        kind = "rigid" if mode == "rigid" else "affine"
        linear = run.register_linear(f, m, kind, threads=self.threads)
        if mode != "deformable":
            return linear
        warped = sitk.Resample(m, f, linear, sitk.sitkLinear, 0.0)
        field = run.register_deformable(f, warped, threads=self.threads, iterations=self.iterations)
        u = sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))
        # CompositeTransform applies its last entry first: u, then the linear map.
        return sitk.CompositeTransform([linear, u])


def default_register_pair(fixed: Volume, moving: Volume, mode: Mode) -> sitk.Transform:
    """The registration the atlas uses unless told otherwise."""
    return BackendRegistration()(fixed, moving, mode)


def downsampled(volume: Volume, spacing: float) -> Volume:
    """``volume`` smoothed and resampled onto an isotropic ``spacing`` mm grid (same frame)."""
    import SimpleITK as sitk

    if min(volume.spacing) >= spacing:
        return volume
    extent = np.asarray(volume.size) * np.asarray(volume.spacing)
    size = [max(1, int(np.round(e / spacing))) for e in extent]
    shift = (extent - np.asarray(size) * spacing) / 2 + (spacing - np.asarray(volume.spacing)) / 2
    origin = np.asarray(volume.origin) + volume.direction @ shift
    ref = sitk.Image(size, sitk.sitkUInt8)
    ref.SetSpacing((spacing,) * 3)
    ref.SetOrigin(tuple(origin))
    ref.SetDirection(tuple(volume.direction.reshape(-1)))
    out = []
    for ch in volume.channels():
        img = sitk.Cast(ch.to_sitk(), sitk.sitkFloat32)
        sigma = [max(0.0, (spacing**2 - s**2)) ** 0.5 / 2.355 for s in volume.spacing]
        img = sitk.SmoothingRecursiveGaussian(img, sigma)
        out.append(
            sitk.GetArrayFromImage(sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear))
        )
    grid = Volume(
        data=da.from_array(out[0]),
        spacing=(spacing,) * 3,
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=volume.direction,
    )
    return (
        grid.with_array(np.stack(out), channel_names=volume.channel_names)
        if volume.is_multichannel
        else grid
    )


class CoarseRegistration:
    """A :data:`RegisterPair` that registers at ``spacing`` mm (the field is interpolated back).

    Group-wise template construction needs many registrations; running them on a coarser grid
    than the template (e.g. 0.8 mm for a 0.4 mm template) costs a fraction of the time, and the
    smooth deformations between mice lose little (see docs/atlas.md).
    """

    def __init__(self, register_pair: RegisterPair, spacing: float) -> None:
        self.register_pair = register_pair
        self.spacing = spacing

    def __call__(self, fixed: Volume, moving: Volume, mode: Mode) -> sitk.Transform:
        return self.register_pair(
            downsampled(fixed, self.spacing), downsampled(moving, self.spacing), mode
        )
