"""Manifests: CSV validation naming the row, relative paths, and the ISA-Tab round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mousereg.batch import read_isatab, read_manifest, write_csv_manifest, write_isatab
from mousereg.batch.isatab import _read_table
from mousereg.errors import InputError


def _image(path: Path, spacing: tuple[float, float, float], shape=(6, 7, 8), labels=False) -> None:
    arr = np.zeros(shape, np.uint8) if labels else np.random.default_rng(0).random(shape)
    img = sitk.GetImageFromArray(arr.astype(np.uint8 if labels else np.float32))
    img.SetSpacing(spacing)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """Two mice at two time points with CT, Dixon MRI, labels and a truth folder."""
    lines = ["subject,timepoint,group,ct,mr_water,mr_fat,ct_labels,mr_labels,truth"]
    for s in ("m1", "m2"):
        for tp in ("0", "270"):
            d = tmp_path / "data" / f"{s}_{tp}"
            _image(d / "ct.nii.gz", (0.28, 0.28, 0.28))
            _image(d / "water.nii.gz", (0.416, 0.416, 0.8), shape=(5, 9, 11))
            _image(d / "fat.nii.gz", (0.416, 0.416, 0.8), shape=(5, 9, 11))
            _image(d / "ct_labels.nii.gz", (0.28, 0.28, 0.28), labels=True)
            _image(d / "mr_labels.nii.gz", (0.416, 0.416, 0.8), shape=(5, 9, 11), labels=True)
            (d / "truth").mkdir()
            rel = f"data/{s}_{tp}"
            lines.append(
                f"{s},{tp},{'a' if s == 'm1' else 'b'},{rel}/ct.nii.gz,{rel}/water.nii.gz,"
                f"{rel}/fat.nii.gz,{rel}/ct_labels.nii.gz,{rel}/mr_labels.nii.gz,{rel}/truth"
            )
    (tmp_path / "manifest.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "manifest.csv"


def test_csv_resolves_relative_paths_against_the_manifest_folder(study: Path) -> None:
    m = read_manifest(study)
    assert len(m) == 4
    r = m.rows[1]
    assert (r.subject, r.timepoint, r.group, r.name) == ("m1", "270", "a", "m1_t270")
    assert r.paths["ct"] == study.parent / "data" / "m1_270" / "ct.nii.gz"
    assert r.problems == ()


def test_missing_file_is_a_problem_of_that_row_only(study: Path) -> None:
    (study.parent / "data" / "m2_0" / "fat.nii.gz").unlink()
    m = read_manifest(study)
    bad = [r for r in m.rows if r.problems]
    assert [r.number for r in bad] == [3]
    assert "row 3 (subject m2, timepoint 0)" in bad[0].problems[0]
    assert "mr_fat" in bad[0].problems[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("subject,ct,colour\nm1,a.nii,red\n", "unknown column 'colour'"),
        (
            "subject,timepoint\nm1,0\nm2,0\nm1,0\n",
            "row 3 (subject m1, timepoint 0) duplicates row 1",
        ),
        ("subject,group\nm1,a\n,b\n", "row 2 has no subject"),
        ("group\na\n", "no 'subject' column"),
        ("subject,ct\nm1,a.nii,extra\n", "row 1 has more cells"),
    ],
)
def test_bad_tables_name_the_row_or_column(tmp_path: Path, text: str, expected: str) -> None:
    p = tmp_path / "m.csv"
    p.write_text(text)
    with pytest.raises(InputError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        read_manifest(p)


def test_csv_round_trip_keeps_relative_paths(study: Path, tmp_path: Path) -> None:
    m = read_manifest(study)
    out = write_csv_manifest(m.rows, study.parent / "copy.csv")
    assert "data/m1_0/ct.nii.gz" in out.read_text()
    again = read_manifest(out)
    assert [(r.subject, r.timepoint, r.paths) for r in again.rows] == [
        (r.subject, r.timepoint, r.paths) for r in m.rows
    ]


def test_isatab_round_trip_gives_the_same_pairs(study: Path) -> None:
    m = read_manifest(study)
    inv = write_isatab(m, study.parent / "isa")
    assert inv.name == "i_investigation.txt"
    back = read_manifest(inv.parent)  # a folder with i_*.txt dispatches to the ISA-Tab reader
    assert [(r.subject, r.timepoint, r.group, r.paths) for r in back.rows] == [
        (r.subject, r.timepoint, r.group, r.paths) for r in m.rows
    ]
    assert all(r.problems == () for r in back.rows)


def test_isatab_follows_the_metadata_profile(study: Path) -> None:
    inv = write_isatab(read_manifest(study), study.parent / "isa")
    text = inv.read_text()
    assert "Study Assay File Name\ta_ct.txt\ta_mri.txt" in text
    assert "Comment[Longitudinal data]\tTRUE" in text
    header, rows = _read_table(inv.parent / "a_ct.txt")
    first = dict(zip(header, rows[0], strict=False))
    # Table 10 geometry from the header: 0.28 mm voxels, FOV = 8 x 0.28 mm along x.
    assert float(first["Parameter Value[Voxel Size X]"]) == pytest.approx(0.28)
    assert float(first["Parameter Value[FOV X]"]) == pytest.approx(8 * 0.28)
    assert first["Parameter Value[Xray voltage]"] == "55"
    header, rows = _read_table(inv.parent / "a_mri.txt")
    mri = [dict(zip(header, r, strict=False)) for r in rows]
    assert len(mri) == 8  # water and fat rows for 4 samples
    assert {r["Comment[Dixon channel]"] for r in mri} == {"water", "fat"}
    # Table 11: slice thickness in um, matrix from the header (x = 11, z = 5).
    assert float(mri[0]["Parameter Value[Slice thickness]"]) == pytest.approx(800)
    assert (mri[0]["Parameter Value[Matrix X]"], mri[0]["Parameter Value[Matrix Z]"]) == ("11", "5")
    header, rows = _read_table(inv.parent / "s_study.txt")
    assert "Characteristics[Animal strain]" in header
    assert rows[1][header.index("Factor Value[Time point]")] == "270"


def test_isatab_assay_row_for_an_unknown_sample_is_named(study: Path) -> None:
    inv = write_isatab(read_manifest(study), study.parent / "isa")
    a = inv.parent / "a_ct.txt"
    a.write_text(a.read_text().replace('"m2@270"', '"m9@270"'))
    with pytest.raises(InputError, match=r"a_ct.txt: row 4 names sample 'm9@270'"):
        read_isatab(inv)


def test_isatab_from_the_phantom_study_reads_back_the_same_pairs(
    phantom_study: Path, tmp_path: Path
) -> None:
    m = read_manifest(phantom_study)
    inv = write_isatab(m, tmp_path / "isa")
    back = read_isatab(inv)
    assert [(r.subject, r.timepoint, r.group, r.paths) for r in back.rows] == [
        (r.subject, r.timepoint, r.group, r.paths) for r in m.rows
    ]
    header, rows = _read_table(inv.parent / "a_ct.txt")
    first = dict(zip(header, rows[0], strict=False))
    ct = sitk.ReadImage(str(m.rows[0].paths["ct"]))
    assert float(first["Parameter Value[Voxel Size X]"]) == pytest.approx(ct.GetSpacing()[0])
    assert int(float(first["Parameter Value[FOV Z]"]) / ct.GetSpacing()[2] + 0.5) == ct.GetSize()[2]
