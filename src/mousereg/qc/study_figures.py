"""Figures of the study report, rendered with matplotlib (Agg) to PNG bytes for embedding."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np

DPI = 90


def _png(fig: object) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return buf.getvalue()


def _normalise(a: np.ndarray, lo: float = 1.0, hi: float = 99.0) -> np.ndarray:
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return np.zeros_like(a, dtype=float)
    p_lo, p_hi = np.percentile(finite, [lo, hi])
    return np.clip((a - p_lo) / max(p_hi - p_lo, 1e-12), 0, 1)


def checkerboard(a: np.ndarray, b: np.ndarray, tiles: int = 8) -> np.ndarray:
    """Tiles of ``a`` and ``b`` alternating like a chess board (same 2-D shape)."""
    ny, nx = a.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    size = max(1, max(ny, nx) // tiles)
    return np.where(((yy // size) + (xx // size)) % 2 == 0, a, b)


def overlay_png(
    mr: np.ndarray,
    ct_in_mr: np.ndarray,
    labels_in_mr: np.ndarray | None,
    aspect: float,
    title: str,
) -> bytes:
    """Two panels of one MRI slice: a CT/MRI checkerboard, and the MRI with carried label edges.

    Args:
        mr: the MRI slice (2-D).
        ct_in_mr: the CT resampled onto the same slice.
        labels_in_mr: the CT labels carried onto the slice (or None).
        aspect: pixel height / width in mm.
        title: the figure title (subject).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m, c = _normalise(mr), _normalise(ct_in_mr)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    axes[0].imshow(checkerboard(m, c), cmap="gray", aspect=aspect, interpolation="nearest")
    axes[0].set_title("checkerboard MRI / CT in MRI", fontsize=9)
    axes[1].imshow(m, cmap="gray", aspect=aspect, interpolation="nearest")
    if labels_in_mr is not None and labels_in_mr.any():
        values = [v for v in np.unique(labels_in_mr) if v != 0]
        axes[1].contour(
            labels_in_mr, levels=np.array(values, dtype=float) - 0.5, linewidths=0.6, cmap="tab20"
        )
    axes[1].set_title("MRI water + CT labels carried over", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def box_png(groups: Mapping[str, Sequence[float]], ylabel: str, title: str) -> bytes:
    """A box plot (with the points) per group, e.g. Dice per organ across subjects."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k for k, v in groups.items() if len(v)]
    data = [np.asarray(groups[k], dtype=float) for k in names]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * len(names) + 1.5), 3.2))
    if data:
        ax.boxplot(data, showfliers=False)
        for i, d in enumerate(data, start=1):
            jitter = np.random.default_rng(i).uniform(-0.12, 0.12, len(d))
            ax.plot(i + jitter, d, "o", ms=3, alpha=0.7, color="tab:blue")
        ax.set_xticks(range(1, len(names) + 1), names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def residuals_png(
    residuals: Mapping[str, Sequence[float]], predicted: Mapping[str, float | None]
) -> bytes:
    """Marker-hole residuals per subject (points) with the predicted TRE (bar) in mm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(residuals)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(names) + 1.5), 3.0))
    x = np.arange(len(names))
    pred = [predicted.get(n) or 0.0 for n in names]
    ax.bar(x, pred, color="tab:orange", alpha=0.4, label="predicted TRE (mean over body)")
    for i, n in enumerate(names):
        r = np.asarray(residuals[n], dtype=float)
        ax.plot(np.full(r.size, i), r, "o", ms=3, color="tab:blue")
    ax.plot([], [], "o", ms=3, color="tab:blue", label="hole residuals")
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("mm")
    ax.legend(fontsize=7)
    ax.set_title("fiducial fit: hole residuals and predicted TRE", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def timings_png(seconds: Mapping[str, Sequence[float]]) -> bytes:
    """Job wall times per stage (box plot)."""
    return box_png(seconds, "seconds per job", "timings")
