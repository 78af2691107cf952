"""Tests for mousereg.metrics on shapes with analytic answers, and an independent oracle."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from scipy.spatial import cKDTree

from mousereg.errors import InputError
from mousereg.labels import Label, LabelTable
from mousereg.metrics import evaluate, label_metrics, weighted_percentile
from mousereg.volume import Volume

SPACING_ZYX = (0.5, 0.3, 0.2)  # anisotropic on purpose


def _cube(shape: tuple[int, int, int], start: tuple[int, int, int], n: int) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[tuple(slice(s, s + n) for s in start)] = True
    return m


def _ball(shape: tuple[int, ...], radius_mm: float, spacing: float) -> np.ndarray:
    c = [(n - 1) / 2 for n in shape]
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    r2 = ((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) * spacing**2
    return r2 <= radius_mm**2


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 3])
def test_shifted_cube(axis: int, k: int) -> None:
    n = 12
    start = [4, 4, 4]
    shifted = list(start)
    shifted[axis] += k
    truth = _cube((24, 24, 24), tuple(start), n)  # type: ignore[arg-type]
    pred = _cube((24, 24, 24), tuple(shifted), n)  # type: ignore[arg-type]
    m = label_metrics(pred, truth, SPACING_ZYX, tau_mm=k * SPACING_ZYX[axis])
    assert m["dice"] == pytest.approx(1 - k / n)
    assert m["jaccard"] == pytest.approx((n - k) / (n + k))
    assert m["hd95_mm"] == pytest.approx(k * SPACING_ZYX[axis])
    assert m["volume_difference_ml"] == 0.0
    assert m["volume_truth_ml"] == pytest.approx(n**3 * np.prod(SPACING_ZYX) / 1000)
    assert m["nsd"] == pytest.approx(1.0)  # every surface point within k voxels
    assert 0 < m["assd_mm"] < k * SPACING_ZYX[axis]  # type: ignore[operator]
    tight = label_metrics(pred, truth, SPACING_ZYX, tau_mm=0.0)
    # Within 0 mm: only the side faces that coincide (x outside the shifted strip).
    assert tight["nsd"] is not None and 0.3 < tight["nsd"] < 1 - 1 / 6


def test_concentric_spheres() -> None:
    spacing, r_truth, r_pred = 0.1, 1.0, 0.7
    shape = (25, 25, 25)
    truth, pred = _ball(shape, r_truth, spacing), _ball(shape, r_pred, spacing)
    m = label_metrics(pred, truth, (spacing,) * 3, tau_mm=0.1)
    gap = r_truth - r_pred
    assert m["dice"] == pytest.approx(2 * r_pred**3 / (r_pred**3 + r_truth**3), abs=0.02)
    assert m["volume_truth_ml"] == pytest.approx(4 / 3 * np.pi * r_truth**3 / 1000, rel=0.03)
    assert m["assd_mm"] == pytest.approx(gap, abs=0.05)
    assert m["hd95_mm"] == pytest.approx(gap, abs=spacing)
    assert m["nsd"] < 0.05  # nothing within 0.1 mm of the other sphere
    loose = label_metrics(pred, truth, (spacing,) * 3, tau_mm=gap + spacing)
    assert loose["nsd"] > 0.95
    same = label_metrics(truth, truth, (spacing,) * 3, tau_mm=0.0)
    assert (same["dice"], same["assd_mm"], same["hd95_mm"], same["nsd"]) == (1.0, 0.0, 0.0, 1.0)


def _oracle_assd(a: np.ndarray, b: np.ndarray, spacing_zyx: tuple[float, float, float]):
    """ASSD by brute force: explicit face counting and a k-d tree (independent of metrics.py)."""

    def surfels(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pts, weights = [], []
        areas = (spacing_zyx[1] * spacing_zyx[2], spacing_zyx[0] * spacing_zyx[2])
        areas = (*areas, spacing_zyx[0] * spacing_zyx[1])
        for idx in zip(*np.nonzero(m), strict=True):
            w = 0.0
            for ax in range(3):
                for step in (-1, 1):
                    nb = list(idx)
                    nb[ax] += step
                    outside = not (0 <= nb[ax] < m.shape[ax]) or not m[tuple(nb)]
                    w += areas[ax] * outside
            if w:
                pts.append(np.asarray(idx) * spacing_zyx)
                weights.append(w)
        return np.asarray(pts), np.asarray(weights)

    pa, wa = surfels(a)
    pb, wb = surfels(b)
    da_, _ = cKDTree(pb).query(pa)
    db_, _ = cKDTree(pa).query(pb)
    return ((da_ * wa).sum() + (db_ * wb).sum()) / (wa.sum() + wb.sum())


def test_assd_matches_brute_force_oracle() -> None:
    rng = np.random.default_rng(0)
    from scipy import ndimage

    a = ndimage.gaussian_filter(rng.normal(size=(16, 18, 20)), 2) > 0.02
    b = ndimage.gaussian_filter(rng.normal(size=(16, 18, 20)), 2) > 0.02
    m = label_metrics(a, b, SPACING_ZYX, tau_mm=0.3)
    assert m["assd_mm"] == pytest.approx(_oracle_assd(a, b, SPACING_ZYX), rel=1e-9)


def test_weighted_percentile() -> None:
    values = np.array([3.0, 1.0, 2.0, 10.0])
    assert weighted_percentile(values, np.array([1.0, 1.0, 1.0, 0.01]), 95) == 3.0
    assert weighted_percentile(values, np.array([1.0, 1.0, 1.0, 1.0]), 95) == 10.0


def _volume(mask_values: np.ndarray, table: LabelTable | None = None) -> Volume:
    return Volume(
        da.from_array(mask_values.astype(np.uint8)),
        spacing=SPACING_ZYX[::-1],
        labels=table,
    )


def test_evaluate_per_label_and_mean() -> None:
    truth = np.zeros((24, 24, 24), np.uint8)
    pred = np.zeros_like(truth)
    truth[_cube(truth.shape, (2, 2, 2), 8)] = 11
    pred[_cube(truth.shape, (2, 2, 4), 8)] = 11  # shifted by 2 voxels in x
    truth[_cube(truth.shape, (12, 12, 12), 6)] = 10
    pred[_cube(truth.shape, (12, 12, 12), 6)] = 10  # perfect
    pred[_cube(truth.shape, (20, 20, 20), 2)] = 3  # a false positive organ
    doc = evaluate(_volume(pred), _volume(truth), tau_mm=0.1)
    rows = {r["name"]: r for r in doc["labels"]}
    assert set(rows) == {"liver", "kidney", "brain"}
    assert rows["liver"]["dice"] == pytest.approx(0.75)
    assert rows["liver"]["hd95_mm"] == pytest.approx(0.4)
    assert rows["kidney"]["dice"] == 1.0 and rows["kidney"]["nsd"] == 1.0
    assert rows["brain"]["dice"] == 0.0 and rows["brain"]["assd_mm"] is None
    assert not rows["brain"]["in_truth"]
    assert doc["mean"]["dice"] == pytest.approx((0.75 + 1.0) / 2)
    assert doc["conventions"]["assd"].startswith("pooled")


def test_evaluate_bad_inputs() -> None:
    a = _volume(np.ones((4, 4, 4)))
    with pytest.raises(InputError, match="different grids"):
        evaluate(a, Volume(a.data, spacing=(1.0, 1.0, 1.0)))
    with pytest.raises(InputError, match="not integers"):
        evaluate(a.with_array(a.data.astype(np.float32)), a)
    t1 = LabelTable([Label(1, "liver")])
    t2 = LabelTable([Label(1, "spleen")])
    with pytest.raises(InputError, match="disagree"):
        evaluate(a.with_array(a.data, labels=t1), a.with_array(a.data, labels=t2))


def test_cli_evaluate_writes_metrics_json(tmp_path) -> None:
    import json

    from click.testing import CliRunner

    from mousereg.cli import main
    from mousereg.io import write_volume

    truth = np.zeros((24, 24, 24), np.uint8)
    pred = np.zeros_like(truth)
    truth[_cube(truth.shape, (2, 2, 2), 8)] = 11
    pred[_cube(truth.shape, (2, 2, 4), 8)] = 11
    write_volume(_volume(pred), tmp_path / "pred.nii.gz")
    write_volume(_volume(truth), tmp_path / "truth.nii.gz")
    out = tmp_path / "metrics.json"
    res = CliRunner().invoke(
        main, ["evaluate", str(tmp_path / "pred.nii.gz"), str(tmp_path / "truth.nii.gz"),
               "-o", str(out), "--tau", "0.4"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    (liver,) = doc["labels"]
    assert liver["name"] == "liver" and liver["dice"] == pytest.approx(0.75)
    assert liver["hd95_mm"] == pytest.approx(0.4, rel=1e-6)  # NIfTI spacing is float32
    assert liver["nsd"] == pytest.approx(1.0)
    assert doc["tau_mm"] == 0.4


def test_cli_evaluate_rejects_disagreeing_tables_and_grids(tmp_path) -> None:
    from click.testing import CliRunner

    from mousereg.cli import main
    from mousereg.io import write_volume

    m = np.ones((6, 6, 6), np.uint8)
    write_volume(_volume(m, LabelTable([Label(1, "liver")])), tmp_path / "a.zarr")
    write_volume(_volume(m, LabelTable([Label(1, "spleen")])), tmp_path / "b.zarr")
    write_volume(Volume(da.from_array(m)), tmp_path / "c.nii.gz")  # another spacing
    runner = CliRunner()
    res = runner.invoke(
        main, ["evaluate", str(tmp_path / "a.zarr"), str(tmp_path / "b.zarr"), "-o",
               str(tmp_path / "m.json")],
    )  # fmt: skip
    assert res.exit_code == 2 and "disagree" in res.output
    res = runner.invoke(
        main, ["evaluate", str(tmp_path / "a.zarr"), str(tmp_path / "c.nii.gz"), "-o",
               str(tmp_path / "m.json")],
    )  # fmt: skip
    assert res.exit_code == 2 and "propagate" in res.output
    assert not (tmp_path / "m.json").exists()


def test_evaluate_inside_a_region_of_interest() -> None:
    truth = np.zeros((10, 10, 20), np.uint8)
    truth[2:8, 2:8, 2:18] = 11
    pred = truth.copy()
    pred[:, :, 10:] = 0  # the prediction only covers half of the field
    roi = np.zeros_like(truth)
    roi[:, :, :10] = 1
    whole = evaluate(_volume(pred), _volume(truth))
    inside = evaluate(_volume(pred), _volume(truth), roi=_volume(roi))
    assert whole["labels"][0]["dice"] == pytest.approx(2 * 8 / (8 + 16))
    assert inside["labels"][0]["dice"] == 1.0 and inside["roi_voxels"] == 1000
    with pytest.raises(InputError, match="region of interest"):
        evaluate(_volume(pred), _volume(truth), roi=Volume(da.from_array(roi)))
