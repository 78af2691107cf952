"""Atlas-based segmentation of a new Dixon MRI: single atlas or multi-atlas with label fusion.

Single atlas: the MR water/fat templates are registered to the target (in the target's MRI
acquisition frame, see :mod:`.prepare`) and the label probabilities are carried onto the target's
own grid; each voxel takes the most probable label (background = ``1 - sum p``).
Multi-atlas (``multi=True``): every atlas subject (its images in template space) is registered to
the target, one Dask task per subject, its MR label indicators warped linearly, and the votes
fused (a locally weighted vote by default, joint label fusion or a majority vote,
:mod:`.fusion`) and carried onto the target's grid before the arg-max.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from mousereg.atlas import format as fmt
from mousereg.atlas.fusion import (
    DEFAULT_FUSION,
    FUSIONS,
    joint_weights,
    local_weights,
    one_hot,
    soft_scores,
)
from mousereg.atlas.load import Atlas, load_atlas
from mousereg.atlas.output import max_probability_labels
from mousereg.atlas.parallel import map_subjects
from mousereg.atlas.prepare import acquisition_frame, canonical_grid, resample_onto
from mousereg.atlas.register import (
    BackendRegistration,
    CoarseRegistration,
    RegisterPair,
    default_register_pair,
    displacement_field,
    field_transform,
)
from mousereg.errors import InputError
from mousereg.volume import Volume

MR_CHANNELS = ("mr_water", "mr_fat")
#: Segmentation registers on a finer grid than the build (one registration per target, and thin
#: organs such as the spinal cord need it); see docs/atlas.md for the measured effect. --multi
#: (one registration per atlas subject) uses 0.5 mm and 40 SyN iterations, the single atlas
#: 0.4 mm and 80 iterations.
SEGMENT_REGISTRATION_SPACING_MM = 0.5
SINGLE_REGISTRATION_SPACING_MM = 0.4
SINGLE_SYN_ITERATIONS = 80


@dataclasses.dataclass(frozen=True)
class Target:
    """The image to segment, on its own grid and resampled into its acquisition frame."""

    native: Volume  # water channel, the output grid
    grid: Volume  # isotropic grid of the acquisition frame
    images: np.ndarray  # (2, z, y, x) water, fat on ``grid``

    def volume(self) -> Volume:
        """The target's MR channels as a Volume on the acquisition-frame grid."""
        return self.grid.with_array(self.images, channel_names=MR_CHANNELS)


def read_target(images: Sequence[str | Path | Volume], spacing: float) -> Target:
    """The target MRI from its water and fat images (or one two-channel volume)."""
    from mousereg.io import read_volume

    vols = [v if isinstance(v, Volume) else read_volume(v) for v in images]
    if len(vols) == 1 and vols[0].is_multichannel:
        vols = vols[0].channels()
    if len(vols) != 2:
        msg = (
            f"atlas segment takes the Dixon MRI as two images (water, fat); got {len(vols)}; "
            "pass WATER FAT or one two-channel volume"
        )
        raise InputError(msg)
    water, fat = vols
    if not water.same_grid(fat):
        msg = "the water and fat images must share one grid; resample one onto the other first"
        raise InputError(msg)
    if float(water.data.min().compute()) < -500:
        msg = "the first image looks like a CT (values below -500); pass the MRI water and fat"
        raise InputError(msg)
    grid = canonical_grid(water, spacing)
    frame = acquisition_frame(water)
    data = np.stack([resample_onto(v.to_sitk(), grid, frame) for v in (water, fat)])
    return Target(water, grid, data.astype(np.float32))


def _to_native(arrays: np.ndarray, grid: Volume, target: Target, labels: bool) -> np.ndarray:
    """Arrays on the acquisition-frame grid, sampled at the target's own voxels."""
    ref = Volume(target.native.data, spacing=target.native.spacing)  # frame coordinates q
    out = []
    for a in arrays:
        img = sitk.GetImageFromArray(a)
        img.SetSpacing(grid.spacing)
        img.SetOrigin(grid.origin)
        out.append(resample_onto(img, ref, labels=labels))
    return np.stack(out)


def _native_volume(labels: np.ndarray, target: Target, atlas: Atlas) -> Volume:
    return target.native.with_array(
        labels.astype(fmt.LABEL_DTYPE), modality="labels", labels=atlas.table
    )


def segment_single(atlas: Atlas, target: Target, register_pair: RegisterPair) -> Volume:
    """Register the MR templates to the target and take the most probable labels."""
    transform = register_pair(target.volume(), atlas.template(MR_CHANNELS), "deformable")
    probs = atlas.probabilities()
    warped = _warp(probs, atlas.grid, target.grid, transform, labels=False)
    native = _to_native(warped, target.grid, target, labels=False)
    return _native_volume(max_probability_labels(native, atlas.table), target, atlas)


def _warp(
    arrays: np.ndarray, source: Volume, grid: Volume, transform: sitk.Transform, labels: bool
) -> np.ndarray:
    fill = fmt.UNKNOWN_LABEL if labels else 0.0
    out = []
    for a in arrays:
        img = sitk.GetImageFromArray(a)
        img.SetSpacing(source.spacing)
        img.SetOrigin(source.origin)
        img.SetDirection(tuple(source.direction.reshape(-1)))
        out.append(resample_onto(img, grid, transform, labels=labels, fill=fill))
    return np.stack(out)


def register_atlas_subject(
    subject: tuple[np.ndarray, np.ndarray],
    target: Target,
    template_grid: Volume,
    register_pair: RegisterPair,
    values: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """One multi-atlas task: register a subject (template space) to the target, warp it.

    Returns the warped MR water and the warped indicator maps of background and ``values``
    (linear interpolation, float16; 0 where the subject has no label)."""
    images, labels = subject
    moving = template_grid.with_array(images, channel_names=MR_CHANNELS)
    transform = register_pair(target.volume(), moving, "deformable")
    field = field_transform(displacement_field(transform, target.grid), target.grid)
    warped = _warp(images[:1], template_grid, target.grid, field, labels=False)[0]
    soft = _warp(one_hot(labels, values), template_grid, target.grid, field, labels=False)
    return warped, soft.astype(np.float16)


def multi_atlas_votes(
    atlas: Atlas,
    target: Target,
    register_pair: RegisterPair,
    cluster: Any = None,
    workers: int = 1,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every atlas subject registered to the target: (warped water, warped label indicators)."""
    mr = [fmt.SUBJECT_CHANNELS.index(c) for c in MR_CHANNELS]
    lab = fmt.SUBJECT_LABEL_CHANNELS.index("mr_labels")
    subjects = [
        (
            atlas.subject_images(i).compute()[mr].astype(np.float32),
            atlas.subject_labels(i).compute()[lab],
        )
        for i in atlas.subject_ids
    ]
    return map_subjects(
        register_atlas_subject,
        subjects,
        target,
        atlas.grid,
        register_pair,
        list(atlas.table.values),
        cluster=cluster,
        workers=workers,
    )


def fuse(
    votes: list[tuple[np.ndarray, np.ndarray]], target: Target, atlas: Atlas, fusion: str
) -> Volume:
    """Fuse the votes (``"joint"``, locally ``"weighted"`` or ``"majority"``) and label the
    target's grid.

    The fused scores are carried onto the target's own voxels by linear interpolation and the
    arg-max taken there."""
    if fusion not in FUSIONS:
        msg = f"fusion {fusion!r}: use one of {FUSIONS}"
        raise InputError(msg)
    softs = [v[1] for v in votes]
    weights: list[np.ndarray] | list[float]
    images = [v[0] for v in votes]
    if fusion == "majority":
        weights = [1.0] * len(votes)
    elif fusion == "joint":
        weights = joint_weights(images, target.images[0], target.grid.spacing)
    else:
        weights = local_weights(images, target.images[0], target.grid.spacing)
    scores = soft_scores(softs, weights)
    native = _to_native(scores, target.grid, target, labels=False)
    lut = np.asarray([0, *atlas.table.values], dtype=fmt.LABEL_DTYPE)
    return _native_volume(lut[np.argmax(native, axis=0)], target, atlas)


def segment_multi(
    atlas: Atlas,
    target: Target,
    register_pair: RegisterPair,
    fusion: str = DEFAULT_FUSION,
    cluster: Any = None,
    workers: int = 1,
) -> Volume:
    """Register every atlas subject to the target and fuse their MR labels."""
    if fusion not in FUSIONS:
        msg = f"fusion {fusion!r}: use one of {FUSIONS}"
        raise InputError(msg)
    votes = multi_atlas_votes(atlas, target, register_pair, cluster, workers)
    return fuse(votes, target, atlas, fusion)


def segment_spacing(atlas: Atlas, finest: float = SEGMENT_REGISTRATION_SPACING_MM) -> float:
    """The registration grid of segmentation: the build's, but no coarser than ``finest`` and
    no finer than the template."""
    spacing = float(atlas.meta["grid"]["spacing_xyz_mm"][0])
    coarse = float(atlas.meta["parameters"].get("registration_spacing", spacing))
    return max(spacing, min(coarse, finest))


def segment(
    atlas_dir: str | Path,
    images: Sequence[str | Path | Volume],
    out: str | Path | None = None,
    *,
    multi: bool = False,
    fusion: str = DEFAULT_FUSION,
    register_pair: RegisterPair | None = None,
    cluster: Any = None,
    workers: int = 1,
) -> Volume:
    """Segment the MRI ``images`` (water, fat) with the atlas; write the labels to ``out``."""
    atlas = load_atlas(atlas_dir)
    spacing = float(atlas.meta["grid"]["spacing_xyz_mm"][0])
    target = read_target(images, spacing)
    if multi:
        reg = CoarseRegistration(register_pair or default_register_pair, segment_spacing(atlas))
        result = segment_multi(atlas, target, reg, fusion, cluster, workers)
    else:
        pair = register_pair or BackendRegistration(iterations=SINGLE_SYN_ITERATIONS)
        single_mm = segment_spacing(atlas, SINGLE_REGISTRATION_SPACING_MM)
        result = segment_single(atlas, target, CoarseRegistration(pair, single_mm))
    if out is not None:
        from mousereg.io import write_volume

        write_volume(result, out)
    return result
