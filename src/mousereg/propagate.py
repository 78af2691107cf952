"""Carry a label map from one modality's grid to the other's through a transform.

With ``transform`` mapping FIXED (MRI) points to MOVING (CT) points, CT labels go onto the MRI
grid with ``propagate(ct_labels, transform, mri)`` and MRI labels onto the CT grid with
``propagate(mri_labels, transform, ct, inverse=True)``. The label table travels with the labels.
"""

from __future__ import annotations

import os
from pathlib import Path

import dask.array as da
import numpy as np
import SimpleITK as sitk

from mousereg.errors import InputError
from mousereg.labels import LabelTable
from mousereg.registration import Transform
from mousereg.resample import resample
from mousereg.volume import Volume

METHODS = ("label", "nearest")


def check_tables_agree(a: LabelTable | None, b: LabelTable | None, what: str) -> None:
    """Raise when two label tables give one value different names (subsets are fine)."""
    if a is None or b is None:
        return
    clashes = [
        f"{v}: {a.name_of(v)!r} vs {b.name_of(v)!r}"
        for v in sorted(set(a.values) & set(b.values))
        if a.name_of(v) != b.name_of(v)
    ]
    if clashes:
        msg = (
            f"{what}: the label tables disagree ({'; '.join(clashes[:3])}); "
            "relabel one of them so that each value means the same organ"
        )
        raise InputError(msg)


def check_label_map(labels: Volume, what: str) -> None:
    """Raise unless ``labels`` is a single-channel integer label map."""
    if labels.is_multichannel:
        msg = f"{what}: a label map has one channel, got {labels.n_channels}"
        raise InputError(msg)
    if not np.issubdtype(labels.dtype, np.integer):
        msg = (
            f"{what}: voxels are {labels.dtype}, not integers; pass a label map "
            "(convert probabilities with an arg-max first)"
        )
        raise InputError(msg)


def _check_values_in_table(labels: Volume, table: LabelTable, what: str) -> None:
    present = {int(v) for v in np.unique(labels.data.compute()) if v != 0}
    unknown = sorted(present - set(table.values))
    if unknown:
        msg = (
            f"{what}: label values {unknown[:10]} are not in its label table "
            f"({len(table)} labels); the labels and the table disagree"
        )
        raise InputError(msg)


def propagate(
    labels: Volume,
    transform: Transform | sitk.Transform,
    reference: Volume | None,
    *,
    inverse: bool = False,
    method: str = "label",
    table: LabelTable | None = None,
    inverse_spacing: float | None = 0.5,
) -> Volume:
    """Resample a label map onto ``reference``'s grid, keeping values and the label table.

    Args:
        labels: integer label map on the moving grid (or the fixed grid when ``inverse``).
        transform: fixed -> moving transform (ITK convention), e.g. MRI -> CT.
        reference: the grid to put the labels on.
        inverse: use the inverse of ``transform`` (labels on the fixed grid, reference moving).
        method: ``"label"`` (per-label linear + arg-max, smooth boundaries) or ``"nearest"``.
        table: the label table of ``labels`` when the volume carries none; must agree with it.
        inverse_spacing: grid spacing (mm) of the numerical inverse of a deformable transform
            over ``reference``'s extent; ``None`` uses the reference grid itself.

    Returns:
        A lazy label Volume on the reference grid with the label table attached.
    """
    if reference is None:
        msg = "propagate needs a reference grid (the image to put the labels on)"
        raise InputError(msg)
    if method not in METHODS:
        msg = f"method {method!r} is unknown; use one of {', '.join(METHODS)}"
        raise InputError(msg)
    check_label_map(labels, "labels")
    check_tables_agree(labels.labels, table, "labels and the given table")
    chosen = labels.labels if labels.labels is not None else table
    check_tables_agree(chosen, reference.labels, "labels and reference")
    if chosen is not None:
        _check_values_in_table(labels, chosen, "labels")
    t = _resolve(transform, reference, inverse, inverse_spacing)
    out = resample(labels, reference, t, interpolation=method, default_value=0)
    return out.with_array(out.data, labels=chosen, modality=labels.modality or "labels")


def _resolve(
    transform: Transform | sitk.Transform,
    reference: Volume,
    inverse: bool,
    inverse_spacing: float | None,
) -> Transform:
    t = transform if isinstance(transform, Transform) else Transform(transform)
    return t.inverse(reference, spacing=inverse_spacing) if inverse else t


def field_of_view(
    source: Volume,
    transform: Transform | sitk.Transform,
    reference: Volume,
    *,
    inverse: bool = False,
    inverse_spacing: float | None = 0.5,
) -> Volume:
    """A uint8 mask on ``reference``: 1 where the voxel maps inside ``source``'s grid.

    The region where propagated labels can exist (the MRI slab covers only part of the CT):
    compare labels only inside it (``evaluate(..., roi=...)``).
    """
    t = _resolve(transform, reference, inverse, inverse_spacing)
    ones = Volume(
        da.ones(source.shape, dtype=np.uint8, chunks=source.data.chunks[-3:]),
        spacing=source.spacing,
        origin=source.origin,
        direction=source.direction,
    )
    out = resample(ones, reference, t, interpolation="nearest", default_value=0)
    return out.with_array(out.data, modality="mask")


def propagate_file(
    labels: str | os.PathLike[str],
    transform: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    inverse: bool = False,
    method: str = "label",
    table: str | os.PathLike[str] | None = None,
    fov: str | os.PathLike[str] | None = None,
) -> Volume:
    """:func:`propagate` from files to a file (what ``mousereg propagate`` runs); returns it.

    With ``fov``, also writes the :func:`field_of_view` mask there.
    """
    from mousereg.io import read_volume, write_volume

    lab = read_volume(labels)
    ref = read_volume(reference)
    t = Transform.read(transform)
    names = LabelTable.read(Path(table)) if table is not None else None
    out = propagate(lab, t, ref, inverse=inverse, method=method, table=names)
    write_volume(out, output)
    if fov is not None:
        write_volume(field_of_view(lab, t, ref, inverse=inverse), fov)
    return out
