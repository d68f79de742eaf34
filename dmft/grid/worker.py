"""The worker side of a grid: solve one point and report its outcome.

Everything here runs in the process that computes a point (the coordinator with one
worker, a local pool process, or a Dask worker) and is sent there by reference, so it
must stay importable and picklable at module level.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..options import SolverOptions
from ..problem import Problem
from ..result import Result


@dataclass
class PointOutcome:
    """What a worker sends back: a Result, or the error that stopped the point."""

    index: int
    result: Result | None
    wall_time: float
    error: str = ""
    error_type: str = ""
    traceback: str = ""
    t_eff: float = math.nan
    t_eff_stderr: float = math.nan
    t_eff_note: str = ""
    host: str = ""


@dataclass(frozen=True)
class Task:
    """One point as sent to a worker."""

    index: int
    problem: Problem
    options: SolverOptions
    threads: int  # numba threads for this point; 0: decide on the Dask worker; -1: leave as is


def point_teff(result: Result) -> tuple[float, float, str]:
    """The summary's T_eff columns of one point: (T_eff, its standard error, note).

    Calls ``dmft.fdt.effective_temperature(result)``, accepts a number or an object /
    mapping carrying ``T_eff`` (and ``T_eff_stderr``), and turns any refusal (not
    stationary, run too short for the lag window) or a missing ``dmft.fdt`` into NaN with
    its reason in the note, so that one point's FDT analysis never fails the grid.
    """
    nan = math.nan
    try:
        from .. import fdt  # type: ignore[attr-defined]
    except Exception as error:  # ImportError, or a half-written module
        return nan, nan, f"dmft.fdt not available ({type(error).__name__}): T_eff not computed"
    function = getattr(fdt, "effective_temperature", None)
    if function is None:
        return nan, nan, "dmft.fdt has no effective_temperature(): T_eff not computed"
    try:
        estimate = function(result)
    except Exception as error:  # e.g. NonStationaryError: an answer, not a failure of the point
        return nan, nan, f"{type(error).__name__}: {error}"

    def pick(name: str) -> Any:
        if isinstance(estimate, Mapping):
            return estimate.get(name, nan)
        return getattr(estimate, name, nan)

    value = estimate if isinstance(estimate, (int, float, np.floating)) else pick("T_eff")
    try:
        number, error = float(value), float(pick("T_eff_stderr")) if value is not estimate else nan
    except (TypeError, ValueError):
        return nan, nan, f"dmft.fdt.effective_temperature returned {type(estimate).__name__} without a T_eff number"
    return number, error, "" if math.isfinite(number) else "T_eff undefined"


def numba_threads_on_dask() -> int:
    """Cores per Dask worker thread on this host, so that concurrent points do not
    oversubscribe it: the threads of every worker on the host count, not only this one's
    (two single-thread workers on two cores get one numba thread each)."""
    try:
        from distributed import get_client, get_worker

        host = get_worker().address.rsplit("://", 1)[-1].rsplit(":", 1)[0]
        workers = get_client().scheduler_info(n_workers=-1)["workers"].values()
        threads_here = sum(info["nthreads"] for info in workers if info.get("host") == host)
        return max(1, (os.cpu_count() or 1) // max(1, threads_here))
    except Exception:
        return 1


def solve_point(task: Task) -> PointOutcome:
    """Solve one point; every exception raised by the point itself is returned, not raised.

    Infrastructure failures (a worker killed, a lost connection) surface as exceptions
    of the future instead, so that the coordinator can tell them apart and leave such
    points missing, to be computed by the next run.
    """
    import numba

    from ..solvers import solve

    threads = task.threads or numba_threads_on_dask()
    if threads > 0:
        with contextlib.suppress(Exception):
            numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    start = time.perf_counter()
    host = f"{socket.gethostname()}:{os.getpid()}"
    try:
        result = solve(task.problem, task.options)
    except Exception as error:
        return PointOutcome(task.index, None, time.perf_counter() - start, error=str(error),
                            error_type=type(error).__name__, traceback=traceback.format_exc(), host=host)
    t_eff, t_eff_stderr, note = point_teff(result)
    return PointOutcome(task.index, result, time.perf_counter() - start, t_eff=t_eff, t_eff_stderr=t_eff_stderr,
                        t_eff_note=note, host=host)


def worker_init(threads: int, parent: int) -> None:
    """Set up a local pool process: ignore Ctrl-C, set numba's threads, exit when orphaned."""
    import numba

    # Ctrl-C is the coordinator's business: it stops the pool; workers must not turn it
    # into a point failure.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(Exception):
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))

    # A coordinator killed with SIGKILL cannot stop its pool: workers notice the orphaning
    # and exit rather than computing points nobody will write.
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(3)

    threading.Thread(target=watch, daemon=True).start()
