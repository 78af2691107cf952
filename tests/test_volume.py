"""Volume: frame arithmetic and exact conversions to/from SimpleITK, ITK and ANTs."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

from mousereg.errors import InputError
from mousereg.volume import Volume

DIRECTION = Rotation.from_euler("xyz", [15, -30, 45], degrees=True).as_matrix()


@pytest.fixture(scope="module")
def vol() -> Volume:
    arr = np.arange(6 * 7 * 8, dtype=np.int16).reshape(6, 7, 8)
    return Volume(
        data=da.from_array(arr, chunks=4),
        spacing=(0.14, 0.208, 0.4),
        origin=(-3.0, 5.5, 12.25),
        direction=DIRECTION,
    )


def test_index_to_physical_matches_sitk(vol: Volume) -> None:
    img = vol.to_sitk()
    rng = np.random.default_rng(0)
    for idx in rng.uniform(0, 5, size=(10, 3)):
        want = img.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in idx))
        np.testing.assert_allclose(vol.index_to_physical(idx), want, atol=1e-12)
        np.testing.assert_allclose(vol.physical_to_index(want), idx, atol=1e-12)
    np.testing.assert_allclose(vol.affine[:3, 3], vol.origin)


def test_sitk_round_trip_exact(vol: Volume) -> None:
    img = vol.to_sitk()
    assert img.GetSize() == (8, 7, 6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), vol.compute())
    back = Volume.from_sitk(img)
    assert back.same_grid(vol, tol=0.0)
    np.testing.assert_array_equal(back.compute(), vol.compute())


def test_vector_image_and_channels(vol: Volume) -> None:
    mc = Volume.stack([vol, vol.with_array(vol.data * 2)], names=("water", "fat"))
    assert mc.is_multichannel
    assert mc.n_channels == 2
    img = mc.to_sitk()
    assert img.GetNumberOfComponentsPerPixel() == 2
    back = Volume.from_sitk(img, channel_names=("water", "fat"))
    np.testing.assert_array_equal(back.channel("fat").compute(), vol.compute() * 2)
    with pytest.raises(InputError, match="no channel 'bone'"):
        mc.channel("bone")


def test_crop_keeps_the_frame(vol: Volume) -> None:
    part = vol.crop((slice(1, 5), slice(2, 6), slice(3, 8)))
    assert part.shape == (4, 4, 5)
    # voxel (0,0,0) of the crop is voxel (x=3, y=2, z=1) of the original, in space and value
    np.testing.assert_allclose(part.index_to_physical([0, 0, 0]), vol.index_to_physical([3, 2, 1]))
    assert part.compute()[0, 0, 0] == vol.compute()[1, 2, 3]
    img = vol.to_sitk()[3:8, 2:6, 1:5]
    np.testing.assert_allclose(part.origin, img.GetOrigin(), atol=1e-12)


def test_itk_and_ants_round_trip(vol: Volume) -> None:
    pytest.importorskip("itk")
    back = Volume.from_itk(vol.to_itk())
    assert back.same_grid(vol, tol=1e-12)
    np.testing.assert_array_equal(back.compute(), vol.compute())
    ants = pytest.importorskip("ants")
    img = vol.to_ants()
    assert isinstance(img, ants.ANTsImage)
    back = Volume.from_ants(img)
    assert back.same_grid(vol, tol=1e-9)
    np.testing.assert_array_equal(back.compute(), vol.compute().astype(np.float32))


def test_rejects_bad_frames() -> None:
    arr = np.zeros((2, 2, 2))
    with pytest.raises(InputError, match="not orthonormal"):
        Volume(data=arr, direction=[[1, 0.3, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(InputError, match="spacing must be positive"):
        Volume(data=arr, spacing=(1, 0, 1))
    with pytest.raises(InputError, match="3-D"):
        Volume(data=np.zeros((2, 2)))


def test_describe_is_json_friendly(vol: Volume) -> None:
    doc = vol.describe()
    assert doc["shape_zyx"] == [6, 7, 8]
    assert doc["spacing_xyz_mm"] == [0.14, 0.208, 0.4]
    assert doc["dtype"] == "int16"
    assert doc["chunks"] == [4, 4, 4]
