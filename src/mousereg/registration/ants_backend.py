"""ANTsPy backend: rigid/affine and SyN registration by Mattes mutual information.

Images come in as SimpleITK images and results go out as SimpleITK transforms or displacement
fields; ``ants`` is imported only here. ANTs' forward transforms map FIXED points to MOVING
points (the ITK convention), and its ``.mat`` files are ITK transform files, so results are read
with ``SimpleITK.ReadTransform`` / ``ReadImage`` unchanged. The files are copied to OUTDIR.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from mousereg.errors import RegistrationError
from mousereg.io.transform_files import read_transform

LINEAR = {"rigid": "Rigid", "affine": "Affine"}
SYN_ITERATIONS = (60, 30, 15)


def to_ants(image: sitk.Image) -> Any:
    """A scalar SimpleITK image as an ANTsPy image (same LPS frame)."""
    import ants

    arr = sitk.GetArrayFromImage(image).astype(np.float32).transpose(2, 1, 0)
    return ants.from_numpy(
        np.ascontiguousarray(arr),
        origin=list(image.GetOrigin()),
        spacing=list(image.GetSpacing()),
        direction=np.asarray(image.GetDirection()).reshape(3, 3),
    )


def set_threads(threads: int) -> None:
    """Pin ANTs' ITK thread pool."""
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(threads)


def _run(
    fixed: sitk.Image,
    moving: sitk.Image,
    fixed_mask: sitk.Image | None,
    moving_mask: sitk.Image | None,
    threads: int,
    **kwargs: Any,
) -> dict[str, Any]:
    import ants

    set_threads(threads)
    f, m = to_ants(fixed), to_ants(moving)
    mask = to_ants(sitk.Cast(fixed_mask, sitk.sitkFloat32)) if fixed_mask is not None else None
    mmask = to_ants(sitk.Cast(moving_mask, sitk.sitkFloat32)) if moving_mask is not None else None
    try:
        return dict(ants.registration(f, m, mask=mask, moving_mask=mmask, **kwargs))
    except (RuntimeError, ValueError) as exc:
        msg = f"ANTs registration failed ({exc}); check that the images overlap"
        raise RegistrationError(msg) from exc


def _keep(path: str, outdir: Path | None, name: str) -> None:
    if outdir is not None:
        outdir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, outdir / name)


def register_linear(
    fixed: sitk.Image,
    moving: sitk.Image,
    kind: str,
    *,
    fixed_mask: sitk.Image | None = None,
    moving_mask: sitk.Image | None = None,
    threads: int = 2,
    outdir: Path | None = None,
    iterations: int | None = None,
) -> sitk.Transform:
    """Rigid or affine ANTs registration (MI 32 bins) from the identity; fixed -> moving."""
    its = (iterations or 100,) * 2
    with tempfile.TemporaryDirectory() as tmp:
        out = _run(
            fixed,
            moving,
            fixed_mask,
            moving_mask,
            threads,
            type_of_transform=LINEAR[kind],
            aff_metric="mattes",
            aff_sampling=32,
            aff_iterations=its,
            aff_shrink_factors=(2, 1),
            aff_smoothing_sigmas=(1, 0),
            initial_transform="identity",
            outprefix=str(Path(tmp) / "ants_"),
        )
        path = out["fwdtransforms"][0]
        _keep(path, outdir, f"ants_{kind}.mat")
        return read_transform(path).Downcast()


def register_deformable(
    fixed: sitk.Image,
    moving: sitk.Image,
    *,
    fixed_mask: sitk.Image | None = None,
    moving_mask: sitk.Image | None = None,
    threads: int = 2,
    outdir: Path | None = None,
    iterations: int | None = None,
) -> sitk.Image:
    """SyN with Mattes MI (no linear stage); the forward displacement field on the fixed grid."""
    its = SYN_ITERATIONS if iterations is None else (iterations, iterations // 2, iterations // 4)
    with tempfile.TemporaryDirectory() as tmp:
        out = _run(
            fixed,
            moving,
            fixed_mask,
            moving_mask,
            threads,
            type_of_transform="SyNOnly",
            syn_metric="mattes",
            syn_sampling=32,
            reg_iterations=its,
            grad_step=0.2,
            flow_sigma=3,
            total_sigma=0,
            initial_transform="identity",
            outprefix=str(Path(tmp) / "ants_"),
        )
        warps = [p for p in out["fwdtransforms"] if p.endswith((".nii.gz", ".nii"))]
        if not warps:
            msg = "ANTs SyN wrote no warp field"
            raise RegistrationError(msg)
        _keep(warps[0], outdir, "ants_Warp.nii.gz")
        inverse = [p for p in out["invtransforms"] if p.endswith((".nii.gz", ".nii"))]
        if inverse:
            _keep(inverse[0], outdir, "ants_InverseWarp.nii.gz")
        field = sitk.ReadImage(warps[0], sitk.sitkVectorFloat64)
    if field.GetSize() != fixed.GetSize():
        field = sitk.Resample(field, fixed, sitk.Transform(), sitk.sitkLinear)
    return field
