"""``mousereg atlas build``: manifest in, validated atlas folder out (resumable)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from mousereg.atlas import format as fmt
from mousereg.atlas import state as build_state
from mousereg.atlas.build import BuildParameters, build_atlas
from mousereg.atlas.output import write_atlas
from mousereg.atlas.parallel import local_processes, map_subjects
from mousereg.atlas.prepare import SubjectStack, prepare_subject
from mousereg.atlas.register import RegisterPair
from mousereg.atlas.subjects import AtlasSubject, read_subjects
from mousereg.atlas.tables import check_same_tables, check_values, sidecar_table
from mousereg.atlas.validate import validate_atlas
from mousereg.labels import LabelTable

log = logging.getLogger(__name__)


def subject_tables(subjects: list[AtlasSubject]) -> LabelTable:
    """The one label table of all subjects' CT and MR label maps (InputError if they differ)."""
    tables: list[tuple[str, LabelTable]] = []
    for s in subjects:
        for path in (s.ct_labels, s.mr_labels):
            tables.append((str(path), sidecar_table(path) or LabelTable.default()))
    return check_same_tables(tables)


def _prepare(subject: AtlasSubject, spacing: float, table: LabelTable) -> SubjectStack:
    stack = prepare_subject(subject, spacing, table)
    for name, labels in zip(fmt.SUBJECT_LABEL_CHANNELS, stack.labels, strict=True):
        check_values(labels, table, f"subject {subject.id} {name}", fmt.UNKNOWN_LABEL)
    return stack


def build(
    manifest: str | Path,
    out: str | Path,
    params: BuildParameters | None = None,
    *,
    name: str = "",
    strain: str = "",
    register_pair: RegisterPair | None = None,
    cluster: Any = None,
    workers: int = 1,
    resume: bool = True,
) -> dict[str, Any]:
    """Build an atlas from the subjects of ``manifest`` into ``out``; return its ``atlas.json``.

    Args:
        manifest: CSV with subject, ct, mr_water, mr_fat, ct_labels, mr_labels and a CT<->MRI
            mapping per row (``transform`` or ``truth`` column).
        out: atlas folder (created; a stopped build in it is resumed).
        params: iterations, spacing, gradient step, ...
        register_pair: pairwise registration (default: the project's backend).
        cluster: a ``dask.distributed.Client`` or scheduler address; None = run locally.
        workers: local worker processes when ``cluster`` is None.
        resume: continue from the last finished iteration found in ``out``.
    """
    p = params or BuildParameters()
    out_dir = Path(out)
    subjects = read_subjects(manifest)
    table = subject_tables(subjects)
    with local_processes(workers if cluster is None else 1):
        stacks = map_subjects(
            _prepare, subjects, p.spacing, table, cluster=cluster, workers=workers
        )
        ids = [s.id for s in subjects]
        fp = build_state.fingerprint({**dataclasses.asdict(p), "manifest": str(manifest)}, ids)
        final, grid = build_atlas(
            stacks,
            out_dir,
            p,
            register_pair=register_pair,
            cluster=cluster,
            workers=workers,
            resume=resume,
            fingerprint=fp,
        )
    meta = {
        "name": name or out_dir.name,
        "version": "1",
        "species": "Mus musculus",
        "strain": strain,
        "excluded": final.excluded,
        "parameters": {**dataclasses.asdict(p), "iterations_run": final.iteration},
        "history": final.history,
    }
    doc = write_atlas(
        out_dir, grid, final.template, final.fields, {s.id: s for s in stacks}, table, meta
    )
    validate_atlas(out_dir)
    build_state.clear(out_dir)
    return doc
