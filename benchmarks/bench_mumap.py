"""PET µ-map benchmark (issue 7): speed and accuracy on phantoms where the true µ511 is known.

Prints markdown tables:

1. a 140 µm whole-body CT µ-map (phantom, 787×180×301 voxels): wall time and peak RSS, each case
   in a fresh subprocess (read NIfTI → µ-map in memory → OME-Zarr), holder kept or removed;
2. CT-derived µ against the truth per tissue class (organ labels), both scaling models;
3. MRI-derived µ: ACF errors of Dixon, atlas pseudo-CT and hybrid side by side (each subject's
   atlas is the next subject; affine registration), at the full MRI matrix, and the voxel errors
   within 1 mm of bone;
4. bad inputs and what mousereg says.

Usage: ``python benchmarks/bench_mumap.py [--subjects 3] [--resolution full|test]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mousereg.attenuation.atlas_registration import register_affine
from mousereg.attenuation.ct import mumap_from_ct
from mousereg.attenuation.evaluate import compare_mumaps
from mousereg.attenuation.mr import mumap_from_mr
from mousereg.attenuation.phantom_eval import (
    MRTruth,
    class_errors,
    class_masks,
    mr_truth,
    truth_body,
)
from mousereg.attenuation.pseudo_ct import AtlasTemplates
from mousereg.errors import MouseregError
from mousereg.phantom import PhantomPair, make_pair
from mousereg.volume import Volume

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from mousereg.attenuation.ct import mumap_from_ct
from mousereg.io import read_volume, write_volume
ct = read_volume(sys.argv[1])
t1 = time.perf_counter()
result = mumap_from_ct(ct, holder=sys.argv[3])
mu = result.mumap.compute()
t2 = time.perf_counter()
write_volume(result.mumap.with_array(mu), sys.argv[2])
t3 = time.perf_counter()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"import_read_s": t1 - t0, "mumap_s": t2 - t1, "write_s": t3 - t2,
                  "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}))
"""


def speed_table(pair: PhantomPair) -> list[str]:
    from mousereg.io import write_volume

    rows = [
        "| case | voxels | read s | µ-map s | write .zarr s | CPU s (all) | peak RSS MB | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        ct_path = Path(tmp) / "ct.nii"
        write_volume(pair.ct, ct_path)
        for holder in ("keep", "remove"):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(ct_path), str(Path(tmp) / "mu.zarr"), holder],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(
                f"| 140 µm CT, holder {holder} | {np.prod(pair.ct.shape) / 1e6:.1f} M | "
                f"{r['import_read_s']:.1f} | {r['mumap_s']:.1f} | {r['write_s']:.1f} | "
                f"{r['cpu_s']:.1f} | {r['peak_rss_mb']:.0f} | {os.getloadavg()[0]:.0f} |"
            )
    return rows


def ct_rows(seed: int, pair: PhantomPair) -> list[str]:
    truth = pair.mu511.compute()
    masks = class_masks(pair.ct_labels.compute(), truth_body(truth))
    rows = []
    for model in ("materials", "bilinear"):
        mu = mumap_from_ct(pair.ct, kvp=pair.kvp, model=model).mumap.compute()
        errors = class_errors(mu, truth, masks)
        cells = []
        for name in ("soft tissue", "fat", "bone", "lung"):
            e = errors[name]
            cells.append(f"{100 * e['bias']:+.2f} / {100 * e['mean_abs_relative_error']:.2f}")
        rows.append(f"| {seed} | {model} | " + " | ".join(cells) + " |")
    return rows


def mr_rows(seed: int, subject: MRTruth, atlas_case: MRTruth) -> list[str]:
    atlas = AtlasTemplates(atlas_case.water, atlas_case.fat, atlas_case.truth)
    t = time.perf_counter()
    fixed = Volume.stack([subject.water, subject.fat], names=("water", "fat"))
    transform = register_affine(fixed, atlas.mr())
    reg_s = time.perf_counter() - t
    rows = []
    for method in ("dixon", "atlas", "hybrid"):
        t = time.perf_counter()
        mu = mumap_from_mr(
            subject.water, subject.fat, method=method, atlas=atlas, transform=transform
        ).mumap
        make_s = time.perf_counter() - t
        report = compare_mumaps(mu, subject.truth, body=subject.body, pixel_mm=0.4)
        b, nb = report["acf"]["body"], report["acf"]["near_bone"]
        voxels = report["tissues"]["near bone"]
        extra = f" (+{reg_s:.0f} s reg.)" if method != "dixon" else ""
        rows.append(
            f"| {seed} | {method} | {100 * b['mean']:.3f} | {100 * b['p95']:.2f} | "
            f"{100 * nb['mean']:.3f} | {100 * nb['p95']:.2f} | {nb['lors']} | "
            f"{voxels['mean_abs_error']:.4f} | {100 * voxels['mean_relative_error']:+.1f} | "
            f"{make_s:.1f}{extra} |"
        )
    return rows


def bad_input_rows(pair: PhantomPair) -> list[str]:
    ct, water, fat = pair.ct, pair.mr.channel("water"), pair.mr.channel("fat")
    mu = mumap_from_ct(ct).mumap
    cases = {
        "CT as linear attenuation (cm⁻¹)": lambda: mumap_from_ct(
            ct.with_array((ct.data / np.float32(1000) + 1) * np.float32(0.4))
        ),
        "CT as unsigned counts": lambda: mumap_from_ct(
            ct.with_array((ct.data + 1024).clip(0, 4095).round().astype(np.uint16))
        ),
        "water and fat on different grids": lambda: mumap_from_mr(
            water, Volume(fat.data, spacing=fat.spacing, direction=fat.direction)
        ),
        "compare: A is a CT in HU": lambda: compare_mumaps(ct, mu),
        "compare: A in mm⁻¹": lambda: compare_mumaps(
            mu.with_array(mu.data / np.float32(10)), mu, n_angles=6
        )["warnings"],
    }
    rows = ["| input | outcome |", "|---|---|"]
    for name, run in cases.items():
        try:
            result = run()
            text = "warning: " + "; ".join(result) if isinstance(result, list) else "accepted"
        except MouseregError as exc:
            text = f"refused: {exc}"
        rows.append(f"| {name} | {text.replace('|', '/')} |")
    return rows


def _show(title: str, rows: list[str]) -> None:
    print(f"### {title}\n")
    print("\n".join(rows) + "\n", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--resolution", default="full", choices=("full", "test"))
    parser.add_argument("--skip-speed", action="store_true", help="Leave out the speed table.")
    parser.add_argument("--speed-only", action="store_true", help="Only the speed table.")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start\n")

    ct_table = [
        "| seed | model | soft tissue | fat | bone | lung |",
        "|---|---|---|---|---|---|",
    ]
    mr_table = [
        "| seed | method | ACF body mean % | p95 % | near bone mean % | p95 % | bone LORs "
        "| ≤1 mm of bone: MAE cm⁻¹ | bias % | s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    cases: list[MRTruth] = []
    for seed in range(args.subjects):
        pair = make_pair(seed=seed, resolution=args.resolution)
        if seed == 0:
            if args.resolution == "full" and not args.skip_speed:
                _show("140 µm whole-body CT µ-map (subprocess per case)", speed_table(pair))
            if args.speed_only:
                return
            _show("Bad inputs", bad_input_rows(pair))
        ct_table += ct_rows(seed, pair)
        cases.append(mr_truth(pair))
        del pair
    res = args.resolution
    _show(f"CT-derived µ vs truth ({res}): mean bias % / mean |voxel error| %", ct_table)
    for i, subject in enumerate(cases):
        mr_table += mr_rows(i, subject, cases[(i + 1) % len(cases)])
    _show(f"MRI-derived µ: |ACF/ACF_true − 1| ({res} MRI, 0.4 mm bins, 60 angles)", mr_table)


if __name__ == "__main__":
    main()
