"""The batch µ-map job scores an MRI µ-map against the animal alone (the MRI sees no holder)."""

from __future__ import annotations

import numpy as np

from mousereg.attenuation.phantom_eval import plastic_mu
from mousereg.batch.kinds.mumap import _animal_only
from mousereg.registration import Transform
from mousereg.resample import resample


def test_mr_truth_drops_the_holder_and_keeps_the_animal(phantom_pair) -> None:
    water = phantom_pair.mr.channel("water")
    on_mr = resample(phantom_pair.mu511, water, Transform(phantom_pair.transform))
    animal, body = _animal_only(on_mr)
    full, kept = on_mr.compute(), animal.compute()
    plastic = np.abs(full - plastic_mu()) < 1e-3
    assert plastic.sum() > 1000  # the holder is in the slab
    assert np.all(kept[plastic & ~body] == 0)  # holder plastic set to air
    truth_labels = phantom_pair.mr_labels.compute() > 0
    assert (body & truth_labels).sum() / truth_labels.sum() > 0.98  # the organs stay
    np.testing.assert_array_equal(kept[body], full[body])
