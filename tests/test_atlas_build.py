"""A reduced atlas rebuilt from the 4-subject phantom study, checked against ground truth."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mousereg.atlas import BuildParameters, build_atlas_from_manifest, check_atlas, load_atlas
from mousereg.atlas import format as fmt
from mousereg.atlas.build import build_atlas
from mousereg.atlas.from_manifest import _prepare, subject_tables
from mousereg.atlas.register import CoarseRegistration, default_register_pair
from mousereg.atlas.segment import read_target, segment_multi, segment_single
from mousereg.atlas.subjects import read_subjects
from mousereg.errors import InputError, RegistrationError
from mousereg.io import read_volume
from mousereg.labels import LabelTable

PARAMS = BuildParameters(iterations=2, spacing=0.8, registration_spacing=1.2)
LIVER, KIDNEY, LUNG, HEART = 11, 10, 12, 8


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))


@pytest.fixture(scope="module")
def atlas_dir(phantom_study: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("atlas") / "reduced"
    build_atlas_from_manifest(phantom_study, out, PARAMS, workers=2)
    return out


@pytest.fixture(scope="module")
def stacks(phantom_study: Path) -> list:
    subjects = read_subjects(phantom_study)
    table = subject_tables(subjects)
    return [_prepare(s, PARAMS.spacing, table) for s in subjects]


def test_atlas_is_valid_and_complete(atlas_dir: Path) -> None:
    atlas = load_atlas(atlas_dir)
    assert check_atlas(atlas_dir) == []
    assert len(atlas.subject_ids) == 4 and atlas.meta["excluded"] == []
    history = atlas.meta["history"]
    assert [h["iteration"] for h in history] == [0, 1, 2]
    # the deformable iterations sharpen the affine mean template
    assert history[1]["sharpness"] > 1.02 * history[0]["sharpness"]
    assert atlas.templates.n_channels == 4 and not (atlas_dir / fmt.STATE_DIR).exists()


def test_max_probability_labels_match_every_subject(atlas_dir: Path) -> None:
    atlas = load_atlas(atlas_dir)
    labels = atlas.labels.compute()
    for sid in atlas.subject_ids:
        mr = atlas.subject_labels(sid).compute()[1]
        for organ in (LIVER, LUNG, HEART):
            assert _dice(labels == organ, mr == organ) > 0.75, (sid, organ)


def test_ct_and_mu_templates_are_physical(atlas_dir: Path) -> None:
    atlas = load_atlas(atlas_dir)
    ct, _, _, mu = atlas.templates.compute()
    labels = atlas.labels.compute()
    liver, lung = labels == LIVER, labels == LUNG
    assert 0.0 < float(np.median(ct[liver])) < 150.0  # soft tissue, HU
    assert float(np.median(ct[lung])) < -300.0  # aerated lung
    assert 0.09 < float(np.median(mu[liver])) < 0.11  # cm^-1 at 511 keV
    assert float(np.median(mu[lung])) < 0.06


def test_template_is_unbiased(atlas_dir: Path) -> None:
    last = load_atlas(atlas_dir).meta["history"][-1]
    # the mean subject->template displacement is a small fraction of a subject's own
    assert last["residual_displacement_mm"] < 0.1 * last["subject_displacement_mm"]


def test_subject_transform_maps_template_to_subject_mri(
    atlas_dir: Path, phantom_study: Path
) -> None:
    atlas = load_atlas(atlas_dir)
    sid = atlas.subject_ids[1]
    t = atlas.subject_transform(sid)
    labels = atlas.subject_labels(sid).compute()[1]
    grid = atlas.grid
    idx = np.argwhere(labels == LIVER)[:, ::-1].astype(float)
    centre_template = grid.index_to_physical(idx).mean(0)
    mr = read_volume(phantom_study.parent / sid.split("_")[0] / "mr_labels.nii.gz")
    arr = mr.compute()
    centre_subject = mr.index_to_physical(np.argwhere(arr == LIVER)[:, ::-1].astype(float)).mean(0)
    mapped = t.transform_points(centre_template[None])[0]
    assert np.linalg.norm(mapped - centre_subject) < 1.5


def test_segment_a_subject_mri(atlas_dir: Path, phantom_study: Path) -> None:
    atlas = load_atlas(atlas_dir)
    folder = phantom_study.parent / "sub-02"
    target = read_target([folder / "mr_water.nii.gz", folder / "mr_fat.nii.gz"], 0.8)
    reg = CoarseRegistration(default_register_pair, 1.2)
    pred = segment_single(atlas, target, reg).compute()
    truth = read_volume(folder / "mr_labels.nii.gz").compute()
    assert pred.shape == truth.shape
    assert _dice(pred == LIVER, truth == LIVER) > 0.8
    assert _dice(pred == LUNG, truth == LUNG) > 0.8


@pytest.mark.parametrize("fusion", ["majority", "weighted"])
def test_multi_atlas_segments_a_subject_mri(
    atlas_dir: Path, phantom_study: Path, fusion: str
) -> None:
    atlas = load_atlas(atlas_dir)
    folder = phantom_study.parent / "sub-03"
    target = read_target([folder / "mr_water.nii.gz", folder / "mr_fat.nii.gz"], 0.8)
    reg = CoarseRegistration(default_register_pair, 1.2)
    pred = segment_multi(atlas, target, reg, fusion, workers=2).compute()
    truth = read_volume(folder / "mr_labels.nii.gz").compute()
    assert pred.shape == truth.shape
    assert _dice(pred == LIVER, truth == LIVER) > 0.8
    assert _dice(pred == LUNG, truth == LUNG) > 0.8


class _Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, fixed, moving, mode):  # type: ignore[no-untyped-def]
        self.calls += 1
        return default_register_pair(fixed, moving, mode)


def test_resume_continues_after_the_last_finished_iteration(stacks: list, tmp_path: Path) -> None:
    one = BuildParameters(iterations=1, spacing=0.8, registration_spacing=1.2)
    first, _ = build_atlas(stacks[:3], tmp_path, one, fingerprint="fp")
    (tmp_path / fmt.STATE_DIR / ".iteration-002.tmp-deadbeef.npz").write_bytes(b"half")
    counting = _Counting()
    two = BuildParameters(iterations=2, spacing=0.8, registration_spacing=1.2)
    second, _ = build_atlas(stacks[:3], tmp_path, two, register_pair=counting, fingerprint="fp")
    assert counting.calls == 3  # only iteration 2: no initial affine, no iteration 1
    assert second.history[:2] == first.history[:2] and second.iteration == 2


def test_failed_subject_is_left_out_and_recorded(stacks: list, tmp_path: Path) -> None:
    import dataclasses

    rng = np.random.default_rng(0)
    noise = dataclasses.replace(
        stacks[3], id="noise", images=rng.random(stacks[3].images.shape).astype(np.float32)
    )
    params = BuildParameters(iterations=1, spacing=0.8, registration_spacing=1.2)
    state, _ = build_atlas([*stacks[:3], noise], tmp_path, params)
    assert [e["id"] for e in state.excluded] == ["noise"]
    assert "registration failed" in state.excluded[0]["reason"]
    assert sorted(state.fields) == sorted(s.id for s in stacks[:3])
    strict = dataclasses.replace(params, min_subjects=4)
    with pytest.raises(RegistrationError, match="at least 4"):
        build_atlas([*stacks[:3], noise], tmp_path / "strict", strict)


def _copy_manifest(phantom_study: Path, tmp_path: Path) -> Path:
    rows = list(csv.DictReader(phantom_study.open()))
    base = phantom_study.parent
    for r in rows:
        for c in ("ct", "mr_water", "mr_fat", "ct_labels", "mr_labels", "truth"):
            r[c] = str(base / r[c])
    out = tmp_path / "manifest.csv"
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out


def test_different_label_tables_are_refused(phantom_study: Path, tmp_path: Path) -> None:
    manifest = _copy_manifest(phantom_study, tmp_path)
    rows = list(csv.DictReader(manifest.open()))
    moved = tmp_path / "ct_labels.nii.gz"
    shutil.copy(rows[2]["ct_labels"], moved)
    table = LabelTable.default().to_json()
    table[9]["name"] = "kidneys"
    (tmp_path / "ct_labels.json").write_text(json.dumps({"labels": table}))
    rows[2]["ct_labels"] = str(moved)
    with manifest.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(InputError, match=r"label table differs .* value\(s\) \[10\]"):
        subject_tables(read_subjects(manifest))


def test_missing_file_names_the_subject_and_column(phantom_study: Path, tmp_path: Path) -> None:
    manifest = _copy_manifest(phantom_study, tmp_path)
    text = manifest.read_text().replace("sub-03/mr_fat.nii.gz", "sub-03/mr_fat_missing.nii.gz")
    manifest.write_text(text)
    with pytest.raises(InputError, match=r"sub-03.*mr_fat file .*not found"):
        read_subjects(manifest)


def test_validators_catch_a_changed_atlas(atlas_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(atlas_dir, broken)
    doc = json.loads((broken / fmt.ATLAS_JSON).read_text())
    chunk = next(p for p in (broken / fmt.LABELS).rglob("*") if p.is_file() and p.name[0] != ".")
    chunk.write_bytes(chunk.read_bytes() + b"x")
    problems = check_atlas(broken)
    assert any("checksum mismatch" in p for p in problems)
    del doc["strain"]
    (broken / fmt.ATLAS_JSON).write_text(json.dumps(doc))
    assert any("'strain' missing" in p for p in check_atlas(broken))
    with pytest.raises(InputError, match="not a valid atlas"):
        load_atlas(broken)
