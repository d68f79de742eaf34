"""Executors: where a grid's points are computed.

Each executor takes the points to compute as ``Task`` objects and, iterated, yields a
``PointOutcome`` per point as it finishes, or a ``Lost`` for a point not computed for a
reason outside the point. ``workers=1`` solves in the coordinating process (no pickling,
debuggable); ``workers`` > 1 local processes come from
``concurrent.futures.ProcessPoolExecutor`` (spawn start method), which is in the standard
library, starts in a fraction of the time of a Dask ``LocalCluster``, opens no network
port, and keeps Dask an optional dependency; a scheduler sends the points to an existing
Dask distributed cluster instead.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Iterator

from .._version import __version__
from ..errors import DmftError
from .worker import PointOutcome, Task, solve_point, worker_init

# How long to try reaching a Dask scheduler before giving up.
SCHEDULER_TIMEOUT = "20s"


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass
class Lost:
    """A point not computed for a reason outside the point (worker died, connection lost)."""

    index: int
    reason: str


class InProcess:
    """``workers=1``: solve in the coordinating process, no pool (simplest, debuggable)."""

    def __init__(self, tasks: list[Task]) -> None:
        self.tasks = tasks

    def __enter__(self) -> "InProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def __iter__(self) -> Iterator[PointOutcome | Lost]:
        for task in self.tasks:
            yield solve_point(task)


class LocalPool:
    """Local worker processes (``concurrent.futures.ProcessPoolExecutor``, spawn start method).

    Spawn, not fork: numba's OpenMP threading layer is not fork-safe, and a forked child
    of a process that already ran a parallel kernel can hang.
    """

    def __init__(self, tasks: list[Task], workers: int) -> None:
        self.tasks, self.workers = tasks, workers
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "LocalPool":
        threads = max(1, default_workers() // self.workers)
        self.pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=worker_init, initargs=(threads, os.getpid()))
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        assert self.pool is not None
        if exc_type is None:
            self.pool.shutdown(wait=True)
            return
        # Interrupted: drop queued points and stop the running ones now; their results
        # would be discarded anyway and the next run recomputes them.
        self.pool.shutdown(wait=False, cancel_futures=True)
        terminate = getattr(self.pool, "terminate_workers", None)  # Python >= 3.14
        if terminate is not None:
            terminate()
        else:
            for process in list((getattr(self.pool, "_processes", None) or {}).values()):
                with contextlib.suppress(Exception):
                    process.terminate()

    def __iter__(self) -> Iterator[PointOutcome | Lost]:
        assert self.pool is not None
        futures: dict[Future, int] = {self.pool.submit(solve_point, task): task.index for task in self.tasks}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=futures.__getitem__):
                try:
                    yield future.result()
                except Exception as error:  # BrokenProcessPool: a worker died (out of memory?)
                    yield Lost(futures[future], f"{type(error).__name__}: {error}")


class DaskCluster:
    """Points sent to an existing Dask distributed scheduler (address or ``Client``)."""

    def __init__(self, tasks: list[Task], scheduler: Any) -> None:
        self.tasks, self.scheduler = tasks, scheduler
        self.client: Any = None
        self.own_client = False
        self.futures: list[Any] = []

    def __enter__(self) -> "DaskCluster":
        try:
            from distributed import Client
        except ImportError:
            raise DmftError("--scheduler needs dask.distributed: pip install 'dmft[dask]'") from None
        if isinstance(self.scheduler, Client):
            self.client = self.scheduler
        else:
            try:
                self.client = Client(self.scheduler, timeout=SCHEDULER_TIMEOUT, set_as_default=False)
            except Exception as error:
                raise DmftError(f"scheduler: cannot connect to {self.scheduler} "
                                f"({type(error).__name__}: {error})") from None
            self.own_client = True
        self._check_workers()
        return self

    def _check_workers(self) -> None:
        """Every worker must run this dmft version: the numbers of a grid must come from one code."""
        def version() -> str:
            import dmft

            return dmft.__version__

        try:
            versions = self.client.run(version)
        except Exception as error:
            self._close()
            raise DmftError(f"scheduler: the workers cannot run dmft ({type(error).__name__}: {error}); "
                            "install dmft on every worker") from None
        if not versions:
            self._close()
            raise DmftError(f"scheduler: {self.scheduler} has no workers")
        other = {address: v for address, v in versions.items() if v != __version__}
        if other:
            self._close()
            address, v = next(iter(other.items()))
            raise DmftError(f"scheduler: worker {address} runs dmft {v}, this is dmft {__version__}; "
                            "a grid must be computed by one version")

    def _close(self) -> None:
        if self.own_client and self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is not None and self.futures:
            with contextlib.suppress(Exception):
                self.client.cancel(self.futures)
        self._close()

    def __iter__(self) -> Iterator[PointOutcome | Lost]:
        from distributed import as_completed

        tag = f"{os.getpid()}-{time.time_ns()}"
        self.futures = [self.client.submit(solve_point, task, key=f"dmft-grid-{tag}-{task.index}", pure=False)
                        for task in self.tasks]
        index = {future.key: task.index for future, task in zip(self.futures, self.tasks)}
        for future in as_completed(self.futures, loop=self.client.loop):
            try:
                yield future.result()
            except Exception as error:  # KilledWorker, lost connection: not the point's fault
                yield Lost(index[future.key], f"{type(error).__name__}: {error}")
            finally:
                future.release()  # free worker memory as soon as the point is written
