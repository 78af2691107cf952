"""Killed workers and killed runs: every job done exactly once, resumed runs skip what is done."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mousereg.batch import read_manifest, write_csv_manifest

SPEC = """
name: fiducial-pairs
retries: 2
stages:
  register:
    kind: register-pair
    params: {mode: fiducial, overlay: false, propagate: false, evaluate: false}
  report:
    kind: study-report
    needs: [register]
"""
MOUSEREG = str(Path(sys.executable).with_name("mousereg"))
START = re.compile(r"# start run=(\S+) attempt=(\d+) job=(\S+) host=\S+ pid=(\d+)")
TIMEOUT = 900


def _inputs(phantom_study: Path, tmp_path: Path, n: int) -> tuple[Path, Path]:
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(SPEC)
    rows = list(read_manifest(phantom_study).rows[:n])
    return spec, write_csv_manifest(rows, tmp_path / "manifest.csv", relative=False)


def _start(spec: Path, manifest: Path, out: Path) -> subprocess.Popen[bytes]:
    args = [MOUSEREG, "run", str(spec), "--manifest", str(manifest), "-o", str(out)]
    log = (out.parent / f"{out.name}.stderr").open("ab")
    return subprocess.Popen(
        [*args, "--workers", "2"], stdout=log, stderr=log, start_new_session=True
    )


def _wait_for(condition, what: str, proc: subprocess.Popen[bytes]) -> object:
    t0 = time.monotonic()
    while time.monotonic() - t0 < TIMEOUT:
        found = condition()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"the run ended (status {proc.returncode}) before {what}")
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def _running_job(out: Path) -> tuple[str, int] | None:
    """(job, worker pid) of a register job that has started and is not done."""
    for log in sorted((out / "logs" / "register").glob("*.log")):
        starts = START.findall(log.read_text(errors="replace"))
        if starts and not (out / "register" / log.stem / "done.json").exists():
            return starts[-1][2], int(starts[-1][3])
    return None


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def _assert_complete(out: Path, n: int) -> None:
    """Every job has one published folder with its record, and no half-written folder is left."""
    jobs = [j["job"] for j in _summary(out)["jobs"]]
    assert len(jobs) == len(set(jobs)) == n + 1
    for stage in ("register", "report"):
        folders = [p for p in (out / stage).iterdir()]
        assert all(not p.name.startswith(".") for p in folders), folders
        assert all((p / "done.json").is_file() for p in folders)
    assert len(list((out / "register").iterdir())) == n


def test_killed_worker_job_is_retried_and_done_once(phantom_study: Path, tmp_path: Path) -> None:
    n = 4
    spec, manifest = _inputs(phantom_study, tmp_path, n)
    out = tmp_path / "out"
    proc = _start(spec, manifest, out)
    try:
        job, pid = _wait_for(lambda: _running_job(out), "a running job", proc)  # type: ignore[misc]
        os.kill(pid, signal.SIGKILL)
        assert proc.wait(TIMEOUT) == 0, (tmp_path / "out.stderr").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    summary = _summary(out)
    assert {j["status"] for j in summary["jobs"]} == {"done"}
    _assert_complete(out, n)
    killed = next(j for j in summary["jobs"] if j["job"] == job)
    assert killed["attempt"] == 2  # the killed attempt, then the retry on a fresh worker
    record = json.loads((out / job / "done.json").read_text())
    assert record["attempt"] == 2 and record["pid"] != pid
    runs = [m[0] for m in START.findall((out / "logs" / f"{job}.log").read_text())]
    assert len(runs) == 2 and len(set(runs)) == 1


def _same_outputs(a: Path, b: Path) -> None:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        pa, pb = a / rel, b / rel
        if rel.name.endswith(".nii.gz"):
            ia, ib = sitk.ReadImage(str(pa)), sitk.ReadImage(str(pb))
            assert np.array_equal(sitk.GetArrayFromImage(ia), sitk.GetArrayFromImage(ib)), rel
            assert ia.GetOrigin() == ib.GetOrigin() and ia.GetSpacing() == ib.GetSpacing()
        elif rel.suffix == ".h5":
            ta, tb = sitk.ReadTransform(str(pa)), sitk.ReadTransform(str(pb))
            assert ta.GetParameters() == tb.GetParameters(), rel
            assert ta.GetFixedParameters() == tb.GetFixedParameters(), rel
        elif rel.suffix == ".json" or rel.name in (".zattrs", ".zarray", ".zgroup"):
            if rel.name != "done.json":
                assert _strip(json.loads(pa.read_text())) == _strip(json.loads(pb.read_text()))
        elif rel.suffix != ".html":  # Zarr chunks, PNG: same bytes (HTML reports show times)
            assert pa.read_bytes() == pb.read_bytes(), rel


def _strip(doc: object) -> object:
    """``doc`` without wall times (they differ between any two runs)."""
    if isinstance(doc, dict):
        return {k: _strip(v) for k, v in doc.items() if "seconds" not in k}
    if isinstance(doc, list):
        return [_strip(v) for v in doc]
    return doc


def test_killed_run_resumes_skipping_done_jobs(phantom_study: Path, tmp_path: Path) -> None:
    n = 3
    spec, manifest = _inputs(phantom_study, tmp_path, n)
    out = tmp_path / "out"
    proc = _start(spec, manifest, out)
    try:
        _wait_for(lambda: list(out.glob("register/*/done.json")), "a finished job", proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI, the scheduler, nannies and workers
        proc.wait(60)
    done_before = {p.parent.name for p in out.glob("register/*/done.json")}
    assert len(done_before) >= 1
    resumed = _start(spec, manifest, out)
    assert resumed.wait(TIMEOUT) == 0, (tmp_path / "out.stderr").read_text()[-3000:]
    summary = _summary(out)
    status = {j["job"]: j["status"] for j in summary["jobs"]}
    assert {j for j, s in status.items() if s == "skipped"} == {
        f"register/{name}" for name in done_before
    }
    assert summary["counts"]["skipped"] == len(done_before)
    assert summary["counts"]["done"] == n + 1 - len(done_before)
    _assert_complete(out, n)
    reference = tmp_path / "reference"
    uninterrupted = _start(spec, manifest, reference)
    assert uninterrupted.wait(TIMEOUT) == 0
    _same_outputs(out / "register", reference / "register")
    html = (out / "report" / "study" / "report.html").read_text()
    assert all(f"sub-0{i}" in html for i in range(1, n + 1))
