"""itk-elastix backend: run one elastix stage and turn its result into SimpleITK transforms.

Images come in and transforms go out as SimpleITK objects (the currency of
:mod:`mousereg.registration`); ``itk`` is imported only here. Every result keeps elastix's own
``TransformParameters.N.txt`` files, written to the output folder for provenance.

Conventions: elastix, like ITK, returns the transform that maps FIXED physical points to MOVING
physical points (mm, LPS), so no inversion is needed anywhere in this module.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from mousereg.errors import InputError, RegistrationError
from mousereg.io.atomic import write_text

PARAMETER_DIR = Path(__file__).resolve().parents[3] / "pipelines" / "elastix"


def parameter_file(name: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """Path of a named parameter file (``rigid``, ``affine``, ``bspline``) in pipelines/elastix."""
    folder = Path(directory) if directory is not None else PARAMETER_DIR
    path = folder / (name if name.endswith(".txt") else f"{name}.txt")
    if not path.is_file():
        msg = f"elastix parameter file {path} not found; pass an existing file or folder"
        raise InputError(msg)
    return path


def set_threads(threads: int) -> None:
    """Pin ITK's (and elastix's) global thread pool to ``threads`` workers."""
    import itk

    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(threads)
    itk.MultiThreaderBase.SetGlobalDefaultNumberOfThreads(threads)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def to_itk_image(image: sitk.Image, pixel: type = np.float32) -> Any:
    """A scalar SimpleITK image as an ITK image with the same frame."""
    import itk

    arr: np.ndarray = np.ascontiguousarray(sitk.GetArrayViewFromImage(image).astype(pixel))
    out = itk.image_from_array(arr)
    out.SetSpacing(tuple(float(s) for s in image.GetSpacing()))
    out.SetOrigin(tuple(float(o) for o in image.GetOrigin()))
    direction = np.ascontiguousarray(np.asarray(image.GetDirection(), dtype=float).reshape(3, 3))
    out.SetDirection(itk.matrix_from_array(direction))
    return out


@dataclasses.dataclass
class ElastixResult:
    """One elastix stage: the parameter maps it produced and where they were written."""

    parameter_maps: list[dict[str, tuple[str, ...]]]
    files: list[Path]
    parameter_object: Any

    def transform(self) -> sitk.Transform:
        """The stage's (last map's) transform as SimpleITK, for Euler and affine stages."""
        return parameters_to_transform(self.parameter_maps[-1])


def load_parameters(
    files: Sequence[str | os.PathLike[str]], overrides: Mapping[str, Any] | None = None
) -> Any:
    """An ``itk.ParameterObject`` from parameter files, with values overridden in every map."""
    import itk

    po = itk.ParameterObject.New()
    for f in files:
        po.AddParameterFile(str(f))
    for key, value in (overrides or {}).items():
        values = value if isinstance(value, (list, tuple)) else [value]
        po.SetParameter(key, [str(v) for v in values])
    return po


def register(
    fixed: sitk.Image | Sequence[sitk.Image],
    moving: sitk.Image | Sequence[sitk.Image],
    parameter_files: Sequence[str | os.PathLike[str]],
    *,
    fixed_mask: sitk.Image | None = None,
    moving_mask: sitk.Image | None = None,
    overrides: Mapping[str, Any] | None = None,
    threads: int = 2,
    output_dir: str | os.PathLike[str] | None = None,
    prefix: str = "TransformParameters",
) -> ElastixResult:
    """Run elastix on one fixed/moving pair (or several channel pairs with a multi-metric file).

    Args:
        fixed: fixed image(s) (the MRI).
        moving: moving image(s) (the CT), one per fixed image.
        parameter_files: elastix parameter files, run in sequence (each starts from the last).
        fixed_mask, moving_mask: optional uint8 masks on the images' grids.
        overrides: parameters to set in every map (e.g. ``{"MaximumNumberOfIterations": 100}``).
        threads: ITK/elastix worker threads.
        output_dir: folder where ``<prefix>.<n>.txt`` are kept (provenance); none when ``None``.
        prefix: file-name prefix for the kept parameter files.
    """
    import itk

    set_threads(threads)
    fixed_list = [fixed] if isinstance(fixed, sitk.Image) else list(fixed)
    moving_list = [moving] if isinstance(moving, sitk.Image) else list(moving)
    if len(fixed_list) != len(moving_list) or not fixed_list:
        msg = (
            f"elastix needs one moving image per fixed image, got {len(fixed_list)} fixed "
            f"and {len(moving_list)} moving"
        )
        raise InputError(msg)
    po = load_parameters(parameter_files, {"MaximumNumberOfThreads": threads, **(overrides or {})})
    method = itk.ElastixRegistrationMethod[itk.Image[itk.F, 3], itk.Image[itk.F, 3]].New()
    # ITK images made from numpy arrays view them: keep the Python objects alive until Update.
    alive = []
    for i, (f, m) in enumerate(zip(fixed_list, moving_list, strict=True)):
        alive += [to_itk_image(f), to_itk_image(m)]
        if i == 0:
            method.SetFixedImage(alive[-2])
            method.SetMovingImage(alive[-1])
        else:
            method.AddFixedImage(alive[-2])
            method.AddMovingImage(alive[-1])
    if fixed_mask is not None:
        # one mask per fixed image: a multi-image run samples every image inside the body
        alive.append(to_itk_image(fixed_mask, np.uint8))
        method.SetFixedMask(alive[-1])
        for _ in fixed_list[1:]:
            method.AddFixedMask(alive[-1])
    if moving_mask is not None:
        alive.append(to_itk_image(moving_mask, np.uint8))
        method.SetMovingMask(alive[-1])
    method.SetParameterObject(po)
    # (method.SetNumberOfThreads crashes B-spline runs in itk-elastix 0.25; the parameter
    # MaximumNumberOfThreads and the global ITK default pin the threads instead.)
    method.SetLogToConsole(False)
    method.SetLogToFile(False)
    try:
        method.Update()
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown error"
        msg = f"elastix failed ({reason}); check that the images overlap after the fiducial start"
        raise RegistrationError(msg) from exc
    result_po = method.GetTransformParameterObject()
    maps = [
        {k: tuple(v) for k, v in result_po.GetParameterMap(i).items()}
        for i in range(result_po.GetNumberOfParameterMaps())
    ]
    files: list[Path] = []
    if output_dir is not None:
        for i, pmap in enumerate(maps):
            path = Path(output_dir) / f"{prefix}.{i}.txt"
            write_text(path, format_parameter_map(pmap))
            files.append(path)
    return ElastixResult(parameter_maps=maps, files=files, parameter_object=result_po)


def format_parameter_map(pmap: Mapping[str, Sequence[str]]) -> str:
    """A parameter map in elastix's text format ``(Key value ...)``."""
    lines = []
    for key in sorted(pmap):
        values = []
        for v in pmap[key]:
            try:
                float(v)
                values.append(v)
            except ValueError:
                values.append(f'"{v}"')
        lines.append(f"({key} {' '.join(values)})")
    return "\n".join(lines) + "\n"


def _floats(pmap: Mapping[str, Sequence[str]], key: str) -> list[float]:
    if key not in pmap:
        msg = f"elastix parameter map has no {key}; was the stage run?"
        raise RegistrationError(msg)
    return [float(v) for v in pmap[key]]


def parameters_to_transform(pmap: Mapping[str, Sequence[str]]) -> sitk.Transform:
    """An Euler or affine elastix parameter map as a SimpleITK transform (same mapping)."""
    kind = pmap["Transform"][0]
    params = _floats(pmap, "TransformParameters")
    center = _floats(pmap, "CenterOfRotationPoint")
    if kind == "EulerTransform":
        euler = sitk.Euler3DTransform()
        euler.SetCenter(center)
        euler.SetComputeZYX(pmap.get("ComputeZYX", ("false",))[0] == "true")
        euler.SetParameters(params)
        return euler
    if kind == "AffineTransform":
        affine = sitk.AffineTransform(3)
        affine.SetCenter(center)
        affine.SetParameters(params)
        return affine
    msg = f"cannot convert elastix {kind} to a linear transform; use deformation_field()"
    raise RegistrationError(msg)


def deformation_field(result: ElastixResult, moving: sitk.Image) -> sitk.Image:
    """The stage's full mapping sampled on the fixed grid as a SimpleITK displacement field.

    ``p + field(p)`` is the moving-space point of fixed-space point ``p`` (transformix).
    """
    import itk

    moving_itk = to_itk_image(moving)
    # transformix writes deformationField.* into its output directory (the current folder when
    # none is given): keep that in a private temporary folder.
    with tempfile.TemporaryDirectory(prefix="mousereg-transformix-") as tmp:
        field = itk.transformix_deformation_field(
            moving_itk, result.parameter_object, output_directory=tmp, log_to_console=False
        )
    arr = np.asarray(itk.array_from_image(field), dtype=np.float64)
    out = sitk.GetImageFromArray(arr, isVector=True)
    out.SetSpacing(tuple(field.GetSpacing()))
    out.SetOrigin(tuple(field.GetOrigin()))
    out.SetDirection(tuple(np.asarray(itk.array_from_matrix(field.GetDirection())).reshape(-1)))
    return out


def _overrides(iterations: int | None) -> dict[str, Any]:
    return {} if iterations is None else {"MaximumNumberOfIterations": iterations}


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
    parameter_dir: str | os.PathLike[str] | None = None,
) -> sitk.Transform:
    """Rigid (``kind="rigid"``, Euler) or affine elastix registration; fixed -> moving."""
    result = register(
        fixed,
        moving,
        [parameter_file(kind, parameter_dir)],
        fixed_mask=fixed_mask,
        moving_mask=moving_mask,
        overrides=_overrides(iterations),
        threads=threads,
        output_dir=outdir,
        prefix=f"TransformParameters.{kind}",
    )
    return result.transform()


def register_deformable(
    fixed: sitk.Image | Sequence[sitk.Image],
    moving: sitk.Image | Sequence[sitk.Image],
    *,
    fixed_mask: sitk.Image | None = None,
    moving_mask: sitk.Image | None = None,
    threads: int = 2,
    outdir: Path | None = None,
    iterations: int | None = None,
    parameter_dir: str | os.PathLike[str] | None = None,
) -> sitk.Image:
    """B-spline elastix registration; returns its displacement field on the fixed grid (mm).

    One image pair uses ``bspline.txt``; a list of pairs (Dixon water and fat against the CT)
    uses ``bspline_dixon.txt``, one mutual-information term per pair, plus a repeat of the first
    pair for the bending-energy term (elastix wants one image pair per metric).
    """
    fixed_list = [fixed] if isinstance(fixed, sitk.Image) else list(fixed)
    moving_list = [moving] if isinstance(moving, sitk.Image) else list(moving)
    name = "bspline"
    if len(fixed_list) > 1:
        name = "bspline_dixon"
        fixed_list.append(fixed_list[0])
        moving_list.append(moving_list[0])
    result = register(
        fixed_list,
        moving_list,
        [parameter_file(name, parameter_dir)],
        fixed_mask=fixed_mask,
        moving_mask=moving_mask,
        overrides=_overrides(iterations),
        threads=threads,
        output_dir=outdir,
        prefix="TransformParameters.bspline",
    )
    return deformation_field(result, moving_list[0])
