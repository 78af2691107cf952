"""ISA-Tab studies in the dataset's metadata profile (reference paper, Tables 7–11).

A small documented reader and writer of our own (``isatools`` is a heavy dependency):

* ``i_investigation.txt`` — the investigation file: general profile fields (Table 7: creator,
  study ID, longitudinal data ...), the study, its factors (group, time point), its two assays and
  protocols (animal imaging session, CT imaging, MRI imaging, organ segmentation).
* ``s_study.txt`` — one row per animal and time point: ``Source Name`` (the animal),
  ``Characteristics[...]`` (Animal ID, Animal strain, Supplier, Sex, Age, Health status, Disease
  model), ``Factor Value[Group]``, ``Sample Name`` (animal + time point), ``Factor Value[Time
  point]`` (minutes) and ``Comment[Ground truth]`` (the phantom's truth folder).
* ``a_ct.txt`` / ``a_mri.txt`` — one row per image: ``Sample Name``, ``Protocol REF``, the
  modality's ``Parameter Value[...]`` fields (Table 10 for CT, Table 11 for MRI, with ``Unit``
  columns), ``Raw Data File`` (the image; MRI rows carry ``Comment[Dixon channel]`` water or fat),
  then the organ-segmentation protocol (Table 8) and ``Derived Data File`` (the label map).

Reading pairs CT and MRI rows by ``Sample Name``, i.e. the same animal at the same time point, and
returns the same :class:`~mousereg.batch.manifest.Manifest` a CSV manifest gives.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mousereg.batch.manifest import Manifest, Row, check_unique, make_row
from mousereg.errors import InputError
from mousereg.io.atomic import write_text

INVESTIGATION = "i_investigation.txt"
STUDY = "s_study.txt"
ASSAY_CT = "a_ct.txt"
ASSAY_MRI = "a_mri.txt"
SAMPLE = "Sample Name"


@dataclasses.dataclass(frozen=True)
class StudyMetadata:
    """Study-wide fields of the general profile (Table 7) and the scanners' fixed settings.

    The defaults describe the dataset's whole-body CT–MRI study (FACTS.md); geometric fields
    (voxel size, matrix, field of view) are read from each image's header when writing.
    """

    creator: str = "mousereg"
    study_id: str = "CT-MRI whole body (synthetic)"
    title: str = "Whole-body CT-MRI of healthy mice (synthetic phantom study)"
    strain: str = "Crl:SKH1-Hrhr"
    supplier: str = "Charles River Laboratories"
    sex: str = "female"
    age_days: str = ""
    health_status: str = "healthy"
    disease_model: str = ""
    source: str = "native"
    data_type: str = "reconstructed data"
    contrast_agent: str = ""
    ct_device: str = "hybrid micro-CT optical imaging system"
    ct_brand: str = "MILabs"
    ct_kv: str = "55"
    ct_ma: str = "0.17"
    mr_device: str = "7 T BioSpec 70/20 USR"
    mr_brand: str = "Bruker"
    mr_coil: str = "RF Res 300 1H 112/086 QSN TO AD volume coil"
    segmentation_method: str = "manual"
    organs: tuple[str, ...] = (
        "bladder",
        "bone",
        "brain",
        "caecum",
        "colon",
        "heart",
        "small intestine",
        "kidney",
        "liver",
        "lung",
        "spine",
        "spleen",
        "stomach",
    )


# ---- tables as (header, value) lists: ISA-Tab repeats headers such as "Protocol REF" -------------
Cells = list[tuple[str, str]]


def _table_text(rows: Sequence[Cells]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_ALL)
    w.writerow([h for h, _ in rows[0]])
    for r in rows:
        w.writerow([v for _, v in r])
    return buf.getvalue()


def _read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        msg = f"{path}: ISA-Tab table not found; the investigation file names it"
        raise InputError(msg)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        lines = [r for r in csv.reader(fh, delimiter="\t") if any(c.strip() for c in r)]
    if not lines:
        msg = f"{path}: empty ISA-Tab table"
        raise InputError(msg)
    return [h.strip() for h in lines[0]], [[c.strip() for c in r] for r in lines[1:]]


def _first(header: list[str], cells: list[str], name: str) -> str:
    for h, v in zip(header, cells, strict=False):
        if h == name:
            return v
    return ""


# ---- writing ---------------------------------------------------------------------------------
def _header_info(path: Path) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """(spacing xyz mm, size xyz) from the image header without reading voxels."""
    import SimpleITK as sitk

    if path.suffix == ".zarr" or path.is_dir():
        from mousereg.io import read_volume

        vol = read_volume(path)
        return tuple(vol.spacing), tuple(vol.size)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    return tuple(reader.GetSpacing()), tuple(reader.GetSize())


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _geometry(path: Path | None) -> dict[str, str]:
    if path is None or not path.exists():
        return {}
    spacing, size = _header_info(path)
    fov = [s * n for s, n in zip(spacing, size, strict=True)]
    return {
        "sx": _fmt(spacing[0]),
        "sy": _fmt(spacing[1]),
        "sz": _fmt(spacing[2]),
        "nx": str(size[0]),
        "ny": str(size[1]),
        "nz": str(size[2]),
        "fx": _fmt(fov[0]),
        "fy": _fmt(fov[1]),
        "fz": _fmt(fov[2]),
    }


def _rel(path: Path | None, base: Path) -> str:
    return "" if path is None else os.path.relpath(path.resolve(), base)


def _data_format(path: Path | None) -> str:
    if path is None:
        return ""
    name = path.name.lower()
    if name.endswith(".zarr"):
        return "OME-Zarr"
    if name.endswith((".nii", ".nii.gz")):
        return "NIfTI"
    return path.suffix.lstrip(".").upper()


def _common(meta: StudyMetadata, modality: str, device: str, brand: str, fmt: str) -> Cells:
    return [
        ("Parameter Value[Image modality]", modality),
        ("Parameter Value[Device name]", device),
        ("Parameter Value[Brand]", brand),
        ("Parameter Value[Source]", meta.source),
        ("Parameter Value[Data format]", fmt),
        ("Parameter Value[Data type]", meta.data_type),
        ("Parameter Value[Contrast agent name]", meta.contrast_agent),
    ]


def _unit(name: str, value: str, unit: str) -> Cells:
    return [(f"Parameter Value[{name}]", value), ("Unit", unit if value else "")]


def _segmentation(meta: StudyMetadata, labels: Path | None, base: Path) -> Cells:
    available = labels is not None
    return [
        ("Protocol REF", "organ segmentation"),
        ("Parameter Value[Organ segmentation]", "available" if available else "not available"),
        ("Parameter Value[Organ]", ";".join(meta.organs) if available else ""),
        ("Parameter Value[Method of segmentation]", meta.segmentation_method if available else ""),
        ("Parameter Value[Affected Organs]", "FALSE"),
        ("Derived Data File", _rel(labels, base)),
    ]


def _ct_row(meta: StudyMetadata, row: Row, base: Path) -> Cells:
    ct = row.paths.get("ct")
    g = _geometry(ct)
    return [
        (SAMPLE, _sample(row)),
        ("Protocol REF", "CT imaging"),
        *_common(meta, "CT", meta.ct_device, meta.ct_brand, _data_format(ct)),
        *_unit("Voxel Size X", g.get("sx", ""), "mm"),
        *_unit("Voxel Size Y", g.get("sy", ""), "mm"),
        *_unit("Voxel Size Z", g.get("sz", ""), "mm"),
        ("Parameter Value[Scan angle]", ""),
        ("Parameter Value[Angle step degree]", ""),
        *_unit("Exposure", "", "ms"),
        *_unit("Xray voltage", meta.ct_kv, "kV"),
        *_unit("Xray current", meta.ct_ma, "mA"),
        ("Parameter Value[Hounsfield unit calibration]", ""),
        *_unit("FOV X", g.get("fx", ""), "mm"),
        *_unit("FOV Y", g.get("fy", ""), "mm"),
        *_unit("FOV Z", g.get("fz", ""), "mm"),
        ("Assay Name", f"{_sample(row)} CT"),
        ("Raw Data File", _rel(ct, base)),
        *_segmentation(meta, row.paths.get("ct_labels"), base),
    ]


def _mr_rows(meta: StudyMetadata, row: Row, base: Path) -> list[Cells]:
    channels = (
        [("mr", "")]
        if "mr" in row.paths
        else [(c, c.split("_")[1]) for c in ("mr_water", "mr_fat") if c in row.paths]
    )
    out = []
    for column, channel in channels:
        image = row.paths[column]
        g = _geometry(image)
        slice_um = _fmt(float(g["sz"]) * 1000) if g else ""
        pixel = [_fmt(float(g[k]) * 1000) if g else "" for k in ("sx", "sy")]
        out.append(
            [
                (SAMPLE, _sample(row)),
                ("Protocol REF", "MRI imaging"),
                *_common(meta, "MRI", meta.mr_device, meta.mr_brand, _data_format(image)),
                ("Parameter Value[Coil]", meta.mr_coil),
                *_unit("Repetition time", "", "ms"),
                *_unit("Echo time", "", "ms"),
                *_unit("Echo spacing", "", "ms"),
                ("Parameter Value[Echo Train Length]", ""),
                *_unit("Slice thickness", slice_um, "um"),
                *_unit("Slice gap", "0" if g else "", "um"),
                ("Parameter Value[Matrix X]", g.get("nx", "")),
                ("Parameter Value[Matrix Y]", g.get("ny", "")),
                ("Parameter Value[Matrix Z]", g.get("nz", "")),
                ("Parameter Value[Respiratory gating]", ""),
                *_unit("Scan time", "", "s"),
                *_unit("FOV X", g.get("fx", ""), "mm"),
                *_unit("FOV Y", g.get("fy", ""), "mm"),
                *_unit("FOV Z", g.get("fz", ""), "mm"),
                ("Parameter Value[Water Suppression]", "FALSE"),
                *_unit("Water suppression prepulse", "", "Hz"),
                ("Parameter Value[Fat Suppression]", "FALSE"),
                ("Parameter Value[Repetitions]", ""),
                ("Parameter Value[Flip Angle]", ""),
                ("Parameter Value[Averages]", ""),
                *_unit("Pixel Size X", pixel[0], "um/pixel"),
                *_unit("Pixel Size Y", pixel[1], "um/pixel"),
                ("Assay Name", f"{_sample(row)} MRI {channel}".rstrip()),
                ("Raw Data File", _rel(image, base)),
                ("Comment[Dixon channel]", channel),
                *_segmentation(meta, row.paths.get("mr_labels"), base),
            ]
        )
    return out


def _sample(row: Row) -> str:
    return f"{row.subject}@{row.timepoint}" if row.timepoint else row.subject


def _study_row(meta: StudyMetadata, row: Row, base: Path) -> Cells:
    return [
        ("Source Name", row.subject),
        ("Characteristics[Organism]", "Mus musculus"),
        ("Characteristics[Animal ID]", row.subject),
        ("Characteristics[Animal strain]", meta.strain),
        ("Characteristics[Supplier]", meta.supplier),
        ("Characteristics[Sex]", meta.sex),
        ("Characteristics[Age]", meta.age_days),
        ("Unit", "day" if meta.age_days else ""),
        ("Characteristics[Health status]", meta.health_status),
        ("Characteristics[Disease model]", meta.disease_model),
        ("Factor Value[Group]", row.group),
        ("Protocol REF", "animal imaging session"),
        (SAMPLE, _sample(row)),
        ("Factor Value[Time point]", row.timepoint),
        ("Unit", "minute" if row.timepoint else ""),
        ("Comment[Ground truth]", _rel(row.paths.get("truth"), base)),
    ]


def _investigation(meta: StudyMetadata, longitudinal: bool) -> str:
    lines: list[list[str]] = [
        ["ONTOLOGY SOURCE REFERENCE"],
        ["Term Source Name", "BTO", "SNOMEDCT"],
        ["Term Source File", "http://purl.obolibrary.org/obo/bto.owl", "http://snomed.info/id/"],
        ["Term Source Version", "", ""],
        ["Term Source Description", "BRENDA Tissue Ontology", "SNOMED CT"],
        ["INVESTIGATION"],
        ["Investigation Identifier", meta.study_id],
        ["Investigation Title", meta.title],
        ["Investigation Description", "Paired micro-CT and Dixon MRI in one animal holder"],
        ["Investigation Submission Date", ""],
        ["Investigation Public Release Date", ""],
        ["Comment[Creator]", meta.creator],
        ["INVESTIGATION PUBLICATIONS"],
        ["Investigation PubMed ID"],
        ["Investigation Publication DOI"],
        ["Investigation Publication Author List"],
        ["Investigation Publication Title"],
        ["Investigation Publication Status"],
        ["INVESTIGATION CONTACTS"],
        ["Investigation Person Last Name", meta.creator],
        ["Investigation Person First Name"],
        ["Investigation Person Roles", "creator"],
        ["STUDY"],
        ["Study Identifier", meta.study_id],
        ["Study Title", meta.title],
        ["Study Description", "CT and MRI of the same animal and time point, one holder"],
        ["Study Submission Date", ""],
        ["Study Public Release Date", ""],
        ["Study File Name", STUDY],
        ["Comment[Creator]", meta.creator],
        ["Comment[Longitudinal data]", "TRUE" if longitudinal else "FALSE"],
        ["Comment[Image modality]", "MRI-CT"],
        ["STUDY DESIGN DESCRIPTORS"],
        ["Study Design Type", "longitudinal" if longitudinal else "cross-sectional"],
        ["STUDY PUBLICATIONS"],
        ["Study PubMed ID"],
        ["Study Publication DOI"],
        ["STUDY FACTORS"],
        ["Study Factor Name", "Group", "Time point"],
        ["Study Factor Type", "group", "time"],
        ["STUDY ASSAYS"],
        ["Study Assay Measurement Type", "CT imaging", "MRI imaging"],
        ["Study Assay Technology Type", "computed tomography", "magnetic resonance imaging"],
        ["Study Assay Technology Platform", meta.ct_brand, meta.mr_brand],
        ["Study Assay File Name", ASSAY_CT, ASSAY_MRI],
        ["STUDY PROTOCOLS"],
        [
            "Study Protocol Name",
            "animal imaging session",
            "CT imaging",
            "MRI imaging",
            "organ segmentation",
        ],
        ["Study Protocol Type", "sample collection", "imaging", "imaging", "data transformation"],
        ["STUDY CONTACTS"],
        ["Study Person Last Name", meta.creator],
        ["Study Person Roles", "creator"],
    ]
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    for line in lines:
        w.writerow(line)
    return buf.getvalue()


def write_isatab(
    manifest: Manifest | Sequence[Row],
    folder: str | os.PathLike[str],
    meta: StudyMetadata | None = None,
) -> Path:
    """Write the rows as an ISA-Tab study in ``folder``; returns the investigation file.

    File paths are written relative to ``folder``; geometry fields come from the image headers.
    """
    rows = list(manifest.rows if isinstance(manifest, Manifest) else manifest)
    if not rows:
        msg = "write_isatab: no rows to write"
        raise InputError(msg)
    meta = meta or StudyMetadata()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    base = out.resolve()
    write_text(out / STUDY, _table_text([_study_row(meta, r, base) for r in rows]))
    ct_rows = [_ct_row(meta, r, base) for r in rows if "ct" in r.paths]
    mr_rows = [c for r in rows for c in _mr_rows(meta, r, base)]
    for name, table in ((ASSAY_CT, ct_rows), (ASSAY_MRI, mr_rows)):
        if table:
            write_text(out / name, _table_text(table))
    longitudinal = len({r.timepoint for r in rows}) > 1
    write_text(out / INVESTIGATION, _investigation(meta, longitudinal))
    return out / INVESTIGATION


# ---- reading ---------------------------------------------------------------------------------
def _investigation_fields(path: Path) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for line in csv.reader(fh, delimiter="\t"):
            if line and line[0].strip():
                fields.setdefault(line[0].strip(), []).extend(
                    c.strip() for c in line[1:] if c.strip()
                )
    return fields


def _modality(header: list[str], cells: list[str], measurement: str) -> str:
    m = (_first(header, cells, "Parameter Value[Image modality]") or measurement).upper()
    if m.startswith("CT") or "COMPUTED" in m:
        return "CT"
    if m.startswith(("MR", "MAGNETIC")):
        return "MRI"
    return m


def read_isatab(path: str | os.PathLike[str]) -> Manifest:
    """Read an ISA-Tab study (folder or ``i_*.txt``) into a manifest pairing CT and MRI."""
    p = Path(path)
    inv = p if p.is_file() else next(iter(sorted(p.glob("i_*.txt"))), None)
    if inv is None:
        msg = f"{p}: no ISA-Tab investigation file (i_*.txt) found"
        raise InputError(msg)
    base = inv.parent.resolve()
    fields = _investigation_fields(inv)
    study_files = fields.get("Study File Name", [])
    if not study_files:
        msg = f"{inv}: no 'Study File Name' line; the investigation must name its study file"
        raise InputError(msg)
    header, lines = _read_table(base / study_files[0])
    samples: dict[str, dict[str, str]] = {}
    numbers: dict[str, int] = {}
    for number, cells in enumerate(lines, start=1):
        sample = _first(header, cells, SAMPLE)
        if not sample:
            msg = f"{base / study_files[0]}: row {number} has no Sample Name"
            raise InputError(msg)
        subject = _first(header, cells, "Characteristics[Animal ID]") or _first(
            header, cells, "Source Name"
        )
        samples[sample] = {
            "subject": subject,
            "timepoint": _first(header, cells, "Factor Value[Time point]"),
            "group": _first(header, cells, "Factor Value[Group]"),
            "truth": _first(header, cells, "Comment[Ground truth]"),
        }
        numbers[sample] = number
    assays = fields.get("Study Assay File Name", [])
    kinds = fields.get("Study Assay Measurement Type", [])
    for i, name in enumerate(assays):
        _merge_assay(base / name, kinds[i] if i < len(kinds) else "", samples)
    rows = [
        make_row(numbers[s], cells, base, str(inv))
        for s, cells in sorted(samples.items(), key=lambda kv: numbers[kv[0]])
    ]
    check_unique(rows, str(inv))
    return Manifest(source=inv.resolve(), rows=tuple(rows))


def _merge_assay(path: Path, measurement: str, samples: dict[str, dict[str, Any]]) -> None:
    header, lines = _read_table(path)
    for number, cells in enumerate(lines, start=1):
        sample = _first(header, cells, SAMPLE)
        if sample not in samples:
            msg = f"{path}: row {number} names sample {sample!r}, which the study file lacks"
            raise InputError(msg)
        modality = _modality(header, cells, measurement)
        image = _first(header, cells, "Raw Data File")
        labels = _first(header, cells, "Derived Data File")
        target = samples[sample]
        if modality == "CT":
            column, label_column = "ct", "ct_labels"
        elif modality == "MRI":
            channel = _first(header, cells, "Comment[Dixon channel]").lower()
            column = f"mr_{channel}" if channel in ("water", "fat") else "mr"
            label_column = "mr_labels"
        else:
            msg = f"{path}: row {number} has image modality {modality!r}; expected CT or MRI"
            raise InputError(msg)
        if image:
            if target.get(column):
                msg = f"{path}: row {number} gives a second {column} image for {sample!r}"
                raise InputError(msg)
            target[column] = image
        if labels and not target.get(label_column):
            target[label_column] = labels
