"""`Volume`: the currency of mousereg — a lazy dask array with its physical frame.

Conventions (docs/conventions.md):

* The array is ``(z, y, x)`` or, with channels, ``(c, z, y, x)``.
* ``spacing`` and ``origin`` are in SimpleITK order ``(x, y, z)``, millimetres, LPS.
* ``direction`` is SimpleITK's 3×3 matrix: column ``j`` is the physical direction of index axis
  ``j`` (x, y, z). A voxel at index ``(i, j, k)`` (x, y, z order) lies at
  ``origin + direction @ (spacing * (i, j, k))``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np
import numpy.typing as npt

from mousereg.errors import InputError

if TYPE_CHECKING:
    import SimpleITK as sitk

    from mousereg.labels import LabelTable

Float3 = tuple[float, float, float]
ORTHONORMAL_TOLERANCE = 1e-4


def _as_float3(values: Sequence[float] | npt.ArrayLike, what: str) -> Float3:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.shape != (3,):
        msg = f"{what} must have 3 values (x, y, z), got {arr.tolist()}"
        raise InputError(msg)
    return (float(arr[0]), float(arr[1]), float(arr[2]))


def check_direction(direction: npt.ArrayLike, source: str = "volume") -> np.ndarray:
    """Return ``direction`` as a 3×3 float array, or raise if it is not orthonormal."""
    d = np.asarray(direction, dtype=float)
    if d.size != 9:
        msg = f"{source}: direction must be a 3x3 matrix, got {d.size} values; fix the header"
        raise InputError(msg)
    d = d.reshape(3, 3)
    if not np.allclose(d.T @ d, np.eye(3), atol=ORTHONORMAL_TOLERANCE):
        msg = (
            f"{source}: direction matrix is not orthonormal ({d.round(4).tolist()}); "
            "fix the image header (sheared grids are not supported)"
        )
        raise InputError(msg)
    return d


@dataclasses.dataclass(frozen=True, eq=False)
class Volume:
    """A 3-D image (optionally multi-channel) with spacing, origin and direction.

    Args:
        data: dask array, ``(z, y, x)`` or ``(c, z, y, x)``.
        spacing: voxel size in mm, ``(x, y, z)``.
        origin: physical position of voxel ``(0, 0, 0)`` in mm, LPS, ``(x, y, z)``.
        direction: 3×3 direction cosines (SimpleITK layout).
        channel_names: one name per channel (multi-channel volumes only).
        modality: free text such as ``"CT"``, ``"MR"``, ``"labels"``, ``"mu511"``.
        labels: label table when the volume is a label map.
    """

    data: da.Array
    spacing: Float3 = (1.0, 1.0, 1.0)
    origin: Float3 = (0.0, 0.0, 0.0)
    direction: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(3))
    channel_names: tuple[str, ...] = ()
    modality: str = ""
    labels: LabelTable | None = None

    def __post_init__(self) -> None:
        data = self.data
        if not isinstance(data, da.Array):
            data = da.asarray(data)
            object.__setattr__(self, "data", data)
        if data.ndim not in (3, 4):
            msg = f"a Volume needs a 3-D (z,y,x) or 4-D (c,z,y,x) array, got shape {data.shape}"
            raise InputError(msg)
        object.__setattr__(self, "spacing", _as_float3(self.spacing, "spacing"))
        object.__setattr__(self, "origin", _as_float3(self.origin, "origin"))
        object.__setattr__(self, "direction", check_direction(self.direction))
        if any(s <= 0 for s in self.spacing):
            msg = f"spacing must be positive, got {self.spacing}"
            raise InputError(msg)
        names = tuple(self.channel_names)
        if data.ndim == 4:
            if not names:
                names = tuple(f"c{i}" for i in range(data.shape[0]))
            if len(names) != data.shape[0]:
                msg = f"{len(names)} channel names for {data.shape[0]} channels"
                raise InputError(msg)
        elif names and len(names) != 1:
            msg = f"a single-channel volume takes at most one channel name, got {names}"
            raise InputError(msg)
        object.__setattr__(self, "channel_names", names)

    # ---- shape -----------------------------------------------------------------------------
    @property
    def is_multichannel(self) -> bool:
        """True for a ``(c, z, y, x)`` volume."""
        return bool(self.data.ndim == 4)

    @property
    def n_channels(self) -> int:
        """Number of channels (1 for a 3-D volume)."""
        return int(self.data.shape[0]) if self.is_multichannel else 1

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape ``(z, y, x)``."""
        z, y, x = self.data.shape[-3:]
        return (int(z), int(y), int(x))

    @property
    def size(self) -> tuple[int, int, int]:
        """Spatial size in SimpleITK order ``(x, y, z)``."""
        z, y, x = self.shape
        return (x, y, z)

    @property
    def dtype(self) -> np.dtype[Any]:
        """Voxel data type."""
        return np.dtype(self.data.dtype)

    # ---- frame -----------------------------------------------------------------------------
    @property
    def affine(self) -> np.ndarray:
        """4×4 matrix mapping a continuous index ``(x, y, z, 1)`` to an LPS point in mm."""
        m = np.eye(4)
        m[:3, :3] = self.direction @ np.diag(self.spacing)
        m[:3, 3] = self.origin
        return m

    def index_to_physical(self, index_xyz: npt.ArrayLike) -> np.ndarray:
        """Map continuous indices ``(..., 3)`` in ``(x, y, z)`` order to LPS points in mm."""
        idx = np.asarray(index_xyz, dtype=float)
        return idx @ (self.direction @ np.diag(self.spacing)).T + np.asarray(self.origin)

    def physical_to_index(self, points: npt.ArrayLike) -> np.ndarray:
        """Map LPS points ``(..., 3)`` in mm to continuous indices in ``(x, y, z)`` order."""
        p = np.asarray(points, dtype=float) - np.asarray(self.origin)
        return (p @ self.direction) / np.asarray(self.spacing)

    def corners(self) -> np.ndarray:
        """The 8 physical corner points (voxel centres) of the grid, shape ``(8, 3)``."""
        x, y, z = (s - 1 for s in self.size)
        idx = np.array([[i, j, k] for i in (0, x) for j in (0, y) for k in (0, z)], dtype=float)
        return self.index_to_physical(idx)

    def center(self) -> np.ndarray:
        """Physical centre of the grid in mm."""
        return self.index_to_physical((np.asarray(self.size, dtype=float) - 1) / 2)

    def same_grid(self, other: Volume, tol: float = 1e-6) -> bool:
        """True when ``other`` has the same spatial shape, spacing, origin and direction."""
        return (
            self.shape == other.shape
            and np.allclose(self.spacing, other.spacing, atol=tol)
            and np.allclose(self.origin, other.origin, atol=tol)
            and np.allclose(self.direction, other.direction, atol=tol)
        )

    # ---- derived volumes ---------------------------------------------------------------------
    def with_array(self, data: da.Array | np.ndarray, **changes: Any) -> Volume:
        """A copy with another array on the same frame (and optional field changes)."""
        arr = data if isinstance(data, da.Array) else da.from_array(data)
        if tuple(arr.shape[-3:]) != self.shape:
            msg = f"new array shape {arr.shape} does not match the grid {self.shape}"
            raise ValueError(msg)
        if arr.ndim == 3 and "channel_names" not in changes:
            changes["channel_names"] = ()
        return dataclasses.replace(self, data=arr, **changes)

    def crop(self, zyx_slices: tuple[slice, slice, slice]) -> Volume:
        """Crop by index slices in ``(z, y, x)`` order (steps must be 1); the origin follows."""
        starts = []
        for s, n in zip(zyx_slices, self.shape, strict=True):
            start, _, step = s.indices(n)
            if step != 1:
                msg = "crop takes slices with step 1"
                raise ValueError(msg)
            starts.append(start)
        kz, jy, ix = starts
        origin = self.index_to_physical([ix, jy, kz])
        sl = (slice(None), *zyx_slices) if self.is_multichannel else zyx_slices
        return dataclasses.replace(self, data=self.data[sl], origin=tuple(origin))

    def channel(self, which: int | str) -> Volume:
        """One channel of a multi-channel volume, by index or name, as a 3-D volume."""
        if not self.is_multichannel:
            if which in (0, *self.channel_names):
                return self
            msg = f"volume has no channel {which!r}"
            raise InputError(msg)
        if isinstance(which, str) and which not in self.channel_names:
            msg = f"volume has no channel {which!r}; it has {list(self.channel_names)}"
            raise InputError(msg)
        index = self.channel_names.index(which) if isinstance(which, str) else int(which)
        return dataclasses.replace(
            self, data=self.data[index], channel_names=(self.channel_names[index],)
        )

    def channels(self) -> list[Volume]:
        """Every channel as a 3-D volume."""
        return [self.channel(i) for i in range(self.n_channels)]

    @classmethod
    def stack(cls, volumes: Sequence[Volume], names: Sequence[str] | None = None) -> Volume:
        """Stack 3-D volumes on one grid into a multi-channel volume."""
        first = volumes[0]
        for v in volumes[1:]:
            if not first.same_grid(v):
                msg = "channels must share one grid (shape, spacing, origin, direction)"
                raise InputError(msg)
        chosen = (
            tuple(names)
            if names is not None
            else tuple(
                (v.channel_names[0] if v.channel_names else f"c{i}") for i, v in enumerate(volumes)
            )
        )
        data = da.stack([v.data for v in volumes])
        return dataclasses.replace(first, data=data, channel_names=chosen)

    def compute(self) -> np.ndarray:
        """The voxels as a numpy array (only for volumes that fit in memory)."""
        return np.asarray(self.data.compute())

    def rechunk(self, chunks: int | tuple[int, ...] = 64) -> Volume:
        """The same volume with another spatial chunking (channels stay one per chunk)."""
        c = (chunks,) * 3 if isinstance(chunks, int) else tuple(chunks)
        if self.is_multichannel:
            c = (1, *c)
        return dataclasses.replace(self, data=self.data.rechunk(c))

    # ---- SimpleITK / ITK / ANTs ------------------------------------------------------------------
    def to_sitk(self, channel: int | str | None = None) -> sitk.Image:
        """A SimpleITK image (computes the data). Multi-channel becomes a vector image."""
        import SimpleITK as sitk

        vol = self.channel(channel) if channel is not None else self
        arr = vol.compute()
        if vol.is_multichannel:
            img = sitk.GetImageFromArray(np.moveaxis(arr, 0, -1), isVector=True)
        else:
            img = sitk.GetImageFromArray(arr)
        img.SetSpacing(vol.spacing)
        img.SetOrigin(vol.origin)
        img.SetDirection(tuple(vol.direction.reshape(-1)))
        return img

    @classmethod
    def from_sitk(
        cls,
        image: sitk.Image,
        *,
        chunks: int = 64,
        channel_names: Sequence[str] = (),
        modality: str = "",
        labels: LabelTable | None = None,
    ) -> Volume:
        """Wrap a SimpleITK image (scalar or vector) as a Volume."""
        import SimpleITK as sitk

        if image.GetDimension() != 3:
            msg = f"mousereg works on 3-D images; this one has {image.GetDimension()} dimensions"
            raise InputError(msg)
        arr = sitk.GetArrayFromImage(image)
        if image.GetNumberOfComponentsPerPixel() > 1:
            arr = np.moveaxis(arr, -1, 0)
            ch: tuple[int, ...] = (1, chunks, chunks, chunks)
        else:
            ch = (chunks, chunks, chunks)
        return cls(
            data=da.from_array(arr, chunks=ch),
            spacing=image.GetSpacing(),
            origin=image.GetOrigin(),
            direction=np.asarray(image.GetDirection()).reshape(3, 3),
            channel_names=tuple(channel_names),
            modality=modality,
            labels=labels,
        )

    def to_itk(self, channel: int | str | None = None) -> Any:
        """An ITK image (for itk-elastix); computes the data."""
        import itk

        vol = self.channel(channel) if channel is not None else self
        if vol.is_multichannel:
            msg = "to_itk takes one channel; pass channel="
            raise ValueError(msg)
        arr = np.ascontiguousarray(vol.compute())
        img = itk.image_from_array(arr)
        img.SetSpacing(vol.spacing)
        img.SetOrigin(vol.origin)
        img.SetDirection(itk.matrix_from_array(np.ascontiguousarray(vol.direction)))
        return img

    @classmethod
    def from_itk(cls, image: Any, *, chunks: int = 64, modality: str = "") -> Volume:
        """Wrap a 3-D scalar ITK image."""
        import itk

        arr = np.asarray(itk.array_from_image(image))
        return cls(
            data=da.from_array(arr, chunks=chunks),
            spacing=tuple(image.GetSpacing()),
            origin=tuple(image.GetOrigin()),
            direction=np.asarray(itk.array_from_matrix(image.GetDirection())),
            modality=modality,
        )

    def to_ants(self, channel: int | str | None = None) -> Any:
        """An ANTsPy image (float32; ANTs works in the same LPS frame as ITK)."""
        import ants

        vol = self.channel(channel) if channel is not None else self
        if vol.is_multichannel:
            msg = "to_ants takes one channel; pass channel="
            raise ValueError(msg)
        arr = vol.compute().astype(np.float32)
        # ANTsPy arrays are indexed (x, y, z).
        return ants.from_numpy(
            np.ascontiguousarray(arr.transpose(2, 1, 0)),
            origin=list(vol.origin),
            spacing=list(vol.spacing),
            direction=vol.direction.copy(),
        )

    @classmethod
    def from_ants(cls, image: Any, *, chunks: int = 64, modality: str = "") -> Volume:
        """Wrap a 3-D scalar ANTsPy image."""
        arr = np.asarray(image.numpy()).transpose(2, 1, 0)
        return cls(
            data=da.from_array(np.ascontiguousarray(arr), chunks=chunks),
            spacing=tuple(image.spacing),
            origin=tuple(image.origin),
            direction=np.asarray(image.direction),
            modality=modality,
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary (what ``mousereg info`` prints)."""
        return {
            "shape_zyx": list(self.shape),
            "channels": list(self.channel_names) if self.is_multichannel else [],
            "spacing_xyz_mm": list(self.spacing),
            "origin_xyz_mm": list(self.origin),
            "direction": self.direction.round(8).tolist(),
            "dtype": str(self.dtype),
            "chunks": [int(c[0]) for c in self.data.chunks],
            "modality": self.modality,
            "labels": None if self.labels is None else len(self.labels),
        }
