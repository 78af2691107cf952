"""Unbiased group-wise construction of a multimodal mouse atlas (Joshi 2004, Avants 2010).

1. Every subject's CT, MR water, MR fat, mu511 and labels go onto an isotropic grid in its own
   MRI space (:mod:`.prepare`).
2. Initial normalisation: each subject is registered affinely to a reference subject; the mean of
   the registered subjects is the first template.
3. Each iteration registers every subject (MR water + fat) deformably to the current template,
   one Dask task per subject, averages the warped subjects, and moves the template by the negated
   mean field times the gradient step (applied four times, as antsMultivariateTemplateConstruction2
   does), optionally sharpening the MR channels. It stops when the template changes by less than
   ``tolerance`` (relative RMS) or after ``iterations``.
4. The final fields put every subject in template space: the CT and mu511 templates (carried
   through each subject's CT<->MRI mapping), the probabilistic labels and the max-probability
   labels follow (:mod:`.output`).

A subject whose registration fails (an exception, or a result whose correlation with the
template stays below ``min_similarity``) is left out with a warning recorded in ``atlas.json``;
the build continues while at least ``min_subjects`` remain.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mousereg.atlas import format as fmt
from mousereg.atlas import state as build_state
from mousereg.atlas import template as tpl
from mousereg.atlas.parallel import local_processes, map_subjects
from mousereg.atlas.prepare import SubjectStack, warp_stack
from mousereg.atlas.register import (
    CoarseRegistration,
    Mode,
    RegisterPair,
    default_register_pair,
    displacement_field,
)
from mousereg.errors import RegistrationError
from mousereg.volume import Volume

log = logging.getLogger(__name__)

REGISTRATION_CHANNELS = ("mr_water", "mr_fat")
BODY_HU = -500.0  # CT template above this is the body (mask for the figures)


@dataclasses.dataclass(frozen=True)
class BuildParameters:
    """Settings of a build (all recorded in ``atlas.json``)."""

    iterations: int = 4
    spacing: float = 0.4
    gradient_step: float = tpl.GRADIENT_STEP
    compositions: int = tpl.COMPOSITIONS
    sharpen: bool = True
    tolerance: float = 0.002
    min_subjects: int = 3
    min_similarity: float = 0.5
    reference: str | None = None
    registration_spacing: float = 0.8
    margin_mm: float = 2.0


@dataclasses.dataclass
class TaskResult:
    """One subject's registration to the template (or why it failed)."""

    id: str
    field: np.ndarray | None = None
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    similarity: float = float("nan")
    seconds: float = 0.0
    error: str = ""


def correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Pearson correlation of ``a`` and ``b`` inside ``mask``."""
    x = a[mask].astype(np.float64)
    y = b[mask].astype(np.float64)
    if x.size < 2 or x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def register_subject(
    stack: SubjectStack,
    fixed: Volume,
    mode: Mode,
    register_pair: RegisterPair,
    min_similarity: float,
) -> TaskResult:
    """Register one subject to ``fixed`` (the template's MR channels); the Dask task."""
    start = time.perf_counter()
    try:
        transform = register_pair(fixed, stack.volume(REGISTRATION_CHANNELS), mode)
        field = displacement_field(transform, fixed)
        images, labels = warp_stack(stack, field, fixed)
    except Exception as exc:  # a backend failure leaves the subject out, it does not stop the build
        return TaskResult(stack.id, error=f"registration failed: {exc}".splitlines()[0])
    water = images[fmt.TEMPLATE_CHANNELS.index("mr_water")]
    target = fixed.channel("mr_water").compute()
    mask = target > 0.1 * float(target.max())
    sim = correlation(water, target, mask)
    seconds = time.perf_counter() - start
    if not np.isfinite(sim) or sim < min_similarity:
        return TaskResult(
            stack.id,
            similarity=sim,
            seconds=seconds,
            error=f"registration failed: correlation {sim:.2f} < {min_similarity} with template",
        )
    return TaskResult(stack.id, field, images, labels, sim, seconds)


def sharpness(template: np.ndarray, grid: Volume) -> float:
    """Mean gradient magnitude of the MR water template in the body over its mean (1/mm)."""
    mask = template[fmt.TEMPLATE_CHANNELS.index("ct")] > BODY_HU
    water = template[fmt.TEMPLATE_CHANNELS.index("mr_water")]
    if not mask.any():
        return 0.0
    return tpl.mean_gradient_magnitude(water, grid, mask) / max(float(water[mask].mean()), 1e-12)


def initial_record(state: build_state.BuildState, grid: Volume) -> dict[str, Any]:
    """The history entry of the initial (affine) template: iteration 0."""
    return {
        "iteration": 0,
        "subjects": len(state.fields),
        "template_change": None,
        "sharpness": sharpness(state.template, grid),
        "mean_displacement_mm": None,
    }


def _fixed(template: np.ndarray, grid: Volume) -> Volume:
    idx = [fmt.TEMPLATE_CHANNELS.index(c) for c in REGISTRATION_CHANNELS]
    return grid.with_array(template[idx], channel_names=REGISTRATION_CHANNELS)


class _Run:
    """The state of one build while it runs."""

    def __init__(
        self,
        stacks: Sequence[SubjectStack],
        params: BuildParameters,
        out: Path,
        register_pair: RegisterPair,
        cluster: Any,
        workers: int,
        fingerprint: str,
    ) -> None:
        self.stacks = {s.id: s for s in stacks}
        self.params = params
        self.out = out
        self.register_pair = register_pair
        self.cluster = cluster
        self.workers = workers
        self.fingerprint = fingerprint
        self.excluded: list[dict[str, str]] = []
        self.task_seconds: list[float] = []

    def register_all(
        self, fixed: Volume, ids: Sequence[str], mode: Mode, others: int = 0
    ) -> list[TaskResult]:
        """Register the subjects ``ids`` to ``fixed``; drop failures (recorded).

        ``others`` counts subjects that stay without a registration (the reference).
        """
        results = map_subjects(
            register_subject,
            [self.stacks[i] for i in ids],
            fixed,
            mode,
            self.register_pair,
            self.params.min_similarity,
            cluster=self.cluster,
            workers=self.workers,
        )
        good = []
        for r in results:
            self.task_seconds.append(r.seconds)
            if r.error:
                log.warning("subject %s left out: %s", r.id, r.error)
                self.excluded.append({"id": r.id, "reason": r.error})
            else:
                good.append(r)
        if len(good) + others < self.params.min_subjects:
            reasons = "; ".join(f"{e['id']}: {e['reason']}" for e in self.excluded)
            msg = (
                f"only {len(good) + others} subject(s) registered, an atlas needs at least "
                f"{self.params.min_subjects} ({reasons}); check those subjects' images"
            )
            raise RegistrationError(msg)
        return good

    def initial(self, grid: Volume) -> build_state.BuildState:
        """Iteration 0: affine normalisation to the reference subject, then the mean."""
        ref_id = self.params.reference or next(iter(self.stacks))
        ref = self.stacks[ref_id]
        fixed = _fixed(ref.images, grid)
        others = [i for i in self.stacks if i != ref_id]
        results = self.register_all(fixed, others, "affine", others=1)
        zero = np.zeros((*grid.shape, 3), np.float32)
        ref_images, _ = warp_stack(ref, zero, grid)
        template = np.mean([ref_images, *[r.images for r in results if r.images is not None]], 0)
        fields = {ref_id: zero, **{r.id: r.field for r in results if r.field is not None}}
        return build_state.BuildState(0, template.astype(np.float32), fields, [], [], "")

    def crop(
        self, state: build_state.BuildState, grid: Volume
    ) -> tuple[Volume, build_state.BuildState]:
        """Crop the template grid to the body of the initial template plus a margin."""
        body = state.template[fmt.TEMPLATE_CHANNELS.index("ct")] > BODY_HU
        if not body.any():
            return grid, state
        pad = int(np.ceil(self.params.margin_mm / min(grid.spacing)))
        box = tuple(
            slice(max(0, int(lo) - pad), min(n, int(hi) + pad + 1))
            for lo, hi, n in zip(
                np.argwhere(body).min(0), np.argwhere(body).max(0), grid.shape, strict=True
            )
        )
        zyx = (box[0], box[1], box[2])
        cropped = grid.crop(zyx)
        state.template = np.ascontiguousarray(state.template[(slice(None), *zyx)])
        state.fields = {k: np.ascontiguousarray(v[zyx]) for k, v in state.fields.items()}
        return cropped, state

    def iterate(self, current: build_state.BuildState, grid: Volume) -> build_state.BuildState:
        """One iteration: register, average, shape update, sharpen."""
        p = self.params
        k = current.iteration + 1
        results = self.register_all(
            _fixed(current.template, grid), list(current.fields), "deformable"
        )
        fields = [r.field for r in results if r.field is not None]
        average = np.mean([r.images for r in results if r.images is not None], axis=0)
        average = average.astype(np.float32)
        mean_field = np.mean(fields, axis=0)
        update = tpl.shape_update_field(mean_field, grid, p.gradient_step, p.compositions)
        fills = [-1000.0 if c == "ct" else 0.0 for c in fmt.TEMPLATE_CHANNELS]
        new = tpl.warp_array(average, update, grid, order=1, cval=fills)
        if p.sharpen:
            for c in REGISTRATION_CHANNELS:
                i = fmt.TEMPLATE_CHANNELS.index(c)
                new[i] = tpl.sharpen(new[i])
        composed = {
            r.id: tpl.compose_fields(r.field, update, grid) for r in results if r.field is not None
        }
        mask = new[fmt.TEMPLATE_CHANNELS.index("ct")] > BODY_HU
        reg = [fmt.TEMPLATE_CHANNELS.index(c) for c in REGISTRATION_CHANNELS]
        record = {
            "iteration": k,
            "subjects": len(results),
            "template_change": tpl.relative_change(new[reg], current.template[reg]),
            "sharpness": sharpness(new, grid),
            "mean_displacement_mm": tpl.mean_displacement(fields, mask),
            "residual_displacement_mm": tpl.mean_displacement(list(composed.values()), mask),
            "subject_displacement_mm": float(
                np.mean([np.linalg.norm(f, axis=-1)[mask].mean() for f in composed.values()])
            ),
            "similarity": float(np.mean([r.similarity for r in results])),
        }
        log.info("iteration %d: %s", k, record)
        return build_state.BuildState(
            k, new, composed, [*current.history, record], list(self.excluded), self.fingerprint
        )


def build_atlas(
    stacks: Sequence[SubjectStack],
    out: str | Path,
    params: BuildParameters | None = None,
    *,
    register_pair: RegisterPair | None = None,
    cluster: Any = None,
    workers: int = 1,
    resume: bool = True,
    fingerprint: str = "",
) -> tuple[build_state.BuildState, Volume]:
    """Run the group-wise construction on prepared subjects; return the final state and grid.

    The state after every iteration is saved under ``out/.build-state`` (atomic), and with
    ``resume`` a new call continues from the last finished iteration of the same build.
    """
    p = params or BuildParameters()
    out_dir = Path(out)
    ids = [s.id for s in stacks]
    ref_id = p.reference or ids[0]
    by_id = {s.id: s for s in stacks}
    if ref_id not in by_id:
        msg = f"reference subject {ref_id!r} is not among the subjects {ids}"
        raise RegistrationError(msg)
    grid = by_id[ref_id].grid
    fp = fingerprint or build_state.fingerprint(dataclasses.asdict(p), ids)
    reg = CoarseRegistration(register_pair or default_register_pair, p.registration_spacing)
    run = _Run(stacks, p, out_dir, reg, cluster, workers, fp)
    with local_processes(workers if cluster is None else 1):
        current = build_state.load_latest(out_dir, fp) if resume else None
        if current is None:
            current = run.initial(grid)
            grid, current = run.crop(current, grid)
            current.history = [initial_record(current, grid)]
            current.excluded, current.fingerprint = list(run.excluded), fp
            build_state.save(out_dir, current, grid)
        else:
            log.info("resuming after iteration %d", current.iteration)
            run.excluded = list(current.excluded)
            grid = build_state.load_grid(out_dir, current, grid)
        while current.iteration < p.iterations:
            change = current.history[-1]["template_change"] if current.history else None
            if change is not None and change < p.tolerance:
                break
            current = run.iterate(current, grid)
            build_state.save(out_dir, current, grid)
        return current, grid
