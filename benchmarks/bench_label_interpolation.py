"""Label resampling: per-label linear + arg-max ("label", like ANTs genericLabel) vs nearest.

A sphere and an ellipsoid are painted on a 0.28 mm grid (the CT at test resolution), warped
through a rotation (23 degrees) + shift onto three target grids, and compared with the same
shapes painted analytically on the target grid: Dice, ASSD and the surface-area excess (exposed
voxel-face area over the analytic rasterisation's; > 1 means a rougher, more staircased border).

    .venv/bin/python benchmarks/bench_label_interpolation.py
"""

from __future__ import annotations

import dask.array as da
import numpy as np

from mousereg.metrics import label_metrics, surface
from mousereg.registration import Transform
from mousereg.resample import resample
from mousereg.volume import Volume

SOURCE_SPACING = 0.28
SHAPES = {  # name: (centre mm, semi-axes mm)
    "sphere r=2 mm": ((0.6, -0.4, 0.3), (2.0, 2.0, 2.0)),
    "ellipsoid 4x2x1.2 mm": ((0.3, 0.5, -0.2), (4.0, 2.0, 1.2)),
}
TARGETS = {  # name: (spacing xyz mm, shape zyx)
    "same 0.28 mm": ((0.28, 0.28, 0.28), (44, 44, 44)),
    "finer 0.1 mm": ((0.1, 0.1, 0.1), (120, 120, 120)),
    "MRI 0.208x0.208x0.4 mm": ((0.208, 0.208, 0.4), (31, 60, 60)),
}


def _points(v: Volume) -> np.ndarray:
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in v.shape), indexing="ij")
    return v.index_to_physical(np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1))


def _paint(points: np.ndarray, centre: tuple, axes: tuple) -> np.ndarray:
    return (((points - np.asarray(centre)) / np.asarray(axes)) ** 2).sum(axis=1) <= 1


def _grid(spacing: tuple[float, float, float], shape: tuple[int, int, int]) -> Volume:
    extent = (np.asarray(shape[::-1]) - 1) * np.asarray(spacing)
    return Volume(da.zeros(shape, chunks=64), spacing=spacing, origin=tuple(-extent / 2))


def main() -> None:
    a = np.deg2rad(23.0)
    axis = np.array([1.0, 2.0, 0.5]) / np.linalg.norm([1.0, 2.0, 0.5])
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k
    t = Transform.from_matrix(rot, translation=(0.13, -0.21, 0.07))
    source = _grid((SOURCE_SPACING,) * 3, (44, 44, 44))
    src_pts = _points(source)
    print("| shape | target grid | method | Dice | ASSD (mm) | HD95 (mm) | area excess |")
    print("|---|---|---|---|---|---|---|")
    for shape_name, (centre, axes) in SHAPES.items():
        lab = _paint(src_pts, centre, axes).reshape(source.shape).astype(np.uint8)
        labels = source.with_array(da.from_array(lab, chunks=64))
        for target_name, (spacing, shape) in TARGETS.items():
            target = _grid(spacing, shape)
            truth = _paint(t.transform_points(_points(target)), centre, axes).reshape(shape)
            zyx = spacing[::-1]
            truth_area = surface(truth, zyx).sum()
            for method in ("nearest", "label"):
                got = resample(labels, target, t, interpolation=method).compute() == 1
                m = label_metrics(got, truth, zyx, tau_mm=0.0)
                excess = surface(got, zyx).sum() / truth_area
                print(
                    f"| {shape_name} | {target_name} | {method} | {m['dice']:.4f} | "
                    f"{m['assd_mm']:.4f} | {m['hd95_mm']:.3f} | {excess:.3f} |"
                )


if __name__ == "__main__":
    main()
