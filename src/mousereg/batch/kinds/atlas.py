"""Job kind ``build-atlas``: one multimodal atlas from every subject whose registration finished.

A per-study job: it waits for the ``register-pair`` stage it needs, writes the subjects that
finished as an atlas manifest (``subjects.csv``: the row's images and labels, the registration's
``transform.h5`` as the CT<->MRI mapping, the phantom's ``truth`` folder when present, for its
``mu511``) and runs :func:`mousereg.atlas.build_atlas_from_manifest` into ``atlas/``. Subjects
whose registration failed are left out and listed in the result.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from mousereg.batch.jobs import JobContext, job_kind
from mousereg.errors import InputError
from mousereg.io.atomic import write_text

COLUMNS = ("subject", "ct", "mr_water", "mr_fat", "ct_labels", "mr_labels", "truth")


@job_kind(
    "build-atlas",
    scope="study",
    params={
        "name": "mousereg-synthetic",
        "strain": "Crl:SKH1-Hrhr",
        "iterations": 4,
        "spacing": 0.4,
        "min_subjects": 3,
    },
)
def build_atlas(ctx: JobContext) -> dict[str, Any]:
    """Build the atlas from the registered subjects (their transform.h5 maps MRI to CT)."""
    from mousereg.atlas import BuildParameters, build_atlas_from_manifest

    registered = {
        u.job_id.split("/", 1)[1]: u
        for stage in ctx.upstream
        for u in ctx.needed(stage)
        if u.kind == "register-pair"
    }
    if not registered:
        msg = f"{ctx.job_id}: needs a register-pair stage with finished subjects"
        raise InputError(msg)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*COLUMNS, "transform"])
    used, left_out = [], []
    for row in ctx.rows:
        reg = registered.get(row.name)
        if reg is None or any(not row.has(c) for c in COLUMNS[1:6]):
            left_out.append(row.name)
            continue
        cells = [row.name, *(str(row.paths.get(c, "")) for c in COLUMNS[1:])]
        writer.writerow([*cells, str(reg.folder / "transform.h5")])
        used.append(row.name)
    p = ctx.params
    if len(used) < p["min_subjects"]:
        msg = (
            f"{ctx.job_id}: only {len(used)} registered subjects ({', '.join(used) or 'none'}); "
            f"the atlas needs at least {p['min_subjects']}"
        )
        raise InputError(msg)
    manifest = ctx.outdir / "subjects.csv"
    write_text(manifest, buf.getvalue())
    params = BuildParameters(
        iterations=p["iterations"], spacing=p["spacing"], min_subjects=p["min_subjects"]
    )
    ctx.log.info("building the atlas from %d subjects: %s", len(used), ", ".join(used))
    doc = build_atlas_from_manifest(
        manifest,
        ctx.outdir / "atlas",
        params,
        name=p["name"],
        strain=p["strain"],
        workers=ctx.threads,
    )
    return {
        "atlas": "atlas",
        "subjects": used,
        "left_out": left_out,
        "excluded_by_build": doc.get("excluded", []),
        "iterations_run": doc.get("parameters", {}).get("iterations_run"),
        "shape_zyx": doc.get("grid", {}).get("shape_zyx"),
        "spacing_xyz_mm": doc.get("grid", {}).get("spacing_xyz_mm"),
        "history": doc.get("history", []),
    }
