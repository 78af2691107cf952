"""Pin the thread pools of ITK, elastix, ANTs and BLAS per Dask worker (workers × threads = cores).

ITK (and with it SimpleITK, itk-elastix and ANTsPy) sizes its pool from
``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` when first used; OpenMP and BLAS read their own variables.
The variables go into each worker's environment before it starts (:func:`pin_env`), and the
:class:`PinThreads` worker plugin also sets the global defaults of modules already imported.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

THREAD_VARIABLES = (
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def pin_env(threads: int) -> dict[str, str]:
    """The environment variables that cap every library's pool at ``threads``."""
    return dict.fromkeys(THREAD_VARIABLES, str(int(threads)))


def pin_threads(threads: int) -> None:
    """Cap the thread pools in this process (environment and the loaded libraries)."""
    os.environ.update(pin_env(threads))
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(threads))
    if "itk" in sys.modules:
        itk = sys.modules["itk"]
        itk.MultiThreaderBase.SetGlobalDefaultNumberOfThreads(int(threads))


def pinned_threads() -> int:
    """The thread count this process is pinned to (1 when unset)."""
    return int(os.environ.get("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1"))


class PinThreads(WorkerPlugin):
    """A worker plugin that pins ITK/SimpleITK/elastix/ANTs/BLAS threads on every worker."""

    name = "mousereg-pin-threads"

    def __init__(self, threads: int) -> None:
        self.threads = int(threads)

    def setup(self, worker: Any) -> None:
        """Runs on each worker when it starts or joins."""
        pin_threads(self.threads)
