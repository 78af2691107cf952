"""Tests for mousereg.resample: chunked warping against whole-volume SimpleITK and ANTs."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from mousereg.errors import InputError
from mousereg.registration import Transform
from mousereg.resample import resample
from mousereg.volume import Volume

SITK_INTERPOLATORS = {
    "linear": sitk.sitkLinear,
    "nearest": sitk.sitkNearestNeighbor,
    "bspline": sitk.sitkBSpline,
}
AWKWARD = (17, 33, 17)


@pytest.fixture(scope="module")
def source() -> Volume:
    """A smooth random image on an oblique, anisotropic grid, in awkward chunks."""
    noise = np.random.default_rng(0).normal(size=(40, 45, 50))
    arr = ndimage.gaussian_filter(noise, 2).astype(np.float32)
    direction = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=float)
    return Volume(
        da.from_array(arr, chunks=13),
        spacing=(0.3, 0.35, 0.4),
        origin=(-7.0, -8.0, 8.0),
        direction=direction,
    )


@pytest.fixture(scope="module")
def labels(source: Volume) -> Volume:
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in source.shape), indexing="ij")
    lab = np.zeros(source.shape, np.uint8)
    lab[(zz - 20) ** 2 + (yy - 22) ** 2 + (xx - 25) ** 2 < 12**2] = 3
    lab[(zz - 15) ** 2 + (yy - 18) ** 2 + (xx - 20) ** 2 < 6**2] = 7
    lab[source.compute() > 0.05] = 5
    return source.with_array(da.from_array(lab, chunks=13))


@pytest.fixture(scope="module")
def reference() -> Volume:
    return Volume(
        da.zeros((37, 41, 43), chunks=17, dtype=np.float32),
        spacing=(0.33, 0.31, 0.42),
        origin=(-6.5, -7.0, -8.0),
    )


@pytest.fixture(scope="module")
def affine() -> Transform:
    return Transform(sitk.Euler3DTransform((0.0, 0.0, 0.0), 0.3, -0.2, 0.25, (0.4, -0.3, 0.6)))


@pytest.fixture(scope="module")
def deformable(reference: Volume, affine: Transform) -> Transform:
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in reference.shape), indexing="ij")
    f = np.stack([0.8 * np.sin(xx / 8.0), 0.6 * np.cos(zz / 7.0), 0.5 * np.sin((xx + yy) / 10)])
    field = reference.with_array(f, channel_names=("x", "y", "z"))
    return Transform.from_displacement_field(field).then(affine)


def _sitk_resample(src: Volume, ref: Volume, t: Transform, interp: str, default: float):
    out = sitk.Resample(
        src.to_sitk(), ref.to_sitk(), t.to_sitk(), SITK_INTERPOLATORS[interp], default
    )
    return sitk.GetArrayFromImage(out)


@pytest.mark.parametrize("kind", ["affine", "deformable"])
@pytest.mark.parametrize("interp", ["linear", "nearest", "bspline"])
def test_equals_sitk_on_awkward_chunks(
    request: pytest.FixtureRequest, source: Volume, reference: Volume, kind: str, interp: str
) -> None:
    t = request.getfixturevalue(kind)
    got = resample(source, reference, t, interpolation=interp, default_value=-5.0, chunks=AWKWARD)
    assert got.data.chunks[0][0] == AWKWARD[0] and got.data.chunks[1][0] == AWKWARD[1]
    expected = _sitk_resample(source, reference, t, interp, -5.0)
    assert got.dtype == np.float32
    assert (expected == -5.0).any() and (expected != -5.0).mean() > 0.5  # both cases occur
    np.testing.assert_allclose(got.compute(), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", ["affine", "deformable"])
def test_labels_nearest_equals_sitk(
    request: pytest.FixtureRequest, labels: Volume, reference: Volume, kind: str
) -> None:
    t = request.getfixturevalue(kind)
    got = resample(labels, reference, t, interpolation="nearest", chunks=AWKWARD).compute()
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, _sitk_resample(labels, reference, t, "nearest", 0))


def test_label_interpolation_equals_ants_generic_label(
    tmp_path: Path, labels: Volume, reference: Volume, deformable: Transform
) -> None:
    import ants

    warp = tmp_path / "Warp.nii.gz"
    deformable.write_ants_warp(warp, reference)
    expected = ants.apply_transforms(
        fixed=reference.to_ants(),
        moving=labels.to_ants(),
        transformlist=[str(warp)],
        interpolator="genericLabel",
    )
    got = resample(labels, reference, deformable, interpolation="label", chunks=AWKWARD).compute()
    np.testing.assert_array_equal(got, expected.numpy().transpose(2, 1, 0))
    nearest = resample(labels, reference, deformable, interpolation="nearest").compute()
    assert (nearest != got).sum() > 0  # the two label modes really differ at boundaries


def test_ants_apply_transforms_accepts_our_warp(
    tmp_path: Path, source: Volume, reference: Volume, deformable: Transform
) -> None:
    import ants

    warp = tmp_path / "Warp.nii.gz"
    deformable.write_ants_warp(warp, reference)
    theirs = ants.apply_transforms(
        fixed=reference.to_ants(), moving=source.to_ants(), transformlist=[str(warp)]
    )
    ours = resample(source, reference, deformable).compute()
    np.testing.assert_allclose(theirs.numpy().transpose(2, 1, 0), ours, atol=1e-5)


def test_multichannel_resamples_each_channel(
    source: Volume, reference: Volume, affine: Transform
) -> None:
    two = Volume.stack([source, source.with_array(source.data * 2)], names=("water", "fat"))
    got = resample(two, reference, affine, chunks=AWKWARD)
    assert got.channel_names == ("water", "fat")
    one = resample(source, reference, affine).compute()
    np.testing.assert_allclose(got.compute()[0], one, atol=1e-6)
    np.testing.assert_allclose(got.compute()[1], 2 * one, atol=1e-5)


def test_reads_only_the_source_region_it_needs(reference: Volume) -> None:
    """A shift that maps the output into one corner of a 4x4x4-chunk source reads few chunks."""
    read: set[tuple[int, ...]] = set()

    def record(x: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        assert block_info is not None
        read.add(tuple(block_info[0]["chunk-location"]))
        return x

    base = da.ones((80, 80, 80), chunks=20, dtype=np.float32)
    src = Volume(base.map_blocks(record, dtype=np.float32))
    ref = Volume(da.zeros((16, 16, 16), chunks=8), origin=(2.0, 2.0, 2.0))
    shift = Transform.from_matrix(np.eye(3), translation=(1.5, 0.0, 0.0))
    got = resample(src, ref, shift).data.compute(scheduler="sync")
    np.testing.assert_allclose(got, 1.0)
    assert read == {(0, 0, 0), (0, 0, 1)}  # output x 3.5..18.5 -> source chunks 0 and 1 in x


def test_outside_source_is_default(source: Volume) -> None:
    far = Volume(da.zeros((5, 6, 7), chunks=3), origin=(500.0, 500.0, 500.0))
    got = resample(source, far, Transform.identity(), default_value=-1024.0).compute()
    np.testing.assert_array_equal(got, -1024.0)


def test_bad_arguments(source: Volume, reference: Volume, affine: Transform) -> None:
    with pytest.raises(InputError, match="interpolation"):
        resample(source, reference, affine, interpolation="cubic")
    with pytest.raises(InputError, match="integer label map"):
        resample(source, reference, affine, interpolation="label")


def test_label_mode_is_smoother_than_nearest_on_a_rotated_sphere() -> None:
    """Against the analytic sphere on the target grid: higher Dice, less staircase area."""
    from mousereg.metrics import label_metrics, surface

    def grid(spacing: float, n: int) -> Volume:
        return Volume(da.zeros((n,) * 3, chunks=32), spacing=(spacing,) * 3,
                      origin=(-(n - 1) * spacing / 2,) * 3)  # fmt: skip

    def inside(v: Volume, t: Transform | None) -> np.ndarray:
        zz, yy, xx = np.meshgrid(*(np.arange(n) for n in v.shape), indexing="ij")
        pts = v.index_to_physical(np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1))
        pts = t.transform_points(pts) if t is not None else pts
        return (np.linalg.norm(pts - [0.6, -0.4, 0.3], axis=1) <= 2.0).reshape(v.shape)

    src, dst = grid(0.28, 24), grid(0.14, 40)
    rot = sitk.Euler3DTransform((0.0, 0.0, 0.0), 0.3, 0.2, 0.1, (0.13, -0.21, 0.07))
    t = Transform(rot)
    labels = src.with_array(da.from_array(inside(src, None).astype(np.uint8)))
    truth = inside(dst, t)
    spacing = (0.14,) * 3
    result = {}
    for method in ("nearest", "label"):
        got = resample(labels, dst, t, interpolation=method).compute() == 1
        dice = label_metrics(got, truth, spacing, tau_mm=0.0)["dice"]
        result[method] = (dice, surface(got, spacing).sum() / surface(truth, spacing).sum())
    assert result["label"][0] > result["nearest"][0] + 0.005
    assert result["label"][1] < result["nearest"][1] - 0.05
