"""Local parallelism of the per-subject atlas tasks: processes, results in order."""

from __future__ import annotations

import itertools
import os

import numpy as np

from mousereg.atlas.parallel import local_processes, map_subjects


def _pid_and_sum(item: int, offset: np.ndarray) -> tuple[int, float]:
    return os.getpid(), float(item + offset.sum())


def _computes_inside(item: int, data: np.ndarray) -> tuple[float, float]:
    """A task that computes a dask array of its own, then works a while: (start, end)."""
    import time

    import dask.array as da

    start = time.monotonic()
    total = float(da.from_array(data, chunks=10).sum().compute())
    time.sleep(0.3)
    assert total == float(data.sum())
    return start, time.monotonic()


def test_workers_run_in_other_processes_and_keep_the_order() -> None:
    offset = np.arange(4.0)
    out = map_subjects(_pid_and_sum, [1, 2, 3, 4], offset, workers=2)
    assert [v for _, v in out] == [7.0, 8.0, 9.0, 10.0]
    pids = {p for p, _ in out}
    assert os.getpid() not in pids  # ANTsPy holds the GIL: threads would not run in parallel
    assert 1 <= len(pids) <= 2


def _slow_pid(item: int) -> int:
    import time

    time.sleep(0.4)
    return os.getpid()


def test_both_processes_take_tasks_and_a_pool_is_kept_between_calls() -> None:
    with local_processes(2):
        first = map_subjects(_slow_pid, list(range(6)), workers=2)
        second = map_subjects(_slow_pid, list(range(6)), workers=2)
    # dask's default batches of 6 tasks put every task on one process
    assert len(set(first)) == 2
    assert set(second) == set(first)  # the same processes: no spawn and import per call


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


def test_a_one_thread_worker_runs_one_subject_at_a_time() -> None:
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        spans = sorted(map_subjects(_computes_inside, range(4), np.ones(100), cluster=client))
    # a .compute() inside a task must not secede from the worker's thread pool
    assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(spans))


def _map_in_child(queue: object) -> None:
    out = map_subjects(_pid_and_sum, [1, 2], np.zeros(1), workers=2)
    queue.put([v for _, v in out])  # type: ignore[attr-defined]


def test_a_daemonic_process_falls_back_to_threads() -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_map_in_child, args=(queue,), daemon=True)  # like a Dask worker
    child.start()
    assert queue.get(timeout=60) == [1.0, 2.0]
    child.join(timeout=30)
    assert child.exitcode == 0
