"""Registering an atlas's Dixon templates onto a subject's Dixon images for the pseudo-CT.

:func:`atlas_registration` returns ``"affine"`` — :func:`register_affine`, a SimpleITK affine
registration of the total Dixon signal (water + fat) with Mattes mutual information, started
from the two grids' axes and centres of mass (:func:`initial_transform`), three levels (about
10 s on the test phantom) — or ``"deformable"``, the atlas package's pair registration
(``mousereg.atlas.register.default_register_pair``; ANTs SyN, minutes). On the phantom the
deformable one improves the hybrid's ACF error only from 0.63 % to 0.61 %, so affine is the
default.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from mousereg.attenuation.pseudo_ct import AtlasRegistration
from mousereg.errors import InputError
from mousereg.volume import Volume


def _total_signal(mr: Volume) -> sitk.Image:
    """Water + fat as one float32 SimpleITK image."""
    total = mr.channel(0) if mr.n_channels == 1 else mr.with_array(mr.data.sum(axis=0))
    return sitk.Cast(total.to_sitk(), sitk.sitkFloat32)


def _centroid(mr: Volume) -> np.ndarray:
    """Physical centre of mass of the total Dixon signal."""
    total = np.asarray(mr.compute(), dtype=np.float64)
    if total.ndim == 4:
        total = total.sum(axis=0)
    weights = np.clip(total, 0, None)
    idx_zyx = np.array(ndimage.center_of_mass(weights))
    return mr.index_to_physical(idx_zyx[::-1])


def initial_transform(fixed: Volume, moving: Volume) -> sitk.AffineTransform:
    """Grid-to-grid start: the two scans' index axes matched (same protocol, same slab
    orientation relative to the animal, whatever the physical frame), centres of mass matched."""
    rotation = moving.direction @ fixed.direction.T
    c_fixed, c_moving = _centroid(fixed), _centroid(moving)
    init = sitk.AffineTransform(3)
    init.SetMatrix(tuple(rotation.reshape(-1)))
    init.SetCenter(tuple(c_fixed))
    init.SetTranslation(tuple(c_moving - c_fixed))
    return init


def register_affine(fixed: Volume, moving: Volume, *, iterations: int = 200) -> sitk.Transform:
    """Affine transform (fixed point -> moving point) aligning ``moving`` MR onto ``fixed`` MR."""
    f, m = _total_signal(fixed), _total_signal(moving)
    init = initial_transform(fixed, moving)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.2, seed=1)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-4, numberOfIterations=iterations, relaxationFactor=0.6
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    reg.SetInitialTransform(init, inPlace=False)
    return reg.Execute(f, m)


REGISTRATIONS = ("affine", "deformable")


def atlas_registration(kind: str = "affine") -> AtlasRegistration:
    """The registration ``kind`` (``"affine"`` or ``"deformable"``) as a callable."""
    if kind == "affine":
        return register_affine
    if kind != "deformable":
        msg = f"--registration {kind!r}: use one of {', '.join(REGISTRATIONS)}"
        raise InputError(msg)
    try:
        module = importlib.import_module("mousereg.atlas.register")
        pair = module.default_register_pair
    except (ImportError, AttributeError) as exc:
        msg = "--registration deformable needs mousereg.atlas.register; use affine"
        raise InputError(msg) from exc

    def _register(fixed: Volume, moving: Volume) -> Any:
        return pair(fixed, moving, "deformable")

    return _register
