"""The independent subpopulations of a solve (and the independent runs of
``dmft.workflows.solve_runs``), side by side on the cores.

Each subpopulation is a whole run (its own draws, march or fixed-point loop and weight
side), so up to one per numba thread run at once, each on the single-threaded kernels,
which release the interpreter's lock; the Python between kernel calls is a small part of
a step. Their results are handed back in subpopulation order, so that what is made of
them, and every number, is the same whatever the number of threads. Compared with one
run at a time on the threaded kernels, nothing waits at every step for the slowest
thread, and nothing threaded is compiled (docs/performance.md).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numba

Progress = Callable[[int, int], None]
Outcome = TypeVar("Outcome")
# A run: given its progress callback (done, total), its result.
Run = Callable[[Progress], Outcome]


def _on_one_thread(run: Run, report: Progress) -> Outcome:
    """``run`` with numba's thread count at one in this thread: what runs side by side
    starts no threads of its own (a solve within runs its subpopulations one at a time,
    on the serial kernels)."""
    numba.set_num_threads(1)
    return run(report)


class _Stopped(Exception):
    """Raised inside a run at its next step once the solve has stopped (an error elsewhere,
    or an interruption)."""


def in_order(runs: Sequence[Run], workers: int, steps_per_run: int,
             progress: Progress | None = None) -> Iterator[Outcome]:
    """Each run's result, in order, running up to ``workers`` of them at once.

    ``progress(done, total)`` gets the steps done over all runs (total: ``steps_per_run``
    per run), from one thread at a time. At most ``workers`` results are held before they
    are handed on (memory stays that of ``workers`` runs). If a run fails, or the caller
    is interrupted, the runs still going stop at their next step and the error is raised
    here: that of the first run, in order, that failed.
    """
    total = len(runs) * steps_per_run
    if workers <= 1:  # in this thread: tracebacks and interruptions as usual
        for index, run in enumerate(runs):
            offset = index * steps_per_run
            yield run(None if progress is None else lambda done, _, offset=offset: progress(offset + done, total))
        return
    stop = threading.Event()
    lock = threading.Lock()
    done = [0] * len(runs)

    def reporter(index: int) -> Progress:
        def report(steps: int, _: int) -> None:
            if stop.is_set():
                raise _Stopped
            if progress is not None:
                with lock:
                    done[index] = steps
                    progress(sum(done), total)
        return report

    pool = ThreadPoolExecutor(workers, thread_name_prefix="dmft-run")
    pending: deque[Future] = deque()
    try:
        for index, run in enumerate(runs):
            pending.append(pool.submit(_on_one_thread, run, reporter(index)))
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
