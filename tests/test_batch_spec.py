"""Pipeline specs and cluster profiles are validated on load; workers get pinned thread pools."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from mousereg.batch import load_spec
from mousereg.batch.cluster import load_profile, open_client, parse_profile
from mousereg.batch.spec import parse_spec
from mousereg.errors import InputError

REPO = Path(__file__).resolve().parents[1]
PIPELINES = REPO / "pipelines"


@pytest.mark.parametrize("name", ["register-pairs", "mumaps", "study", "build-atlas"])
def test_shipped_pipelines_load(name: str) -> None:
    path = PIPELINES / f"{name}.yaml"
    if not path.exists():
        pytest.skip(f"{path.name} is not in this checkout")
    spec = load_spec(path)
    assert spec.name == name
    assert spec.stages[-1].kind.name == "study-report"
    assert set(spec.stages[-1].needs) == {s.name for s in spec.stages[:-1]}


def _doc(**stage: object) -> dict[str, object]:
    return {"name": "t", "stages": {"register": {"kind": "register-pair", **stage}}}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"name": "t", "stages": {}, "colour": 1}, "unknown key 'colour'"),
        (_doc(parms={}), "unknown key 'stages.register.parms'"),
        (_doc(params={"mdoe": "rigid"}), "unknown key 'stages.register.params.mdoe'"),
        (_doc(params={"max_fre_mm": "big"}), "stages.register.params.max_fre_mm must be a float"),
        (_doc(needs=["later"]), "needs names an unknown stage 'later'"),
        ({"name": "t", "stages": {"a": {"kind": "magic"}}}, "unknown job kind 'magic'"),
        ({"name": "t"}, "missing required key 'stages'"),
        ({"name": "t", "retries": -1, "stages": _doc()["stages"]}, "retries must be"),
    ],
)
def test_bad_specs_name_the_key(doc: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        parse_spec(doc)


def test_stage_order_and_defaults() -> None:
    doc = {
        "name": "t",
        "stages": {
            "report": {"kind": "study-report", "needs": ["register"]},
            "register": {"kind": "register-pair"},
        },
    }
    with pytest.raises(InputError, match="must come before it"):
        parse_spec(doc)
    spec = parse_spec(_doc(params={"mode": "fiducial", "max_fre_mm": 2}))
    params = spec.stage("register").params
    assert params["mode"] == "fiducial" and params["max_fre_mm"] == 2.0
    assert params["backend"] == "elastix"  # defaults fill the rest


@pytest.mark.parametrize("name", ["local", "slurm", "pbs"])
def test_shipped_profiles_load(name: str) -> None:
    profile = load_profile(name, PIPELINES / "study.yaml")
    assert profile.kind == name
    assert profile.source == PIPELINES / "clusters" / f"{name}.yaml"


def test_profile_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cluster profile 'lsf' not found.*available: "):
        load_profile("lsf", PIPELINES / "study.yaml")
    with pytest.raises(InputError, match="unknown key 'cores'"):
        parse_profile("x", {"kind": "slurm", "cores": 4})
    with pytest.raises(InputError, match=r"unknown key 'jobqueue\.partition'"):
        parse_profile("x", {"kind": "slurm", "jobqueue": {"partition": "a"}})
    with pytest.raises(InputError, match="kind must be one of local, slurm, pbs"):
        parse_profile("x", {"kind": "lsf"})
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump({"kind": "local", "workers": 0}))
    with pytest.raises(InputError, match="workers must be a whole number >= 1"):
        load_profile(str(p))


def test_workers_times_threads_is_the_core_count() -> None:
    cores = os.cpu_count() or 1
    profile = parse_profile("local", {"kind": "local"})
    assert profile.resolved() == (cores, 1)
    assert profile.resolved(workers=1) == (1, cores)
    assert parse_profile("s", {"kind": "slurm", "threads": 4}).resolved() == (max(1, cores // 4), 4)


def test_local_workers_have_pinned_thread_pools() -> None:
    def pools() -> tuple[str, str, int]:
        import SimpleITK as sitk

        return (
            os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"],
            os.environ["OMP_NUM_THREADS"],
            sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(),
        )

    with open_client("local", workers=1, threads=2, pipeline=PIPELINES / "study.yaml") as (
        client,
        info,
    ):
        assert (info.workers, info.threads) == (1, 2)
        found = client.run(pools)
        assert len(found) == 1
        assert next(iter(found.values())) == ("2", "2", 2)
        pids = client.run(os.getpid)
        assert os.getpid() not in pids.values()  # real worker processes
