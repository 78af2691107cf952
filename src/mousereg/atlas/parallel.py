"""Run one task per subject on a Dask cluster (given a Client or its address) or locally.

Creating clusters belongs to :mod:`mousereg.batch`; the atlas accepts what batch made. Without a
client, ``workers > 1`` runs the tasks on dask's local multiprocessing scheduler (``workers``
spawned processes): ANTsPy's registration holds the GIL, so threads ran the subjects one after
the other (measured: 7 registrations in 259 s wall for 259 s CPU on 2 threads).
``workers == 1`` runs them in this process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import dask

T = TypeVar("T")
R = TypeVar("R")


def _client(cluster: Any) -> Any:
    if cluster is None:
        return None
    if isinstance(cluster, str):
        from dask.distributed import Client

        return Client(cluster)
    return cluster


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
        futures = client.map(fn, list(items), *[[s] * len(items) for s in shared], pure=False)
        results: list[R] = client.gather(futures)
        if isinstance(cluster, str):
            client.close()
        return results
    if workers <= 1 or len(items) <= 1:
        return [fn(item, *args) for item in items]
    tasks = [dask.delayed(fn, pure=False)(item, *args) for item in items]
    n = min(workers, len(items))
    with dask.config.set({"multiprocessing.context": "spawn"}):
        return list(dask.compute(*tasks, scheduler="processes", num_workers=n))


def _big(value: Any) -> bool:
    """True for arguments worth scattering once (arrays, volumes) instead of with every task."""
    return not isinstance(value, (bool, int, float, str, type(None))) and not callable(value)
