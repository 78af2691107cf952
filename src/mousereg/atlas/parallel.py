"""Run one task per subject on a Dask cluster (given a Client or its address) or locally.

Creating clusters belongs to :mod:`mousereg.batch`; the atlas accepts what batch made.

- On a cluster, each task computes its own dask arrays in its own thread (``scheduler="sync"``).
  Left to the default, a ``.compute()`` inside a task goes through the worker's client and
  secedes from the worker's thread pool, so a one-thread worker ran five subjects at once and two
  workers shared the subjects unevenly (1.5x instead of 2x).
- Without a client, ``workers > 1`` runs the tasks on dask's local multiprocessing scheduler
  (``workers`` spawned processes): ANTsPy's registration holds the GIL, so threads ran the
  subjects one after the other (7 registrations: 259 s wall for 259 s CPU on 2 threads). Inside
  a daemonic process (a Dask worker running a batch job), which may not start children, it falls
  back to threads.
  Tasks go to the processes one at a time (dask batches 6 by default, which put 6 of 7
  registrations on one process), and :func:`local_processes` keeps one pool for a whole build
  instead of spawning and importing ANTs afresh for every call (5-8 s each).
- ``workers == 1`` runs the tasks in this process, one after the other.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, TypeVar

import dask

T = TypeVar("T")
R = TypeVar("R")

_POOL: contextvars.ContextVar[Executor | None] = contextvars.ContextVar("_POOL", default=None)


@contextlib.contextmanager
def local_processes(workers: int) -> Iterator[None]:
    """Share one pool of ``workers`` spawned processes among the local ``map_subjects`` calls
    inside (nothing to do for one worker, inside a daemonic process, or in an outer pool)."""
    if workers <= 1 or _POOL.get() is not None or multiprocessing.current_process().daemon:
        yield
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        token = _POOL.set(pool)
        try:
            yield
        finally:
            _POOL.reset(token)


def _client(cluster: Any) -> Any:
    if cluster is None:
        return None
    if isinstance(cluster, str):
        from dask.distributed import Client

        return Client(cluster)
    return cluster


def _in_task(fn: Callable[..., R], item: Any, *args: Any) -> R:
    """``fn(item, *args)`` with the task's own dask arrays computed in this thread."""
    with dask.config.set(scheduler="sync"):
        return fn(item, *args)


def map_subjects(
    fn: Callable[..., R],
    items: Sequence[T],
    *args: Any,
    cluster: Any = None,
    workers: int = 1,
) -> list[R]:
    """``[fn(item, *args) for item in items]``, one Dask task per item, results in order.

    Args:
        fn: a picklable function (module level).
        items: one entry per subject.
        args: shared arguments (sent once to a distributed cluster).
        cluster: a ``dask.distributed.Client``, a scheduler address (``tcp://...``) or None.
        workers: local processes when ``cluster`` is None (1: in this process).
    """
    client = _client(cluster)
    if client is not None:
        # hash=False: a fresh key per call. With content keys, scattering the same template again
        # right after the last call's futures were released lost the data ("lost dependencies").
        shared = [client.scatter(a, broadcast=True, hash=False) if _big(a) else a for a in args]
        # the subjects go straight to the workers (round robin), not inside the task graph
        # through the scheduler: that held the first task back by 1.5 s (8 subjects, 22 MB each)
        placed = client.scatter(list(items), hash=False) if any(map(_big, items)) else list(items)
        task = functools.partial(_in_task, fn)
        futures = client.map(task, placed, *[[s] * len(items) for s in shared], pure=False)
        results: list[R] = client.gather(futures)
        if isinstance(cluster, str):
            client.close()
        return results
    if workers <= 1 or len(items) <= 1:
        return [fn(item, *args) for item in items]
    tasks = [dask.delayed(fn, pure=False)(item, *args) for item in items]
    n = min(workers, len(items))
    if multiprocessing.current_process().daemon:
        return list(dask.compute(*tasks, scheduler="threads", num_workers=n))
    with dask.config.set({"multiprocessing.context": "spawn"}):
        return list(
            dask.compute(
                *tasks, scheduler="processes", num_workers=n, chunksize=1, pool=_POOL.get()
            )
        )


def _big(value: Any) -> bool:
    """True for arguments worth scattering once (arrays, volumes) instead of with every task."""
    return not isinstance(value, (bool, int, float, str, type(None))) and not callable(value)
