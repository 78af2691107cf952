"""NIfTI header -> SimpleITK/LPS frame, following ITK's ``NiftiImageIO`` exactly.

NIfTI affines map voxels to RAS+ millimetres; ITK/mousereg use LPS. ITK picks the sform or the
qform by these rules (itkNiftiImageIO.cxx, ``SetImageIOOrientationFromNIfTI``):

1. both codes unknown -> origin 0, identity direction;
2. the sform is used when it decomposes into rotation x scale without shear, and either the
   qform is unknown, or the sform code is SCANNER_ANAT, or the two transforms agree (SVD test);
   the sform is also used when the two matrices agree element by element;
3. otherwise the qform (if known); otherwise the file has no orthonormal frame (error).

Spacing is ``pixdim[1:4]`` (scaled to mm by ``xyz_units``), origin ``(-m03, -m13, m23)``,
direction column ``j`` = ``(-m0j, -m1j, m2j)`` normalised. Matrices are single precision, as in
``nifti1_io``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from mousereg.errors import InputError

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])
UNIT_TO_MM = {"meter": 1000.0, "mm": 1.0, "micron": 0.001, "unknown": 1.0}
SCANNER_ANAT = 1
UNKNOWN = 0


@dataclasses.dataclass(frozen=True)
class Frame:
    """Spacing, origin (x, y, z; mm; LPS) and 3×3 direction as SimpleITK reports them."""

    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray


def _pixdim(header: Any) -> np.ndarray:
    pix = np.asarray(header["pixdim"][1:4], dtype=np.float32).copy()
    pix[(pix == 0) | ~np.isfinite(pix)] = 1.0
    return pix


def _qto_xyz(header: Any, pixdim: np.ndarray) -> np.ndarray:
    if int(header["qform_code"]) <= UNKNOWN:
        return np.diag([*pixdim.astype(np.float64), 1.0]).astype(np.float32)
    b, c, d = (float(header[k]) for k in ("quatern_b", "quatern_c", "quatern_d"))
    a2 = 1.0 - (b * b + c * c + d * d)
    if a2 < 1.0e-7:
        norm = 1.0 / np.sqrt(b * b + c * c + d * d)
        a, b, c, d = 0.0, b * norm, c * norm, d * norm
    else:
        a = float(np.sqrt(a2))
    qfac = -1.0 if float(header["pixdim"][0]) < 0 else 1.0
    xd, yd, zd = (float(p) if p > 0 else 1.0 for p in pixdim)
    zd *= qfac
    rot = np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * b * c - 2 * a * d, 2 * b * d + 2 * a * c],
            [2 * b * c + 2 * a * d, a * a + c * c - b * b - d * d, 2 * c * d - 2 * a * b],
            [2 * b * d - 2 * a * c, 2 * c * d + 2 * a * b, a * a + d * d - c * c - b * b],
        ]
    )
    m = np.eye(4)
    m[:3, :3] = rot * np.array([xd, yd, zd])
    m[:3, 3] = [float(header[k]) for k in ("qoffset_x", "qoffset_y", "qoffset_z")]
    return m.astype(np.float32)


def _sto_xyz(header: Any) -> np.ndarray:
    if int(header["sform_code"]) <= UNKNOWN:
        return np.zeros((4, 4), dtype=np.float32)
    m = np.eye(4, dtype=np.float32)
    m[0], m[1], m[2] = header["srow_x"], header["srow_y"], header["srow_z"]
    return m


def _decomposable(sto: np.ndarray) -> bool:
    m = sto.astype(np.float64)
    if abs(np.linalg.det(m)) <= np.finfo(np.float64).eps:
        return False
    rot = sto[:3, :3].astype(np.float32)
    rot = rot / np.linalg.norm(rot, axis=0, keepdims=True)
    return bool(np.allclose(rot @ rot.T, np.eye(3), atol=1e-4, rtol=0))


def _similar_svd(sto: np.ndarray, qto: np.ndarray) -> bool:
    us, ws, _ = np.linalg.svd(sto[:3, :3].astype(np.float32))
    uq, wq, _ = np.linalg.svd(qto[:3, :3].astype(np.float32))
    ident = us @ np.linalg.inv(uq)
    return bool(
        np.allclose(ws, wq, atol=1e-4, rtol=0)
        and np.allclose(ident, np.eye(3), atol=1e-4, rtol=0)
        and np.allclose(sto[:3, 3], qto[:3, 3], atol=1e-4, rtol=0)
        and np.allclose(sto[3], qto[3], atol=1e-4, rtol=0)
    )


def choose_matrix(header: Any, source: str = "NIfTI file") -> np.ndarray | None:
    """The 4×4 (float32) voxel->RAS matrix ITK uses, or None when both codes are unknown."""
    qcode, scode = int(header["qform_code"]), int(header["sform_code"])
    if qcode <= UNKNOWN and scode <= UNKNOWN:
        return None
    pix = _pixdim(header)
    qto, sto = _qto_xyz(header, pix), _sto_xyz(header)
    prefer_s = bool(
        np.allclose(sto[:3, :3], qto[:3, :3], atol=1e-5, rtol=0)
        and np.abs(sto[:, 3] - qto[:, 3]).sum() <= 1e-7
        and np.abs(sto[3] - qto[3]).sum() <= 1e-7
    )
    if (not prefer_s or scode > UNKNOWN) and _decomposable(sto):
        if qcode <= UNKNOWN < scode or scode == SCANNER_ANAT:
            prefer_s = True
        elif qcode > UNKNOWN and scode > UNKNOWN:
            prefer_s = _similar_svd(sto, qto)
    if prefer_s:
        return sto
    if qcode > UNKNOWN:
        return qto
    msg = f"{source}: sheared sform and no qform (direction not orthonormal); fix the header"
    raise InputError(msg)


def frame_from_header(header: Any, source: str = "NIfTI file") -> Frame:
    """The LPS frame SimpleITK reads from a NIfTI-1/2 header (nibabel header object)."""
    units = header.get_xyzt_units()[0] if hasattr(header, "get_xyzt_units") else "mm"
    scale = UNIT_TO_MM.get(units, 1.0)
    pix = _pixdim(header).astype(np.float64) * scale
    mat = choose_matrix(header, source)
    if mat is None:
        return Frame(tuple(pix.tolist()), (0.0, 0.0, 0.0), np.eye(3))
    m = mat.astype(np.float64)
    origin = RAS_TO_LPS @ m[:3, 3] * scale
    cols = RAS_TO_LPS @ m[:3, :3]
    norms = np.linalg.norm(cols, axis=0)
    norms[norms == 0] = 1.0
    return Frame(
        tuple(pix.tolist()),
        tuple(origin.tolist()),
        cols / norms,
    )
