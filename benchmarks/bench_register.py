"""Intensity and deformable CT<->MRI registration on phantom pairs, against plain peers.

Methods, on the same pairs (fixed = the Dixon MRI, moving = the CT):

* ``mousereg``: ``mousereg.registration.register`` (fiducial holes -> rigid MI -> deformable,
  elastix backend), plus label propagation both ways; the time covers all of it.
* ``mousereg-ants``: the same with ``--backend ants`` (optional, ``--methods``).
* ``elastix``: plain elastix, rigid (Par0023-like, 3 resolutions, geometric-centre start) then
  the same B-spline file, on the whole images, no masks, no fiducials.
* ``ants``: plain ANTsPy ``SyN`` with Mattes MI for the affine and SyN stages, from ANTs' default
  centre-of-mass start.

Measured: soft-tissue landmark TRE (pair.landmarks, mm), hole TRE, CT->MRI and MRI->CT Dice
over the organs labelled in both modalities (MRI->CT inside the part of the CT the MRI slab
covers), Jacobian minimum and folding, seconds. A pair succeeds when its landmark TRE mean is
below ``SUCCESS_TRE_MM``. Every pair's row is appended to ``--out`` (JSON lines) as it finishes,
then a markdown table is printed.

    .venv/bin/python benchmarks/bench_register.py --seeds 2000-2009 --resolution full \\
        --out /tmp/bench_register.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from mousereg.metrics import evaluate
from mousereg.phantom import make_pair
from mousereg.propagate import propagate
from mousereg.registration import elastix_backend, intensity, pipeline
from mousereg.registration.jacobian import jacobian_statistics
from mousereg.registration.transform import Transform
from mousereg.volume import Volume

SUCCESS_TRE_MM = 0.3
METHODS = ("mousereg", "elastix", "ants")
PLAIN_RIGID = {
    "NumberOfResolutions": 3,
    "FixedImagePyramidSchedule": [4, 4, 2, 2, 2, 1, 1, 1, 1],
    "MovingImagePyramidSchedule": [4, 4, 2, 2, 2, 1, 1, 1, 1],
    "MaximumNumberOfIterations": 500,
    "AutomaticTransformInitialization": "true",
    "AutomaticTransformInitializationMethod": "GeometricalCenter",
    "MaximumStepLength": 1.0,
}


def _seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = (int(v) for v in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(v) for v in text.split(",")]


def tre(t: Transform, fixed_pts: np.ndarray, moving_pts: np.ndarray) -> np.ndarray:
    """|T(p) - q| per point (mm)."""
    return np.asarray(np.linalg.norm(t.transform_points(fixed_pts) - moving_pts, axis=1))


def covered(ct_labels: Volume, mr: Volume, inverse: Transform) -> np.ndarray:
    """CT voxels whose MRI position (through ``inverse``) lies inside the MRI grid (z, y, x)."""
    z, y, x = ct_labels.shape
    out = np.zeros((z, y, x), dtype=bool)
    jj, ii = np.meshgrid(np.arange(y), np.arange(x), indexing="ij")
    for k in range(z):
        idx = np.stack([ii.ravel(), jj.ravel(), np.full(ii.size, k)], -1).astype(float)
        mr_idx = mr.physical_to_index(inverse.transform_points(ct_labels.index_to_physical(idx)))
        inside = np.all((mr_idx >= -0.5) & (mr_idx <= np.asarray(mr.size) - 0.5), axis=1)
        out[k] = inside.reshape(y, x)
    return out


def dice_both_ways(pair: Any, t: Transform, cover: np.ndarray) -> dict[str, Any]:
    """Mean and minimum Dice over the organs labelled in both modalities, both directions."""
    ct_l, mr_l = pair.ct_labels, pair.mr_labels
    shared = sorted((set(np.unique(ct_l.compute())) & set(np.unique(mr_l.compute()))) - {0})
    to_mr = propagate(ct_l, t, mr_l).compute()
    to_ct = propagate(mr_l, t, ct_l, inverse=True).compute()
    truth_ct = np.where(cover, ct_l.compute(), 0)
    out: dict[str, Any] = {}
    for name, pred, truth, ref in (
        ("ct_to_mr", to_mr, mr_l.compute(), mr_l),
        ("mr_to_ct", np.where(cover, to_ct, 0), truth_ct, ct_l),
    ):
        keep = np.isin(pred, shared)
        pv = ref.with_array(np.where(keep, pred, 0).astype(np.uint8))
        tv = ref.with_array(np.where(np.isin(truth, shared), truth, 0).astype(np.uint8))
        rows = [r for r in evaluate(pv, tv)["labels"] if r["in_truth"]]
        dice = {r["name"]: r["dice"] for r in rows}
        out[name] = {
            "mean": float(np.mean(list(dice.values()))),
            "min": float(min(dice.values())),
            "worst": min(dice, key=dice.__getitem__),
        }
    return out


def run_mousereg(pair: Any, backend: str, outdir: Path) -> tuple[Transform, dict[str, Any]]:
    """The whole mousereg pair: registration (fiducial -> rigid -> deformable) + outputs."""
    captured: dict[str, Any] = {}
    original = intensity.refine

    def spy(fixed: Volume, moving: Volume, initial: Transform | None, **kw: Any) -> Any:
        captured["fiducial"] = initial
        return original(fixed, moving, initial, **kw)

    intensity.refine = spy  # type: ignore[assignment]
    try:
        report = pipeline.register(pair.mr, pair.ct, outdir, mode="deformable", backend=backend)
    finally:
        intensity.refine = original  # type: ignore[assignment]
    t = Transform.read(outdir / "transform.h5")
    stage = report["intensity"]
    extra = {
        "fiducial": captured.get("fiducial"),
        "jacobian_min": stage["jacobian"]["min"],
        "n_folding": stage["jacobian"]["n_folding"],
        "inverse_consistency_mean_mm": (stage.get("inverse_consistency") or {}).get("mean_mm"),
    }
    return t, extra


def run_plain_elastix(pair: Any, outdir: Path) -> tuple[Transform, dict[str, Any]]:
    """Plain elastix: rigid from the geometric centres, then B-spline, whole images."""
    fixed = intensity.mr_signal(pair.mr)
    moving = sitk.Cast(pair.ct.to_sitk(), sitk.sitkFloat32)
    rigid_res = elastix_backend.register(
        fixed,
        moving,
        [elastix_backend.parameter_file("rigid")],
        overrides=PLAIN_RIGID,
        output_dir=outdir,
        prefix="plain.rigid",
    )
    rigid = Transform(rigid_res.transform())
    warped = sitk.Resample(
        moving,
        intensity.working_grid(fixed),
        rigid.to_sitk(),
        sitk.sitkLinear,
        -1000.0,
        sitk.sitkFloat32,
    )
    bs = elastix_backend.register(
        fixed,
        warped,
        [elastix_backend.parameter_file("bspline")],
        output_dir=outdir,
        prefix="plain.bspline",
    )
    u = elastix_backend.deformation_field(bs, warped)
    weight = np.ones(sitk.GetArrayViewFromImage(u).shape[:3], dtype=np.float32)
    field = intensity.tapered_field(u, rigid, rigid, weight)
    jac = jacobian_statistics(field)
    t = Transform(sitk.DisplacementFieldTransform(field)).then(rigid)
    return t, {"jacobian_min": jac["min"], "n_folding": jac["n_folding"]}


def run_plain_ants(pair: Any, outdir: Path) -> tuple[Transform, dict[str, Any]]:
    """Plain ANTsPy SyN (MI) from the centre-of-mass start."""
    import ants

    from mousereg.registration.ants_backend import to_ants

    fixed = to_ants(intensity.mr_signal(pair.mr))
    moving = to_ants(sitk.Cast(pair.ct.to_sitk(), sitk.sitkFloat32))
    out = ants.registration(
        fixed,
        moving,
        type_of_transform="SyN",
        aff_metric="mattes",
        syn_metric="mattes",
        outprefix=str(outdir / "ants_"),
    )
    warp = next(p for p in out["fwdtransforms"] if p.endswith(".nii.gz"))
    mat = next(p for p in out["fwdtransforms"] if p.endswith(".mat"))
    affine = Transform(sitk.ReadTransform(mat))
    field = sitk.ReadImage(warp, sitk.sitkVectorFloat64)
    jac = jacobian_statistics(field)
    # ANTs' forward list [warp, affine]: the warp acts on the fixed point first, then the affine.
    t = Transform(sitk.DisplacementFieldTransform(field)).then(affine)
    return t, {"jacobian_min": jac["min"], "n_folding": jac["n_folding"]}


def run_pair(seed: int, resolution: str, method: str) -> dict[str, Any]:
    """One pair, one method: the row of the table."""
    pair = make_pair(seed=seed, resolution=resolution)
    lm = pair.landmarks
    load_start = os.getloadavg()[0]
    c0 = time.process_time()  # all threads of this process (ITK, elastix, dask)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        if method in ("mousereg", "mousereg-ants"):
            backend = "ants" if method.endswith("ants") else "elastix"
            t, extra = run_mousereg(pair, backend, Path(tmp))
        elif method == "elastix":
            t, extra = run_plain_elastix(pair, Path(tmp))
        else:
            t, extra = run_plain_ants(pair, Path(tmp))
        t_reg = time.perf_counter() - t0
        cover = covered(pair.ct_labels, pair.mr, Transform(pair.rigid).inverse())
        t1 = time.perf_counter()
        dice = dice_both_ways(pair, t, cover)
        t_prop = time.perf_counter() - t1
    fid = extra.pop("fiducial", None)
    row: dict[str, Any] = {
        "seed": seed,
        "resolution": resolution,
        "method": method,
        "tre_mm": float(tre(t, lm["mr"], lm["ct"]).mean()),
        "tre_fiducial_mm": None if fid is None else float(tre(fid, lm["mr"], lm["ct"]).mean()),
        "hole_tre_max_mm": float(tre(t, pair.holes_mr, pair.holes_ct).max()),
        "truth_motion_mm": float(tre(Transform(pair.rigid), lm["mr"], lm["ct"]).mean()),
        "dice": dice,
        "seconds_registration": round(t_reg, 1),
        "seconds_propagation": round(t_prop, 1),
        **extra,
    }
    row["seconds_total"] = round(t_reg + t_prop, 1)
    row["cpu_seconds_total"] = round(time.process_time() - c0, 1)  # incl. the truth's coverage
    row["load_average_start"] = round(load_start, 2)
    row["success"] = bool(row["tre_mm"] < SUCCESS_TRE_MM)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown summary: one line per method (means over pairs)."""
    lines = [
        "| method | pairs | landmark TRE mm (mean; max pair) | fiducial-only TRE mm | "
        "hole TRE max mm | Dice CT->MR mean (min organ) | Dice MR->CT mean (min organ) | "
        "Jacobian min | folding pairs | success | seconds / pair (mean; max) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        tre_v = [r["tre_mm"] for r in rs]
        fid = [r["tre_fiducial_mm"] for r in rs if r["tre_fiducial_mm"] is not None]
        fid_s = f"{np.mean(fid):.3f}" if fid else "-"
        d1 = [r["dice"]["ct_to_mr"] for r in rs]
        d2 = [r["dice"]["mr_to_ct"] for r in rs]
        secs = [r["seconds_total"] for r in rs]
        lines.append(
            f"| {method} | {len(rs)} | {np.mean(tre_v):.3f}; {max(tre_v):.3f} | {fid_s} | "
            f"{max(r['hole_tre_max_mm'] for r in rs):.3f} | "
            f"{np.mean([d['mean'] for d in d1]):.3f} ({min(d['min'] for d in d1):.3f}) | "
            f"{np.mean([d['mean'] for d in d2]):.3f} ({min(d['min'] for d in d2):.3f}) | "
            f"{min(r['jacobian_min'] for r in rs):.3f} | "
            f"{sum(r['n_folding'] > 0 for r in rs)} | "
            f"{sum(r['success'] for r in rs)}/{len(rs)} | "
            f"{np.mean(secs):.0f}; {max(secs):.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="2000-2009")
    parser.add_argument("--resolution", default="full", choices=("test", "full"))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench_register.jsonl"))
    parser.add_argument("--table-only", action="store_true", help="Summarise --out and exit.")
    args = parser.parse_args()
    elastix_backend.set_threads(args.threads)
    if not args.table_only:
        for seed in _seeds(args.seeds):
            for method in args.methods.split(","):
                row = run_pair(seed, args.resolution, method)
                with args.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    rows = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    print(table(rows))


if __name__ == "__main__":
    main()
