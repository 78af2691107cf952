"""`LabelTable`: label values with names, colours and ontology IRIs.

The default table is the dataset's own label set (Table 9 of the reference paper) with its
BTO/SNOMED IRIs. Tables are read and written as JSON and as 3D Slicer colour tables
(``.ctbl``/``.txt``: ``value name R G B A`` per line).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mousereg.errors import InputError

OBO = "http://purl.obolibrary.org/obo/"


@dataclasses.dataclass(frozen=True)
class Label:
    """One label: integer value, name, RGB colour (0–255) and ontology IRI (may be empty)."""

    value: int
    name: str
    colour: tuple[int, int, int] = (128, 128, 128)
    iri: str = ""


# value, name, colour, IRI — the dataset's labels in DESIGN.md's (alphabetical) order.
DEFAULT_LABELS: tuple[Label, ...] = (
    Label(1, "bladder", (216, 191, 216), OBO + "BTO_0001418"),
    Label(2, "bone", (241, 214, 145), OBO + "BTO_0000140"),
    Label(3, "brain", (250, 250, 225), OBO + "BTO_0000142"),
    Label(4, "caecum", (205, 167, 142), OBO + "BTO_0000166"),
    Label(5, "colon", (204, 168, 143), OBO + "BTO_0000269"),
    Label(6, "fat", (255, 238, 170), OBO + "BTO_0001487"),
    Label(7, "gall bladder", (139, 150, 98), OBO + "BTO_0000493"),
    Label(8, "heart", (206, 110, 84), OBO + "BTO_0000562"),
    Label(9, "intestine", (255, 253, 229), OBO + "BTO_0000648"),
    Label(10, "kidney", (185, 102, 83), OBO + "BTO_0000671"),
    Label(11, "liver", (221, 130, 101), OBO + "BTO_0000759"),
    Label(12, "lung", (197, 165, 145), OBO + "BTO_0000763"),
    Label(13, "spine", (244, 214, 49), "http://snomed.info/id/12958003"),
    Label(14, "spleen", (157, 108, 162), OBO + "BTO_0001281"),
    Label(15, "stomach", (216, 132, 105), OBO + "BTO_0001307"),
    Label(16, "thyroid", (220, 245, 20), OBO + "BTO_0001379"),
    Label(17, "visceral fat", (255, 224, 130), OBO + "BTO_0004041"),
)


class LabelTable:
    """An ordered set of labels keyed by value (0 is background and never listed)."""

    def __init__(self, labels: Sequence[Label]) -> None:
        by_value: dict[int, Label] = {}
        names: set[str] = set()
        for lab in labels:
            if lab.value <= 0:
                msg = f"label {lab.name!r} has value {lab.value}; use values > 0"
                raise InputError(msg)
            if lab.value in by_value:
                msg = f"label value {lab.value} appears twice in the label table"
                raise InputError(msg)
            if lab.name in names:
                msg = f"label name {lab.name!r} appears twice in the label table"
                raise InputError(msg)
            by_value[lab.value] = lab
            names.add(lab.name)
        self._labels = dict(sorted(by_value.items()))

    @classmethod
    def default(cls) -> LabelTable:
        """The dataset's label set with its ontology IRIs."""
        return cls(DEFAULT_LABELS)

    def __len__(self) -> int:
        return len(self._labels)

    def __iter__(self) -> Iterator[Label]:
        return iter(self._labels.values())

    def __contains__(self, value: object) -> bool:
        return value in self._labels

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelTable) and list(self) == list(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"LabelTable({', '.join(f'{lab.value}:{lab.name}' for lab in self)})"

    @property
    def values(self) -> list[int]:
        """Label values in increasing order."""
        return list(self._labels)

    @property
    def names(self) -> list[str]:
        """Label names in value order."""
        return [lab.name for lab in self]

    def __getitem__(self, value: int) -> Label:
        return self._labels[value]

    def value_of(self, name: str) -> int:
        """The value of the label called ``name``."""
        for lab in self:
            if lab.name == name:
                return lab.value
        msg = f"no label named {name!r}; the table has {self.names}"
        raise KeyError(msg)

    def name_of(self, value: int) -> str:
        """The name of label ``value`` (``"label_<value>"`` for values not in the table)."""
        lab = self._labels.get(int(value))
        return lab.name if lab else f"label_{int(value)}"

    def subset(self, values: Sequence[int]) -> LabelTable:
        """The labels whose values are in ``values``."""
        keep = set(int(v) for v in values)
        return LabelTable([lab for lab in self if lab.value in keep])

    # ---- JSON ----------------------------------------------------------------------------
    def to_json(self) -> list[dict[str, Any]]:
        """A JSON-friendly list of ``{value, name, colour, iri}``."""
        return [
            {"value": lab.value, "name": lab.name, "colour": list(lab.colour), "iri": lab.iri}
            for lab in self
        ]

    @classmethod
    def from_json(
        cls, items: Sequence[Mapping[str, Any]], source: str = "label table"
    ) -> LabelTable:
        """Inverse of :meth:`to_json`."""
        try:
            return cls(
                [
                    Label(
                        int(it["value"]),
                        str(it["name"]),
                        tuple(int(c) for c in it.get("colour", (128, 128, 128)))[:3],  # type: ignore[arg-type]
                        str(it.get("iri", "")),
                    )
                    for it in items
                ]
            )
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"{source}: not a label table ({exc}); each entry needs 'value' and 'name'"
            raise InputError(msg) from exc

    # ---- files -------------------------------------------------------------------------------
    def write(self, path: str | Path) -> None:
        """Write as JSON (``.json``) or a 3D Slicer colour table (``.ctbl``/``.txt``)."""
        from mousereg.io.atomic import write_text

        p = Path(path)
        if p.suffix == ".json":
            write_text(p, json.dumps({"labels": self.to_json()}, indent=2) + "\n")
        elif p.suffix in (".ctbl", ".txt"):
            lines = ["# mousereg label table: value name R G B A (name spaces as underscores)"]
            lines.append("0 background 0 0 0 0")
            for lab in self:
                r, g, b = lab.colour
                lines.append(f"{lab.value} {lab.name.replace(' ', '_')} {r} {g} {b} 255")
            write_text(p, "\n".join(lines) + "\n")
        else:
            msg = f"{p}: unknown label table suffix; use .json, .ctbl or .txt"
            raise InputError(msg)

    @classmethod
    def read(cls, path: str | Path) -> LabelTable:
        """Read a JSON label table or a 3D Slicer colour table."""
        p = Path(path)
        if not p.exists():
            msg = f"{p}: label table not found; check the path"
            raise InputError(msg)
        if p.suffix == ".json":
            try:
                doc = json.loads(p.read_text())
            except json.JSONDecodeError as exc:
                msg = f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})"
                raise InputError(msg) from exc
            items = doc["labels"] if isinstance(doc, dict) and "labels" in doc else doc
            return cls.from_json(items, source=str(p))
        labels = []
        defaults = {lab.name: lab.iri for lab in DEFAULT_LABELS}
        for n, line in enumerate(p.read_text().splitlines(), 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            try:
                value = int(parts[0])
                name = parts[1].replace("_", " ")
                colour = (
                    (int(parts[2]), int(parts[3]), int(parts[4]))
                    if len(parts) >= 5
                    else (128, 128, 128)
                )
            except (ValueError, IndexError) as exc:
                msg = f"{p}:{n}: expected 'value name R G B A', got {line!r}"
                raise InputError(msg) from exc
            if value == 0:
                continue
            labels.append(Label(value, name, colour, defaults.get(name, "")))
        return cls(labels)
