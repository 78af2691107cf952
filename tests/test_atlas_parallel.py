"""Local parallelism of the per-subject atlas tasks: processes, results in order."""

from __future__ import annotations

import os

import numpy as np

from mousereg.atlas.parallel import map_subjects


def _pid_and_sum(item: int, offset: np.ndarray) -> tuple[int, float]:
    return os.getpid(), float(item + offset.sum())


def test_workers_run_in_other_processes_and_keep_the_order() -> None:
    offset = np.arange(4.0)
    out = map_subjects(_pid_and_sum, [1, 2, 3, 4], offset, workers=2)
    assert [v for _, v in out] == [7.0, 8.0, 9.0, 10.0]
    pids = {p for p, _ in out}
    assert os.getpid() not in pids  # ANTsPy holds the GIL: threads would not run in parallel
    assert 1 <= len(pids) <= 2


def test_one_worker_runs_in_this_process() -> None:
    out = map_subjects(_pid_and_sum, [1, 2], np.zeros(1), workers=1)
    assert out == [(os.getpid(), 1.0), (os.getpid(), 2.0)]


def test_a_cluster_takes_the_same_shared_argument_twice() -> None:
    from dask.distributed import Client, LocalCluster

    offset = np.arange(1000.0)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        for _ in range(3):  # the same array scattered again right after the last call
            out = map_subjects(_pid_and_sum, [1, 2, 3], offset, cluster=client)
            assert [v for _, v in out] == [499501.0, 499502.0, 499503.0]
