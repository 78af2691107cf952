"""The batch runner on a real LocalCluster (worker processes): numbers, resume, bad input, CLI."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import SimpleITK as sitk
from click.testing import CliRunner

from mousereg.batch import read_manifest, run_pipeline, write_csv_manifest
from mousereg.batch.records import file_sha256
from mousereg.cli import main

INSPECT = """
name: inspect-and-report
stages:
  inspect:
    kind: inspect
    params: {columns: [ct, ct_labels]}
  report:
    kind: study-report
    needs: [inspect]
"""
REGISTER = """
name: fiducial-pairs
stages:
  register:
    kind: register-pair
    params: {mode: fiducial, overlay: true}
  report:
    kind: study-report
    needs: [register]
"""


@pytest.fixture(scope="module")
def client() -> Any:
    """A LocalCluster with 2 worker processes, shared by the tests of this module."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def _spec(tmp: Path, text: str, name: str = "pipeline.yaml") -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def _subset(manifest: Path, n: int, dst: Path, copy: bool = False) -> Path:
    """A manifest of the first ``n`` subjects (their files copied into ``dst`` when ``copy``)."""
    rows = list(read_manifest(manifest).rows[:n])
    if copy:
        for r in rows:
            shutil.copytree(manifest.parent / r.subject, dst / r.subject)
        rows = [
            dataclasses.replace(
                r, paths={c: dst / p.relative_to(manifest.parent) for c, p in r.paths.items()}
            )
            for r in rows
        ]
    dst.mkdir(parents=True, exist_ok=True)
    return write_csv_manifest(rows, dst / "manifest.csv")


def test_fiducial_batch_numbers_records_and_report(
    phantom_study: Path, tmp_path: Path, client: Any
) -> None:
    manifest = _subset(phantom_study, 2, tmp_path / "in")
    out = tmp_path / "out"
    lines: list[str] = []
    summary = run_pipeline(
        _spec(tmp_path, REGISTER), manifest, out, cluster=client, progress=lines.append
    )
    assert summary.ok and summary.count("done") == 3
    assert sum(line.startswith("[") for line in lines) == 3  # one progress line per job
    for sub in ("sub-01_t0", "sub-02_t0"):
        result = json.loads((out / "register" / sub / "result.json").read_text())
        truth = result["fiducial"]["truth"]
        # The holes' fit is sub-voxel: TRE against the phantom truth well under the MRI voxel.
        assert truth["measured_tre_mean_mm"] < 0.4
        ev = result["evaluation"]
        assert ev["transform_error_vs_truth"]["mean_mm"] < 0.5
        assert ev["ct_labels_in_mr_vs_mr_labels"]["mean"]["dice"] > 0.8
        record = json.loads((out / "register" / sub / "done.json").read_text())
        ct = read_manifest(manifest).rows[0 if sub == "sub-01_t0" else 1].paths["ct"]
        assert record["inputs"][f"{sub}:ct"] == file_sha256(ct)
        assert record["params"]["mode"] == "fiducial"
        assert record["versions"]["SimpleITK"]
        assert set(record["outputs"]) >= {"transform.h5", "result.json", "overlay.png"}
        t = sitk.ReadTransform(str(out / "register" / sub / "transform.h5"))
        assert t.GetDimension() == 3
    html = (out / "report" / "study" / "report.html").read_text()
    assert "sub-02" in html and "data:image/png;base64," in html and "Dice" in html
    assert (out / "logs" / "register" / "sub-01_t0.log").read_text().count("# start run=") == 1


def test_rerun_skips_done_and_redoes_what_changed(
    phantom_study: Path, tmp_path: Path, client: Any
) -> None:
    manifest = _subset(phantom_study, 3, tmp_path / "in", copy=True)
    spec = _spec(tmp_path, INSPECT)
    out = tmp_path / "out"
    first = run_pipeline(spec, manifest, out, cluster=client)
    assert first.count("done") == 4
    again = run_pipeline(spec, manifest, out, cluster=client)
    assert (again.count("skipped"), again.count("done")) == (4, 0)
    # Change one subject's CT: that subject and the study report are redone, nothing else.
    ct = tmp_path / "in" / "sub-02" / "ct.nii.gz"
    img = sitk.ReadImage(str(ct))
    sitk.WriteImage(img + 1.0, str(ct))
    changed = run_pipeline(spec, manifest, out, cluster=client)
    status = {o.job_id: o.status for o in changed.outcomes}
    assert status == {
        "inspect/sub-01_t0": "skipped",
        "inspect/sub-02_t0": "done",
        "inspect/sub-03_t0": "skipped",
        "report/study": "done",
    }
    new_mean = json.loads((out / "inspect" / "sub-02_t0" / "result.json").read_text())
    old = read_manifest(manifest).rows[1]
    assert new_mean["images"]["ct"]["mean"] == pytest.approx(
        float(sitk.GetArrayFromImage(sitk.ReadImage(str(old.paths["ct"]))).mean()), rel=1e-6
    )
    # Change a parameter: every job of that stage is redone.
    spec2 = _spec(tmp_path, INSPECT.replace("[ct, ct_labels]", "[ct]"), "p2.yaml")
    redo = run_pipeline(spec2, manifest, out, cluster=client)
    assert redo.count("done") == 4
    assert not list(out.rglob("*.tmp-*"))


def test_bad_rows_fail_alone_with_their_reason(
    phantom_study: Path, tmp_path: Path, client: Any
) -> None:
    manifest = _subset(phantom_study, 4, tmp_path / "in", copy=True)
    (tmp_path / "in" / "sub-02" / "ct_labels.nii.gz").unlink()
    broken = tmp_path / "in" / "sub-03" / "ct.nii.gz"
    broken.write_bytes(broken.read_bytes()[:300])  # truncated: unreadable
    out = tmp_path / "out"
    summary = run_pipeline(_spec(tmp_path, INSPECT), manifest, out, cluster=client)
    by_id = {o.job_id: o for o in summary.outcomes}
    assert by_id["inspect/sub-02_t0"].status == "failed"
    assert (
        "row 2 (subject sub-02, timepoint 0): ct_labels file" in by_id["inspect/sub-02_t0"].reason
    )
    assert "not found" in by_id["inspect/sub-02_t0"].reason
    assert by_id["inspect/sub-03_t0"].status == "failed"
    assert "ct.nii.gz" in by_id["inspect/sub-03_t0"].reason
    assert by_id["inspect/sub-03_t0"].attempt == 1  # a user error is not retried
    assert by_id["inspect/sub-01_t0"].status == by_id["inspect/sub-04_t0"].status == "done"
    assert by_id["report/study"].status == "done"  # the study report covers what finished
    assert not summary.ok
    table = summary.table()
    assert "failed" in table and "logs/inspect/sub-03_t0.log" in table
    assert "not found" in (out / "logs" / "inspect" / "sub-02_t0.log").read_text()
    tsv = (out / "summary.tsv").read_text().splitlines()
    assert len(tsv) == 6 and tsv[0].startswith("job\tstatus")


def test_cli_exit_status_for_failed_jobs_and_input_errors(
    phantom_study: Path, tmp_path: Path
) -> None:
    manifest = _subset(phantom_study, 1, tmp_path / "in")
    text = manifest.read_text().replace("sub-01/ct.nii.gz", "sub-01/missing.nii.gz")
    bad_manifest = tmp_path / "in" / "bad.csv"
    bad_manifest.write_text(text.replace("sub-01/", str(phantom_study.parent / "sub-01") + "/"))
    runner = CliRunner()
    spec = _spec(tmp_path, INSPECT)
    res = runner.invoke(
        main, ["run", str(spec), "--manifest", str(bad_manifest), "-o", str(tmp_path / "o")]
    )
    assert res.exit_code == 1, res.output
    assert "missing.nii.gz not found" in res.output
    bad_yaml = _spec(
        tmp_path, INSPECT.replace("kind: inspect", "kind: inspect\n    nedds: []"), "b.yaml"
    )
    res = runner.invoke(
        main, ["run", str(bad_yaml), "--manifest", str(manifest), "-o", str(tmp_path / "o2")]
    )
    assert res.exit_code == 2
    assert "b.yaml: unknown key 'stages.inspect.nedds'" in res.output
    out3 = tmp_path / "o3"
    res = runner.invoke(
        main, ["run", str(spec), "--manifest", str(manifest), "-o", str(out3), "--cluster", "lsf"]
    )
    assert res.exit_code == 2
    assert "cluster profile 'lsf' not found" in res.output
    assert not out3.exists()


ATLAS = """
name: atlas-too-few
stages:
  register:
    kind: register-pair
    params: {mode: fiducial, overlay: false, propagate: false, evaluate: false}
  atlas:
    kind: build-atlas
    needs: [register]
    params: {min_subjects: 3}
  report:
    kind: study-report
    needs: [register, atlas]
"""


def test_study_stage_reports_too_few_subjects(
    phantom_study: Path, tmp_path: Path, client: Any
) -> None:
    manifest = _subset(phantom_study, 2, tmp_path / "in")
    out = tmp_path / "out"
    summary = run_pipeline(_spec(tmp_path, ATLAS), manifest, out, cluster=client)
    status = {o.job_id: (o.status, o.reason) for o in summary.outcomes}
    assert status["register/sub-01_t0"][0] == status["register/sub-02_t0"][0] == "done"
    assert status["atlas/study"][0] == "failed"
    assert "only 2 registered subjects" in status["atlas/study"][1]
    assert status["report/study"][0] == "done"  # reports what finished, lists the failure
    html = (out / "report" / "study" / "report.html").read_text()
    assert "atlas/study" in html and "only 2 registered subjects" in html
