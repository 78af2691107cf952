"""Fiducial registration end to end on phantoms (seeds not used for tuning), test resolution."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from click.testing import CliRunner

from mousereg.cli import main
from mousereg.errors import RegistrationError
from mousereg.fiducials.detect import detect
from mousereg.fiducials.markers import Markers, read_markers
from mousereg.io import write_volume
from mousereg.phantom import PhantomPair, make_pair
from mousereg.phantom.motion import axis_rotations, small_rotation
from mousereg.registration import register
from mousereg.registration.fiducial import fiducial_registration
from mousereg.volume import Volume

#: At 280 µm (CT) / 417×417×800 µm (MRI) voxels the phantom's painted holes are off their design
#: centres by up to ~0.1 mm; the registration error at the holes stays below this.
TEST_RES_TRE_MAX_MM = 0.3


@pytest.fixture(scope="module")
def pair_busy() -> PhantomPair:
    """2 holes outside the MRI slab and 3 vaseline smears on the holder."""
    return make_pair(seed=121, resolution="test", holes_outside_mr=2, spurious_blobs=3)


@pytest.fixture(scope="module")
def pair_clean() -> PhantomPair:
    """Every filled hole inside the MRI slab, no smears."""
    return make_pair(seed=122, resolution="test", holes_outside_mr=0, spurious_blobs=0)


@pytest.fixture(scope="module")
def ct_markers(pair_busy: PhantomPair, pair_clean: PhantomPair) -> dict[int, Markers]:
    return {121: detect(pair_busy.ct).markers, 122: detect(pair_clean.ct).markers}


@pytest.fixture(scope="module")
def mr_markers_clean(pair_clean: PhantomPair) -> Markers:
    return detect(pair_clean.mr).markers


def _truth(pair: PhantomPair) -> Callable[[np.ndarray], np.ndarray]:
    def fn(points: np.ndarray) -> np.ndarray:
        return np.array([pair.transform.TransformPoint(tuple(map(float, p))) for p in points])

    return fn


def _reframe(vol: Volume, rot: np.ndarray, offset: np.ndarray) -> Volume:
    """The same voxels in another scanner frame: physical point p becomes rot @ p + offset."""
    return dataclasses.replace(
        vol, direction=rot @ vol.direction, origin=tuple(rot @ np.asarray(vol.origin) + offset)
    )


def _check_pairs(res: object, holes_fixed: np.ndarray, holes_moving: np.ndarray) -> None:
    """Every matched pair joins the same physical hole (or the same smear) in both scans."""
    fixed = res.fixed_markers.points  # type: ignore[attr-defined]
    moving = res.moving_markers.points  # type: ignore[attr-defined]
    hf = np.linalg.norm(fixed[:, None] - holes_fixed[None], axis=-1)
    hm = np.linalg.norm(moving[:, None] - holes_moving[None], axis=-1)
    for i in range(len(fixed)):
        assert hf[i].argmin() == hm[i].argmin(), f"pair {i} joins two different holes"
        assert hf[i].min() < 0.5 and hm[i].min() < 0.5  # holes are > 5 mm apart


@pytest.mark.parametrize("frame", range(24))
@pytest.mark.parametrize("seed", [121, 122])
def test_every_frame_is_registered_correctly(
    frame: int,
    seed: int,
    pair_busy: PhantomPair,
    pair_clean: PhantomPair,
    ct_markers: dict[int, Markers],
    mr_markers_clean: Markers,
) -> None:
    """All 24 axis-aligned frames with a tilt and an offset up to 100 mm. Seed 121 (2 holes
    outside the slab, 3 smears) re-detects the MRI in every frame; seed 122 (no extra holes or
    smears) moves its MRI markers with the frame (detection is frame-equivariant, see
    test_fiducials_detect.test_any_direction_matrix) to test matching and fitting alone."""
    pair = pair_busy if seed == 121 else pair_clean
    rng = np.random.default_rng(1000 * seed + frame)
    rot = axis_rotations()[frame] @ small_rotation(rng, 2.5)
    offset = rng.normal(size=3)
    offset *= rng.uniform(0.0, 100.0) / np.linalg.norm(offset)
    mr = _reframe(pair.mr, rot, offset)

    def truth(points: np.ndarray) -> np.ndarray:
        return _truth(pair)((points - offset) @ rot)

    holes_mr = pair.holes_mr @ rot.T + offset
    fixed_points = None
    if seed == 122:
        moved = mr_markers_clean.points @ rot.T + offset
        fixed_points = dataclasses.replace(mr_markers_clean, points=moved)
    res = fiducial_registration(
        mr,
        pair.ct,
        fixed_points=fixed_points,
        moving_points=ct_markers[seed],
        truth=truth,
        truth_points=holes_mr,
        pair_by_order=False,
    )
    _check_pairs(res, holes_mr, pair.holes_ct)
    assert res.report["used_pairs"] >= int(pair.holes_in_mr.sum()) - 1
    assert res.report["truth"]["measured_tre_max_mm"] < TEST_RES_TRE_MAX_MM


def test_predicted_tre_agrees_with_measured(pair_busy: PhantomPair) -> None:
    res = fiducial_registration(
        pair_busy.mr, pair_busy.ct, truth=_truth(pair_busy), truth_points=pair_busy.holes_mr
    )
    rep = res.report
    assert 0.5 <= rep["truth"]["ratio_predicted_over_measured"] <= 2.0
    assert 0.5 <= rep["held_out"]["ratio_predicted_over_measured"] <= 2.0
    tre = rep["predicted_tre"]
    assert 0 < tre["at_body_centroid_mm"] <= tre["p95_over_body_mm"] < 0.3
    assert rep["fle"]["from_residuals_mm"] == pytest.approx(
        rep["fre_rms_mm"] / np.sqrt(1 - 2 / rep["used_pairs"]), rel=1e-3
    )


@pytest.fixture(scope="module")
def study_files(pair_busy: PhantomPair, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fid_files")
    write_volume(pair_busy.mr.channel("water"), d / "mr_water.nii.gz")
    write_volume(pair_busy.mr.channel("fat"), d / "mr_fat.nii.gz")
    write_volume(pair_busy.ct, d / "ct.nii.gz")
    return d


def test_register_cli_writes_transform_report_and_markers(
    study_files: Path, pair_busy: PhantomPair, tmp_path: Path
) -> None:
    out = tmp_path / "reg"
    args = ["register", "--fixed", str(study_files / "mr_water.nii.gz"), "--fixed"]
    args += [str(study_files / "mr_fat.nii.gz"), "--moving", str(study_files / "ct.nii.gz")]
    result = CliRunner().invoke(main, [*args, "-o", str(out), "--mode", "fiducial"])
    assert result.exit_code == 0, result.output
    t = sitk.ReadTransform(str(out / "transform.h5"))
    mapped = np.array([t.TransformPoint(tuple(map(float, p))) for p in pair_busy.holes_mr])
    assert np.linalg.norm(mapped - pair_busy.holes_ct, axis=1).max() < TEST_RES_TRE_MAX_MM
    inv = sitk.ReadTransform(str(out / "inverse.h5"))
    back = np.array([inv.TransformPoint(tuple(p)) for p in mapped])
    assert np.allclose(back, pair_busy.holes_mr, atol=1e-6)
    report = json.loads((out / "report.json").read_text())
    fid = report["fiducial"]
    assert fid["holes_found"]["moving"] == len(pair_busy.holes_ct)
    assert fid["used_pairs"] >= int(pair_busy.holes_in_mr.sum()) - 1
    assert set(fid["seconds"]) >= {"detect_fixed", "detect_moving", "match", "fit", "tre_map"}
    assert fid["predicted_tre"]["p95_over_body_mm"] > 0
    markers = read_markers(out / "markers_moving.mrk.json")
    assert len(markers) == len(pair_busy.holes_ct)


def test_reverse_order_gives_the_inverse(pair_busy: PhantomPair, tmp_path: Path) -> None:
    rep = register(pair_busy.ct, pair_busy.mr, tmp_path / "rev", mode="fiducial")
    t = sitk.ReadTransform(str(tmp_path / "rev" / "transform.h5"))
    mapped = np.array([t.TransformPoint(tuple(map(float, p))) for p in pair_busy.holes_ct])
    assert np.linalg.norm(mapped - pair_busy.holes_mr, axis=1).max() < TEST_RES_TRE_MAX_MM
    assert rep["fiducial"]["fixed"]["modality"] == "CT"


def test_manual_points_from_csv(pair_busy: PhantomPair, tmp_path: Path) -> None:
    sel = np.flatnonzero(pair_busy.holes_in_mr)
    f, m = tmp_path / "f.csv", tmp_path / "m.mrk.json"
    f.write_text("x,y,z\n" + "\n".join(",".join(map(str, p)) for p in pair_busy.holes_mr[sel]))
    from mousereg.fiducials.markers import write_markers

    write_markers(Markers.from_points(pair_busy.holes_ct[sel]), m)
    runner = CliRunner()
    out = tmp_path / "manual"
    args = ["register", "--fixed", "unused", "--moving", "unused", "-o", str(out)]
    args += ["--mode", "fiducial", "--fixed-points", str(f), "--moving-points", str(m)]
    result = runner.invoke(main, args)
    # the images must exist even with points given by hand
    assert result.exit_code == 2 and "unused" in result.output
    rep = register(
        pair_busy.mr,
        pair_busy.ct,
        out,
        mode="fiducial",
        fixed_points=read_markers(f),
        moving_points=read_markers(m),
    )
    assert rep["fiducial"]["fre_rms_mm"] < 1e-3
    assert rep["fiducial"]["matched_pairs"] == len(sel)


def test_fiducials_detect_cli(study_files: Path, pair_busy: PhantomPair, tmp_path: Path) -> None:
    out = tmp_path / "mr_markers.json"
    args = ["fiducials", "detect", str(study_files / "mr_water.nii.gz")]
    result = CliRunner().invoke(main, [*args, str(study_files / "mr_fat.nii.gz"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    slicer = read_markers(tmp_path / "mr_markers.mrk.json")
    assert doc["count"] == len(slicer) >= int(pair_busy.holes_in_mr.sum())
    inside = pair_busy.holes_mr[pair_busy.holes_in_mr]
    err = np.linalg.norm(inside[:, None] - slicer.points[None], axis=-1).min(axis=1)
    assert err.max() < 0.25
    water_only = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "w.json")])
    assert water_only.exit_code == 2
    assert "vaseline is invisible in water images" in water_only.output


# ---- bad input ------------------------------------------------------------------------------
def test_mri_without_fat_channel_exits_2(study_files: Path, tmp_path: Path) -> None:
    args = ["register", "--fixed", str(study_files / "mr_water.nii.gz"), "--moving"]
    args += [str(study_files / "ct.nii.gz"), "-o", str(tmp_path / "x"), "--mode", "fiducial"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "vaseline is invisible in water images" in result.output
    assert "fat or in-phase" in result.output


def test_no_holes_exits_2_with_counts(pair_busy: PhantomPair, tmp_path: Path) -> None:
    empty = pair_busy.ct.with_array(np.full(pair_busy.ct.shape, -1000.0, np.float32))
    with pytest.raises(RegistrationError, match=r"0 in the moving scan.*by hand"):
        register(pair_busy.mr, empty, tmp_path / "none", mode="fiducial")


@pytest.mark.parametrize("mode", ["rigid", "deformable"])
def test_a_refused_fiducial_fit_stops_intensity_modes_too(
    pair_busy: PhantomPair, tmp_path: Path, mode: str
) -> None:
    """No silent fall-back to an intensity registration from no start (it cannot find 90° turns)."""
    empty = pair_busy.ct.with_array(np.full(pair_busy.ct.shape, -1000.0, np.float32))
    with pytest.raises(RegistrationError, match=r"0 in the moving scan.*by hand"):
        register(pair_busy.mr, empty, tmp_path / mode, mode=mode)
    assert not (tmp_path / mode / "transform.h5").exists()


def test_one_hole_exits_2_with_counts(pair_busy: PhantomPair, tmp_path: Path) -> None:
    centre = np.rint(pair_busy.ct.physical_to_index(pair_busy.holes_ct[0])).astype(int)
    half = 16  # voxels: 4.5 mm around one hole
    sl = tuple(slice(max(c - half, 0), c + half) for c in centre[::-1])
    one = pair_busy.ct.crop(sl)  # type: ignore[arg-type]
    assert len(detect(one).markers) == 1
    with pytest.raises(RegistrationError, match=r"and 1 in the moving scan"):
        register(pair_busy.mr, one, tmp_path / "one", mode="fiducial")


def test_collinear_points_are_refused(pair_busy: PhantomPair, tmp_path: Path) -> None:
    line = Markers.from_points(np.outer(np.arange(5.0), [4.0, 1.0, 0.5]))
    with pytest.raises(RegistrationError, match="lie on one line"):
        register(
            pair_busy.mr, pair_busy.ct, tmp_path / "c", mode="fiducial",
            fixed_points=line, moving_points=line,
        )  # fmt: skip


def test_two_different_animals_are_refused(pair_busy: PhantomPair, tmp_path: Path) -> None:
    """Markers of two holders (or two animals' mismatched scans) leave a large FRE."""
    rng = np.random.default_rng(5)
    sel = np.flatnonzero(pair_busy.holes_in_mr)
    other = pair_busy.holes_ct[sel] + rng.normal(0.0, 1.0, (len(sel), 3))
    with pytest.raises(RegistrationError, match=r"FRE\) of \d\.\d+ mm, above the 0.5 mm"):
        register(
            pair_busy.mr, pair_busy.ct, tmp_path / "d", mode="fiducial",
            fixed_points=Markers.from_points(pair_busy.holes_mr[sel]),
            moving_points=Markers.from_points(other),
        )  # fmt: skip


def test_scans_of_two_animals_are_refused_by_their_fre(tmp_path: Path) -> None:
    """Two preparations fill the holes differently: the FRE is above the consistency threshold,
    which the message gives with the FRE."""
    mr = make_pair(seed=4, resolution="test", frame=4).mr
    ct = make_pair(seed=3, resolution="test", frame=3).ct
    with pytest.raises(RegistrationError, match="two different animals") as err:
        register(mr, ct, tmp_path / "two", mode="fiducial")
    found = re.search(r"\(FRE\) of (\d\.\d+) mm, above the (\d\.\d+) mm threshold", str(err.value))
    assert found is not None
    fre, threshold = float(found[1]), float(found[2])
    assert fre > threshold >= 0.15
    assert not (tmp_path / "two" / "transform.h5").exists()


def test_same_preparation_passes_the_fre_consistency_threshold(pair_busy: PhantomPair) -> None:
    rep = fiducial_registration(pair_busy.mr, pair_busy.ct).report
    assert rep["fre_rms_mm"] < rep["fre_consistency_threshold_mm"]
    assert rep["fre_consistency_threshold_mm"] >= 0.15


def test_two_animals_with_identical_fillings_are_refused_by_their_bodies(tmp_path: Path) -> None:
    """Every hole full in both scans: the holes agree (small FRE), the bodies do not."""
    mr = make_pair(seed=4, resolution="test", frame=4, hole_fill=(1.0, 1.0)).mr
    ct = make_pair(seed=3, resolution="test", frame=3, hole_fill=(1.0, 1.0)).ct
    with pytest.raises(RegistrationError, match=r"consistent \(FRE .* two different animals"):
        register(mr, ct, tmp_path / "two", mode="fiducial")


def test_similar_bodies_of_two_animals_are_flagged() -> None:
    """Two animals of similar shape, holes filled alike, pass the refusal thresholds but are
    flagged in the report."""
    full = (1.0, 1.0)
    busy = make_pair(seed=121, resolution="test", spurious_blobs=3, hole_fill=full)
    clean = make_pair(seed=122, resolution="test", holes_outside_mr=0, hole_fill=full)
    rep = fiducial_registration(busy.mr, clean.ct).report
    assert rep["body_agreement"] < 0.975
    assert any("same animal" in w for w in rep["warnings"])
    same = fiducial_registration(busy.mr, busy.ct).report
    assert same["body_agreement"] >= 0.975
    assert same["warnings"] == []


def test_intensity_modes_need_the_intensity_stage(
    pair_busy: PhantomPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mousereg.registration import pipeline

    monkeypatch.setattr(pipeline, "INTENSITY_MODULE", "mousereg.registration._no_such_stage")
    with pytest.raises(RegistrationError, match="needs the intensity registration stage"):
        register(pair_busy.mr, pair_busy.ct, tmp_path / "r", mode="rigid")
    assert not (tmp_path / "r").exists()


def test_holder_profile_names_the_pairs(pair_busy: PhantomPair) -> None:
    from mousereg.fiducials.holder import load_holder

    res = fiducial_registration(pair_busy.mr, pair_busy.ct, holder=load_holder("default"))
    names = res.fixed_markers.names
    assert all(n.startswith("hole ") for n in names)
    ids = [int(n.split()[1]) for n in names]
    design = {int(i): k for k, i in enumerate(pair_busy.hole_ids)}
    for name_id, p in zip(ids, res.moving_markers.points, strict=True):
        assert np.linalg.norm(p - pair_busy.holes_ct[design[name_id]]) < 0.3


@pytest.mark.slow
def test_full_resolution_hole_tre() -> None:
    """140 µm CT and the full 384×264×44 MRI: hole TRE mean < 0.05 mm, max < 0.15 mm."""
    pair = make_pair(seed=131, resolution="full", holes_outside_mr=2, spurious_blobs=3)
    res = fiducial_registration(pair.mr, pair.ct, truth=_truth(pair), truth_points=pair.holes_mr)
    truth = res.report["truth"]
    assert truth["measured_tre_mean_mm"] < 0.05
    assert truth["measured_tre_max_mm"] < 0.15
    assert 0.5 <= truth["ratio_predicted_over_measured"] <= 2.0


@pytest.mark.slow
@pytest.mark.parametrize("frame", range(24))
def test_every_phantom_frame_rendered(frame: int) -> None:
    """The phantom rendered in each of its 24 frames (random tilt and offset, 2 holes outside
    the slab, 3 smears): detection in both scans, matching and fit are right every time."""
    pair = make_pair(
        seed=140 + frame, resolution="test", frame=frame, holes_outside_mr=2, spurious_blobs=3
    )
    res = fiducial_registration(pair.mr, pair.ct, truth=_truth(pair), truth_points=pair.holes_mr)
    _check_pairs(res, pair.holes_mr, pair.holes_ct)
    assert res.report["truth"]["measured_tre_max_mm"] < TEST_RES_TRE_MAX_MM
