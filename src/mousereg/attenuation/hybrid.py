"""Hybrid µ-map: the atlas for bone and lung, the subject's Dixon for fat and soft tissue.

Inside the subject's body (from its own Dixon images):

* bone — where the warped atlas µ exceeds :data:`BONE_FROM_MU` (bone and its partial-volume rim,
  above any soft tissue), the atlas value; bone marrow looks fat-like in Dixon and cortical bone
  gives no signal, so the Dixon images cannot find it. But bone is never bright in T2-weighted
  Dixon: where the subject's signal exceeds :data:`BONE_MAX_SIGNAL` of its bright-tissue level
  (95th percentile in the body: fat, fluid) the atlas bone is misplaced and Dixon is kept;
* lung and gas — in the subject's low-signal voxels (Dixon lung and the small dark pockets),
  where the atlas says lung or air (µ below :data:`LUNG_BELOW_MU`), the atlas value: the
  subject's MRI says *where* there is no tissue, the atlas *how dense* it is;
* everything else keeps its Dixon class value.
"""

from __future__ import annotations

import numpy as np

from mousereg.attenuation.dixon import DixonClasses
from mousereg.attenuation.tissues import MU_SOFT

BONE_FROM_MU = MU_SOFT + 0.004  # cm⁻¹
LUNG_BELOW_MU = 0.07  # cm⁻¹
BONE_MAX_SIGNAL = 0.35  # of the 95th percentile of the body's Dixon signal


def hybrid_mu(dixon_mu: np.ndarray, dixon: DixonClasses, atlas_mu: np.ndarray) -> np.ndarray:
    """Combine a Dixon µ-map and an atlas µ-map on the same grid (see the module docstring)."""
    signal_low = dixon.body & ~dixon.tissue
    out = np.array(dixon_mu, dtype=np.float32, copy=True)
    lung = signal_low & (atlas_mu < LUNG_BELOW_MU)
    out[lung] = atlas_mu[lung]
    bright = dixon.signal > BONE_MAX_SIGNAL * np.percentile(dixon.signal[dixon.body], 95)
    bone = dixon.body & (atlas_mu >= BONE_FROM_MU) & ~bright
    out[bone] = atlas_mu[bone]
    return out
