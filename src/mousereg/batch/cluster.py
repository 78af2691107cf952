"""Dask clusters for batch runs: LocalCluster, SLURM/PBS through dask-jobqueue, or an address.

Profiles live in ``pipelines/clusters/NAME.yaml`` (docs/batch.md)::

    kind: local | slurm | pbs
    workers: 2            # Dask workers (local) or batch jobs (slurm/pbs); default cores//threads
    threads: 1            # ITK/elastix/ANTs threads per job; default: cores // workers
    memory: 4GB           # per worker (local: memory_limit; slurm/pbs: job memory)
    startup_timeout: 300  # seconds to wait for the first worker
    jobqueue: {...}       # slurm/pbs only: extra SLURMCluster/PBSCluster keyword arguments

Every worker runs one mousereg job at a time (one Dask thread) and pins ITK, elastix, ANTs, OpenMP
and BLAS to ``threads``, so workers × threads = cores. Only this module creates clusters.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mousereg.errors import InputError, MouseregError

KINDS = ("local", "slurm", "pbs")
PROFILE_KEYS = {"kind", "workers", "threads", "memory", "startup_timeout", "jobqueue"}
JOBQUEUE_KEYS = {
    "queue",
    "account",
    "walltime",
    "job_extra_directives",
    "job_script_prologue",
    "log_directory",
    "python",
    "interface",
    "local_directory",
    "death_timeout",
    "resource_spec",
    "job_directives_skip",
    "worker_extra_args",
}


@dataclasses.dataclass(frozen=True)
class ClusterProfile:
    """A validated cluster profile."""

    name: str
    kind: str = "local"
    workers: int | None = None
    threads: int | None = None
    memory: str = "auto"
    startup_timeout: float = 300.0
    jobqueue: dict[str, Any] = dataclasses.field(default_factory=dict)
    source: Path | None = None

    def resolved(self, workers: int | None = None) -> tuple[int, int]:
        """(workers, threads per job) with workers × threads = cores where not given."""
        cores = os.cpu_count() or 1
        n = workers or self.workers
        t = self.threads
        if n is None:
            n = max(1, cores // (t or 1))
        if t is None:
            t = max(1, cores // n)
        return int(n), int(t)


def _positive(where: str, value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        msg = f"{where} must be a whole number >= 1, got {value!r}"
        raise InputError(msg)
    return value


def parse_profile(name: str, doc: Any, source: Path | None = None) -> ClusterProfile:
    """Validate a cluster profile document (unknown keys are an error naming the key)."""
    where = str(source) if source else f"cluster profile {name!r}"
    if not isinstance(doc, dict):
        msg = f"{where}: a cluster profile is a mapping with 'kind'"
        raise InputError(msg)
    for key in doc:
        if key not in PROFILE_KEYS:
            msg = f"{where}: unknown key {key!r}; allowed: {', '.join(sorted(PROFILE_KEYS))}"
            raise InputError(msg)
    kind = doc.get("kind", "local")
    if kind not in KINDS:
        msg = f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}"
        raise InputError(msg)
    jq = doc.get("jobqueue") or {}
    if not isinstance(jq, dict):
        msg = f"{where}: jobqueue must be a mapping"
        raise InputError(msg)
    for key in jq:
        if key not in JOBQUEUE_KEYS:
            allowed = ", ".join(sorted(JOBQUEUE_KEYS))
            msg = f"{where}: unknown key 'jobqueue.{key}'; allowed: {allowed}"
            raise InputError(msg)
    if jq and kind == "local":
        msg = f"{where}: 'jobqueue' options apply to slurm/pbs profiles only"
        raise InputError(msg)
    return ClusterProfile(
        name=name,
        kind=kind,
        workers=_positive(f"{where}: workers", doc.get("workers")),
        threads=_positive(f"{where}: threads", doc.get("threads")),
        memory=str(doc.get("memory", "auto" if kind == "local" else "4GB")),
        startup_timeout=float(doc.get("startup_timeout", 300)),
        jobqueue=dict(jq),
        source=source,
    )


def profile_dirs(pipeline: Path | None) -> list[Path]:
    """Where profiles are looked up: beside the pipeline, then ./pipelines/clusters."""
    dirs = []
    if pipeline is not None:
        dirs.append(pipeline.resolve().parent / "clusters")
    dirs.append(Path.cwd() / "pipelines" / "clusters")
    return list(dict.fromkeys(dirs))


def load_profile(name: str, pipeline: Path | None = None) -> ClusterProfile:
    """The profile ``name`` (or a YAML path); ``local`` falls back to built-in defaults."""
    import yaml

    if name.endswith((".yaml", ".yml")):
        candidates = [Path(name)]
    else:
        candidates = [d / f"{name}.yaml" for d in profile_dirs(pipeline)]
    for path in candidates:
        if path.is_file():
            try:
                doc = yaml.safe_load(path.read_text())
            except yaml.YAMLError as exc:
                msg = f"{path}: not valid YAML ({str(exc).splitlines()[0]})"
                raise InputError(msg) from exc
            return parse_profile(path.stem, doc, path.resolve())
    if name == "local":
        return ClusterProfile(name="local")
    available = sorted({p.stem for d in profile_dirs(pipeline) for p in d.glob("*.yaml")})
    msg = (
        f"cluster profile {name!r} not found (looked for {', '.join(map(str, candidates))}); "
        f"available: {', '.join(available) or 'none'}; or pass tcp://HOST:PORT"
    )
    raise InputError(msg)


def _jobqueue_cluster(profile: ClusterProfile, threads: int, logs: Path) -> Any:
    from mousereg.batch.threads import pin_env

    options = dict(profile.jobqueue)
    prologue = [f"export {k}={v}" for k, v in pin_env(threads).items()]
    options["job_script_prologue"] = [*options.get("job_script_prologue", []), *prologue]
    options.setdefault("log_directory", str(logs))
    options.setdefault("python", sys.executable)
    Path(options["log_directory"]).mkdir(parents=True, exist_ok=True)
    common = {
        "cores": 1,  # one Dask thread: one mousereg job at a time per worker
        "processes": 1,
        "memory": profile.memory,
        "scheduler_options": {"dashboard_address": ":0"},
        **options,
    }
    if profile.kind == "slurm":
        from dask_jobqueue import SLURMCluster

        return SLURMCluster(job_cpu=threads, **common)
    from dask_jobqueue import PBSCluster

    # PBS: ask for the job's CPUs explicitly unless the profile gives a resource_spec.
    common.setdefault("resource_spec", f"select=1:ncpus={threads}:mem={profile.memory}")
    return PBSCluster(**common)


@dataclasses.dataclass
class ClusterInfo:
    """What the runner tells the user about the cluster."""

    description: str
    workers: int
    threads: int
    dashboard: str | None


@contextlib.contextmanager
def open_client(
    target: str | Any = "local",
    *,
    workers: int | None = None,
    threads: int | None = None,
    pipeline: Path | None = None,
    logs: Path | None = None,
    retries: int = 2,
) -> Iterator[tuple[Any, ClusterInfo]]:
    """Start (or connect to) a cluster and yield ``(client, info)``; everything stops on exit.

    Args:
        target: ``local``, ``slurm``, ``pbs``, another profile name or YAML path, a scheduler
            address ``tcp://HOST:PORT``, or a ``distributed.Client`` (left running).
        workers: number of workers (jobs on SLURM/PBS); overrides the profile.
        threads: ITK/elastix/ANTs threads per job; overrides the profile.
        pipeline: the pipeline file (profiles are looked up beside it).
        logs: folder for dask-jobqueue's job logs.
        retries: how often a task whose worker died is rescheduled.
    """
    import dask
    from distributed import Client, LocalCluster

    from mousereg.batch.threads import PinThreads, pin_env

    if not isinstance(target, str):  # an existing Client: use it, leave it running
        t = threads or 1
        target.register_plugin(PinThreads(t))
        n = len(target.scheduler_info()["workers"])
        yield target, ClusterInfo("the given client", n, t, _dashboard(target))
        return
    with dask.config.set({"distributed.scheduler.allowed-failures": retries}):
        if "://" in target:
            client = Client(target, timeout=30)
            try:
                n = len(client.scheduler_info()["workers"])
                t = threads or 1
                client.register_plugin(PinThreads(t))
                info = ClusterInfo(f"scheduler {target}", n, t, _dashboard(client))
                yield client, info
            finally:
                client.close()
            return
        profile = load_profile(target, pipeline)
        n, t = profile.resolved(workers)
        if threads is not None:
            t = threads
        if profile.kind == "local":
            cluster: Any = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                memory_limit=profile.memory,
                dashboard_address=":0",
                env=pin_env(t),
            )
        else:
            cluster = _jobqueue_cluster(profile, t, logs or Path.cwd() / "dask-jobqueue-logs")
            cluster.scale(n)
        try:
            client = Client(cluster)
            try:
                client.register_plugin(PinThreads(t))
                if profile.kind != "local":
                    _wait_first_worker(client, profile)
                where = f"{profile.kind} cluster" + (
                    f" ({profile.source})" if profile.source else ""
                )
                yield client, ClusterInfo(where, n, t, _dashboard(client))
            finally:
                client.close()
        finally:
            cluster.close()


def _wait_first_worker(client: Any, profile: ClusterProfile) -> None:
    try:
        client.wait_for_workers(1, timeout=profile.startup_timeout)
    except TimeoutError as exc:
        msg = (
            f"no {profile.kind} worker connected within {profile.startup_timeout:.0f} s; check "
            "the queue (squeue/qstat) and the job logs"
        )
        raise MouseregError(msg) from exc


def _dashboard(client: Any) -> str | None:
    """The dashboard link when the dashboard is up (it needs bokeh)."""
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return None
    link = client.dashboard_link
    return str(link) if link else None
