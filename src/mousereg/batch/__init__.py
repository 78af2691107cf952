"""Batch runs on Dask: manifests, pipeline specs, clusters, resumable jobs and their records."""

from __future__ import annotations

from mousereg.batch.isatab import read_isatab, write_isatab
from mousereg.batch.jobs import JobContext, get_kind, job_kind
from mousereg.batch.manifest import Manifest, Row, read_manifest, write_csv_manifest
from mousereg.batch.runner import RunSummary, run_pipeline
from mousereg.batch.spec import PipelineSpec, load_spec

__all__ = [
    "JobContext",
    "Manifest",
    "PipelineSpec",
    "Row",
    "RunSummary",
    "get_kind",
    "job_kind",
    "load_spec",
    "read_isatab",
    "read_manifest",
    "run_pipeline",
    "write_csv_manifest",
    "write_isatab",
]
