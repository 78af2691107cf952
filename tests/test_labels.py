"""LabelTable: the dataset's default table, JSON and 3D Slicer colour-table files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mousereg.errors import InputError
from mousereg.labels import Label, LabelTable


def test_default_table_is_the_datasets() -> None:
    table = LabelTable.default()
    assert len(table) == 17
    assert table.values == list(range(1, 18))
    assert table.names[:3] == ["bladder", "bone", "brain"]
    assert table.value_of("liver") == 11
    assert table.name_of(13) == "spine"
    assert table[13].iri == "http://snomed.info/id/12958003"
    assert all(lab.iri for lab in table)
    assert table.name_of(99) == "label_99"


@pytest.mark.parametrize("suffix", [".json", ".ctbl", ".txt"])
def test_file_round_trip(suffix: str, tmp_path: Path) -> None:
    table = LabelTable.default()
    path = tmp_path / f"labels{suffix}"
    table.write(path)
    back = LabelTable.read(path)
    assert back == table  # Slicer tables get IRIs back from the default names


def test_slicer_table_text(tmp_path: Path) -> None:
    path = tmp_path / "t.ctbl"
    LabelTable([Label(3, "gall bladder", (1, 2, 3), "x")]).write(path)
    assert "3 gall_bladder 1 2 3 255" in path.read_text().splitlines()


def test_invalid_tables(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="appears twice"):
        LabelTable([Label(1, "a"), Label(1, "b")])
    with pytest.raises(InputError, match="values > 0"):
        LabelTable([Label(0, "background")])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        LabelTable.read(bad)
    with pytest.raises(InputError, match="unknown label table suffix"):
        LabelTable.default().write(tmp_path / "x.csv")


def test_subset() -> None:
    sub = LabelTable.default().subset([2, 11])
    assert sub.names == ["bone", "liver"]
