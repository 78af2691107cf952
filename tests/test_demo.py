"""`mousereg demo`: the summary table, and one whole run scored against the phantom's truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mousereg.demo import ROWS, dice_in_roi, format_table


def test_dice_in_roi_counts_only_the_region_and_the_labels_of_the_truth() -> None:
    truth = np.array([1, 1, 1, 1, 2, 2, 0, 3])
    pred = np.array([1, 1, 0, 0, 2, 2, 4, 1])
    roi = np.array([1, 1, 1, 1, 1, 1, 1, 0], dtype=bool)  # label 3 lies outside
    mean, low = dice_in_roi(pred, truth, roi)
    assert low == pytest.approx(2 * 2 / (2 + 4))  # label 1
    assert mean == pytest.approx((2 / 3 + 1.0) / 2)  # labels 1 and 2; 4 is not in the truth


def test_format_table_has_a_row_per_score_and_a_column_per_subject() -> None:
    scores = {
        "sub-01": {"hole_tre_mean_mm": 0.0412, "mu_ct_fat_pct": -1.234, "dice_ct_to_mr_min": 0.9},
        "sub-02": {"hole_tre_mean_mm": float("nan"), "seconds_mumap": 12.345},
    }
    lines = format_table(scores).splitlines()
    assert lines[0] == "| score | sub-01 | sub-02 | target |"
    assert len(lines) == 2 + len(ROWS)
    cells = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in lines[2:]}
    assert cells["hole TRE mean (mm)"] == ["0.041", "n/a", "< 0.2 |"]
    assert cells["CT µ error fat (%)"][0] == "-1.23"
    assert cells["time µ-maps (s)"][:2] == ["n/a", "12.3"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from mousereg.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    return run_demo(out, say=lambda line: None)


@pytest.mark.slow
def test_demo_scores_every_stage_against_the_truth(demo: dict[str, Any]) -> None:
    scores = demo["scores"]
    assert list(scores) == ["sub-01", "sub-02", "sub-03"]
    for s in scores.values():
        # the holder is rigid: holes land on their true partners within a voxel (0.28 mm)
        assert s["hole_tre_mean_mm"] < 0.2 and s["hole_tre_max_mm"] < 0.3
        # one pair's rigid error is one draw of a 6-parameter random error whose RMS the
        # prediction gives: a single ratio may leave [0.5, 2] (sub-02: 2.04), the mean may not
        assert 1 / 3 < s["tre_ratio"] < 3.0
        # the deformable stage recovers part of the soft-tissue motion the holes cannot see
        assert s["landmark_tre_deformable_mm"] < s["landmark_tre_fiducial_mm"]
        assert s["dice_ct_to_mr_mean"] > 0.85 and s["dice_mr_to_ct_mean"] > 0.8
        assert abs(s["mu_ct_soft_pct"]) < 3 and abs(s["mu_ct_fat_pct"]) < 5
        assert abs(s["mu_ct_bone_pct"]) < 10 and s["dixon_acf_pct"] < 5
    # the fiducial TRE prediction is calibrated within a factor 2 (geometric mean of the pairs)
    ratios = [s["tre_ratio"] for s in scores.values()]
    assert 0.5 < float(np.exp(np.mean(np.log(ratios)))) < 2.0


@pytest.mark.slow
def test_demo_writes_the_report_and_summary(demo: dict[str, Any]) -> None:
    report = Path(demo["report"])
    assert report.is_file() and "sub-03" in report.read_text()
    saved = json.loads((report.parents[3] / "summary.json").read_text())
    assert saved["scores"] == demo["scores"]
    jobs = json.loads(Path(demo["run_summary"]).read_text())
    assert jobs["counts"]["done"] + jobs["counts"]["skipped"] == 10  # 3 x 3 subject jobs + report


def test_cli_demo_exits_2_with_the_failed_job_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    import mousereg.batch
    import mousereg.phantom
    from mousereg.batch import RunSummary
    from mousereg.batch.execute import Outcome
    from mousereg.cli import main

    def run_pipeline(*args: Any, **kwargs: Any) -> RunSummary:
        log = tmp_path / "run" / "logs" / "register" / "sub-01_t0.log"
        bad = Outcome("register/sub-01_t0", "failed", tmp_path, log, reason="no marker holes")
        return RunSummary([bad], tmp_path / "run", "test-run")

    monkeypatch.setattr(mousereg.phantom, "write_study", lambda out, **kw: out / "manifest.csv")
    monkeypatch.setattr(mousereg.batch, "run_pipeline", run_pipeline)
    result = CliRunner().invoke(main, ["demo", str(tmp_path)])
    assert result.exit_code == 2
    assert "register/sub-01_t0 failed: no marker holes" in result.output
