"""Running a grid: compute every point not yet in the output file, writing each as it finishes.

The coordinating process alone writes the file, under a lock file ``<output>.lock``
(``OutputLock``). Point by point it opens the file, fills the point's group completely,
flushes, writes the status, flushes, updates the summary row (status last), fsyncs and
closes; see ``dmft.grid.store`` for why the layout survives a kill, and
``dmft.grid.recovery`` for how a killed run is resumed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import DmftError, ParameterError
from ..io import open_h5
from .executors import DaskCluster, InProcess, LocalPool, Lost, default_workers
from .lock import OutputLock
from .recovery import Damaged, repair, salvage, scan
from .spec import GridSpec
from .store import STATUS_DONE, STATUS_FAILED, create_file, fsync, write_point
from .worker import Task


def compile_kernels(points: list[Any], threads: int | None) -> None:
    """Compile (or load) here, once, the kernels of the points' distinct variants, before
    local workers start: on a first run every worker would compile the same kernels at the
    same time. ``warmup.compile_for_run`` shares a first compilation between two processes.
    ``threads``: the workers' numba threads. A point that cannot run (too large for the
    memory) is left to fail in its worker, as it would have."""
    from ..warmup import RunKernels, compile_for_run

    variants = set()
    for point in points:
        options = point.options
        try:
            variant = (options.precision, options.response, options.replicas,
                       RunKernels.of(point.problem, options, threads))
            if variant not in variants:
                variants.add(variant)
                compile_for_run(point.problem, point.options, threads=threads)
        except ParameterError:
            continue


@dataclass(frozen=True)
class GridEvent:
    """Passed to ``run_grid``'s ``progress`` callback after each point is written (and once at start)."""

    done: int  # points finished, done or failed, including those of earlier runs
    total: int
    failed: int
    computed: int  # points finished by this run
    to_compute: int  # points this run set out to compute
    index: int | None = None  # None for the start event
    coords: dict[str, Any] = field(default_factory=dict)
    status: str = ""
    wall_time: float = math.nan
    message: str = ""


@dataclass(frozen=True)
class GridReport:
    """What ``run_grid`` did."""

    output: Path
    total: int
    done: int
    failed: int
    missing: int  # not computed by this run (a worker or the connection was lost)
    computed: int  # points finished by this run
    reused: int  # points found finished in the file and left untouched
    failures: tuple[tuple[int, dict[str, Any], str], ...] = ()
    lost: tuple[tuple[int, str], ...] = ()
    t_eff_note: str = ""  # set when T_eff could not be computed for any point (e.g. no dmft.fdt)
    salvaged_from: Path | None = None  # the damaged file, when the output had to be rebuilt


def run_grid(spec: GridSpec, output: str | os.PathLike, workers: int | None = None, scheduler: Any = None,
             progress: Callable[[GridEvent], None] | None = None, overwrite: bool = False,
             retry_failed: bool = False) -> GridReport:
    """Compute every point of ``spec`` not yet in ``output``, writing each as it finishes.

    Points that fail record their error; points lost with a worker stay missing
    (``GridReport.missing``) and are computed by the next run.

    Args:
        spec: the validated grid.
        output: the HDF5 file; an existing file of the same grid is resumed.
        workers: local processes (default: the cores available); 1 solves in this process.
        scheduler: a Dask scheduler address or a ``distributed.Client``: points go to that cluster.
        progress: called with a ``GridEvent`` at start and after each point is written.
        overwrite: discard an existing ``output`` first.
        retry_failed: recompute points recorded as failed (by default they are kept).

    Returns:
        A ``GridReport`` of what this run did.

    Raises:
        DmftError: another process writes ``output``, or ``output`` holds a different grid.
    """
    output = Path(output)
    if workers is not None and scheduler is not None:
        raise ParameterError("workers", "give either workers (local processes) or scheduler (Dask), not both")
    if workers is not None and (isinstance(workers, bool) or int(workers) != workers or workers < 1):
        raise ParameterError("workers", f"must be an integer >= 1, got {workers!r}")
    with OutputLock(output):
        if output.exists() and overwrite:
            output.unlink()
        if not output.exists():
            create_file(output, spec)
        salvaged: tuple[int, Path] | None = None
        try:
            finished, incomplete, lagging = scan(output, spec)
            if retry_failed:
                retry = [index for index, status in finished.items() if status == STATUS_FAILED]
                incomplete += retry
                for index in retry:
                    del finished[index]
            if incomplete or lagging:
                try:
                    repair(output, spec, incomplete, lagging)
                except Exception as error:
                    raise Damaged(f"{type(error).__name__}: {error}") from None
        except Damaged:
            # HDF5 is not crash-consistent: a kill in the middle of a write can, rarely,
            # damage structures shared by all points. Keep every readable point.
            salvaged = salvage(output, spec)
            finished, incomplete, lagging = scan(output, spec)
        todo = [point for point in spec.points if point.index not in finished]
        n_failed = sum(status == STATUS_FAILED for status in finished.values())
        n_finished, computed = len(finished), 0
        if progress is not None:
            message = (f"{output} was damaged (killed during a write?): kept {salvaged[0]} finished points, "
                       f"the damaged file is {salvaged[1]}") if salvaged else ""
            progress(GridEvent(n_finished, len(spec), n_failed, 0, len(todo), message=message))
        failures: list[tuple[int, dict[str, Any], str]] = []
        lost: list[tuple[int, str]] = []
        notes: set[str] = set()  # T_eff notes of this run's done points
        if todo:
            requested = workers or default_workers()
            n_workers = min(requested, len(todo))
            if scheduler is not None:
                tasks = [Task(p.index, p.problem, p.options, 0) for p in todo]
                executor: Any = DaskCluster(tasks, scheduler)
            elif requested == 1:
                # Only an explicit single worker solves in this process: with --workers N > 1 a
                # point that crashes its process must never take the coordinator with it, even
                # when a single point is left.
                compile_kernels(todo, None)
                executor = InProcess([Task(p.index, p.problem, p.options, -1) for p in todo])
            else:
                threads = max(1, default_workers() // n_workers)  # numba threads per worker: no oversubscription
                compile_kernels(todo, threads)
                executor = LocalPool([Task(p.index, p.problem, p.options, threads) for p in todo], n_workers)
            with executor:
                for outcome in executor:
                    if isinstance(outcome, Lost):
                        lost.append((outcome.index, outcome.reason))
                        continue
                    point = spec.points[outcome.index]
                    try:
                        with open_h5(output, "a") as handle:
                            write_point(handle, spec, point, outcome)
                    except OSError as error:  # disk full, file system gone: stop, the file stays resumable
                        raise DmftError(f"cannot write point {point.index} to {output} ({error}); "
                                        "fix the cause and run the same command again") from None
                    fsync(output)
                    n_finished += 1
                    computed += 1
                    if outcome.result is None:
                        n_failed += 1
                        failures.append((point.index, point.coords, f"{outcome.error_type}: {outcome.error}"))
                    else:
                        notes.add(outcome.t_eff_note)
                    if progress is not None:
                        progress(GridEvent(n_finished, len(spec), n_failed, computed, len(todo), point.index,
                                           point.coords, STATUS_FAILED if outcome.result is None else STATUS_DONE,
                                           outcome.wall_time, failures[-1][2] if outcome.result is None else ""))
    missing = len(spec) - n_finished
    # Say so when T_eff is missing for every point for want of dmft.fdt; per-point reasons
    # (not stationary, run too short) are in the summary's T_eff_note column.
    t_eff_note = next(iter(notes)) if len(notes) == 1 and next(iter(notes)).startswith("dmft.fdt") else ""
    return GridReport(output=output, total=len(spec), done=n_finished - n_failed, failed=n_failed, missing=missing,
                      computed=computed, reused=len(finished), failures=tuple(failures), lost=tuple(lost),
                      t_eff_note=t_eff_note, salvaged_from=salvaged[1] if salvaged else None)
