"""Round trip through every pair of writable formats: voxels identical, frame within 1e-6."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from mousereg.io import read_volume, write_volume
from mousereg.volume import Volume

FORMATS = {
    "nii": (".nii", {}),
    "nii.gz": (".nii.gz", {}),
    "nrrd": (".nrrd", {}),
    "mha": (".mha", {}),
    "mhd": (".mhd", {}),
    "mnc": (".mnc", {}),
    "zarr04": (".zarr", {"ngff_version": "0.4"}),
    "zarr05": (".zarr", {"ngff_version": "0.5"}),
}
KEEP_CHANNEL_NAMES = {"nrrd", "mha", "mhd", "zarr04", "zarr05"}
KINDS = [(dt, mc) for dt in ("uint8", "int16", "float32") for mc in (False, True)]
TOL = 1e-6


def make_volume(dtype: str, multichannel: bool) -> Volume:
    """Oblique, anisotropic, off-origin test volume; odd sizes so chunks and levels are ragged."""
    rng = np.random.default_rng(7)
    shape = (2, 9, 11, 13) if multichannel else (9, 11, 13)
    info = np.iinfo(dtype) if dtype != "float32" else None
    if info is not None:
        arr = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    else:
        arr = (rng.normal(size=shape) * 1000).astype(dtype)
    return Volume(
        data=arr,
        spacing=(0.14, 0.208, 0.4),
        origin=(-3.71, 5.23, 1.93),
        direction=Rotation.from_euler("xyz", [20, -35, 50], degrees=True).as_matrix(),
        channel_names=("water", "fat") if multichannel else (),
    )


@pytest.fixture(scope="session")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, bool], Path]:
    """Every kind of test volume written once in every format."""
    root = tmp_path_factory.mktemp("roundtrip")
    out = {}
    for dtype, mc in KINDS:
        vol = make_volume(dtype, mc)
        for fmt, (suffix, opts) in FORMATS.items():
            path = root / f"{dtype}-{int(mc)}-{fmt}{suffix}"
            write_volume(vol, path, **opts)
            out[(fmt, dtype, mc)] = path
    return out


def assert_valid_ngff(path: Path, version: str, want: Volume) -> None:
    """ome-zarr-models accepts the store; ngff-zarr reads level 0's scale and translation."""
    import ngff_zarr
    import zarr

    if version == "0.4":
        from ome_zarr_models.v04.image import Image
    else:
        from ome_zarr_models.v05.image import Image  # type: ignore[assignment]
    Image.from_zarr(zarr.open_group(str(path), mode="r"))
    level0 = ngff_zarr.from_ngff_zarr(str(path)).images[0]
    np.testing.assert_allclose([level0.scale[a] for a in "xyz"], want.spacing, atol=1e-12)
    np.testing.assert_allclose([level0.translation[a] for a in "xyz"], want.origin, atol=1e-12)


def assert_same(got: Volume, want: Volume) -> None:
    assert got.data.shape == want.data.shape
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.compute(), want.compute())
    np.testing.assert_allclose(got.spacing, want.spacing, rtol=0, atol=TOL)
    np.testing.assert_allclose(got.origin, want.origin, rtol=0, atol=TOL)
    np.testing.assert_allclose(got.direction, want.direction, rtol=0, atol=TOL)


@pytest.mark.parametrize(("dtype", "multichannel"), KINDS)
@pytest.mark.parametrize("dst", list(FORMATS))
@pytest.mark.parametrize("src", list(FORMATS))
def test_format_pair_round_trip(
    src: str,
    dst: str,
    dtype: str,
    multichannel: bool,
    written: dict[tuple[str, str, bool], Path],
    tmp_path: Path,
) -> None:
    original = make_volume(dtype, multichannel)
    first = read_volume(written[(src, dtype, multichannel)])
    assert_same(first, original)
    suffix, opts = FORMATS[dst]
    out = tmp_path / f"out{suffix}"
    write_volume(first, out, **opts)
    second = read_volume(out)
    assert_same(second, original)
    if suffix == ".zarr":
        assert_valid_ngff(out, opts["ngff_version"], original)
    if multichannel and src in KEEP_CHANNEL_NAMES and dst in KEEP_CHANNEL_NAMES:
        assert second.channel_names == ("water", "fat")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary left behind"
