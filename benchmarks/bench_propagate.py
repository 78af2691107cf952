"""Label propagation with the TRUE transform on a full-resolution phantom pair (issue 5).

The ceiling of what any registration can reach through ``mousereg.propagate``: CT labels (140 um)
onto the MRI (208 x 208 x 400 um) and MRI labels onto the CT, the latter compared inside the
MRI's field of view on the CT grid. Dice per organ from ``mousereg.metrics.evaluate``.

    .venv/bin/python benchmarks/bench_propagate.py [--seed 11] [--resolution full]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from mousereg.metrics import evaluate
from mousereg.phantom import make_pair
from mousereg.propagate import field_of_view, propagate
from mousereg.registration import Transform
from mousereg.volume import Volume


def _cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _dice(out: Volume, truth: Volume, roi: Volume | None = None) -> dict[str, float]:
    doc = evaluate(out, truth, roi=roi)
    return {r["name"]: r["dice"] for r in doc["labels"] if r["in_truth"] and r["volume_pred_ml"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--resolution", default="full", choices=["test", "full"])
    args = parser.parse_args()
    pair = make_pair(seed=args.seed, resolution=args.resolution)
    t = Transform(pair.transform)
    mr = pair.mr.channel(0)
    rows = []
    for method in ("label", "nearest"):
        wall, cpu = time.perf_counter(), _cpu()
        d = _dice(propagate(pair.ct_labels, t, mr, method=method), pair.mr_labels)
        rows.append(("CT -> MRI", method, d, time.perf_counter() - wall, _cpu() - cpu))
    for method in ("label", "nearest"):
        wall, cpu = time.perf_counter(), _cpu()
        out = propagate(pair.mr_labels, t, pair.ct, inverse=True, method=method)
        fov = field_of_view(pair.mr, t, pair.ct, inverse=True)
        d = _dice(out, pair.ct_labels, roi=fov)
        rows.append(("MRI -> CT (in MRI FOV)", method, d, time.perf_counter() - wall, _cpu() - cpu))
    print(
        f"seed {args.seed}, {args.resolution}: CT {pair.ct.shape} at {pair.ct.spacing[0]} mm, "
        f"MRI {mr.shape} at {tuple(round(s, 3) for s in mr.spacing)} mm"
    )
    print()
    print("| direction | method | organs | mean Dice | min Dice (organ) | wall (s) | CPU (s) |")
    print("|---|---|---|---|---|---|---|")
    for direction, method, d, wall_s, cpu_s in rows:
        worst = min(d, key=lambda k: d[k])
        print(
            f"| {direction} | {method} | {len(d)} | {np.mean(list(d.values())):.4f} | "
            f"{d[worst]:.3f} ({worst}) | {wall_s:.0f} | {cpu_s:.0f} |"
        )


if __name__ == "__main__":
    main()
