"""Per-iteration build state on disk, so a stopped build restarts at the last finished iteration.

After iteration ``k`` the builder writes ``<atlas>/.build-state/iteration-<k>.npz`` (the template
and every subject's field to it) and ``iteration-<k>.json`` (history, exclusions, the parameter
fingerprint), each atomically; the ``.json`` is written last and marks the iteration finished.
A state whose fingerprint differs from the current parameters and inputs is ignored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from mousereg.atlas import format as fmt
from mousereg.io.atomic import atomic_path, write_text
from mousereg.volume import Volume

_NAME = re.compile(r"iteration-(\d+)\.json$")


@dataclasses.dataclass
class BuildState:
    """What an iteration leaves behind: enough to continue or to write the atlas."""

    iteration: int
    template: np.ndarray  # (c, z, y, x) float32, TEMPLATE_CHANNELS
    fields: dict[str, np.ndarray]  # subject id -> (z, y, x, 3) float32, template -> subject
    history: list[dict[str, Any]]
    excluded: list[dict[str, str]]
    fingerprint: str


def fingerprint(parameters: dict[str, Any], subject_ids: list[str]) -> str:
    """A short hash of what determines the build's result."""
    doc = json.dumps({"parameters": parameters, "subjects": subject_ids}, sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def state_dir(atlas_dir: Path) -> Path:
    """The folder holding the build state of ``atlas_dir``."""
    return atlas_dir / fmt.STATE_DIR


def save(atlas_dir: Path, state: BuildState, grid: Volume) -> None:
    """Write ``state`` (on ``grid``) atomically and drop the states of earlier iterations."""
    folder = state_dir(atlas_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"iteration-{state.iteration:03d}"
    with atomic_path(folder / f"{stem}.npz") as tmp, tmp.open("wb") as fh:
        arrays = {"template": state.template}
        arrays.update({f"field_{k}": v for k, v in state.fields.items()})
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    meta = {
        "iteration": state.iteration,
        "subjects": list(state.fields),
        "history": state.history,
        "excluded": state.excluded,
        "fingerprint": state.fingerprint,
        "grid_origin_xyz_mm": list(grid.origin),
        "grid_shape_zyx": list(grid.shape),
    }
    write_text(folder / f"{stem}.json", json.dumps(meta, indent=1) + "\n")
    for old in folder.glob("iteration-*"):
        m = re.match(r"iteration-(\d+)\.", old.name)
        if m and int(m.group(1)) < state.iteration:
            old.unlink()


def load_latest(atlas_dir: Path, expected: str) -> BuildState | None:
    """The last finished iteration with fingerprint ``expected``, or None."""
    folder = state_dir(atlas_dir)
    if not folder.is_dir():
        return None
    found = sorted(
        (int(m.group(1)), p) for p in folder.glob("iteration-*.json") if (m := _NAME.search(p.name))
    )
    for _, meta_path in reversed(found):
        meta = json.loads(meta_path.read_text())
        npz = meta_path.with_suffix(".npz")
        if meta.get("fingerprint") != expected or not npz.exists():
            continue
        with np.load(npz) as arrays:
            template = np.asarray(arrays["template"])
            fields = {sid: np.asarray(arrays[f"field_{sid}"]) for sid in meta["subjects"]}
        return BuildState(
            iteration=int(meta["iteration"]),
            template=template,
            fields=fields,
            history=list(meta["history"]),
            excluded=list(meta["excluded"]),
            fingerprint=expected,
        )
    return None


def load_grid(atlas_dir: Path, state: BuildState, full: Volume) -> Volume:
    """The (cropped) template grid a saved state lives on, as a crop of the ``full`` grid."""
    meta = json.loads((state_dir(atlas_dir) / f"iteration-{state.iteration:03d}.json").read_text())
    start = np.round(full.physical_to_index(meta["grid_origin_xyz_mm"])).astype(int)[::-1]
    shape = meta["grid_shape_zyx"]
    z, y, x = (slice(int(s), int(s) + int(n)) for s, n in zip(start, shape, strict=True))
    return full.crop((z, y, x))


def clear(atlas_dir: Path) -> None:
    """Remove the build state (after the atlas is written)."""
    shutil.rmtree(state_dir(atlas_dir), ignore_errors=True)
