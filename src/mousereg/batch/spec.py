"""Pipeline specs (``pipelines/*.yaml``): named stages of job kinds, validated on load.

Schema (docs/batch.md)::

    name: register-pairs            # required
    description: one line           # optional
    retries: 2                      # optional: retries of a job whose worker died or that raised
    stages:                         # required, in run order
      register:                     # the stage name (also its output folder)
        kind: register-pair         # a registered job kind (mousereg.batch.jobs)
        needs: []                   # stages whose results this stage uses
        params: {mode: deformable}  # the kind's parameters; unknown names are an error

Every unknown key is an :class:`~mousereg.errors.InputError` that names the key's full path.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mousereg.batch.jobs import JobKind, get_kind
from mousereg.errors import InputError

TOP_KEYS = {"name", "description", "retries", "stages"}
STAGE_KEYS = {"kind", "needs", "params", "description"}
DEFAULT_RETRIES = 2


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage: a job kind, its parameters and the stages it needs."""

    name: str
    kind: JobKind
    params: dict[str, Any]
    needs: tuple[str, ...] = ()
    description: str = ""


@dataclasses.dataclass(frozen=True)
class PipelineSpec:
    """A validated pipeline."""

    name: str
    stages: tuple[Stage, ...]
    source: Path | None = None
    description: str = ""
    retries: int = DEFAULT_RETRIES

    def stage(self, name: str) -> Stage:
        """The stage called ``name``."""
        for s in self.stages:
            if s.name == name:
                return s
        msg = f"pipeline {self.name!r} has no stage {name!r}"
        raise KeyError(msg)


def _unknown(where: str, given: Mapping[str, Any], allowed: set[str] | Mapping[str, Any]) -> None:
    for key in given:
        if key not in allowed:
            full = f"{where}.{key}" if where else str(key)
            msg = f"unknown key {full!r}; allowed here: {', '.join(sorted(allowed)) or '-'}"
            raise InputError(msg)


def _check_type(where: str, value: Any, default: Any) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, list | tuple):
        ok = isinstance(value, list | tuple)
        value = list(value) if ok else value
    elif isinstance(default, dict):
        ok = isinstance(value, dict)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        msg = f"{where} must be a {type(default).__name__} (like {default!r}), got {value!r}"
        raise InputError(msg)
    return value


def _stage(name: str, raw: Any) -> Stage:
    where = f"stages.{name}"
    if not isinstance(raw, dict):
        msg = f"{where} must be a mapping with 'kind' (and optional needs, params)"
        raise InputError(msg)
    _unknown(where, raw, STAGE_KEYS)
    if "kind" not in raw:
        msg = f"{where} has no 'kind'; name a job kind"
        raise InputError(msg)
    kind = get_kind(str(raw["kind"]))
    given = raw.get("params") or {}
    if not isinstance(given, dict):
        msg = f"{where}.params must be a mapping"
        raise InputError(msg)
    _unknown(f"{where}.params", given, kind.params)
    params = dict(kind.params)
    for key, value in given.items():
        params[key] = _check_type(f"{where}.params.{key}", value, kind.params[key])
    needs = raw.get("needs") or []
    if isinstance(needs, str):
        needs = [needs]
    if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
        msg = f"{where}.needs must be a list of stage names"
        raise InputError(msg)
    return Stage(name, kind, params, tuple(needs), str(raw.get("description", "")))


def parse_spec(doc: Any, source: Path | None = None) -> PipelineSpec:
    """Validate a loaded YAML document as a pipeline spec."""
    origin = f"{source}: " if source else ""
    try:
        if not isinstance(doc, dict):
            msg = "a pipeline spec is a mapping with 'name' and 'stages'"
            raise InputError(msg)
        _unknown("", doc, TOP_KEYS)
        for key in ("name", "stages"):
            if key not in doc:
                msg = f"missing required key {key!r}"
                raise InputError(msg)
        raw_stages = doc["stages"]
        if not isinstance(raw_stages, dict) or not raw_stages:
            msg = "'stages' must be a non-empty mapping of stage name -> stage"
            raise InputError(msg)
        stages = [_stage(str(n), s) for n, s in raw_stages.items()]
        names = [s.name for s in stages]
        for i, s in enumerate(stages):
            for need in s.needs:
                if need not in names:
                    msg = f"stages.{s.name}.needs names an unknown stage {need!r}"
                    raise InputError(msg)
                if names.index(need) >= i:
                    msg = f"stages.{s.name}.needs {need!r}, which must come before it"
                    raise InputError(msg)
        retries = doc.get("retries", DEFAULT_RETRIES)
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            msg = f"retries must be a whole number >= 0, got {retries!r}"
            raise InputError(msg)
    except InputError as exc:
        msg = f"{origin}{exc}"
        raise InputError(msg) from None
    return PipelineSpec(
        name=str(doc["name"]),
        stages=tuple(stages),
        source=source,
        description=str(doc.get("description", "")),
        retries=retries,
    )


def load_spec(path: str | os.PathLike[str]) -> PipelineSpec:
    """Read and validate a pipeline YAML file."""
    import yaml

    p = Path(path)
    if not p.is_file():
        msg = f"{p}: pipeline file not found; see pipelines/*.yaml"
        raise InputError(msg)
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        msg = f"{p}: not valid YAML ({str(exc).splitlines()[0]})"
        raise InputError(msg) from exc
    return parse_spec(doc, p.resolve())
