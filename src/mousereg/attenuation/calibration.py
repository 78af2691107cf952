"""Calibrating the HU → µ511 model with two reference materials scanned with the animal.

A reference is ``NAME=MEASURED`` (the mean CT value measured in the reference) or
``NAME=MEASURED:MU`` for a reference with a known µ511 (cm⁻¹), e.g. a hydroxyapatite rod.
Names: ``air``, ``water``, ``fat`` (ICRU adipose), ``soft`` (ICRU soft tissue), ``bone`` (ICRU
cortical bone).

* Two soft references (air, water, fat, soft): the measured values are mapped linearly onto the
  references' CT numbers at the effective energy, which corrects an offset and a gain — and also
  turns a linear non-HU scale (raw attenuation, counts) into HU.
* One soft and one bone reference: the soft reference fixes the HU offset; the bone reference
  replaces the model's cortical-bone knot (its corrected CT number and its µ), so the bone branch
  slope is measured rather than modelled.
"""

from __future__ import annotations

import dataclasses

from mousereg.attenuation.hu_model import MuModel, material_hu, material_mu
from mousereg.errors import InputError

REFERENCE_MATERIALS = {
    "air": "air",
    "water": "water",
    "fat": "adipose",
    "soft": "soft tissue",
    "bone": "cortical bone",
}
SOFT_REFERENCES = ("air", "water", "fat", "soft")


@dataclasses.dataclass(frozen=True)
class Reference:
    """A reference material: its name, the CT value measured in it and its µ511 if given."""

    name: str
    measured: float
    mu: float | None = None


def parse_references(text: str) -> tuple[Reference, Reference]:
    """Parse ``"air=-990,water=4"`` or ``"water=2,bone=2400:0.172"`` into two references."""
    refs = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if not sep or name not in REFERENCE_MATERIALS:
            msg = (
                f"--calibrate {text!r}: {item!r} is not NAME=VALUE with NAME one of "
                f"{', '.join(REFERENCE_MATERIALS)} (e.g. air=-990,water=4)"
            )
            raise InputError(msg)
        measured, _, mu = value.partition(":")
        try:
            refs.append(Reference(name, float(measured), float(mu) if mu else None))
        except ValueError as exc:
            msg = f"--calibrate {text!r}: {item!r} has a value that is not a number"
            raise InputError(msg) from exc
    if len(refs) != 2 or refs[0].name == refs[1].name:
        msg = f"--calibrate {text!r}: give exactly two different reference materials"
        raise InputError(msg)
    return refs[0], refs[1]


def calibrate(model: MuModel, refs: tuple[Reference, Reference]) -> MuModel:
    """``model`` corrected by two measured reference materials."""
    soft = [r for r in refs if r.name in SOFT_REFERENCES]
    if not soft:
        msg = "--calibrate: give at least one of air, water, fat, soft (bone alone sets no offset)"
        raise InputError(msg)
    if len(soft) == 2:
        (r1, t1), (r2, t2) = (
            (r, material_hu(REFERENCE_MATERIALS[r.name], model.kvp)) for r in soft
        )
        if abs(r1.measured - r2.measured) < 1e-6:
            msg = f"--calibrate: {r1.name} and {r2.name} have the same measured value"
            raise InputError(msg)
        gain = (t2 - t1) / (r2.measured - r1.measured)
        return dataclasses.replace(model, gain=gain, offset=t1 - gain * r1.measured)
    ref, bone = soft[0], next(r for r in refs if r.name == "bone")
    offset = material_hu(REFERENCE_MATERIALS[ref.name], model.kvp) - ref.measured
    bone_hu = bone.measured + offset
    bone_mu = bone.mu if bone.mu is not None else material_mu("cortical bone")
    keep = [(h, m) for h, m in zip(model.hu[:-1], model.mu[:-1], strict=True) if h < bone_hu]
    if len(keep) < 2 or bone_mu <= keep[-1][1]:
        msg = (
            f"--calibrate: the bone reference (corrected {bone_hu:.0f} HU, µ {bone_mu:.4f}) must "
            "lie above soft tissue in both CT number and µ; check the measured value"
        )
        raise InputError(msg)
    hu = (*(h for h, _ in keep), bone_hu)
    mu = (*(m for _, m in keep), bone_mu)
    return dataclasses.replace(model, hu=hu, mu=mu, gain=1.0, offset=offset)
