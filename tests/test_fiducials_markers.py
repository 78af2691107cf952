"""Markers files: mousereg JSON, 3D Slicer markups (LPS and RAS), CSV and legacy .fcsv."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mousereg.errors import InputError
from mousereg.fiducials.holder import load_holder, match_to_holder
from mousereg.fiducials.markers import Markers, read_markers, write_markers

POINTS = np.array([[1.5, -2.25, 30.0], [-10.0, 4.0, 2.125], [7.0, 8.0, -9.5]])


@pytest.mark.parametrize("suffix", [".json", ".mrk.json", ".csv"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    m = Markers.from_points(POINTS, fle=[0.01, 0.02, 0.03], names=("A", "B", "C"))
    path = tmp_path / f"m{suffix}"
    write_markers(m, path)
    back = read_markers(path)
    assert np.allclose(back.points, POINTS, atol=1e-5)
    assert back.names == ("A", "B", "C")
    assert list(tmp_path.iterdir()) == [path]  # atomic write leaves no temporary


def test_slicer_markups_schema_and_ras(tmp_path: Path) -> None:
    path = tmp_path / "m.mrk.json"
    write_markers(Markers.from_points(POINTS), path)
    doc = json.loads(path.read_text())
    assert doc["markups"][0]["coordinateSystem"] == "LPS"
    assert doc["markups"][0]["controlPoints"][0]["position"] == [1.5, -2.25, 30.0]
    doc["markups"][0]["coordinateSystem"] = "RAS"
    path.write_text(json.dumps(doc))
    assert np.allclose(read_markers(path).points, POINTS * [-1, -1, 1])


def test_csv_without_header_and_fcsv(tmp_path: Path) -> None:
    plain = tmp_path / "p.csv"
    plain.write_text("\n".join(",".join(map(str, p)) for p in POINTS))
    assert np.allclose(read_markers(plain).points, POINTS)
    fcsv = tmp_path / "p.fcsv"
    rows = [f"{i},{x},{y},{z},0,0,0,1,1,1,0,F-{i},," for i, (x, y, z) in enumerate(POINTS)]
    fcsv.write_text("# Markups fiducial file version = 4.11\n# CoordinateSystem = RAS\n")
    fcsv.write_text(fcsv.read_text() + "\n".join(rows))
    back = read_markers(fcsv)
    assert np.allclose(back.points, POINTS * [-1, -1, 1])
    assert back.names[0] == "F-0"


def test_bad_files_name_the_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such markers file"):
        read_markers(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y,z\n1,2,three\n")
    with pytest.raises(InputError, match=r"bad\.csv"):
        read_markers(bad)


def test_holder_profile_names_the_holes() -> None:
    holder = load_holder("default")
    assert len(holder) >= 8
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    scan = holder.centers[2:] @ rot.T + [40.0, -3.0, 100.0]
    named, match = match_to_holder(Markers.from_points(scan[::-1]), holder)
    assert match.support == len(holder) - 2
    for name, p in zip(named.names, named.points, strict=True):
        k = holder.ids.index(name.split()[-1])
        assert np.allclose(p, holder.centers[k] @ rot.T + [40.0, -3.0, 100.0])
