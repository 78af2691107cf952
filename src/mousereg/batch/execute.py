"""The worker side of a batch job: run one job kind, log it, publish its folder atomically.

A job writes into a temporary sibling of its folder; ``result.json`` and the done-record go in
last and the folder is renamed into place only then, so a killed job leaves no half folder. User
errors (:class:`~mousereg.errors.MouseregError`: missing or unreadable input, no markers ...) end
the job as ``failed`` with their one-line reason and are not retried; any other exception is logged
and re-raised so Dask retries the job (``retries``) before the runner records it as failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import shutil
import socket
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mousereg.batch import records
from mousereg.batch.jobs import JobContext, Upstream, get_kind
from mousereg.batch.manifest import Row
from mousereg.errors import MouseregError
from mousereg.io.atomic import replace, temporary_sibling, write_text

START = "# start run="


@dataclasses.dataclass(frozen=True)
class Task:
    """Everything a worker needs to run one job (picklable)."""

    job_id: str
    stage: str
    kind: str
    params: dict[str, Any]
    rows: tuple[Row, ...]
    upstream: dict[str, list[Upstream]]
    folder: Path
    log: Path
    run_id: str
    fingerprint: str
    inputs: dict[str, str]
    upstream_fingerprints: dict[str, str]
    threads: int = 1


@dataclasses.dataclass
class Outcome:
    """How one job of a run ended: done, skipped, failed or blocked."""

    job_id: str
    status: str
    folder: Path
    log: Path
    seconds: float = 0.0
    reason: str = ""
    result: dict[str, Any] = dataclasses.field(default_factory=dict)
    fingerprint: str = ""
    attempt: int = 0
    host: str = ""
    pid: int = 0

    @property
    def ok(self) -> bool:
        """True for done or skipped jobs (their outputs can be used)."""
        return self.status in ("done", "skipped")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    msg = f"{type(obj).__name__} is not JSON serialisable"
    raise TypeError(msg)


def _attempt(log: Path, run_id: str) -> int:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return 1
    return text.count(f"{START}{run_id} ") + 1


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, MouseregError) else text


@contextlib.contextmanager
def _job_logger(task: Task) -> Iterator[logging.Logger]:
    task.log.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"mousereg.job.{task.job_id}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    with task.log.open("a", buffering=1) as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        try:
            with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
                yield logger
        finally:
            logger.removeHandler(handler)


@contextlib.contextmanager
def _private_cwd() -> Iterator[None]:
    """Run in a scratch folder of its own, so that libraries writing into the current folder
    (elastix/transformix files, ...) cannot collide with another job of the same worker host.

    Only on a worker that runs one task at a time: the current folder belongs to the process.
    """
    try:
        from distributed import get_worker

        single = get_worker().state.nthreads == 1
    except (ImportError, ValueError, AttributeError):
        single = False
    if not single:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="mousereg-job-") as scratch, contextlib.chdir(scratch):
        yield


def _remove_stale_attempts(folder: Path) -> None:
    """Delete the temporary folders of earlier attempts of this job (a killed worker's leftovers).

    A job runs one attempt at a time, so any ``.NAME.tmp-*`` sibling here belongs to an attempt
    that died before it could publish or clean up.
    """
    for stale in folder.parent.glob(f".{folder.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def execute(task: Task) -> Outcome:
    """Run ``task`` on this worker and return its outcome (see the module docstring)."""
    import dask

    from mousereg.batch.threads import pin_threads

    attempt = _attempt(task.log, task.run_id)
    host, pid = socket.gethostname(), os.getpid()
    task.log.parent.mkdir(parents=True, exist_ok=True)
    with task.log.open("a") as fh:
        fh.write(
            f"{START}{task.run_id} attempt={attempt} job={task.job_id} host={host} pid={pid}\n"
        )
    pin_threads(task.threads)
    kind = get_kind(task.kind)
    _remove_stale_attempts(task.folder)
    tmp = temporary_sibling(task.folder)
    tmp.mkdir(parents=True)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    base = Outcome(
        task.job_id, "failed", task.folder, task.log, attempt=attempt, host=host, pid=pid
    )
    with _job_logger(task) as log:
        log.info("%s (%s) params=%s", task.job_id, task.kind, json.dumps(task.params))
        ctx = JobContext(
            job_id=task.job_id,
            stage=task.stage,
            outdir=tmp,
            params=dict(task.params),
            rows=list(task.rows),
            upstream=task.upstream,
            threads=task.threads,
            log=log,
        )
        try:
            with (
                dask.config.set(scheduler="threads", num_workers=task.threads),
                _private_cwd(),
            ):
                result = kind.func(ctx)
            seconds = time.perf_counter() - t0
            write_text(tmp / records.RESULT, json.dumps(result, indent=2, default=_json_default))
            record = {
                "job": task.job_id,
                "kind": task.kind,
                "kind_version": kind.version,
                "fingerprint": task.fingerprint,
                "params": task.params,
                "inputs": task.inputs,
                "upstream": task.upstream_fingerprints,
                "versions": records.versions(),
                "outputs": records.output_listing(tmp),
                "started": started,
                "seconds": round(seconds, 3),
                "host": host,
                "pid": pid,
                "attempt": attempt,
                "run": task.run_id,
            }
            records.write_record(tmp, record)
            replace(tmp, task.folder)
        except MouseregError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            log.error("failed: %s", exc)
            base.seconds = time.perf_counter() - t0
            base.reason = _one_line(exc)
            return base
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            log.error("error (will be retried if retries remain):\n%s", traceback.format_exc())
            raise
        log.info("done in %.2f s", seconds)
    return dataclasses.replace(
        base,
        status="done",
        seconds=seconds,
        result=json.loads(json.dumps(result, default=_json_default)),
        fingerprint=task.fingerprint,
    )
