"""Slice figures of a phantom pair (CT, MR water, MR fat, labels; axial, coronal, sagittal).

All views are planes of the holder frame, sampled from each image through the ground truth
(the MRI through the holder's rigid motion), so the panels line up. Regenerate the figures in
docs/img with ``python -m mousereg.phantom.figures docs/img``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from mousereg.phantom.pair import PhantomPair, make_pair
from mousereg.volume import Volume

# (name, in-plane axes (horizontal, vertical) of the holder frame, normal axis, extents in mm)
VIEWS = (
    ("axial", (0, 1), 2, ((-21.0, 21.0), (-6.0, 19.0))),
    ("coronal", (2, 0), 1, ((-55.0, 55.0), (-21.0, 21.0))),
    ("sagittal", (2, 1), 0, ((-55.0, 55.0), (-6.0, 19.0))),
)


def _plane(view: int, through: np.ndarray, step: float) -> tuple[np.ndarray, tuple]:
    """Holder-frame points of a view's plane through ``through``, shape (rows, cols, 3)."""
    _, (h, v), normal, ((h0, h1), (v0, v1)) = VIEWS[view]
    hs = np.arange(h0, h1, step)
    vs = np.arange(v0, v1, step)
    pts = np.zeros((len(vs), len(hs), 3))
    pts[..., h] = hs[None, :]
    pts[..., v] = vs[:, None]
    pts[..., normal] = through[normal]
    return pts, (h0, h1, v0, v1)


def _sample(volume: Volume, array: np.ndarray, points: np.ndarray, order: int) -> np.ndarray:
    idx = volume.physical_to_index(points.reshape(-1, 3))
    coords = idx[:, ::-1].T
    vals = ndimage.map_coordinates(array, coords, order=order, mode="constant", cval=np.nan)
    return vals.reshape(points.shape[:-1])


def _label_rgb(pair: PhantomPair, labels: np.ndarray) -> np.ndarray:
    table = pair.ct_labels.labels
    rgb = np.zeros((*labels.shape, 4))
    if table is None:
        return rgb
    for lab in table:
        rgb[labels == lab.value, :3] = np.array(lab.colour) / 255.0
        rgb[labels == lab.value, 3] = 0.85
    return rgb


def render_overview(pair: PhantomPair, path: Path, through: tuple[float, float, float]) -> None:
    """Write a 4 × 3 panel PNG (rows CT, MR water, MR fat, labels; columns the three views).

    ``through`` is the holder-frame point (mm) the three planes pass through.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ct = pair.ct.compute()
    ct_lab = pair.ct_labels.compute()
    water = pair.mr.channel("water").compute()
    fat = pair.mr.channel("fat").compute()
    offset = np.asarray(pair.info["ct_offset_mm"])
    m = np.asarray(pair.rigid.GetMatrix()).reshape(3, 3)
    t = np.asarray(pair.rigid.GetTranslation())
    mr_vol = pair.mr.channel("water")
    wmax = float(np.percentile(water, 99.5))
    fmax = float(np.percentile(fat, 99.5))
    fig, axes = plt.subplots(4, 3, figsize=(15, 11), gridspec_kw={"width_ratios": [1.0, 2.6, 2.6]})
    for col in range(3):
        pts, extent = _plane(col, np.asarray(through), 0.1)
        p_ct = pts + offset
        p_mr = (p_ct - t) @ m  # CT -> MRI through the holder's rigid motion
        ct_img = _sample(pair.ct, ct, p_ct, 1)
        panels = [
            (ct_img, "gray", -1000, 1500, "CT (HU)"),
            (_sample(mr_vol, water, p_mr, 1), "gray", 0, wmax, "MR water"),
            (_sample(mr_vol, fat, p_mr, 1), "gray", 0, fmax, "MR fat"),
        ]
        for row, (img, cmap, lo, hi, title) in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, origin="lower", extent=extent)
            ax.set_title(f"{title}, {VIEWS[col][0]}", fontsize=9)
        lab = _sample(pair.ct_labels, ct_lab, p_ct, 0)
        ax = axes[3, col]
        ax.imshow(ct_img, cmap="gray", vmin=-1000, vmax=1500, origin="lower", extent=extent)
        lab_int = np.nan_to_num(lab).astype(int)
        ax.imshow(_label_rgb(pair, lab_int), origin="lower", extent=extent)
        ax.set_title(f"CT labels, {VIEWS[col][0]}", fontsize=9)
        for row in range(4):
            axes[row, col].tick_params(labelsize=7)
    fig.suptitle(
        f"mousereg phantom, seed {pair.info['seed']}, {pair.info['resolution']} resolution, "
        f"{pair.info['subject']['weight_g']:.1f} g (holder frame, mm; MR views through the "
        "holder's rigid motion)",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    """``python -m mousereg.phantom.figures OUTDIR [RESOLUTION]``: write the docs figures."""
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "docs/img")
    resolution = args[1] if len(args) > 1 else "full"
    pair = make_pair(seed=0, resolution=resolution, spurious_blobs=2)
    render_overview(pair, out / "phantom_overview.png", (1.5, 9.0, -11.0))
    render_overview(pair, out / "phantom_holes.png", (-17.0, 6.5, 31.0))


if __name__ == "__main__":  # pragma: no cover
    main()
