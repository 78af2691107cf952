"""The synthetic CT/MRI phantom: API contract, truth consistency, contrasts, study files."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from click.testing import CliRunner

from mousereg.cli import main
from mousereg.errors import InputError
from mousereg.io import read_volume
from mousereg.phantom import PhantomPair, make_pair
from mousereg.phantom.holder import DEFAULT_DESIGN, HolderDesign
from mousereg.phantom.motion import axis_rotations
from mousereg.phantom.physics import hounsfield, mu511
from mousereg.phantom.quality import (
    PUBLISHED_RANGES_ML,
    hole_cnr,
    landmark_agreement,
    organ_volumes,
    volumes_in_range,
)
from mousereg.phantom.study import MANIFEST_COLUMNS
from mousereg.phantom.transforms import apply

REPO = Path(__file__).resolve().parents[1]


def _median_in(image: np.ndarray, labels: np.ndarray, value: int) -> float:
    return float(np.median(image[labels == value]))


# ---- API contract -------------------------------------------------------------------------------
def test_pair_matches_the_api_contract(phantom_pair: PhantomPair) -> None:
    p = phantom_pair
    assert p.ct.spacing == pytest.approx((0.28, 0.28, 0.28))
    assert p.ct.dtype == np.float32 and p.mu511.dtype == np.float32
    assert p.mr.channel_names == ("water", "fat")
    assert p.mr.shape == (22, 132, 192)
    assert np.array(p.mr.spacing) * np.array(p.mr.size) == pytest.approx((80.0, 55.0, 17.6))
    assert p.ct_labels.dtype == np.uint8 and p.mr_labels.same_grid(p.mr)
    assert p.ct_labels.same_grid(p.ct) and p.mu511.same_grid(p.ct)
    assert p.ct_labels.labels is not None and p.ct_labels.labels.value_of("liver") == 11
    assert p.kvp == 55
    assert p.holes_ct.shape == p.holes_mr.shape == (len(p.holes_in_mr), 3)
    lm = p.landmarks
    assert lm["ct"].shape == lm["mr"].shape == (len(lm["name"]), 3) == (len(lm["label"]), 3)


def test_full_resolution_geometry_matches_the_dataset() -> None:
    from mousereg.phantom.pair import CT_SPACING, MR_FOV, MR_MATRIX

    assert CT_SPACING["full"] == 0.14
    assert MR_MATRIX["full"] == (384, 264, 44)
    assert MR_FOV / np.array(MR_MATRIX["full"]) == pytest.approx((0.2083, 0.2083, 0.4), abs=1e-3)


def test_ct_spacing_is_configurable() -> None:
    p = make_pair(seed=5, ct_spacing=0.7)
    assert p.ct.spacing == pytest.approx((0.7, 0.7, 0.7))
    assert p.ct_labels.same_grid(p.ct) and p.mu511.same_grid(p.ct)
    assert apply(p.transform, p.holes_mr) == pytest.approx(p.holes_ct, abs=1e-6)


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(InputError, match="resolution"):
        make_pair(resolution="huge")
    with pytest.raises(InputError, match="frame"):
        make_pair(frame=24)
    with pytest.raises(InputError, match="holes_outside_mr"):
        make_pair(holes_outside_mr=7)
    with pytest.raises(InputError, match="ct_spacing"):
        make_pair(ct_spacing=0.0)


# ---- truth consistency --------------------------------------------------------------------------
def test_transforms_map_holes_exactly(phantom_pair: PhantomPair) -> None:
    p = phantom_pair
    assert apply(p.transform, p.holes_mr) == pytest.approx(p.holes_ct, abs=1e-6)
    assert apply(p.inverse, p.holes_ct) == pytest.approx(p.holes_mr, abs=1e-6)
    assert apply(p.rigid, p.holes_mr) == pytest.approx(p.holes_ct, abs=1e-6)


def test_soft_tissue_moves_at_most_one_millimetre(phantom_pair: PhantomPair) -> None:
    p = phantom_pair
    mr = p.landmarks["mr"]
    shift = np.linalg.norm(apply(p.transform, mr) - apply(p.rigid, mr), axis=1)
    assert shift.max() <= 1.0 + 1e-6
    assert shift.max() > 0.05  # the tissue does move
    assert 0.0 < p.info["deformation_peak_mm"] <= 1.0


def test_inverse_undoes_transform(phantom_pair: PhantomPair) -> None:
    p = phantom_pair
    assert apply(p.transform, p.landmarks["mr"]) == pytest.approx(p.landmarks["ct"], abs=1e-4)
    back = apply(p.inverse, apply(p.transform, p.landmarks["mr"]))
    assert back == pytest.approx(p.landmarks["mr"], abs=0.05)


def test_rigid_part_is_an_axis_rotation_plus_a_small_tilt(phantom_pair: PhantomPair) -> None:
    p = phantom_pair
    m = np.asarray(p.rigid.GetMatrix()).reshape(3, 3)
    frame = axis_rotations()[p.info["frame"]]
    tilt = np.degrees(np.arccos(np.clip((np.trace(frame @ m) - 1) / 2, -1, 1)))
    assert 0 < tilt <= 2.5 + 1e-6
    assert np.linalg.norm(p.info["mr_offset_mm"]) <= 100.0


def test_axis_rotations_are_the_24_proper_ones() -> None:
    rots = axis_rotations()
    assert len(rots) == 24 and len({r.tobytes() for r in rots}) == 24
    assert all(np.isclose(np.linalg.det(r), 1.0) for r in rots)
    assert np.array_equal(rots[0], np.eye(3))


def test_landmarks_agree_between_ct_and_mr_labels(phantom_pair: PhantomPair) -> None:
    assert len(phantom_pair.landmarks["label"]) >= 60
    assert len(set(phantom_pair.landmarks["label"].tolist())) >= 12
    assert landmark_agreement(phantom_pair) >= 0.99


# ---- holes --------------------------------------------------------------------------------------
def test_holes_visible_in_ct_and_fat_invisible_in_water(phantom_pair: PhantomPair) -> None:
    cnr = hole_cnr(phantom_pair)
    inside = phantom_pair.holes_in_mr
    assert cnr["ct"].min() >= 5.0
    assert cnr["fat"][inside].min() >= 5.0
    assert cnr["water"][inside].max() < 2.0  # vaseline and plastic: both no water signal


def test_holes_outside_the_slab_are_counted(phantom_pair: PhantomPair) -> None:
    assert int(np.sum(~phantom_pair.holes_in_mr)) == 2
    assert len(phantom_pair.holes_in_mr) == 10


def test_hole_layout_sizes_and_asymmetry() -> None:
    holes = DEFAULT_DESIGN.holes
    assert 8 <= len(holes) <= 12
    assert all(0.8 <= h.diameter <= 2.0 and 1.5 <= h.length <= 5.0 for h in holes)
    assert len({h.axis for h in holes}) >= 4
    c = DEFAULT_DESIGN.hole_array()
    # no reflection or rotation about the layout's centroid maps it onto itself: sorted
    # pairwise distances from each hole differ between holes
    d = np.linalg.norm(c[:, None] - c[None], axis=-1)
    signatures = {tuple(np.round(np.sort(row), 1)) for row in d}
    assert len(signatures) == len(holes)


def test_holder_profile_yaml_matches_the_code() -> None:
    design = HolderDesign.from_yaml(REPO / "pipelines" / "holders" / "default.yaml")
    assert design == DEFAULT_DESIGN


# ---- contrasts ----------------------------------------------------------------------------------
def test_ct_numbers_and_mu_follow_the_physical_model(phantom_pair: PhantomPair) -> None:
    ct = phantom_pair.ct.compute()
    mu = phantom_pair.mu511.compute()
    lab = phantom_pair.ct_labels.compute()
    assert _median_in(ct, lab, 11) == pytest.approx(float(hounsfield(1.05, 7.55)), abs=25)
    assert -750 < _median_in(ct, lab, 12) < -550  # lung
    assert -220 < _median_in(ct, lab, 6) < -100  # fat
    assert _median_in(ct, lab, 2) > 400  # bone
    assert _median_in(mu, lab, 11) == pytest.approx(float(mu511(1.05)), abs=0.002)
    assert _median_in(mu, lab, 12) == pytest.approx(0.0317, abs=0.004)
    assert _median_in(mu, lab, 6) == pytest.approx(0.0913, abs=0.002)
    assert float(mu[0, 0, 0]) == pytest.approx(1e-4, abs=5e-5)  # air


def test_mr_t2w_contrasts(phantom_pair: PhantomPair) -> None:
    water = phantom_pair.mr.channel("water").compute()
    fat = phantom_pair.mr.channel("fat").compute()
    lab = phantom_pair.mr_labels.compute()
    liver, kidney = _median_in(water, lab, 11), _median_in(water, lab, 10)
    assert liver < kidney < _median_in(water, lab, 1)  # liver dark, bladder brightest
    assert _median_in(fat, lab, 17) > 5 * _median_in(fat, lab, 11)  # visceral fat in fat image
    assert _median_in(water, lab, 17) < liver


def test_organ_volumes_within_published_ranges(phantom_pair: PhantomPair) -> None:
    weight = phantom_pair.info["subject"]["weight_g"]
    vols = organ_volumes(phantom_pair.ct_labels)
    ok = volumes_in_range(vols, weight)
    assert set(ok) == set(PUBLISHED_RANGES_ML)
    assert all(ok.values()), {k: round(vols[k], 3) for k in ok}


# ---- study on disk ------------------------------------------------------------------------------
def _rows(manifest: Path) -> list[dict[str, str]]:
    with manifest.open() as f:
        return list(csv.DictReader(f))


def test_study_manifest_and_truth_files(phantom_study: Path) -> None:
    rows = _rows(phantom_study)
    assert len(rows) == 4 and tuple(rows[0]) == MANIFEST_COLUMNS
    root = phantom_study.parent
    weights = []
    for row in rows:
        for col in MANIFEST_COLUMNS[3:]:
            assert (root / row[col]).exists()
        truth = root / row["truth"]
        t = sitk.ReadTransform(str(truth / "transform.h5"))
        with (truth / "holes.csv").open() as f:
            holes = list(csv.DictReader(f))
        ct = np.array([[float(h[f"ct_{a}"]) for a in "xyz"] for h in holes])
        mr = np.array([[float(h[f"mr_{a}"]) for a in "xyz"] for h in holes])
        assert apply(t, mr) == pytest.approx(ct, abs=1e-4)
        info = json.loads((truth / "truth.json").read_text())
        weights.append(info["subject"]["weight_g"])
        labels = read_volume(root / row["mr_labels"])
        water = read_volume(root / row["mr_water"])
        assert labels.same_grid(water, tol=1e-4)
    assert min(weights) >= 20.0 and max(weights) <= 30.0
    assert len({round(w, 2) for w in weights}) == 4  # subjects differ


def test_same_seed_gives_byte_identical_files(phantom_study: Path, tmp_path: Path) -> None:
    """The CLI with the fixture's seed rewrites subject 1 with the same bytes."""
    result = CliRunner().invoke(
        main, ["phantom", str(tmp_path), "--subjects", "1", "--seed", "0", "--resolution", "test"]
    )
    assert result.exit_code == 0, result.output
    first = phantom_study.parent / "sub-01"
    second = tmp_path / "sub-01"
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 12
    for rel in files:
        a = hashlib.sha256((first / rel).read_bytes()).hexdigest()
        b = hashlib.sha256((second / rel).read_bytes()).hexdigest()
        assert a == b, rel


def test_study_in_ome_zarr_reads_back(tmp_path: Path, phantom_study: Path) -> None:
    from mousereg.phantom import write_study

    manifest = write_study(tmp_path, subjects=1, seed=0, resolution="test", fmt="zarr")
    row = _rows(manifest)[0]
    assert row["ct"].endswith(".zarr")
    zarr_labels = read_volume(tmp_path / row["mr_labels"])
    nifti_labels = read_volume(phantom_study.parent / _rows(phantom_study)[0]["mr_labels"])
    assert zarr_labels.same_grid(nifti_labels, tol=1e-4)
    assert np.array_equal(zarr_labels.compute(), nifti_labels.compute())


def test_cli_phantom_rejects_a_bad_resolution(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["phantom", str(tmp_path), "--resolution", "huge"])
    assert result.exit_code == 2


# ---- full resolution ----------------------------------------------------------------------------
@pytest.mark.slow
def test_full_resolution_pair() -> None:
    p = make_pair(seed=3, resolution="full", spurious_blobs=2)
    assert p.ct.spacing == pytest.approx((0.14, 0.14, 0.14))
    assert p.mr.shape == (44, 264, 384)
    assert landmark_agreement(p) >= 0.99
    cnr = hole_cnr(p)
    assert cnr["ct"].min() >= 5.0 and np.nanmin(cnr["fat"]) >= 5.0
    assert np.nanmax(cnr["water"]) < 2.0
