"""µ-maps scored against a phantom pair's true µ511 (tests, benchmarks and ``mousereg demo``).

The truth's body is the animal without the holder: µ > 0.05 cm⁻¹ away from the holder's plastic,
the largest object, holes filled. Tissue classes come from the organ labels (fat = fat + visceral
fat, bone, lung; soft tissue = the rest of the body, which includes unlabelled muscle).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from mousereg.attenuation import body as body_mod
from mousereg.volume import Volume

if TYPE_CHECKING:
    from mousereg.phantom import PhantomPair

BODY_MU = 0.05  # cm⁻¹, half of soft tissue: the body's edge in a blurred true µ-map
PLASTIC_TOLERANCE = 0.004  # cm⁻¹ around the plastic's µ
CLASS_LABELS = {"fat": (6, 17), "bone": (2,), "lung": (12,)}


def plastic_mu() -> float:
    """µ511 of the phantom holder's plastic."""
    from mousereg.phantom.scanners import mu_table
    from mousereg.phantom.tissues import tid

    return float(mu_table()[tid("plastic")])


def truth_body(mu: np.ndarray, dilate: int = 2) -> np.ndarray:
    """The animal in a true µ-map (holder excluded, ``dilate`` voxels of margin to the plastic)."""
    plastic = np.abs(mu - plastic_mu()) < PLASTIC_TOLERANCE
    plastic = ndimage.binary_dilation(plastic, iterations=dilate)
    return body_mod.fill_holes(body_mod.largest_component((mu > BODY_MU) & ~plastic))


def class_masks(labels: np.ndarray, body: np.ndarray) -> dict[str, np.ndarray]:
    """Tissue classes inside ``body`` from the organ labels."""
    masks = {name: body & np.isin(labels, values) for name, values in CLASS_LABELS.items()}
    listed = [v for values in CLASS_LABELS.values() for v in values]
    masks["soft tissue"] = body & ~np.isin(labels, listed)
    return masks


def class_errors(
    test: np.ndarray, truth: np.ndarray, masks: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Per class: relative error of the class mean (bias) and mean absolute voxel error."""
    out = {}
    for name, m in masks.items():
        out[name] = {
            "voxels": int(m.sum()),
            "bias": float(test[m].mean() / truth[m].mean() - 1.0),
            "mean_abs_relative_error": float(np.mean(np.abs(test[m] - truth[m]) / truth[m])),
        }
    return out


@dataclasses.dataclass
class MRTruth:
    """A subject's Dixon images and its true µ (holder removed) on the MRI grid."""

    water: Volume
    fat: Volume
    truth: Volume
    body: np.ndarray
    labels: np.ndarray


def mr_truth(pair: PhantomPair) -> MRTruth:
    """The true µ511 warped onto the MRI grid through the true MRI→CT transform."""
    from mousereg.registration import Transform
    from mousereg.resample import resample

    water, fat = pair.mr.channel("water"), pair.mr.channel("fat")
    arr = resample(pair.mu511, water, Transform(pair.transform)).compute()
    body = truth_body(arr, dilate=1)
    truth = water.with_array(np.where(body, arr, 0).astype(np.float32), modality="mu511")
    return MRTruth(water, fat, truth, body, pair.mr_labels.compute())


def demo_row(
    subject: str, pair: PhantomPair, outdir: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """One summary row for ``mousereg demo``: CT and Dixon µ-maps against the truth.

    Writes ``mu_ct.nii.gz`` and ``mu_dixon.nii.gz`` into ``outdir`` when given.
    """
    from mousereg.attenuation.ct import mumap_from_ct
    from mousereg.attenuation.evaluate import compare_mumaps
    from mousereg.attenuation.mr import mumap_from_mr

    truth = pair.mu511.compute()
    masks = class_masks(pair.ct_labels.compute(), truth_body(truth))
    ct_mu = mumap_from_ct(pair.ct, kvp=pair.kvp).mumap
    errors = class_errors(ct_mu.compute(), truth, masks)
    mr = mr_truth(pair)
    dixon = mumap_from_mr(mr.water, mr.fat).mumap
    acf = compare_mumaps(dixon, mr.truth, body=mr.body, n_angles=30)["acf"]
    if outdir is not None:
        from mousereg.io import write_volume

        out = Path(outdir)
        write_volume(ct_mu, out / "mu_ct.nii.gz")
        write_volume(dixon, out / "mu_dixon.nii.gz")
    return {
        "subject": subject,
        "ct_soft_bias": errors["soft tissue"]["bias"],
        "ct_fat_bias": errors["fat"]["bias"],
        "ct_bone_bias": errors["bone"]["bias"],
        "dixon_acf_mean": acf["body"]["mean"],
        "dixon_acf_p95": acf["body"]["p95"],
    }
