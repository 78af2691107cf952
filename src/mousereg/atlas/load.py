"""Open an atlas folder (validated first) as an :class:`Atlas`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from mousereg.atlas import format as fmt
from mousereg.atlas.store import read_zarr
from mousereg.atlas.validate import validate_atlas
from mousereg.errors import InputError
from mousereg.labels import LabelTable
from mousereg.volume import Volume


@dataclasses.dataclass(frozen=True)
class Atlas:
    """A loaded atlas: metadata, template grid and lazy volumes."""

    path: Path
    meta: dict[str, Any]
    templates: Volume
    labels: Volume
    probability_volume: Volume
    table: LabelTable

    @property
    def grid(self) -> Volume:
        """The template grid (in the MRI acquisition frame)."""
        return self.labels

    @property
    def subject_ids(self) -> list[str]:
        """Ids of the subjects the atlas was built from."""
        return [s["id"] for s in self.meta["subjects"]]

    def template(self, channels: tuple[str, ...]) -> Volume:
        """The named template channels as one Volume."""
        idx = [fmt.TEMPLATE_CHANNELS.index(c) for c in channels]
        data = self.templates.compute()[idx]
        return self.grid.with_array(data, channel_names=channels)

    def probabilities(self) -> np.ndarray:
        """Label probabilities ``(n_labels, z, y, x)`` as float32 in [0, 1]."""
        return self.probability_volume.compute().astype(np.float32) / fmt.PROBABILITY_SCALE

    def _subject(self, subject_id: str) -> dict[str, Any]:
        for s in self.meta["subjects"]:
            if s["id"] == subject_id:
                return dict(s)
        msg = f"{self.path}: no subject {subject_id!r}; the atlas has {self.subject_ids}"
        raise InputError(msg)

    def subject_images(self, subject_id: str) -> Volume:
        """A subject's ct, mr_water, mr_fat warped into template space."""
        return read_zarr(self.path / self._subject(subject_id)["images"])

    def subject_labels(self, subject_id: str) -> Volume:
        """A subject's CT and MR labels in template space (UNKNOWN_LABEL outside its view)."""
        return read_zarr(self.path / self._subject(subject_id)["labels"])

    def subject_field(self, subject_id: str) -> Volume:
        """The field ``u`` of template point ``p`` -> subject acquisition-frame point ``p + u``."""
        return read_zarr(self.path / self._subject(subject_id)["transform"])

    def subject_transform(self, subject_id: str) -> Any:
        """Template point -> subject MRI physical point, as a ``Transform`` (writes ITK .h5)."""
        from mousereg.registration.transform import Transform

        entry = self._subject(subject_id)
        frame = np.asarray(entry["frame"], dtype=float)
        field = Transform.from_displacement_field(self.subject_field(subject_id))
        return field.then(Transform.from_matrix(frame[:3, :3], translation=frame[:3, 3]))


def load_atlas(path: str | Path, *, checksums: bool = True) -> Atlas:
    """Validate and open the atlas at ``path``."""
    root = Path(path)
    meta = validate_atlas(root, checksums=checksums)
    return Atlas(
        path=root,
        meta=meta,
        templates=read_zarr(root / fmt.TEMPLATES),
        labels=read_zarr(root / fmt.LABELS),
        probability_volume=read_zarr(root / fmt.PROBABILITIES),
        table=LabelTable.from_json(meta["labels"], source=f"{root}/atlas.json"),
    )
