"""A real single-node SLURM (scripts/slurm-local.sh): a small batch through ``--cluster slurm``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mousereg.batch import read_manifest, write_csv_manifest

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "slurm-local.sh"
MOUSEREG = str(Path(sys.executable).with_name("mousereg"))
CANNOT_INSTALL = 3  # the script's exit status when the packages cannot be installed
SPEC = """
name: slurm-smoke
stages:
  inspect:
    kind: inspect
  register:
    kind: register-pair
    params: {mode: fiducial, overlay: false, propagate: false}
"""


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Start SLURM for the session (installing it when missing), stop it afterwards."""
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "SLURM_LOCAL_DIR": str(state)}
    if os.geteuid() != 0 and shutil.which("slurmctld") is None:
        reason = "SLURM is not installed and the tests do not run as root (cannot apt-get it)"
        print(f"\nskipping the SLURM test: {reason}")
        pytest.skip(reason)
    started = subprocess.run(
        ["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=600
    )
    if started.returncode == CANNOT_INSTALL:
        reason = f"cannot install SLURM here: {started.stderr.strip()[-300:]}"
        print(f"\nskipping the SLURM test: {reason}")
        pytest.skip(reason)
    if started.returncode != 0:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)
        pytest.fail(f"SLURM did not start:\n{started.stdout}\n{started.stderr}")
    try:
        yield state
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)


def test_small_batch_through_slurm(slurm: Path, phantom_study: Path, tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(SPEC)
    manifest = write_csv_manifest(
        list(read_manifest(phantom_study).rows[:2]), tmp_path / "m.csv", relative=False
    )
    out = tmp_path / "out"
    args = ["run", str(pipeline), "--manifest", str(manifest), "-o", str(out)]
    before = set(REPO.glob("slurm-*.out"))
    # --cluster slurm: the project's profile pipelines/clusters/slurm.yaml (found from the cwd).
    run = subprocess.run(
        [MOUSEREG, *args, "--cluster", "slurm"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "slurm cluster" in run.stderr and "2 workers x 1 threads" in run.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"done": 4, "skipped": 0, "failed": 0, "blocked": 0}
    for sub in ("sub-01_t0", "sub-02_t0"):
        result = json.loads((out / "register" / sub / "result.json").read_text())
        assert result["fiducial"]["truth"]["measured_tre_mean_mm"] < 0.4
        record = json.loads((out / "register" / sub / "done.json").read_text())
        assert record["host"]
    # dask-jobqueue wrote its job logs into the run's folder, not the current directory.
    logs = list((out / "logs" / "dask-jobqueue").glob("*.err"))
    assert logs and set(REPO.glob("slurm-*.out")) == before
    assert "Start worker" in "".join(p.read_text() for p in logs)
