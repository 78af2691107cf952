"""OME-Zarr: outside validation, a second reader, pyramid geometry, labels, laziness, damage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import zarr
from scipy.spatial.transform import Rotation

from mousereg.errors import InputError
from mousereg.io import read_labels, read_volume, write_volume
from mousereg.io.ome_zarr_write import write_ome_zarr
from mousereg.io.pyramid import plan_levels
from mousereg.io.regions import iter_regions, region_shape
from mousereg.labels import LabelTable
from mousereg.volume import Volume

DIRECTION = Rotation.from_euler("zyx", [30, 10, -20], degrees=True).as_matrix()
SPACING = (0.2, 0.2, 0.45)  # x, y, z: thick slices, as in the MRI
ORIGIN = (-4.5, 3.25, 12.0)


def ramp(shape_zyx: tuple[int, int, int]) -> np.ndarray:
    """A linear function of the index-aligned mm coordinates (block means stay on it)."""
    z, y, x = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape_zyx], indexing="ij")
    return (
        3.0 * (z * SPACING[2] + ORIGIN[2])
        + 2.0 * (y * SPACING[1] + ORIGIN[1])
        + 1.0 * (x * SPACING[0] + ORIGIN[0])
    )


@pytest.fixture(scope="session")
def image() -> Volume:
    arr = np.stack([ramp((70, 150, 133)), -ramp((70, 150, 133))]).astype(np.float32)
    return Volume(
        data=da.from_array(arr, chunks=(1, 50, 50, 50)),
        spacing=SPACING,
        origin=ORIGIN,
        direction=DIRECTION,
        channel_names=("water", "fat"),
        modality="MR",
    )


@pytest.fixture(scope="session")
def label_map() -> Volume:
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 6, size=(70, 150, 133)).astype(np.uint8)
    return Volume(
        data=arr,
        spacing=SPACING,
        origin=ORIGIN,
        direction=DIRECTION,
        modality="organs",
        labels=LabelTable.default().subset([1, 2, 3, 4, 5]),
    )


@pytest.fixture(scope="session", params=["0.4", "0.5"])
def stores(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    image: Volume,
    label_map: Volume,
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp(f"zarr{request.param}")
    paths = {"version": request.param}
    for name, vol in (("image", image), ("labels", label_map)):
        path = root / f"{name}.zarr"
        write_volume(vol, path, ngff_version=request.param, chunks=64)
        paths[name] = path
    path = root / "ct_with_labels.zarr"
    write_ome_zarr(
        image.channel("water"),
        path,
        ngff_version=request.param,
        labels={"organs": label_map},
    )
    paths["attached"] = path
    return paths  # type: ignore[return-value]


def _models(version: str) -> tuple[type, type]:
    if version == "0.4":
        from ome_zarr_models.v04.image import Image
        from ome_zarr_models.v04.image_label import ImageLabel
    else:
        from ome_zarr_models.v05.image import Image
        from ome_zarr_models.v05.image_label import ImageLabel
    return Image, ImageLabel


def test_every_store_passes_ome_zarr_models(stores: dict[str, Path]) -> None:
    image_model, label_model = _models(str(stores["version"]))
    for key in ("image", "labels", "attached"):
        group = zarr.open_group(str(stores[key]), mode="r")
        assert group.metadata.zarr_format == (2 if stores["version"] == "0.4" else 3)
        image_model.from_zarr(group)  # type: ignore[attr-defined]
    for key in ("labels", "attached"):
        sub = zarr.open_group(str(stores[key] / "labels" / "organs"), mode="r")
        label_model.from_zarr(sub)  # type: ignore[attr-defined]


def test_ngff_zarr_reads_matching_scale_and_translation(stores: dict[str, Path]) -> None:
    import ngff_zarr

    ms = ngff_zarr.from_ngff_zarr(str(stores["image"]))
    levels = plan_levels((70, 150, 133), SPACING[::-1], labels=False)
    assert len(ms.images) == len(levels)
    first = ms.images[0]
    assert [first.scale[a] for a in "xyz"] == pytest.approx(SPACING, abs=1e-12)
    assert [first.translation[a] for a in "xyz"] == pytest.approx(ORIGIN, abs=1e-12)
    for img, level in zip(ms.images, levels, strict=True):
        assert tuple(img.data.shape[1:]) == level.shape
        assert [img.scale[a] for a in "zyx"] == pytest.approx(level.spacing, abs=1e-12)
        want = np.asarray(ORIGIN[::-1]) + np.asarray(level.offset)
        assert [img.translation[a] for a in "zyx"] == pytest.approx(want, abs=1e-12)


def test_pyramid_levels_sit_where_their_metadata_says(stores: dict[str, Path]) -> None:
    """Each level's voxel value is the ramp at the level's own NGFF coordinates."""
    group = zarr.open_group(str(stores["image"]), mode="r")
    attrs = dict(group.attrs)
    ngff = attrs if stores["version"] == "0.4" else attrs["ome"]
    datasets = ngff["multiscales"][0]["datasets"]
    assert max(group[datasets[-1]["path"]].shape[1:]) < 64
    assert max(group[datasets[-2]["path"]].shape[1:]) >= 64
    for ds in datasets:
        arr = np.asarray(group[ds["path"]][0])
        scale = np.asarray(ds["coordinateTransformations"][0]["scale"][1:])
        shift = np.asarray(ds["coordinateTransformations"][1]["translation"][1:])
        # interior voxels only: the last block of an odd axis is padded by repetition
        inner = tuple(slice(0, n - 1) for n in arr.shape)
        idx = np.meshgrid(*[np.arange(n - 1, dtype=float) for n in arr.shape], indexing="ij")
        coords = [shift[a] + scale[a] * idx[a] for a in range(3)]
        want = 3.0 * coords[0] + 2.0 * coords[1] + 1.0 * coords[2]
        np.testing.assert_allclose(arr[inner], want, atol=2e-3)


def test_first_level_keeps_thick_slices(stores: dict[str, Path]) -> None:
    """0.45 mm slices vs 0.2 mm in-plane: level 1 halves y and x only, level 2 all three."""
    group = zarr.open_group(str(stores["image"]), mode="r")
    shapes = [group[str(i)].shape[1:] for i in range(3)]
    assert shapes == [(70, 150, 133), (70, 75, 67), (35, 38, 34)]


def test_chunks_and_compression(stores: dict[str, Path]) -> None:
    group = zarr.open_group(str(stores["image"]), mode="r")
    arr = group["0"]
    assert arr.chunks == (1, 64, 64, 64)
    text = (
        (stores["image"] / "0" / ".zarray").read_text()
        if stores["version"] == "0.4"
        else (stores["image"] / "0" / "zarr.json").read_text()
    )
    assert '"blosc"' in text
    assert '"zstd"' in text
    default = zarr.open_group(str(stores["attached"]), mode="r")["0"]
    assert default.chunks == (70, 128, 128)


def test_metadata_restored(stores: dict[str, Path], image: Volume) -> None:
    got = read_volume(stores["image"])
    assert isinstance(got.data, da.Array)
    assert got.channel_names == ("water", "fat")
    assert got.modality == "MR"
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.direction, DIRECTION, atol=1e-12)
    np.testing.assert_allclose(got.origin, ORIGIN, atol=1e-12)
    np.testing.assert_allclose(got.spacing, SPACING, atol=1e-12)
    np.testing.assert_array_equal(got.compute(), image.compute())
    attrs = dict(zarr.open_group(str(stores["image"]), mode="r").attrs)
    ngff = attrs if stores["version"] == "0.4" else attrs["ome"]
    assert [c["label"] for c in ngff["omero"]["channels"]] == ["water", "fat"]
    assert attrs["mousereg"]["direction"] == pytest.approx(DIRECTION.reshape(-1).tolist())


def test_label_map_and_table_restored(stores: dict[str, Path], label_map: Volume) -> None:
    got = read_volume(stores["labels"])
    assert got.labels == label_map.labels
    np.testing.assert_array_equal(got.compute(), label_map.compute())
    attached = read_labels(stores["attached"], "organs")
    assert attached.labels == label_map.labels
    assert attached.same_grid(label_map)
    np.testing.assert_array_equal(attached.compute(), label_map.compute())
    sub = zarr.open_group(str(stores["labels"] / "labels" / "organs"), mode="r")
    attrs = dict(sub.attrs)
    doc = (attrs if stores["version"] == "0.4" else attrs["ome"])["image-label"]
    props = {p["label-value"]: p for p in doc["properties"]}
    assert props[3]["name"] == "brain"
    assert props[3]["iri"] == "http://purl.obolibrary.org/obo/BTO_0000142"
    colours = {c["label-value"]: c["rgba"] for c in doc["colors"]}
    assert colours[3] == [250, 250, 225, 255]
    level1 = np.asarray(sub["1"])
    assert set(np.unique(level1)) <= set(range(6))  # subsampled, no blended values


def test_region_plan_is_chunk_aligned_and_bounded() -> None:
    shape, chunks = (1024, 1024, 1024), (128, 128, 128)
    block = region_shape(shape, chunks, 2, 64 * 2**20)
    assert all(b % c == 0 for b, c in zip(block, chunks, strict=True))
    assert np.prod(block) * 2 <= 64 * 2**20
    regions = list(iter_regions(shape, block))
    assert sum(np.prod([s.stop - s.start for s in r]) for r in regions) == np.prod(shape)


def test_damaged_stores_are_refused(stores: dict[str, Path], tmp_path: Path) -> None:
    v4 = stores["version"] == "0.4"
    copy = tmp_path / "copy.zarr"
    shutil.copytree(stores["image"], copy)
    chunk = copy / "0" / ("0/0/0/0" if v4 else "c/0/0/0/0")
    chunk.unlink()
    with pytest.raises(InputError, match="chunks; the store is truncated"):
        read_volume(copy)
    shutil.rmtree(copy / "1")
    with pytest.raises(InputError, match="missing; the store is truncated"):
        read_volume(copy)
    (copy / (".zattrs" if v4 else "zarr.json")).unlink()
    if v4:
        (copy / ".zgroup").unlink()
    with pytest.raises(InputError, match="truncated"):
        read_volume(copy)


def test_plain_zarr_is_not_ngff(tmp_path: Path) -> None:
    path = tmp_path / "plain.zarr"
    zarr.create_array(str(path), shape=(4, 4, 4), dtype="u1")
    with pytest.raises(InputError, match="not an OME-NGFF image group"):
        read_volume(path)
    group = tmp_path / "group.zarr"
    zarr.open_group(str(group), mode="w").attrs.update({"something": json.dumps([1])})
    with pytest.raises(InputError, match="not an OME-NGFF image"):
        read_volume(group)


def test_failed_write_leaves_nothing(tmp_path: Path, image: Volume) -> None:
    def broken(block: np.ndarray) -> np.ndarray:
        if block.size and block.flat[0] > 0:
            raise RuntimeError("disk full")
        return block

    bad = image.with_array(image.data.map_blocks(broken, dtype=np.float32))
    with pytest.raises(RuntimeError, match="disk full"):
        write_volume(bad, tmp_path / "out.zarr")
    assert list(tmp_path.iterdir()) == []


def test_unsupported_version_and_chunks(tmp_path: Path, image: Volume) -> None:
    with pytest.raises(InputError, match="NGFF version"):
        write_volume(image, tmp_path / "a.zarr", ngff_version="0.3")
    with pytest.raises(InputError, match="--chunks between 64 and 128"):
        write_volume(image, tmp_path / "a.zarr", chunks=4)
    assert list(tmp_path.iterdir()) == []


def test_non_orthonormal_direction_attribute_is_refused(
    stores: dict[str, Path], tmp_path: Path
) -> None:
    copy = tmp_path / "sheared.zarr"
    shutil.copytree(stores["image"], copy)
    group = zarr.open_group(str(copy), mode="r+")
    own = dict(group.attrs["mousereg"])
    own["direction"] = [1.0, 0.4, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    group.attrs["mousereg"] = own
    with pytest.raises(InputError, match="not orthonormal") as err:
        read_volume(copy)
    assert str(copy) in str(err.value)
