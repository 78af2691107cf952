"""Batch throughput on a LocalCluster: 1 worker vs 2 workers (ITK threads pinned to 1 per job).

Self-contained: makes a synthetic study (test resolution) in a temporary folder, then runs the
same per-subject pipeline (fiducial registration + label propagation both ways + evaluation
against the truth) from scratch with each cluster configuration and prints a markdown table.
Workers are started and warmed up (imports) before the clock starts; the time is the wall time
of :func:`mousereg.batch.run_pipeline` (plan, fingerprints, jobs, summary).

    .venv/bin/python benchmarks/bench_batch.py [--subjects 8] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

SPEC = """
name: bench-batch
stages:
  register:
    kind: register-pair
    params: {mode: fiducial, overlay: false}
"""
CONFIGS = ((1, 1), (2, 1), (1, 2))  # (workers, ITK threads per job)


def _warm(client: object) -> None:
    def imports() -> bool:
        import mousereg.batch.kinds.register
        import mousereg.metrics
        import mousereg.propagate
        import mousereg.registration  # noqa: F401

        return True

    client.run(imports)  # type: ignore[attr-defined]


def run_config(spec: Path, manifest: Path, out: Path, workers: int, threads: int) -> float:
    """Wall seconds of one from-scratch run with ``workers`` x ``threads``."""
    from distributed import Client, LocalCluster

    from mousereg.batch import run_pipeline
    from mousereg.batch.threads import pin_env

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            env=pin_env(threads),
        ) as cluster,
        Client(cluster) as client,
    ):
        _warm(client)
        t0 = time.perf_counter()
        summary = run_pipeline(spec, manifest, out, cluster=client, threads=threads)
        seconds = time.perf_counter() - t0
    if not summary.ok:
        msg = f"benchmark run failed:\n{summary.table()}"
        raise SystemExit(msg)
    return seconds


def main() -> None:
    """Make the study, time each configuration, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    from mousereg.phantom import write_study

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        manifest = write_study(root / "study", subjects=args.subjects, seed=8, resolution="test")
        make_s = time.perf_counter() - t0
        spec = root / "bench.yaml"
        spec.write_text(SPEC)
        rows = []
        base = None
        load_before = os.getloadavg()[0]
        for workers, threads in CONFIGS:
            times = [
                run_config(spec, manifest, root / f"out-{workers}x{threads}-{r}", workers, threads)
                for r in range(args.repeats)
            ]
            best = min(times)
            base = base or best
            rows.append((workers, threads, best, args.subjects / best * 60, base / best))
        load_after = os.getloadavg()[0]
    print(
        f"\nBatch throughput, {args.subjects} subjects (test resolution), per job: fiducial "
        "registration + labels both ways + evaluation. "
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; study made in {make_s:.0f} s; "
        f"best of {args.repeats}; load average (1 min) {load_before:.1f} before, "
        f"{load_after:.1f} after.\n"
    )
    print("| workers | ITK threads/job | wall s | jobs/min | speed-up vs 1 worker |")
    print("|---:|---:|---:|---:|---:|")
    for workers, threads, best, per_min, speedup in rows:
        print(f"| {workers} | {threads} | {best:.1f} | {per_min:.2f} | {speedup:.2f}x |")


if __name__ == "__main__":
    main()
