"""QC of one registered pair: checkerboard and contour overlays, and a self-contained qc.html.

The figures show three orthogonal slices of the fixed grid through the fixed body's centre:
a checkerboard of fixed and moving-in-fixed, and the fixed image with contours — the carried
labels (solid) and the fixed truth/labels (dashed) when given, else the moving image's iso-lines
(skin and bone for a CT). Images are PNGs embedded as base64, so the HTML is one file.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mousereg.io.atomic import write_text

if TYPE_CHECKING:
    from mousereg.registration.transform import Transform
    from mousereg.volume import Volume

DPI = 80
TILES = 8
CT_LEVELS = (-300.0, 300.0)  # skin and bone iso-lines of a CT in HU


def normalise(a: np.ndarray, lo: float = 1.0, hi: float = 99.0) -> np.ndarray:
    """``a`` scaled to [0, 1] between its ``lo`` and ``hi`` percentiles."""
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return np.zeros_like(a, dtype=float)
    p_lo, p_hi = np.percentile(finite, [lo, hi])
    return np.clip((a - p_lo) / max(p_hi - p_lo, 1e-12), 0.0, 1.0)


def checkerboard(a: np.ndarray, b: np.ndarray, tiles: int = TILES) -> np.ndarray:
    """Alternating square tiles of two same-shaped 2-D images."""
    ny, nx = a.shape
    size = max(1, max(ny, nx) // tiles)
    yy, xx = np.mgrid[0:ny, 0:nx]
    return np.where(((yy // size) + (xx // size)) % 2 == 0, a, b)


def _slices(shape: tuple[int, ...], centre: np.ndarray) -> list[tuple[str, tuple[Any, ...]]]:
    k, j, i = (int(np.clip(round(c), 0, n - 1)) for c, n in zip(centre, shape, strict=True))
    return [
        (f"z={k}", (k, slice(None), slice(None))),
        (f"y={j}", (slice(None), j, slice(None))),
        (f"x={i}", (slice(None), slice(None), i)),
    ]


def _aspect(spacing_zyx: np.ndarray, axis: int) -> float:
    rows, cols = [s for a, s in enumerate(spacing_zyx) if a != axis]
    return float(rows / cols)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def figures(
    fixed: np.ndarray,
    moving: np.ndarray,
    spacing_zyx: np.ndarray,
    *,
    moving_labels: np.ndarray | None = None,
    fixed_labels: np.ndarray | None = None,
    moving_is_ct: bool = True,
) -> dict[str, bytes]:
    """``checkerboard`` and ``contours`` PNGs (three orthogonal slices each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = normalise(fixed) > 0.2
    centre = np.argwhere(weights).mean(axis=0) if weights.any() else np.array(fixed.shape) / 2
    views = _slices(fixed.shape, centre)
    f_n, m_n = normalise(fixed), normalise(moving)
    out: dict[str, bytes] = {}
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, (name, sl) in zip(axes, views, strict=True):
        axis = next(i for i, s in enumerate(sl) if not isinstance(s, slice))
        ax.imshow(checkerboard(f_n[sl], m_n[sl]), cmap="gray", aspect=_aspect(spacing_zyx, axis))
        ax.set_title(name)
        ax.axis("off")
    fig.suptitle("checkerboard: fixed / moving in fixed")
    out["checkerboard"] = _png(fig)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, (name, sl) in zip(axes, views, strict=True):
        axis = next(i for i, s in enumerate(sl) if not isinstance(s, slice))
        ax.imshow(f_n[sl], cmap="gray", aspect=_aspect(spacing_zyx, axis))
        if moving_labels is not None:
            _label_contours(ax, moving_labels[sl], "solid")
            if fixed_labels is not None:
                _label_contours(ax, fixed_labels[sl], "dashed")
        elif moving_is_ct:
            ax.contour(moving[sl], levels=list(CT_LEVELS), colors=["yellow", "red"], linewidths=0.7)
        else:
            ax.contour(m_n[sl], levels=[0.2, 0.6], colors=["yellow", "red"], linewidths=0.7)
        ax.set_title(name)
        ax.axis("off")
    kind = "labels (solid: carried, dashed: fixed)" if moving_labels is not None else "iso-lines"
    fig.suptitle(f"fixed with moving {kind}")
    out["contours"] = _png(fig)
    return out


def _label_contours(ax: Any, labels: np.ndarray, style: str) -> None:
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab20")
    for v in np.unique(labels):
        if v == 0:
            continue
        mask = (labels == v).astype(float)
        if mask.sum() < 2 or min(mask.shape) < 2:
            continue
        ax.contour(mask, levels=[0.5], colors=[cmap(int(v) % 20)], linewidths=0.7, linestyles=style)


def _rows(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key in ("mode", "backend", "seconds_total"):
        if key in report:
            rows.append((key, str(report[key])))
    fid = report.get("fiducial") or {}
    for key, value in fid.items():
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            rows.append((f"fiducial.{key}", str(value)))
    stage = report.get("intensity") or {}
    for key, value in (stage.get("similarity") or {}).items():
        rows.append((f"similarity.{key}", f"{value:.4f}" if isinstance(value, float) else value))
    jac = stage.get("jacobian") or {}
    for key in ("min", "p1", "p50", "p99", "max", "n_folding"):
        if key in jac:
            rows.append((f"jacobian.{key}", f"{jac[key]:.4g}"))
    for key, value in (stage.get("inverse_consistency") or {}).items():
        rows.append((f"inverse_consistency.{key}", f"{value:.4g}"))
    for key, value in (stage.get("seconds") or {}).items():
        rows.append((f"seconds.{key}", str(value)))
    return rows


def write_html(
    path: str | os.PathLike[str],
    images: Mapping[str, bytes],
    report: Mapping[str, Any],
    title: str = "mousereg registration QC",
) -> Path:
    """A self-contained HTML page: the figures (embedded) and the key numbers of the report."""
    table = "\n".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in _rows(report)
    )
    figs = "\n".join(
        f'<h2>{html.escape(name)}</h2><img alt="{html.escape(name)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for name, png in images.items()
    )
    full = html.escape(json.dumps(report, indent=1, default=str))
    doc = (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:1em}td{padding:2px 8px}"
        "img{max-width:100%}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><table>{table}</table>{figs}"
        f"<details><summary>report.json</summary><pre>{full}</pre></details></body></html>\n"
    )
    write_text(path, doc)
    return Path(path)


def write_pair_outputs(
    outdir: str | os.PathLike[str],
    fixed: Volume,
    moving: Volume,
    transform: Transform,
    report: Mapping[str, Any],
    *,
    moving_labels: Volume | None = None,
    fixed_labels: Volume | None = None,
) -> dict[str, str]:
    """Write ``moving_in_fixed.zarr`` (chunked resampling) and ``qc.html`` into ``outdir``.

    Args:
        outdir: the registration's output folder.
        fixed, moving: the scans (fixed: the grid; multi-channel images are shown summed).
        transform: fixed -> moving (ITK convention).
        report: the registration report (its key numbers go into the page).
        moving_labels, fixed_labels: optional label maps for the contour overlay.
    """
    from mousereg.io import write_volume
    from mousereg.resample import resample

    out = Path(outdir)
    moving_ct = moving.modality.upper() == "CT" or (
        not moving.is_multichannel and float(moving.data.min().compute()) < -500
    )
    reference = fixed.channel(0) if fixed.is_multichannel else fixed
    warped = resample(moving, reference, transform, default_value=-1000.0 if moving_ct else 0.0)
    write_volume(warped, out / "moving_in_fixed.zarr")
    fixed_arr = fixed.compute().astype(np.float32)
    if fixed.is_multichannel:
        fixed_arr = fixed_arr.sum(axis=0)
    moving_arr = warped.compute().astype(np.float32)
    if moving.is_multichannel:
        moving_arr = moving_arr.sum(axis=0)
    carried = None
    if moving_labels is not None:
        carried = resample(moving_labels, reference, transform, interpolation="nearest").compute()
    sx, sy, sz = reference.spacing
    images = figures(
        fixed_arr,
        moving_arr,
        np.array([sz, sy, sx]),
        moving_labels=carried,
        fixed_labels=None if fixed_labels is None else fixed_labels.compute(),
        moving_is_ct=moving_ct,
    )
    write_html(out / "qc.html", images, report)
    return {"moving_in_fixed": "moving_in_fixed.zarr", "qc": "qc.html"}
