"""Run a pipeline over a manifest on a Dask cluster: plan, skip what is done, submit, summarise.

Each stage becomes one job per manifest row (per-subject kinds) or one job for the whole study
(per-study kinds such as the atlas build). A job is submitted as soon as the jobs it needs have
ended, so subjects flow through the stages independently and a per-study stage starts when its
inputs are ready. Before submitting, the runner fingerprints the job (kind, parameters, input
checksums, fingerprints of the needed jobs); a folder whose done-record carries that fingerprint is
skipped. A failed job fails only itself and the per-subject jobs that need it (``blocked``);
per-study jobs run on the subjects that succeeded.

Output layout::

    OUT/<stage>/<subject>/...   outputs + result.json + done.json   (per-subject jobs)
    OUT/<stage>/study/...       the same for per-study jobs
    OUT/logs/<stage>/<name>.log one log per job (every attempt appended)
    OUT/summary.json, OUT/summary.tsv   every job of the last run with status, seconds, reason
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mousereg.batch import records
from mousereg.batch.execute import Outcome, Task, execute
from mousereg.batch.jobs import Upstream
from mousereg.batch.manifest import Manifest, Row, read_manifest
from mousereg.batch.spec import PipelineSpec, Stage, load_spec
from mousereg.io.atomic import write_text

STUDY = "study"
STATUSES = ("done", "skipped", "failed", "blocked")
Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Job:
    """One planned job."""

    id: str
    stage: Stage
    name: str
    rows: tuple[Row, ...]
    needs: tuple[str, ...]
    folder: Path
    log: Path


@dataclasses.dataclass
class RunSummary:
    """Every job of a run and how it ended."""

    outcomes: list[Outcome]
    outdir: Path
    run_id: str
    seconds: float = 0.0

    def count(self, status: str) -> int:
        """How many jobs ended with ``status``."""
        return sum(o.status == status for o in self.outcomes)

    @property
    def ok(self) -> bool:
        """True when no job failed or was blocked."""
        return self.count("failed") == 0 and self.count("blocked") == 0

    def table(self) -> str:
        """A plain-text summary: counts per stage, then every failed or blocked job."""
        stages: dict[str, dict[str, int]] = {}
        for o in self.outcomes:
            stage = o.job_id.split("/")[0]
            stages.setdefault(stage, dict.fromkeys(STATUSES, 0))[o.status] += 1
        head = f"{'stage':<16}" + "".join(f"{s:>9}" for s in STATUSES)
        lines = [head, "-" * len(head)]
        for stage, counts in stages.items():
            lines.append(f"{stage:<16}" + "".join(f"{counts[s]:>9}" for s in STATUSES))
        total = f"{'total':<16}" + "".join(f"{self.count(s):>9}" for s in STATUSES)
        lines += ["-" * len(head), total]
        bad = [o for o in self.outcomes if not o.ok]
        if bad:
            lines += ["", "failed or blocked jobs:"]
            for o in bad:
                lines.append(f"  {o.status:<8} {o.job_id}: {o.reason}")
                lines.append(f"           log: {records.relpath(o.log, self.outdir)}")
        return "\n".join(lines)


def _job_folder(outdir: Path, stage: str, name: str) -> tuple[Path, Path]:
    return outdir / stage / name, outdir / "logs" / stage / f"{name}.log"


def plan(spec: PipelineSpec, manifest: Manifest, outdir: Path) -> list[Job]:
    """The jobs of ``spec`` over ``manifest``, in an order where needs come first."""
    jobs: list[Job] = []
    ids: dict[tuple[str, str], str] = {}
    for stage in spec.stages:
        per_subject = stage.kind.scope == "subject"
        groups = (
            [(r.name, (r,)) for r in manifest.rows] if per_subject else [(STUDY, manifest.rows)]
        )
        for name, rows in groups:
            needs: list[str] = []
            for need in stage.needs:
                if spec.stage(need).kind.scope == "study":
                    needs.append(ids[(need, STUDY)])
                elif per_subject:
                    needs.append(ids[(need, name)])
                else:
                    needs.extend(ids[(need, r.name)] for r in manifest.rows)
            folder, log = _job_folder(outdir, stage.name, name)
            job = Job(f"{stage.name}/{name}", stage, name, tuple(rows), tuple(needs), folder, log)
            ids[(stage.name, name)] = job.id
            jobs.append(job)
    return jobs


class _Run:
    """The client-side loop: decide, submit, collect, report."""

    def __init__(
        self,
        client: Any,
        jobs: list[Job],
        *,
        outdir: Path,
        run_id: str,
        retries: int,
        threads: int,
        progress: Progress,
    ) -> None:
        self.client = client
        self.jobs = {j.id: j for j in jobs}
        self.order = [j.id for j in jobs]
        self.outdir = outdir
        self.run_id = run_id
        self.retries = retries
        self.threads = threads
        self.progress = progress
        self.checksum = records.ChecksumCache()
        self.outcomes: dict[str, Outcome] = {}

    # ---- deciding --------------------------------------------------------------------------
    def _upstream(self, job: Job) -> dict[str, list[Upstream]]:
        up: dict[str, list[Upstream]] = {}
        for need in job.needs:
            o, j = self.outcomes[need], self.jobs[need]
            subject = j.rows[0].subject if len(j.rows) == 1 and j.name != STUDY else ""
            up.setdefault(j.stage.name, []).append(
                Upstream(
                    need,
                    j.stage.name,
                    subject,
                    o.status,
                    o.folder,
                    o.result,
                    seconds=o.seconds,
                    reason=o.reason,
                    kind=j.stage.kind.name,
                )
            )
        for stage in job.stage.needs:
            up.setdefault(stage, [])
        return up

    def _fail(self, job: Job, status: str, reason: str) -> Outcome:
        return Outcome(job.id, status, job.folder, job.log, reason=reason)

    def _prepare(self, job: Job) -> Outcome | Task:
        kind = job.stage.kind
        needs = [self.outcomes[n] for n in job.needs]
        if kind.scope == "subject":
            row = job.rows[0]
            if row.problems:
                extra = f" (+{len(row.problems) - 1} more)" if len(row.problems) > 1 else ""
                return self._fail(job, "failed", row.problems[0] + extra)
            missing = kind.missing_columns(row)
            if missing:
                msg = (
                    f"{row.label}: stage {job.stage.name!r} ({kind.name}) needs the column(s) "
                    f"{', '.join(missing)}; fill them in the manifest"
                )
                return self._fail(job, "failed", msg)
            bad = [o.job_id for o in needs if not o.ok]
            if bad:
                return self._fail(job, "blocked", f"needs {', '.join(bad)}, which did not finish")
        elif job.needs and not any(o.ok for o in needs):
            return self._fail(job, "blocked", "none of the jobs it needs finished")
        rows = job.rows if kind.scope == "subject" else tuple(r for r in job.rows if not r.problems)
        try:
            inputs = {
                f"{r.name}:{c}": self.checksum(p)
                for r in rows
                for c, p in sorted(r.paths.items())
                if p.exists()
            }
        except OSError as exc:
            return self._fail(job, "failed", f"cannot read an input: {exc}")
        upstream_fp = {o.job_id: o.fingerprint for o in needs if o.ok}
        fp = records.fingerprint(kind.name, kind.version, job.stage.params, inputs, upstream_fp)
        if records.is_done(job.folder, fp):
            record = records.read_record(job.folder) or {}
            return Outcome(
                job.id,
                "skipped",
                job.folder,
                job.log,
                seconds=float(record.get("seconds", 0.0)),
                result=records.read_result(job.folder),
                fingerprint=fp,
            )
        return Task(
            job_id=job.id,
            stage=job.stage.name,
            kind=kind.name,
            params=dict(job.stage.params),
            rows=rows,
            upstream=self._upstream(job),
            folder=job.folder,
            log=job.log,
            run_id=self.run_id,
            fingerprint=fp,
            inputs=inputs,
            upstream_fingerprints=upstream_fp,
            threads=self.threads,
        )

    # ---- running ---------------------------------------------------------------------------
    def _finish(self, outcome: Outcome) -> None:
        self.outcomes[outcome.job_id] = outcome
        if not outcome.ok:
            outcome.log.parent.mkdir(parents=True, exist_ok=True)
            with outcome.log.open("a") as fh:
                fh.write(f"# run={self.run_id} {outcome.status}: {outcome.reason}\n")
        n, total = len(self.outcomes), len(self.jobs)
        extra = f" {outcome.seconds:6.1f} s" if outcome.status == "done" else ""
        reason = f"  {outcome.reason}" if outcome.reason else ""
        self.progress(
            f"[{n:>{len(str(total))}}/{total}] {outcome.status:<8}{outcome.job_id}{extra}{reason}"
        )

    def _start_ready(self, pending: list[str], ac: Any, futures: dict[Any, str]) -> None:
        progressed = True
        while progressed:
            progressed = False
            for job_id in list(pending):
                job = self.jobs[job_id]
                if not all(n in self.outcomes for n in job.needs):
                    continue
                pending.remove(job_id)
                progressed = True
                prepared = self._prepare(job)
                if isinstance(prepared, Outcome):
                    self._finish(prepared)
                    continue
                future = self.client.submit(
                    execute,
                    prepared,
                    key=f"{job_id}#{self.run_id}",
                    retries=self.retries,
                    pure=False,
                )
                futures[future] = job_id
                ac.add(future)

    def _collect(self, future: Any, job_id: str) -> Outcome:
        job = self.jobs[job_id]
        try:
            outcome = future.result()
        except Exception as exc:
            from distributed import KilledWorker

            if isinstance(exc, KilledWorker):
                reason = (
                    f"its worker died {self.retries + 1} times while running it "
                    "(killed, or out of memory?)"
                )
            else:
                reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            return self._fail(job, "failed", reason[:400])
        if not isinstance(outcome, Outcome):
            return self._fail(job, "failed", f"internal error: got {type(outcome).__name__}")
        return outcome

    def run(self) -> list[Outcome]:
        """Run every job; returns the outcomes in plan order."""
        from distributed import as_completed

        pending = list(self.order)
        futures: dict[Any, str] = {}
        ac = as_completed()
        self._start_ready(pending, ac, futures)
        for future in ac:
            job_id = futures.pop(future)
            self._finish(self._collect(future, job_id))
            future.release()
            self._start_ready(pending, ac, futures)
        for job_id in pending:  # unreachable with a valid plan; kept for safety
            self._finish(self._fail(self.jobs[job_id], "blocked", "its needs never ended"))
        return [self.outcomes[j] for j in self.order]


def remove_stale_temporaries(jobs: list[Job]) -> None:
    """Delete half-written job folders a killed run left behind (``.<name>.tmp-*``)."""
    import shutil

    for stage_dir in {job.folder.parent for job in jobs}:
        for stale in stage_dir.glob(".*.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)


def write_summary(summary: RunSummary) -> None:
    """Write ``summary.json`` and ``summary.tsv`` into the output folder."""
    rows = []
    for o in summary.outcomes:
        rows.append(
            {
                "job": o.job_id,
                "status": o.status,
                "seconds": round(o.seconds, 3),
                "attempt": o.attempt,
                "reason": o.reason,
                "folder": records.relpath(o.folder, summary.outdir),
                "log": records.relpath(o.log, summary.outdir),
            }
        )
    doc = {
        "run": summary.run_id,
        "seconds": round(summary.seconds, 3),
        "counts": {s: summary.count(s) for s in STATUSES},
        "jobs": rows,
    }
    write_text(summary.outdir / "summary.json", json.dumps(doc, indent=2) + "\n")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["job"], delimiter="\t")
    w.writeheader()
    w.writerows(rows)
    write_text(summary.outdir / "summary.tsv", buf.getvalue())


def run_pipeline(
    pipeline: str | os.PathLike[str],
    manifest: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    *,
    cluster: str | Any = "local",
    workers: int | None = None,
    threads: int | None = None,
    retries: int | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Run ``pipeline`` over ``manifest`` into ``outdir``; see the module docstring.

    Args:
        pipeline: a pipeline YAML (``pipelines/*.yaml``).
        manifest: a CSV manifest or an ISA-Tab study.
        outdir: the output folder (re-running into it resumes).
        cluster: ``local``, ``slurm``, ``pbs``, a profile name/path, ``tcp://HOST:PORT`` or a
            ``distributed.Client`` to reuse.
        workers: number of workers (default: the profile's, else cores // threads).
        threads: ITK/elastix/ANTs threads per job (default: cores // workers).
        retries: retries of a job whose worker died or that raised (default: the spec's).
        progress: called with one line per finished job and a few status lines.
    """
    import time

    from mousereg.batch.cluster import load_profile, open_client

    say = progress or (lambda line: None)
    spec = load_spec(pipeline)
    rows = read_manifest(manifest)
    if isinstance(cluster, str) and "://" not in cluster:
        load_profile(cluster, spec.source)  # a missing or bad profile fails before any output
    out = Path(outdir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    jobs = plan(spec, rows, out)
    remove_stale_temporaries(jobs)
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    n_retries = spec.retries if retries is None else retries
    t0 = time.perf_counter()
    with open_client(
        cluster,
        workers=workers,
        threads=threads,
        pipeline=spec.source,
        logs=out / "logs" / "dask-jobqueue",
        retries=n_retries,
    ) as (client, info):
        say(
            f"{spec.name}: {len(jobs)} jobs over {len(rows)} rows on {info.description}, "
            f"{info.workers} workers x {info.threads} threads"
        )
        if info.dashboard:
            say(f"dashboard: {info.dashboard}")
        run = _Run(
            client,
            jobs,
            outdir=out,
            run_id=run_id,
            retries=n_retries,
            threads=info.threads,
            progress=say,
        )
        outcomes = run.run()
    summary = RunSummary(outcomes, out, run_id, time.perf_counter() - t0)
    write_summary(summary)
    return summary
