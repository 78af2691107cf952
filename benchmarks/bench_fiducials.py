"""Benchmark: fiducial CT<->MRI registration vs plain intensity-based rigid elastix.

For each seed, a phantom pair (140 µm CT, full 384×264×44 Dixon MRI, random axis-aligned frame,
tilt and offset, 2 holes outside the MRI slab, 3 vaseline smears) is made once and cached. Each
method then runs in a fresh subprocess (peak RSS is that process's):

* fiducial: ``mousereg.registration.fiducial.fiducial_registration`` (detection in both scans,
  matching, Umeyama fit, predicted TRE map); time of each step as reported;
* elastix: itk-elastix rigid Euler, AdvancedMattesMutualInformation (64 bins), 3 resolutions,
  500 iterations, 2000 samples, started from the geometric centres (the usual way without
  markers); fixed = MRI water image, moving = CT.

TRE is measured at the true marker-hole centres (holder points, where the truth is rigid).
Success: max hole TRE < 1 mm.

``--two-animals`` instead registers the MRI of every seed to the CT of every seed (the same
holder, but each seed is its own preparation: its own animal and its own vaseline fill of the
holes) and counts what is refused and why: the FRE consistency test, the absolute FRE limit, the
body agreement, or the match itself. Same-seed pairs must all be accepted.

Usage:
    python benchmarks/bench_fiducials.py [--seeds 1000-1009] [--resolution full] [--no-elastix]
    python benchmarks/bench_fiducials.py --two-animals --seeds 1000-1004 --resolution full
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CACHE = Path("/tmp/mousereg-bench-fiducials-v2")  # v2: partly filled holes
SUCCESS_MM = 1.0


def _make(seed: int, resolution: str) -> Path:
    """Make (or reuse) the cached pair for ``seed``: arrays, frames, true holes, rigid truth."""
    import SimpleITK as sitk

    from mousereg.phantom import make_pair

    path = CACHE / f"{resolution}-{seed}.npz"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    pair = make_pair(
        seed=seed, resolution=resolution, frame=None, holes_outside_mr=2, spurious_blobs=3
    )
    sitk.WriteTransform(pair.rigid, str(path.with_suffix(".h5")))
    np.savez(
        path,
        ct=pair.ct.compute(),
        ct_frame=np.concatenate([pair.ct.spacing, pair.ct.origin, pair.ct.direction.ravel()]),
        mr=pair.mr.compute(),
        mr_frame=np.concatenate([pair.mr.spacing, pair.mr.origin, pair.mr.direction.ravel()]),
        holes_mr=pair.holes_mr,
        frame=pair.info["frame"],
    )
    return path


def _volumes(path: Path):  # type: ignore[no-untyped-def]
    from mousereg.volume import Volume

    d = np.load(path)

    def frame(f: np.ndarray) -> dict[str, object]:
        return {"spacing": f[:3], "origin": f[3:6], "direction": f[6:].reshape(3, 3)}

    ct = Volume(d["ct"], modality="CT", **frame(d["ct_frame"]))  # type: ignore[arg-type]
    mr = Volume(
        d["mr"],
        channel_names=("water", "fat"),
        modality="MR",
        **frame(d["mr_frame"]),  # type: ignore[arg-type]
    )
    return ct, mr, d["holes_mr"]


def _tre(path: Path, mapped: np.ndarray, holes_mr: np.ndarray) -> np.ndarray:
    import SimpleITK as sitk

    truth = sitk.ReadTransform(str(path.with_suffix(".h5")))
    true = np.array([truth.TransformPoint(tuple(map(float, p))) for p in holes_mr])
    return np.linalg.norm(mapped - true, axis=1)


def worker_fiducial(path: Path) -> dict[str, object]:
    """Run the fiducial registration on a cached pair (in this fresh process)."""
    t0 = time.perf_counter()
    import dask.array  # noqa: F401  (imports that any run pays once)
    import distributed  # noqa: F401

    from mousereg.registration.fiducial import fiducial_registration

    t_import = time.perf_counter() - t0
    ct, mr, holes_mr = _volumes(path)
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    res = fiducial_registration(mr, ct)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    tre = _tre(path, res.transform.apply(holes_mr), holes_mr)
    rep = res.report
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "load_avg": load,
        "body_agreement": rep["body_agreement"],
        "steps": rep["seconds"],
        "imports": t_import,
        "holes": rep["holes_found"],
        "pairs": rep["used_pairs"],
        "fre": rep["fre_rms_mm"],
        "pred_centroid": rep["predicted_tre"]["at_body_centroid_mm"],
        "pred_p95": rep["predicted_tre"]["p95_over_body_mm"],
        "loo_ratio": rep["held_out"]["ratio_predicted_over_measured"],
        "tre_mean": float(tre.mean()),
        "tre_max": float(tre.max()),
        "pred_at_holes_rms": float(np.sqrt(np.mean(_predicted_at(res, holes_mr) ** 2))),
        "tre_rms": float(np.sqrt(np.mean(tre**2))),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _predicted_at(res, points: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Predicted TRE at ``points`` from the markers used in the fit and their FLE."""
    from mousereg.fiducials.tre import predicted_tre

    used = res.fixed_markers.points[res.fit.inliers]
    return predicted_tre(used, res.fit.fle_rms, points)


def worker_elastix(path: Path) -> dict[str, object]:
    """Plain rigid elastix (MI, geometric-centre start) on a cached pair."""
    import itk
    import SimpleITK as sitk

    ct, mr, holes_mr = _volumes(path)
    fixed = mr.to_itk("water")
    moving = ct.to_itk()
    params = itk.ParameterObject.New()
    pm = params.GetDefaultParameterMap("rigid", 3)
    pm["Metric"] = ["AdvancedMattesMutualInformation"]
    pm["NumberOfHistogramBins"] = ["64"]
    pm["NumberOfResolutions"] = ["3"]
    pm["MaximumNumberOfIterations"] = ["500"]
    pm["NumberOfSpatialSamples"] = ["2000"]
    pm["AutomaticTransformInitialization"] = ["true"]
    pm["AutomaticTransformInitializationMethod"] = ["GeometricalCenter"]
    pm["WriteResultImage"] = ["false"]
    # be lenient: the default ratio 0.25 stops most runs with "too many samples map outside
    # moving image buffer" as soon as the slab and the CT overlap poorly
    pm["RequiredRatioOfValidSamples"] = ["0.05"]
    params.AddParameterMap(pm)
    t0 = time.perf_counter()
    try:
        _, result = itk.elastix_registration_method(
            fixed, moving, parameter_object=params, log_to_console=False
        )
    except RuntimeError as exc:
        seconds = time.perf_counter() - t0
        reason = "too many samples outside the moving image" if "outside" in str(exc) else "error"
        return {"seconds": seconds, "failed": reason, "rss_mb": _rss()}
    seconds = time.perf_counter() - t0
    p = [float(v) for v in result.GetParameter(0, "TransformParameters")]
    c = [float(v) for v in result.GetParameter(0, "CenterOfRotationPoint")]
    euler = sitk.Euler3DTransform()
    euler.SetCenter(c)
    euler.SetRotation(*p[:3])
    euler.SetTranslation(p[3:6])
    mapped = np.array([euler.TransformPoint(tuple(map(float, q))) for q in holes_mr])
    tre = _tre(path, mapped, holes_mr)
    return {
        "seconds": seconds,
        "tre_mean": float(tre.mean()),
        "tre_max": float(tre.max()),
        "rss_mb": _rss(),
    }


def _rss() -> float:
    """Peak resident memory of this process (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run(kind: str, path: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, f"--worker-{kind}", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _elastix_cached(path: Path, reuse: bool) -> dict[str, object]:
    """Run elastix on ``path`` (or reuse the saved result: the baseline does not change)."""
    saved = path.with_name(path.stem + "-elastix.json")
    if reuse and saved.exists():
        return dict(json.loads(saved.read_text()))
    result = _run("elastix", path)
    if "error" not in result:
        saved.write_text(json.dumps(result))
    return result


def _refusal_kind(message: str) -> str:
    if "localisation error" in message:
        return "FRE > consistency threshold"
    if "FRE" in message and "threshold" in message and "bodies disagree" not in message:
        return "FRE > absolute limit"
    if "bodies disagree" in message:
        return "body agreement"
    return "match failed"


def two_animals(seeds: list[int], resolution: str) -> None:
    """Register every seed's MRI to every seed's CT; print what is accepted and refused."""
    from mousereg.errors import MouseregError
    from mousereg.registration.fiducial import fiducial_registration

    scans = {s: _volumes(_make(s, resolution)) for s in seeds}
    print("| MRI seed | CT seed | same animal | outcome | FRE mm | threshold mm | FLE mm |")
    print("|---|---|---|---|---|---|---|")
    counts: dict[tuple[bool, str], int] = {}
    for a in seeds:
        for b in seeds:
            same = a == b
            try:
                rep = fiducial_registration(scans[a][1], scans[b][0]).report
                outcome = "accepted"
                fre, thr = rep["fre_rms_mm"], rep["fre_consistency_threshold_mm"]
                fle = rep["fle"]["from_detection_mm"]["combined"]
                row = f"{fre:.3f} | {thr:.3f} | {fle:.3f}"
            except MouseregError as exc:
                outcome = "refused: " + _refusal_kind(str(exc))
                row = str(exc)[:90].replace("|", "/") + " | - | -"
            counts[(same, outcome)] = counts.get((same, outcome), 0) + 1
            print(f"| {a} | {b} | {same} | {outcome} | {row} |", flush=True)
    print()
    print("| pairs | outcome | count |")
    print("|---|---|---|")
    for (same, outcome), n in sorted(counts.items()):
        print(f"| {'same animal' if same else 'two animals'} | {outcome} | {n} |")


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1000-1009")
    ap.add_argument("--resolution", default="full", choices=["full", "test"])
    ap.add_argument("--no-elastix", action="store_true")
    ap.add_argument(
        "--reuse-elastix", action="store_true", help="reuse saved elastix results of the pairs"
    )
    ap.add_argument("--two-animals", action="store_true", help="cross-seed refusal study")
    ap.add_argument("--worker-fiducial", type=Path)
    ap.add_argument("--worker-elastix", type=Path)
    args = ap.parse_args()
    if args.worker_fiducial:
        print(json.dumps(worker_fiducial(args.worker_fiducial)))
        return
    if args.worker_elastix:
        print(json.dumps(worker_elastix(args.worker_elastix)))
        return
    if args.two_animals:
        two_animals(_seeds(args.seeds), args.resolution)
        return
    rows = []
    print(
        "| seed | frame | holes MR/CT | pairs | FRE mm | hole TRE mean/max mm | pred. TRE "
        "centroid/p95 mm | pred/meas (holes) | LOO ratio | body agr. | fiducial s (CPU s) | "
        "RSS MB | elastix TRE mean/max mm | elastix s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for seed in _seeds(args.seeds):
        path = _make(seed, args.resolution)
        fid = _run("fiducial", path)
        ela = {} if args.no_elastix else _elastix_cached(path, args.reuse_elastix)
        frame = int(np.load(path)["frame"])
        rows.append((seed, fid, ela))
        if "error" in fid:
            print(f"| {seed} | {frame} | fiducial failed: {fid['error']} |")
            continue
        if not ela:
            e = "- | -"
        elif "error" in ela:
            e = f"error: {ela['error']} | -"
        elif "failed" in ela:
            e = f"failed: {ela['failed']} | {ela['seconds']:.1f}"
        else:
            e = f"{ela['tre_mean']:.2f}/{ela['tre_max']:.2f} | {ela['seconds']:.1f}"
        h = fid["holes"]
        print(
            f"| {seed} | {frame} | {h['fixed']}/{h['moving']} | {fid['pairs']} | "
            f"{fid['fre']:.3f} | {fid['tre_mean']:.3f}/{fid['tre_max']:.3f} | "
            f"{fid['pred_centroid']:.3f}/{fid['pred_p95']:.3f} | "
            f"{fid['pred_at_holes_rms'] / fid['tre_rms']:.2f} | {fid['loo_ratio']:.2f} | "
            f"{fid['body_agreement']:.3f} | {fid['seconds']:.2f} ({fid['cpu_seconds']:.2f}) | "
            f"{fid['rss_mb']:.0f} | {e} |",
            flush=True,
        )
    ok = [f for _, f, _ in rows if "error" not in f]
    fid_success = sum(1 for f in ok if f["tre_max"] < SUCCESS_MM)
    print()
    print(
        "| method | success (max hole TRE < 1 mm) | hole TRE mean | hole TRE max (worst pair) "
        "| time per pair (mean, max) | peak RSS |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| fiducial (mousereg) | {fid_success}/{len(rows)} | "
        f"{np.mean([f['tre_mean'] for f in ok]):.3f} mm | "
        f"{max(f['tre_max'] for f in ok):.3f} mm | "
        f"{np.mean([f['seconds'] for f in ok]):.2f} s, {max(f['seconds'] for f in ok):.2f} s "
        f"(CPU {np.mean([f['cpu_seconds'] for f in ok]):.2f} s, "
        f"{max(f['cpu_seconds'] for f in ok):.2f} s) | "
        f"{max(f['rss_mb'] for f in ok):.0f} MB |"
    )
    ela_ran = [e for _, _, e in rows if e and "error" not in e]
    ela_ok = [e for e in ela_ran if "failed" not in e]
    if ela_ran and ela_ok:
        succ = sum(1 for e in ela_ok if e["tre_max"] < SUCCESS_MM)
        print(
            f"| rigid elastix, MI, geometric centre | {succ}/{len(rows)} | "
            f"{np.median([e['tre_mean'] for e in ela_ok]):.2f} mm (median) | "
            f"{max(e['tre_max'] for e in ela_ok):.1f} mm | "
            f"{np.mean([e['seconds'] for e in ela_ran]):.1f} s, "
            f"{max(e['seconds'] for e in ela_ran):.1f} s | "
            f"{max(e['rss_mb'] for e in ela_ran):.0f} MB |"
        )


if __name__ == "__main__":
    main()
