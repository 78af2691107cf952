"""Atlas benchmarks (issue 6): leave-one-out segmentation, ants.build_template, Dask throughput.

Usage (each part prints a markdown table; results also go to OUT/*.json):

    python benchmarks/bench_atlas.py loo  --out /tmp/atlas-bench [--subjects 8] [--iterations 2]
                                          [--folds 0,1,...] [--ants] [--workers 2]
                                          [--seg-spacing 0.5] [--reuse-atlases OLD_OUT]
    python benchmarks/bench_atlas.py dask --out /tmp/atlas-bench [--subjects 4]

``loo``: for every fold, an atlas is built from the other subjects with mousereg's own builder
(template 0.4 mm, registrations at 0.8 mm), the held-out MRI is segmented with the single atlas
and with ``--multi`` (majority, locally weighted and joint label fusion; registrations at
``--seg-spacing``, as ``mousereg atlas segment`` does; the single atlas also on the build's
0.8 mm grid), and Dice is measured against its own MR labels on its native grid.
``--reuse-atlases`` takes a fold's atlas from an earlier run's OUT when it is there (same
builder and parameters) instead of building. ``--build-only`` times the fold builds alone (wall
and CPU seconds, worker processes included) into ``loo_build.jsonl``.
With ``--ants``, ``ants.build_template`` runs on the same subjects
(MR water + fat at the registration spacing, the same SyN iterations and iteration count); its
template gets labels by majority vote of the training labels carried through build_template's
last-iteration transforms, and is registered to the held-out MRI with the same registration.

``dask``: the per-subject registrations of one template iteration on a ``LocalCluster`` with one
and with two single-threaded workers; throughput = subjects per second.

The synthetic study is made by ``mousereg.phantom.write_study`` (test resolution, seed 0) unless
``--study`` points at an existing ``manifest.csv`` folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")

import numpy as np

ORGANS = {
    "bladder": 1,
    "brain": 3,
    "caecum": 4,
    "colon": 5,
    "gall bladder": 7,
    "heart": 8,
    "intestine": 9,
    "kidney": 10,
    "liver": 11,
    "lung": 12,
    "spine": 13,
    "spleen": 14,
    "stomach": 15,
}
SOLID = ("brain", "heart", "kidney", "liver", "lung", "spleen", "stomach")


def study(args: argparse.Namespace) -> Path:
    """The manifest of the benchmark's synthetic study (written when missing)."""
    from mousereg.phantom import write_study

    folder = Path(args.study or Path(args.out) / "study")
    manifest = folder / "manifest.csv"
    if not manifest.exists():
        write_study(folder, subjects=args.subjects, seed=0, resolution="test")
    return manifest


def rows(manifest: Path) -> list[dict[str, str]]:
    with manifest.open(newline="") as fh:
        return list(csv.DictReader(fh))


def write_manifest(path: Path, base: Path, keep: list[dict[str, str]]) -> Path:
    """A manifest of ``keep`` with absolute paths."""
    cols = list(keep[0])
    absolute = [
        {
            c: (str(base / r[c]) if c not in ("subject", "timepoint", "group") else r[c])
            for c in cols
        }
        for r in keep
    ]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(absolute)
    return path


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the local worker processes)."""
    import resource

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def dice(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Dice per organ (organs present in the truth)."""
    from mousereg.metrics import label_metrics

    out = {}
    for name, v in ORGANS.items():
        t = truth == v
        if t.any():
            out[name] = float(label_metrics(pred == v, t, (1.0, 1.0, 1.0), 1.0)["dice"])
    return out


def ants_template_atlas(
    stacks: list[Any], params: Any, work: Path
) -> tuple[Any, np.ndarray, float]:
    """ants.build_template on the stacks' MR (water + fat); labels by majority vote."""
    import ants

    from mousereg.atlas.output import label_probabilities
    from mousereg.atlas.register import downsampled

    images = []
    for s in stacks:
        vol = downsampled(s.volume(), params.registration_spacing)
        images.append(vol.channel(0).to_ants() + vol.channel(1).to_ants())
    start = time.perf_counter()
    template = ants.build_template(
        image_list=images,
        iterations=params.iterations,
        output_dir=str(work),
        type_of_transform="SyN",
        reg_iterations=(40, 20, 10),
    )
    seconds = time.perf_counter() - start
    labels = []
    for k, s in enumerate(stacks):
        prefix = work / f"img{k:04d}" / "out"
        tx = [str(prefix) + "1Warp.nii.gz", str(prefix) + "0GenericAffine.mat"]
        lab = []
        for ch in s.labels:
            img = ants.from_numpy(
                np.ascontiguousarray(ch.transpose(2, 1, 0)).astype(np.float32),
                origin=list(s.grid.origin),
                spacing=list(s.grid.spacing),
                direction=s.grid.direction.copy(),
            )
            warped = ants.apply_transforms(template, img, tx, interpolator="nearestNeighbor")
            lab.append(warped.numpy().transpose(2, 1, 0).astype(np.uint8))
        labels.append(np.stack(lab))
    probs = label_probabilities(labels, stacks[0].table)
    return template, probs, seconds


def loo(args: argparse.Namespace) -> None:
    """Leave-one-out atlas segmentation."""
    from mousereg.atlas import BuildParameters, build_atlas_from_manifest, load_atlas
    from mousereg.atlas.output import max_probability_labels
    from mousereg.atlas.register import BackendRegistration, CoarseRegistration
    from mousereg.atlas.segment import fuse, multi_atlas_votes, read_target, segment_single
    from mousereg.io import read_volume
    from mousereg.volume import Volume

    manifest = study(args)
    base = manifest.parent
    subjects = rows(manifest)[: args.subjects]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    params = BuildParameters(
        iterations=args.iterations, spacing=args.spacing, registration_spacing=args.reg_spacing
    )
    reg_build = CoarseRegistration(BackendRegistration(), args.reg_spacing)
    reg = CoarseRegistration(
        BackendRegistration(iterations=args.multi_iterations), args.seg_spacing
    )
    reg_single = CoarseRegistration(
        BackendRegistration(iterations=args.single_iterations), args.single_spacing
    )
    reg_ants = CoarseRegistration(BackendRegistration(), args.ants_seg_spacing or args.seg_spacing)
    folds = [int(f) for f in args.folds.split(",")] if args.folds else range(len(subjects))
    name = "loo_ants" if args.only_ants else "loo_build" if args.build_only else "loo"
    results_path = out / f"{name}.jsonl"
    for i in folds:
        held = subjects[i]
        train = [r for k, r in enumerate(subjects) if k != i]
        fold = out / f"fold-{i}"
        fold.mkdir(exist_ok=True)
        m = write_manifest(fold / "manifest.csv", base, train)
        target = read_target([base / held["mr_water"], base / held["mr_fat"]], args.spacing)
        truth = read_volume(base / held["mr_labels"]).compute()
        record: dict[str, Any] = {"fold": i, "subject": held["subject"]}
        if not args.only_ants:
            reused = (
                Path(args.reuse_atlases) / f"fold-{i}" / "atlas" if args.reuse_atlases else None
            )
            if reused is not None and (reused / "atlas.json").exists():
                atlas = load_atlas(reused)  # validated on load
                record["atlas"] = str(reused)
            else:
                t0, c0 = time.perf_counter(), cpu_seconds()
                record["load_avg_build"] = os.getloadavg()[0]
                build_atlas_from_manifest(m, fold / "atlas", params, workers=args.workers)
                record["build_s"] = time.perf_counter() - t0
                record["build_cpu_s"] = cpu_seconds() - c0
                atlas = load_atlas(fold / "atlas")
            if args.build_only:
                with results_path.open("a") as fh:
                    fh.write(json.dumps(record) + "\n")
                print(json.dumps(record), flush=True)
                continue
            record["load_avg"] = os.getloadavg()[0]
            t1 = time.perf_counter()
            record["single"] = dice(segment_single(atlas, target, reg_single).compute(), truth)
            record["single_s"] = time.perf_counter() - t1
            if args.seg_spacing != args.reg_spacing:
                t1 = time.perf_counter()
                pred = segment_single(atlas, target, reg_build).compute()
                record["single_build_grid"] = dice(pred, truth)
                record["single_build_grid_s"] = time.perf_counter() - t1
        if not args.only_ants and not args.skip_multi:
            t2, c2 = time.perf_counter(), cpu_seconds()
            votes = multi_atlas_votes(atlas, target, reg, workers=args.workers)
            record["multi_s"] = time.perf_counter() - t2
            record["multi_cpu_s"] = cpu_seconds() - c2
            for fusion in ("majority", "weighted", "joint"):
                record[f"multi_{fusion}"] = dice(
                    fuse(votes, target, atlas, fusion).compute(), truth
                )
            record["history"] = atlas.meta["history"]
        if args.ants or args.only_ants:
            from mousereg.atlas.from_manifest import _prepare, subject_tables
            from mousereg.atlas.subjects import read_subjects

            subs = read_subjects(m)
            table = subject_tables(subs)
            stacks = [_prepare(s, args.spacing, table) for s in subs]
            work = Path(tempfile.mkdtemp(prefix="antstpl-"))
            template, probs, seconds = ants_template_atlas(stacks, params, work)
            record["ants_build_s"] = seconds
            tvol = Volume.from_ants(template)
            fixed = target.volume()
            water = tvol.with_array(np.stack([tvol.compute(), np.zeros(tvol.shape, np.float32)]))
            moving = water.with_array(water.compute(), channel_names=("mr_water", "mr_fat"))
            t3 = time.perf_counter()
            transform = reg_ants(fixed, moving, "deformable")
            from mousereg.atlas.segment import _to_native, _warp

            warped = _warp(probs, tvol, target.grid, transform, labels=False)
            native = _to_native(warped, target.grid, target, labels=False)
            pred = max_probability_labels(native, table)
            record["ants_single"] = dice(pred, truth)
            record["ants_single_s"] = time.perf_counter() - t3
            shutil.rmtree(work, ignore_errors=True)
        with results_path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        print(json.dumps({k: v for k, v in record.items() if k != "history"}), flush=True)
    table_loo(out)


def _mean(records: list[dict[str, Any]], key: str, organs: tuple[str, ...] | None) -> float:
    vals = [
        v
        for r in records
        if key in r
        for name, v in r[key].items()
        if organs is None or name in organs
    ]
    return float(np.mean(vals)) if vals else float("nan")


def _organ(records: list[dict[str, Any]], key: str, organ: str) -> float:
    vals = [r[key][organ] for r in records if key in r and organ in r[key]]
    return float(np.mean(vals)) if vals else float("nan")


def table_loo(out: Path) -> None:
    """The leave-one-out table from the per-fold records (loo.jsonl, loo_ants.jsonl)."""
    records = [
        json.loads(line)
        for name in ("loo.jsonl", "loo_ants.jsonl")
        if (out / name).exists()
        for line in (out / name).read_text().splitlines()
        if line.strip()
    ]
    methods = [
        ("single", "mousereg atlas (single)", "build_s", "single_s"),
        (
            "single_build_grid",
            "mousereg atlas (single), registered on the build grid",
            "build_s",
            "single_build_grid_s",
        ),
        ("multi_majority", "mousereg --multi, majority", "build_s", "multi_s"),
        ("multi_weighted", "mousereg --multi, locally weighted", "build_s", "multi_s"),
        ("multi_joint", "mousereg --multi, joint label fusion", "build_s", "multi_s"),
        ("ants_single", "ants.build_template (single)", "ants_build_s", "ants_single_s"),
    ]
    for key in ("single", "single_build_grid", "ants_single"):
        folds = [r["subject"] for r in records if key in r]
        print(f"\n{key}: {len(folds)} folds ({folds})")
    print()
    print(
        "| method | mean Dice, all organs | mean Dice, solid organs | spleen | kidney | "
        "build s/fold | segment s |"
    )
    print("|---|---|---|---|---|---|---|")
    for key, name, build_key, seg_key in methods:
        if not any(key in r for r in records):
            continue
        build = np.mean([r[build_key] for r in records if build_key in r and key in r])
        seg = np.mean([r[seg_key] for r in records if seg_key in r and key in r])
        print(
            f"| {name} | {_mean(records, key, None):.3f} | {_mean(records, key, SOLID):.3f} | "
            f"{_organ(records, key, 'spleen'):.3f} | {_organ(records, key, 'kidney'):.3f} | "
            f"{build:.0f} | {seg:.0f} |"
        )
    print("\nPer organ (mean over folds):\n")
    keys = [k for k, *_ in methods if any(k in r for r in records)]
    print("| organ | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for organ in ORGANS:
        print(f"| {organ} | " + " | ".join(f"{_organ(records, k, organ):.3f}" for k in keys) + " |")


def dask_bench(args: argparse.Namespace) -> None:
    """1 vs 2 single-threaded Dask workers on one iteration's per-subject registrations."""
    from dask.distributed import Client, LocalCluster

    from mousereg.atlas.build import register_subject
    from mousereg.atlas.from_manifest import _prepare, subject_tables
    from mousereg.atlas.parallel import map_subjects
    from mousereg.atlas.register import BackendRegistration, CoarseRegistration
    from mousereg.atlas.subjects import read_subjects

    subs = read_subjects(study(args))[: args.subjects]
    table = subject_tables(subs)
    stacks = [_prepare(s, args.spacing, table) for s in subs]
    mean = np.mean([s.images for s in stacks], axis=0).astype(np.float32)
    fixed = stacks[0].grid.with_array(mean[1:3], channel_names=("mr_water", "mr_fat"))
    reg = CoarseRegistration(BackendRegistration(), args.reg_spacing)
    rows_out = []
    for n in (1, 2):
        with (
            LocalCluster(n_workers=n, threads_per_worker=1, processes=True) as cluster,
            Client(cluster) as client,
        ):
            client.run(lambda: os.environ.update(ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS="1"))
            map_subjects(register_subject, stacks[:n], fixed, "affine", reg, 0.0, cluster=client)
            load0 = os.getloadavg()[0]
            t = time.perf_counter()
            res = map_subjects(
                register_subject, stacks, fixed, "deformable", reg, 0.0, cluster=client
            )
            seconds = time.perf_counter() - t
        failed = [r.id for r in res if r.error]
        rows_out.append((n, seconds, len(stacks) / seconds, load0, failed))
    print(f"\nPer-subject deformable registrations, {len(stacks)} subjects, LocalCluster\n")
    print("| workers x threads | seconds | subjects/s | speed-up | load avg at start | failed |")
    print("|---|---|---|---|---|---|")
    base = rows_out[0][2]
    for n, s, thr, load, failed in rows_out:
        print(f"| {n} x 1 | {s:.1f} | {thr:.3f} | {thr / base:.2f}x | {load:.1f} | {failed} |")
    (Path(args.out) / "dask.json").write_text(json.dumps(rows_out) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["loo", "dask", "table"])
    parser.add_argument("--out", default="/tmp/mousereg-bench-atlas")
    parser.add_argument("--study", default=None, help="folder with manifest.csv")
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--spacing", type=float, default=0.4)
    parser.add_argument("--reg-spacing", type=float, default=0.8, help="build registrations")
    parser.add_argument("--seg-spacing", type=float, default=0.5, help="segment registrations")
    parser.add_argument(
        "--single-spacing", type=float, default=0.4, help="single-atlas registration"
    )
    parser.add_argument("--single-iterations", type=int, default=80, help="single-atlas SyN")
    parser.add_argument("--multi-iterations", type=int, default=40, help="--multi SyN")
    parser.add_argument("--skip-multi", action="store_true", help="no --multi segmentation")
    parser.add_argument("--build-only", action="store_true", help="time the fold builds only")
    parser.add_argument("--ants-seg-spacing", type=float, default=None)
    parser.add_argument("--reuse-atlases", default=None, help="OUT of a run whose atlases to use")
    parser.add_argument("--folds", default="")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ants", action="store_true")
    parser.add_argument("--only-ants", action="store_true", help="only ants.build_template")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.part == "loo":
        loo(args)
    elif args.part == "dask":
        dask_bench(args)
    else:
        table_loo(Path(args.out))


if __name__ == "__main__":
    main()
