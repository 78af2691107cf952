"""Job kind ``study-report``: the self-contained HTML report of every stage it needs."""

from __future__ import annotations

from typing import Any

from mousereg.batch.jobs import JobContext, job_kind


@job_kind("study-report", scope="study", params={"title": "mousereg study report", "overlays": 24})
def study_report(ctx: JobContext) -> dict[str, Any]:
    """Write ``report.html``: jobs, registration, overlap, µ-maps, atlas, overlays, timings."""
    from mousereg.qc.study import Entry, write_study_report

    entries = [
        Entry(
            job_id=u.job_id,
            stage=u.stage,
            kind=u.kind,
            subject=u.subject,
            status=u.status,
            seconds=u.seconds,
            reason=u.reason,
            folder=u.folder,
            result=u.result,
        )
        for stage in ctx.upstream
        for u in ctx.upstream[stage]
    ]
    path = write_study_report(
        ctx.outdir / "report.html",
        entries,
        title=ctx.params["title"],
        overlays=ctx.params["overlays"],
    )
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.status] = counts.get(e.status, 0) + 1
    ctx.log.info("wrote %s (%d jobs)", path.name, len(entries))
    return {"report": path.name, "jobs": counts, "subjects": len({e.subject for e in entries})}
