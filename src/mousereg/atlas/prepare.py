"""Bring one subject's modalities onto one grid in its MRI acquisition frame, at the atlas spacing.

The atlas is built in MRI space, in the *acquisition frame* of the Dixon slab: coordinates
``q = spacing * index`` along the MRI's own index axes (frequency, phase, slice), in mm from the
first voxel centre. Every mouse of a study is scanned with one protocol, so the anatomy has the
same orientation in this frame whatever the scanner's patient coordinates say; the frame is
mapped to the subject's physical (LPS) space by ``p = origin + direction @ q``
(:func:`acquisition_frame`). Each subject's MR water and fat are resampled onto an isotropic grid
of this frame; its CT, CT labels and 511 keV mu-map are carried there through the subject's
CT<->MRI mapping (MRI point -> CT point). The result, a :class:`SubjectStack`, is what the
group-wise registration works on.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dask.array as da
import numpy as np
import SimpleITK as sitk

from mousereg.atlas import format as fmt
from mousereg.atlas.subjects import AtlasSubject
from mousereg.errors import InputError
from mousereg.io.transform_files import read_transform
from mousereg.labels import LabelTable
from mousereg.volume import Volume

CT_OUTSIDE_HU = -1000.0  # air, for CT points outside the CT field of view
IMAGE_FILLS = {"ct": CT_OUTSIDE_HU, "mr_water": 0.0, "mr_fat": 0.0, "mu511": 0.0}


@dataclasses.dataclass(frozen=True)
class SubjectStack:
    """One subject on its MRI-space grid: ``images`` (ct, mr_water, mr_fat, mu511) float32,
    ``labels`` (ct_labels, mr_labels) uint8 with UNKNOWN_LABEL outside a source's field of view."""

    id: str
    images: np.ndarray
    labels: np.ndarray
    grid: Volume
    table: LabelTable
    frame: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(4))  # q -> MRI LPS

    def channel(self, name: str) -> np.ndarray:
        """One image channel by name."""
        return self.images[fmt.TEMPLATE_CHANNELS.index(name)]

    def volume(self, names: tuple[str, ...] = ("mr_water", "mr_fat")) -> Volume:
        """Selected image channels as a multi-channel Volume on the stack's grid."""
        data = np.stack([self.channel(n) for n in names])
        return self.grid.with_array(data, channel_names=names)


def acquisition_frame(mr: Volume) -> sitk.AffineTransform:
    """The map from the acquisition frame ``q`` to the MRI's physical point ``origin + D q``."""
    t = sitk.AffineTransform(3)
    t.SetMatrix(tuple(mr.direction.reshape(-1)))
    t.SetTranslation(tuple(mr.origin))
    return t


def canonical_grid(mr: Volume, spacing: float) -> Volume:
    """An isotropic ``spacing`` mm grid over the MRI field of view, in its acquisition frame."""
    frame = Volume(
        data=da.zeros(mr.shape, dtype=np.uint8, chunks=64), spacing=mr.spacing, origin=(0, 0, 0)
    )
    return isotropic_grid(frame, spacing)


def isotropic_grid(reference: Volume, spacing: float) -> Volume:
    """A grid covering ``reference``'s field of view with ``spacing`` mm voxels (same frame)."""
    extent = np.asarray(reference.size, dtype=float) * np.asarray(reference.spacing)
    size = np.maximum(1, np.round(extent / spacing)).astype(int)  # x, y, z
    # keep the field of view centred: the first voxel centre moves by half the size change
    shift = (extent - size * spacing) / 2.0 + (spacing - np.asarray(reference.spacing)) / 2.0
    origin = np.asarray(reference.origin) + reference.direction @ shift
    z, y, x = int(size[2]), int(size[1]), int(size[0])
    return Volume(
        data=da.zeros((z, y, x), dtype=np.uint8, chunks=64),
        spacing=(spacing,) * 3,
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=reference.direction,
    )


def _sitk_grid(grid: Volume) -> sitk.Image:
    ref = sitk.Image(list(grid.size), sitk.sitkUInt8)
    ref.SetSpacing(grid.spacing)
    ref.SetOrigin(grid.origin)
    ref.SetDirection(tuple(grid.direction.reshape(-1)))
    return ref


def resample_onto(
    image: sitk.Image,
    grid: Volume,
    transform: sitk.Transform | None = None,
    *,
    labels: bool = False,
    fill: float = 0.0,
) -> np.ndarray:
    """``image`` sampled on ``grid`` through ``transform`` (grid point -> image point)."""
    interp = sitk.sitkNearestNeighbor if labels else sitk.sitkLinear
    t = transform if transform is not None else sitk.Transform()
    pixel = sitk.sitkUInt8 if labels else sitk.sitkFloat32
    img = image if labels else sitk.Cast(image, sitk.sitkFloat32)
    out = sitk.Resample(img, _sitk_grid(grid), t, interp, fill, pixel)
    return sitk.GetArrayFromImage(out)


def _read(path: Path, what: str, subject: str) -> sitk.Image:
    from mousereg.io import read_volume

    vol = read_volume(path)
    if vol.is_multichannel:
        msg = f"subject {subject}: {what} {path} has {vol.n_channels} channels; expected one"
        raise InputError(msg)
    return vol.to_sitk()


def _read_transform(path: Path, subject: str) -> sitk.Transform:
    try:
        return read_transform(path)
    except RuntimeError as exc:
        msg = f"subject {subject}: {path} is not an ITK transform file; re-run the registration"
        raise InputError(msg) from exc


def _mu511(subject: AtlasSubject, ct: sitk.Image) -> sitk.Image:
    if subject.mu511 is not None:
        return _read(subject.mu511, "mu511", subject.id)
    from mousereg.attenuation.ct import ct_to_mu

    ct_vol = Volume.from_sitk(ct)
    return ct_to_mu(ct_vol, kvp=subject.kvp).to_sitk()


def prepare_subject(subject: AtlasSubject, spacing: float, table: LabelTable) -> SubjectStack:
    """Read a subject and resample every modality onto its MRI-space grid at ``spacing`` mm."""
    from mousereg.io import read_volume

    water_vol = read_volume(subject.mr_water)
    grid = canonical_grid(water_vol, spacing)
    frame = acquisition_frame(water_vol)
    water = water_vol.to_sitk()
    fat = _read(subject.mr_fat, "mr_fat", subject.id)
    ct = _read(subject.ct, "ct", subject.id)
    mr_labels = _read(subject.mr_labels, "mr_labels", subject.id)
    ct_labels = _read(subject.ct_labels, "ct_labels", subject.id)
    # CompositeTransform applies its last entry first: frame, then MRI -> CT.
    to_ct = sitk.CompositeTransform([_read_transform(subject.mr_to_ct, subject.id), frame])
    mu = _mu511(subject, ct)
    images = np.stack(
        [
            resample_onto(ct, grid, to_ct, fill=CT_OUTSIDE_HU),
            resample_onto(water, grid, frame),
            resample_onto(fat, grid, frame),
            resample_onto(mu, grid, to_ct),
        ]
    ).astype(fmt.TEMPLATE_DTYPE)
    labels = np.stack(
        [
            resample_onto(ct_labels, grid, to_ct, labels=True, fill=fmt.UNKNOWN_LABEL),
            resample_onto(mr_labels, grid, frame, labels=True, fill=fmt.UNKNOWN_LABEL),
        ]
    ).astype(fmt.LABEL_DTYPE)
    matrix = np.eye(4)
    matrix[:3, :3], matrix[:3, 3] = water_vol.direction, water_vol.origin
    return SubjectStack(subject.id, images, labels, grid, table, matrix)


def warp_stack(
    stack: SubjectStack, field: np.ndarray, grid: Volume
) -> tuple[np.ndarray, np.ndarray]:
    """The subject's images and labels on ``grid`` through ``field`` (grid point -> subject).

    ``field`` is ``(z, y, x, 3)`` in mm on ``grid``. Images are interpolated linearly; labels by
    nearest neighbour, UNKNOWN_LABEL outside the subject's grid.
    """
    from mousereg.atlas.register import field_transform

    t = field_transform(field, grid)
    images = np.stack(
        [
            resample_onto(_image(a, stack.grid), grid, t, fill=IMAGE_FILLS[name])
            for a, name in zip(stack.images, fmt.TEMPLATE_CHANNELS, strict=True)
        ]
    ).astype(fmt.TEMPLATE_DTYPE)
    labels = np.stack(
        [
            resample_onto(_image(a, stack.grid), grid, t, labels=True, fill=fmt.UNKNOWN_LABEL)
            for a in stack.labels
        ]
    ).astype(fmt.LABEL_DTYPE)
    return images, labels


def _image(array: np.ndarray, grid: Volume) -> sitk.Image:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(grid.spacing)
    img.SetOrigin(grid.origin)
    img.SetDirection(tuple(grid.direction.reshape(-1)))
    return img
