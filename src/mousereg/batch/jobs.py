"""The registry of job kinds: small functions a pipeline stage runs once per subject or per study.

A job kind takes a :class:`JobContext` (the manifest row or rows, the stage's parameters, the
results of the stages it needs, a temporary output folder) and returns a small JSON-able dict; the
runner writes that dict as ``result.json`` beside the outputs and publishes the folder atomically.

Example:
    >>> @job_kind("inspect", scope="subject", params={"stats": True})  # doctest: +SKIP
    ... def inspect(ctx: JobContext) -> dict[str, Any]:
    ...     ...
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from mousereg.batch.manifest import Row
from mousereg.errors import InputError

Scope = Literal["subject", "study"]
# Modules that register the built-in kinds (imported on first lookup).
BUILTIN_MODULES = (
    "mousereg.batch.kinds.inspect",
    "mousereg.batch.kinds.register",
    "mousereg.batch.kinds.mumap",
    "mousereg.batch.kinds.atlas",
    "mousereg.batch.kinds.report",
)


@dataclasses.dataclass(frozen=True)
class Upstream:
    """The outcome of a job this job needs: its folder and ``result.json`` content."""

    job_id: str
    stage: str
    subject: str
    status: str
    folder: Path
    result: dict[str, Any]
    seconds: float = 0.0
    reason: str = ""
    kind: str = ""


@dataclasses.dataclass
class JobContext:
    """What a job kind receives.

    Args:
        job_id: ``stage/name``.
        stage: the stage name in the pipeline.
        outdir: a temporary folder to write outputs to (published atomically on success).
        params: the stage's parameters (defaults filled in).
        rows: the manifest rows: one for a per-subject job, all rows for a per-study job.
        upstream: stage name -> outcomes of the needed jobs (one per subject or one per study).
        threads: threads this job may use (ITK/elastix/ANTs are pinned to it).
        log: the job's logger (writes to its log file).
    """

    job_id: str
    stage: str
    outdir: Path
    params: dict[str, Any]
    rows: list[Row]
    upstream: dict[str, list[Upstream]]
    threads: int = 1
    log: logging.Logger = dataclasses.field(default_factory=lambda: logging.getLogger("mousereg"))

    @property
    def row(self) -> Row:
        """The row of a per-subject job."""
        if len(self.rows) != 1:
            msg = f"{self.job_id}: a per-study job has {len(self.rows)} rows, not one"
            raise ValueError(msg)
        return self.rows[0]

    def needed(self, stage: str) -> list[Upstream]:
        """The successful outcomes of a needed stage (raises when the pipeline lacks it)."""
        if stage not in self.upstream:
            msg = f"{self.job_id}: this job needs the stage {stage!r}; add it to 'needs'"
            raise InputError(msg)
        return [u for u in self.upstream[stage] if u.status in ("done", "skipped")]

    def find(self, kind_stage: str) -> Upstream | None:
        """The single successful outcome of a needed per-subject stage, or None."""
        found = self.needed(kind_stage)
        return found[0] if found else None


JobFunction = Callable[[JobContext], dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class JobKind:
    """A registered job kind.

    Args:
        name: the ``kind:`` of a pipeline stage.
        func: the function run on a worker.
        scope: ``"subject"`` (one job per manifest row) or ``"study"`` (one job for all rows).
        params: parameter names with their defaults (the schema of ``params:``; types follow the
            defaults, ``None`` accepts anything).
        requires: manifest columns a row must fill; a tuple inside means "any of these".
        version: bump when the outputs change meaning, so done jobs are redone.
        description: one line for ``docs/batch.md`` and error messages.
    """

    name: str
    func: JobFunction
    scope: Scope
    params: Mapping[str, Any]
    requires: tuple[str | tuple[str, ...], ...] = ()
    version: str = "1"
    description: str = ""

    def missing_columns(self, row: Row) -> list[str]:
        """The required columns ``row`` does not fill (alternatives joined by '|')."""
        missing = []
        for req in self.requires:
            options = (req,) if isinstance(req, str) else req
            if not any(row.has(c) for c in options):
                missing.append("|".join(options))
        return missing


_REGISTRY: dict[str, JobKind] = {}
_loaded = False


def job_kind(
    name: str,
    *,
    scope: Scope,
    params: Mapping[str, Any] | None = None,
    requires: tuple[str | tuple[str, ...], ...] = (),
    version: str = "1",
) -> Callable[[JobFunction], JobFunction]:
    """Register the decorated function as job kind ``name``."""

    def register(func: JobFunction) -> JobFunction:
        doc = (func.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = JobKind(
            name=name,
            func=func,
            scope=scope,
            params=dict(params or {}),
            requires=requires,
            version=version,
            description=doc[0] if doc else "",
        )
        return func

    return register


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def get_kind(name: str) -> JobKind:
    """The job kind called ``name``; an :class:`InputError` listing the known kinds otherwise."""
    _load_builtins()
    if name not in _REGISTRY:
        msg = f"unknown job kind {name!r}; known kinds: {', '.join(sorted(_REGISTRY))}"
        raise InputError(msg)
    return _REGISTRY[name]


def kinds() -> dict[str, JobKind]:
    """Every registered job kind by name."""
    _load_builtins()
    return dict(_REGISTRY)
