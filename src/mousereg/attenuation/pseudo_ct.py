"""Atlas pseudo-CT: the atlas's µ511 template warped onto the subject's MRI grid.

The atlas is a set of templates in one space: Dixon water and fat MRI and a µ511 map (bone
included). A registration of the atlas MRI (moving) onto the subject MRI (fixed) gives a
transform mapping subject points to atlas points (ITK convention), through which the atlas µ
is resampled onto the subject grid. Outside the subject's body (from its own MRI) the result is
air, so the atlas's holder or a body-outline mismatch do not leak into the map.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import SimpleITK as sitk

from mousereg.errors import InputError
from mousereg.volume import Volume

AtlasRegistration = Callable[[Volume, Volume], Any]
"""``register(fixed_subject_mr, moving_atlas_mr)`` -> transform (subject point -> atlas point),
a SimpleITK transform or a :class:`mousereg.registration.Transform`. Both images are 2-channel
(water, fat) Volumes."""


@dataclasses.dataclass(frozen=True)
class AtlasTemplates:
    """An atlas's Dixon templates and µ511 template on one grid."""

    water: Volume
    fat: Volume
    mu511: Volume

    def __post_init__(self) -> None:
        for name in ("fat", "mu511"):
            if not self.water.same_grid(getattr(self, name)):
                msg = f"atlas: the {name} template is not on the water template's grid"
                raise InputError(msg)

    def mr(self) -> Volume:
        """The two MR templates as one 2-channel Volume (water, fat)."""
        return Volume.stack([self.water, self.fat], names=("water", "fat"))


def _as_transform(transform: Any) -> Any:
    from mousereg.registration import Transform

    if isinstance(transform, Transform):
        return transform
    if isinstance(transform, sitk.Transform):
        return Transform(transform)
    msg = f"expected a SimpleITK or mousereg Transform, got {type(transform).__name__}"
    raise InputError(msg)


def warp_atlas_mu(atlas_mu: Volume, subject: Volume, transform: Any) -> Volume:
    """The atlas µ511 on the subject grid (``transform``: subject point -> atlas point)."""
    from mousereg.resample import resample

    warped = resample(atlas_mu, subject, _as_transform(transform), interpolation="linear")
    return warped.with_array(warped.data.astype(np.float32), modality="mu511", channel_names=())


def pseudo_ct_mumap(
    subject: Volume, atlas: AtlasTemplates, transform: Any, body: np.ndarray | None = None
) -> Volume:
    """Atlas pseudo-CT µ-map on the subject grid; air outside ``body`` when given."""
    mu = warp_atlas_mu(atlas.mu511, subject, transform).compute()
    mu = np.clip(mu, 0.0, None)
    if body is not None:
        mu = np.where(body, mu, np.float32(0.0)).astype(np.float32)
    return subject.with_array(mu, modality="mu511", channel_names=())
