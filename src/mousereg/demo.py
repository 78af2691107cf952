"""`mousereg demo`: the main job on a small synthetic study, scored against its ground truth.

1. writes a 3-mouse phantom study at test resolution (seed 0) with its truth;
2. runs ``pipelines/study.yaml`` on it through the batch runner on a local Dask cluster of 2
   workers, exactly as ``mousereg run pipelines/study.yaml --manifest ... --workers 2`` does:
   inspect, fiducial + deformable CT->MRI registration, labels carried both ways, µ-maps from CT and
   Dixon MRI, the HTML study report;
3. scores each subject's outputs against the truth files (:func:`score_subject`) and prints one
   table: a row per score, a column per subject.

The atlas is not part of the demo (its build takes minutes even at test resolution); the closing
lines say how to run it.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mousereg.errors import MouseregError
from mousereg.io.atomic import write_text

if TYPE_CHECKING:
    from mousereg.batch import Row

DEMO_SUBJECTS = 3
DEMO_SEED = 0
DEMO_WORKERS = 2
PIPELINE = "study.yaml"

# (key, label, format, target): the rows of the printed table.
ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("hole_tre_mean_mm", "hole TRE mean (mm)", "{:.3f}", "< 0.2"),
    ("hole_tre_max_mm", "hole TRE max (mm)", "{:.3f}", "< 0.3"),
    ("tre_ratio", "predicted/measured TRE (fiducial)", "{:.2f}", "0.33-3, mean 0.5-2"),
    ("landmark_tre_fiducial_mm", "soft-tissue landmark TRE, fiducial (mm)", "{:.3f}", ""),
    ("landmark_tre_deformable_mm", "soft-tissue landmark TRE, deformable (mm)", "{:.3f}", "< fid."),
    ("dice_ct_to_mr_mean", "Dice CT->MR mean", "{:.3f}", "> 0.85"),
    ("dice_ct_to_mr_min", "Dice CT->MR min", "{:.3f}", ""),
    ("dice_mr_to_ct_mean", "Dice MR->CT mean (MRI field of view)", "{:.3f}", "> 0.8"),
    ("dice_mr_to_ct_min", "Dice MR->CT min (MRI field of view)", "{:.3f}", ""),
    ("mu_ct_soft_pct", "CT µ error soft tissue (%)", "{:+.2f}", "±3"),
    ("mu_ct_fat_pct", "CT µ error fat (%)", "{:+.2f}", "±5"),
    ("mu_ct_bone_pct", "CT µ error bone (%)", "{:+.2f}", "±10"),
    ("dixon_acf_pct", "Dixon µ ACF error mean (%)", "{:.2f}", "< 5"),
    ("seconds_inspect", "time inspect (s)", "{:.1f}", ""),
    ("seconds_register", "time register + labels (s)", "{:.1f}", ""),
    ("seconds_mumap", "time µ-maps (s)", "{:.1f}", ""),
)


def pipeline_path() -> Path:
    """``pipelines/study.yaml`` of the source tree (or of the current folder)."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        path = root / "pipelines" / PIPELINE
        if path.is_file():
            return path
    msg = f"pipelines/{PIPELINE} not found; run the demo from the mousereg source folder"
    raise MouseregError(msg)


def _points(path: Path, prefix: str) -> np.ndarray:
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    return np.array([[float(r[f"{prefix}_{a}"]) for a in "xyz"] for r in rows])


def _tre(mapped: np.ndarray, target: np.ndarray) -> np.ndarray:
    return np.asarray(np.linalg.norm(mapped - target, axis=1))


def _dice(evaluation: dict[str, Any]) -> tuple[float, float]:
    dice = [r["dice"] for r in evaluation["labels"] if r["in_truth"]]
    return float(np.mean(dice)), float(np.min(dice))


def dice_in_roi(pred: np.ndarray, truth: np.ndarray, roi: np.ndarray) -> tuple[float, float]:
    """Mean and min Dice over the labels ``truth`` has inside ``roi`` (0 = background)."""
    p, t = pred[roi].astype(np.int64), truth[roi].astype(np.int64)
    n = int(max(p.max(initial=0), t.max(initial=0))) + 1
    both = np.bincount(t[p == t], minlength=n)
    size_p, size_t = np.bincount(p, minlength=n), np.bincount(t, minlength=n)
    present = np.flatnonzero(size_t[1:]) + 1
    dice = 2 * both[present] / (size_p[present] + size_t[present])
    return float(dice.mean()), float(dice.min())


def score_registration(row: Row, folder: Path) -> dict[str, float]:
    """Hole and landmark TRE, TRE calibration and Dice of one ``register-pair`` output folder.

    Hole TRE: every marker hole (also those outside the MRI slab) through the final transform.
    TRE ratio: the fiducial stage's predicted mean TRE over the body / its measured mean error
    against the true rigid holder motion at organ points. Landmark TRE: the truth's soft-tissue
    landmarks through the fiducial-only and the final (deformable) transform.
    """
    from mousereg.batch.kinds.register import load_labels, organ_points
    from mousereg.io import read_volume
    from mousereg.propagate import field_of_view
    from mousereg.registration import Transform

    truth = row.path("truth")
    final = Transform.read(folder / "transform.h5")
    report = json.loads((folder / "report.json").read_text())
    fid = report["fiducial"]
    matrix = np.asarray(fid["transform"]["matrix"])  # MRI -> CT, 4x4 homogeneous
    rigid = Transform.read(truth / "rigid.h5")

    def fiducial(p: np.ndarray) -> np.ndarray:
        return np.asarray(p @ matrix[:3, :3].T + matrix[:3, 3])

    holes = _tre(
        final.transform_points(_points(truth / "holes.csv", "mr")),
        _points(truth / "holes.csv", "ct"),
    )
    lm_mr, lm_ct = _points(truth / "landmarks.csv", "mr"), _points(truth / "landmarks.csv", "ct")
    mr_labels = load_labels(row, "mr_labels")
    ct_labels = load_labels(row, "ct_labels")
    if mr_labels is None or ct_labels is None:
        msg = f"{row.label}: the demo scores need the ct_labels and mr_labels columns"
        raise MouseregError(msg)
    body = organ_points(mr_labels, 4000)
    measured = _tre(fiducial(body), rigid.transform_points(body))
    predicted = fid["predicted_tre"]["mean_over_body_mm"]
    ev = json.loads((folder / "evaluation.json").read_text())
    ct_to_mr = _dice(ev["ct_labels_in_mr_vs_mr_labels"])
    carried = read_volume(folder / "mr_labels_in_ct.nii.gz").compute()
    roi = field_of_view(mr_labels, Transform.read(folder / "inverse.h5"), ct_labels)
    mr_to_ct = dice_in_roi(carried, ct_labels.compute(), roi.compute() > 0)
    return {
        "hole_tre_mean_mm": float(holes.mean()),
        "hole_tre_max_mm": float(holes.max()),
        "tre_ratio": float(predicted / measured.mean()),
        "landmark_tre_fiducial_mm": float(_tre(fiducial(lm_mr), lm_ct).mean()),
        "landmark_tre_deformable_mm": float(_tre(final.transform_points(lm_mr), lm_ct).mean()),
        "dice_ct_to_mr_mean": ct_to_mr[0],
        "dice_ct_to_mr_min": ct_to_mr[1],
        "dice_mr_to_ct_mean": mr_to_ct[0],
        "dice_mr_to_ct_min": mr_to_ct[1],
    }


def score_mumaps(row: Row, folder: Path) -> dict[str, float]:
    """CT µ-map bias per tissue class and Dixon µ-map ACF error of one ``mumap`` output folder."""
    from mousereg.attenuation import compare_mumaps
    from mousereg.attenuation.phantom_eval import class_errors, class_masks, truth_body
    from mousereg.io import read_volume
    from mousereg.registration import Transform
    from mousereg.resample import resample

    truth_dir = row.path("truth")
    mu = read_volume(truth_dir / "mu511.nii.gz")
    true_mu = mu.compute()
    masks = class_masks(read_volume(row.path("ct_labels")).compute(), truth_body(true_mu))
    errors = class_errors(read_volume(folder / "mu_ct.nii.gz").compute(), true_mu, masks)
    dixon = read_volume(folder / "mu_mr.nii.gz")
    on_mr = resample(mu, dixon, Transform.read(truth_dir / "transform.h5")).compute()
    body = truth_body(on_mr, dilate=1)
    reference = dixon.with_array(np.where(body, on_mr, 0).astype(np.float32), modality="mu511")
    acf = compare_mumaps(dixon, reference, body=body, n_angles=30)["acf"]["body"]
    return {
        "mu_ct_soft_pct": 100 * errors["soft tissue"]["bias"],
        "mu_ct_fat_pct": 100 * errors["fat"]["bias"],
        "mu_ct_bone_pct": 100 * errors["bone"]["bias"],
        "dixon_acf_pct": 100 * acf["mean"],
    }


def format_table(scores: dict[str, dict[str, float]]) -> str:
    """The summary: a row per score (with its target), a column per subject."""
    subjects = list(scores)
    head = ["score", *subjects, "target"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for key, label, fmt, target in ROWS:
        cells = []
        for s in subjects:
            v = scores[s].get(key)
            cells.append("n/a" if v is None or not np.isfinite(v) else fmt.format(v))
        lines.append("| " + " | ".join([label, *cells, target]) + " |")
    return "\n".join(lines)


def run_demo(
    outdir: str | os.PathLike[str] = "demo-output",
    *,
    subjects: int = DEMO_SUBJECTS,
    workers: int = DEMO_WORKERS,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo into ``outdir``; print the scores; return them with the report's path.

    Raises MouseregError naming the first failed job when a stage failed.
    """
    from mousereg.batch import read_manifest, run_pipeline
    from mousereg.phantom import write_study

    out = Path(outdir).resolve()
    t0 = time.perf_counter()
    say(f"writing a {subjects}-mouse synthetic study (test resolution, seed {DEMO_SEED}) ...")
    manifest = write_study(out / "study", subjects=subjects, seed=DEMO_SEED, resolution="test")
    t_study = time.perf_counter() - t0
    run = run_pipeline(pipeline_path(), manifest, out / "run", workers=workers, progress=say)
    if not run.ok:
        bad = next(o for o in run.outcomes if not o.ok)
        msg = f"demo: job {bad.job_id} {bad.status}: {bad.reason} (log: {bad.log})"
        raise MouseregError(msg)
    seconds = {o.job_id: o.seconds for o in run.outcomes}
    scores: dict[str, dict[str, float]] = {}
    for row in read_manifest(manifest).rows:
        s = score_registration(row, out / "run" / "register" / row.name)
        s.update(score_mumaps(row, out / "run" / "mumap" / row.name))
        for stage in ("inspect", "register", "mumap"):
            s[f"seconds_{stage}"] = seconds[f"{stage}/{row.name}"]
        scores[row.subject] = s
    report = out / "run" / "report" / "study" / "report.html"
    total = time.perf_counter() - t0
    summary = {
        "manifest": str(manifest),
        "report": str(report),
        "run_summary": str(out / "run" / "summary.json"),
        "seconds": {
            "study": round(t_study, 2),
            "pipeline": round(run.seconds, 2),
            "report": seconds.get("report/study"),
            "total": round(total, 2),
        },
        "scores": scores,
    }
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    say("")
    say(format_table(scores))
    say("")
    say(
        f"study {t_study:.0f} s, pipeline {run.seconds:.0f} s on {workers} workers, "
        f"total {total:.0f} s"
    )
    say(f"report:  {report}")
    say(f"scores:  {out / 'summary.json'}  (jobs: {out / 'run' / 'summary.json'})")
    say(
        "not run here (takes minutes): the atlas -- mousereg atlas build <manifest> -o <atlas>, "
        f"or: mousereg run pipelines/build-atlas.yaml --manifest {manifest} -o <out>"
    )
    return summary
