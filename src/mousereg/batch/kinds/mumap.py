"""Job kind ``mumap``: PET 511 keV µ-maps of one subject from its CT and from its Dixon MRI.

Outputs (cm⁻¹, float32): ``mu_ct.<fmt>`` on the CT grid (``attenuation.mumap_from_ct``),
``mu_mr.<fmt>`` on the MRI grid (``attenuation.mumap_from_mr``, Dixon classes), and, when the
stage needs a ``register-pair`` stage, ``mu_ct_in_mr.<fmt>``: the CT µ-map carried onto the MRI
through the registration (what a PET/MR reconstruction of this mouse would use).

With the phantom's ``truth/mu511.*`` (the true µ on the CT grid) every map is compared with the
truth on its own grid (:func:`mousereg.attenuation.compare_mumaps`: voxel errors per tissue class
and ACF errors); the truth goes onto the MRI grid through the true transform.
"""

from __future__ import annotations

from typing import Any

from mousereg.batch.jobs import JobContext, job_kind
from mousereg.batch.kinds.register import TRUTH_TRANSFORM, load_ct, load_mr
from mousereg.batch.manifest import Row
from mousereg.volume import Volume

TRUTH_MU = ("mu511.nii.gz", "mu511.nii", "mu511.zarr")


def _truth_mu(row: Row) -> Volume | None:
    from mousereg.io import read_volume

    if not row.has("truth"):
        return None
    for name in TRUTH_MU:
        path = row.path("truth") / name
        if path.exists():
            return read_volume(path)
    return None


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a :func:`compare_mumaps` report."""
    body = report["tissues"]["body"]
    acf = report["acf"]["body"]
    return {
        "body_mean_abs_error_cm1": round(body["mean_abs_error"], 6),
        "body_mean_relative_error": round(body["mean_relative_error"], 6),
        "body_mean_abs_relative_error": round(body["mean_abs_relative_error"], 6),
        "acf_error_mean": round(acf["mean"], 6),
        "acf_error_p95": round(acf["p95"], 6),
        "tissues": {
            k: round(v["mean_abs_relative_error"], 6)
            for k, v in report["tissues"].items()
            if k != "body"
        },
    }


@job_kind(
    "mumap",
    scope="subject",
    params={
        "kvp": 55.0,
        "ct_model": "materials",
        "mr_method": "dixon",
        "mr_values": "mouse",
        "evaluate": True,
        "n_angles": 8,
        "format": "nii.gz",
    },
    requires=(("ct", "mr_water", "mr"),),
)
def mumap(ctx: JobContext) -> dict[str, Any]:
    """µ511 maps from the CT, from the Dixon MRI, and the CT's carried onto the MRI."""
    from mousereg.attenuation import compare_mumaps, mumap_from_ct, mumap_from_mr
    from mousereg.io import write_volume
    from mousereg.registration import Transform
    from mousereg.resample import resample

    row, p, out = ctx.row, ctx.params, ctx.outdir
    maps: dict[str, Volume] = {}
    meta: dict[str, Any] = {}
    ct = load_ct(row) if row.has("ct") else None
    mr = load_mr(row) if row.has("mr") or row.has("mr_water") else None
    if ct is not None:
        made = mumap_from_ct(ct, kvp=p["kvp"], model=p["ct_model"])
        maps["mu_ct"], meta["mu_ct"] = made.mumap, made.metadata
    if mr is not None and {"water", "fat"} <= set(mr.channel_names):
        made_mr = mumap_from_mr(
            mr.channel("water"), mr.channel("fat"), method=p["mr_method"], values=p["mr_values"]
        )
        maps["mu_mr"], meta["mu_mr"] = made_mr.mumap, made_mr.metadata
    registered = [u for stage in ctx.upstream for u in ctx.needed(stage)]
    transform_file = next(
        (u.folder / "transform.h5" for u in registered if (u.folder / "transform.h5").is_file()),
        None,
    )
    if "mu_ct" in maps and mr is not None and transform_file is not None:
        t = Transform.read(transform_file)
        maps["mu_ct_in_mr"] = resample(maps["mu_ct"], mr.channel(0), t)
    outputs = {}
    for name, vol in maps.items():
        path = out / f"{name}.{p['format']}"
        write_volume(vol, path)
        outputs[name] = path.name
        ctx.log.info("wrote %s", path.name)
    evaluation: dict[str, Any] = {}
    truth = _truth_mu(row) if p["evaluate"] else None
    if truth is not None:
        references: dict[str, tuple[Volume, Any]] = {"mu_ct": (truth, None)}
        truth_t = row.path("truth") / TRUTH_TRANSFORM
        if mr is not None and truth_t.is_file():
            on_mr = resample(truth, mr.channel(0), Transform.read(truth_t))
            references["mu_ct_in_mr"] = (on_mr, None)  # the CT sees the holder too
            references["mu_mr"] = _animal_only(on_mr)  # the MRI does not
        for name, vol in maps.items():
            if name not in references:
                continue
            reference, body = references[name]
            report = compare_mumaps(vol, reference, body=body, n_angles=p["n_angles"])
            evaluation[name] = summarise(report)
    return {
        "subject": row.subject,
        "timepoint": row.timepoint,
        "group": row.group,
        "outputs": outputs,
        "metadata": meta,
        "evaluation_vs_truth": evaluation,
    }


def _animal_only(truth_on_mr: Volume) -> tuple[Volume, Any]:
    """The true µ on the MRI grid with the holder set to air, and the animal's mask.

    The MRI sees no plastic, so an MRI µ-map is scored against the animal alone; scoring it
    against a truth that keeps the holder would report the holder as the MRI method's error.
    """
    import numpy as np

    from mousereg.attenuation.phantom_eval import truth_body

    arr = truth_on_mr.compute()
    body = truth_body(arr, dilate=1)
    animal = truth_on_mr.with_array(np.where(body, arr, 0).astype(np.float32))
    return animal, body
