"""Benchmark the phantom: one full-resolution pair, and a 4-subject test-resolution study.

Prints a markdown table (wall and CPU seconds; targets: full pair < 60 s, study < 10 s on
2 cores). Run: ``.venv/bin/python benchmarks/bench_phantom.py``.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable
from typing import Any

from mousereg.phantom import make_pair, write_study


def _children_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall, cpu) seconds of ``fn()``, CPU including worker processes."""
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0, _children_cpu() - cpu0


def main() -> None:
    rows = []
    wall, cpu = timed(lambda: make_pair(seed=0, resolution="full"))
    rows.append(
        ("make_pair, full resolution (CT 140 um 301x180x787, MRI 384x264x44)", wall, cpu, 60)
    )
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = timed(lambda: write_study(tmp, subjects=4, seed=0, resolution="test"))
    rows.append(("write_study, 4 subjects, test resolution, NIfTI", wall, cpu, 10))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, load average {load:.1f}")
    print()
    print("| case | wall s | CPU s | target wall s |")
    print("|---|---|---|---|")
    for name, w, c, target in rows:
        print(f"| {name} | {w:.1f} | {c:.1f} | < {target} |")


if __name__ == "__main__":
    main()
