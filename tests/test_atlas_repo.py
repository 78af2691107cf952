"""The atlas shipped in atlases/: valid, readable by the CLI, physically sensible numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from mousereg.atlas import load_atlas
from mousereg.cli import main

ATLAS = Path(__file__).resolve().parents[1] / "atlases" / "mousereg-synthetic"
LIVER, LUNG, BONE = 11, 12, 2


def test_cli_validate_and_info() -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["atlas", "validate", str(ATLAS)])
    assert ok.exit_code == 0 and "valid" in ok.output
    info = runner.invoke(main, ["atlas", "info", str(ATLAS)])
    doc = json.loads(info.output)
    assert len(doc["subjects"]) == 8 and doc["size_mb"] < 20
    assert doc["grid"]["spacing_xyz_mm"] == [0.65, 0.65, 0.65]
    bad = runner.invoke(main, ["atlas", "validate", str(ATLAS.parent)])
    assert bad.exit_code == 2 and "atlas.json" in bad.output


def test_templates_and_probabilities_are_physical() -> None:
    atlas = load_atlas(ATLAS)
    ct, _, _, mu = atlas.templates.compute()
    probs = atlas.probabilities()
    labels = atlas.labels.compute()
    assert probs.sum(axis=0).max() <= 1.0 + 2 * len(atlas.table) / 255
    assert float(np.median(ct[labels == LIVER])) > 0.0
    assert float(np.median(ct[labels == BONE])) > 300.0  # bone is dense in the CT template
    assert 0.09 < float(np.median(mu[labels == LIVER])) < 0.11  # cm^-1, soft tissue
    assert float(np.median(mu[labels == LUNG])) < 0.06
    # every subject's MR liver overlaps the atlas liver
    for sid in atlas.subject_ids:
        mr = atlas.subject_labels(sid).compute()[1] == LIVER
        atlas_liver = labels == LIVER
        assert 2 * (mr & atlas_liver).sum() / (mr.sum() + atlas_liver.sum()) > 0.8
