"""Parameter grids: many ``dmft.solve`` runs over a Cartesian product, in one resumable HDF5 file.

A grid is a TOML file with a ``[problem]`` and a ``[solver]`` table (the options of
``dmft solve``, underscores) and a ``[grid]`` table mapping some of those keys to lists
of values; the points are the Cartesian product of the lists, the last key varying
fastest. An optional top-level ``seed`` (or ``[solver] seed``) is the grid seed::

    seed = 1
    [problem]
    steps = 60
    [solver]
    samples = 2000
    [grid]
    algorithm = ["sgd", "persistent-sgd"]
    batch_fraction = [0.1, 0.3]

Every point is validated (its ``Problem`` and ``SolverOptions`` are built) before any
work starts. Each point's seed is derived from the grid seed and the point's full
parameter set, so a point's numbers depend neither on the number of workers, nor on
the order of completion, nor on which other points share the grid.

Output layout (``run_grid``)::

    /                    attrs: kind = "dmft-grid", config (canonical JSON), config_toml, axes, shape, ...
    /axes/<key>          the values of each grid axis, in grid order
    /points/<index>      one group per point, zero-padded index, created empty with the file;
                         once computed, the layout of a `dmft solve` file (``dmft.io.write_result``)
                         plus grid_index, grid_coords, status ("done"/"failed", written LAST:
                         a non-empty group without it is incomplete)
    /summary/<column>    one 1-D dataset per column, all along the dimension scale
                         /summary/point (opens as a table with ``load_summary`` or xarray)

Execution: ``workers`` local processes come from ``concurrent.futures.ProcessPoolExecutor``
(spawn start method). It is in the standard library, starts in a fraction of the time of a
Dask ``LocalCluster``, opens no network port, and keeps Dask an optional dependency;
``workers=1`` solves in the coordinating process (no pickling, debuggable). ``scheduler``
sends the points to an existing Dask distributed cluster instead.

Safety: the coordinating process alone writes the file, under a lock file
``<output>.lock`` (``OutputLock``). Point by point it opens the file, fills the point's
group completely, flushes, writes the status, flushes, updates the summary row (status
last), fsyncs and closes. HDF5 has no journal, so the layout keeps a kill in the middle
of a write from reaching earlier points: point groups all exist from the file's
(atomic) creation, so a write changes only its own group and never the shared link
table; summary strings that are rewritten are fixed-length (no global-heap
references). A grid killed at any moment and started again with the same configuration
empties incomplete groups, recomputes only the points not finished, and leaves the
others untouched. Should the file's shared structures be damaged nonetheless, every
readable point is copied into a fresh file and the damaged one is kept beside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import tomllib
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import h5py
import numpy as np

from ._version import __version__
from .errors import DmftError, ParameterError
from .io import FileFormatError, atomic_h5, attribute_value, format_version, provenance, read_result, write_result
from .options import SOLVER_KEYS, SolverOptions
from .problem import PROBLEM_KEYS, Problem
from .result import Result

KIND_GRID = "dmft-grid"
KIND_FAILED_POINT = "dmft-grid-failed-point"
GRID_FORMAT_VERSION = 1

# Final-time observables in the summary; each also gets a <name>_stderr column.
SUMMARY_OBSERVABLES = ("m", "self_overlap", "train_loss", "train_error", "test_error")
STATUS_PENDING, STATUS_DONE, STATUS_FAILED = "pending", "done", "failed"

# Defaults give each key its type (bool / int / float / str), as in Problem.from_flat.
_PROBLEM_DEFAULTS = Problem().flat()
_SOLVER_DEFAULTS = SolverOptions().flat()
_TOP_LEVEL = ("seed", "problem", "solver", "grid")

# How long to try reaching a Dask scheduler before giving up.
SCHEDULER_TIMEOUT = "20s"

# How long the writer waits for an HDF5 file lock held by a reader (e.g. `dmft plot`
# run on a grid in progress) before giving up.
_H5_LOCK_PATIENCE = 60.0


# ----------------------------------------------------------------------------- configuration


def _coerce(key: str, value: Any) -> Any:
    """Convert a TOML value to the type of ``key``'s default, naming the key if it cannot."""
    default = _PROBLEM_DEFAULTS[key] if key in _PROBLEM_DEFAULTS else _SOLVER_DEFAULTS[key]
    if isinstance(default, tuple):  # e.g. gap_steps: a list of integers
        items = value if isinstance(value, (list, tuple)) else [value]
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
            return tuple(int(v) for v in items)
        raise ParameterError(key, f"must be a list of integers, got {value!r}")
    if isinstance(default, bool):
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise ParameterError(key, f"must be true or false, got {value!r}")
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise ParameterError(key, f"must be a string, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ParameterError(key, f"must be an integer, got {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    raise ParameterError(key, f"must be a number, got {value!r}")


def _message(error: ParameterError) -> str:
    """The message of a ParameterError without its 'parameter: ' prefix."""
    return str(error).removeprefix(f"{error.parameter}: ")


def _format_coords(coords: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in coords.items())


def point_seed(grid_seed: int, parameters: Mapping[str, Any]) -> int:
    """The solver seed of one point: a function of the grid seed and the point's parameters only.

    The canonical parameter string (sorted keys, floats by repr) is hashed into the
    entropy of a ``numpy.random.SeedSequence``; the result is below 2**63 so that it fits
    the int64 HDF5 attributes and ``SolverOptions.seed``.
    """
    text = json.dumps({key: parameters[key] for key in sorted(parameters) if key != "seed"},
                      sort_keys=True, separators=(",", ":"))
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "little")
    words = np.random.SeedSequence([int(grid_seed), digest]).generate_state(2, np.uint32)
    return int(words[0]) | ((int(words[1]) & 0x7FFFFFFF) << 32)


@dataclass(frozen=True)
class GridPoint:
    """One validated point: its index in the product, its axis values and what to solve."""

    index: int
    coords: dict[str, Any]
    problem: Problem
    options: SolverOptions  # seed already derived with ``point_seed``

    def parameters(self) -> dict[str, Any]:
        """Every problem and solver parameter of the point (flat option names)."""
        return {**self.problem.flat(), **self.options.flat()}


@dataclass(frozen=True, eq=False)
class GridSpec:
    """A validated grid: fixed problem/solver values, ordered axes, grid seed.

    Construction validates every point up front; a bad value anywhere raises
    ``ParameterError`` naming the key before any work starts.
    """

    problem: Mapping[str, Any] = field(default_factory=dict)
    solver: Mapping[str, Any] = field(default_factory=dict)
    axes: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    seed: int = 0
    source: str = ""  # the TOML text, kept in the output file for provenance
    points: tuple[GridPoint, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for key in (*self.problem, *self.solver):
            _check_key(key, "problem" if key in self.problem else "solver")
        problem = {key: _coerce(key, value) for key, value in dict(self.problem).items()}
        solver = {key: _coerce(key, value) for key, value in dict(self.solver).items()}
        if "seed" in solver:
            raise ParameterError("seed", "give the grid seed as GridSpec(seed=...), not in solver")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ParameterError("seed", f"must be an integer >= 0, got {self.seed!r}")
        axes: dict[str, tuple[Any, ...]] = {}
        for key, values in dict(self.axes).items():
            if key == "seed":
                raise ParameterError("seed", "cannot be a grid axis: each point's seed is derived from the grid "
                                             "seed and its parameters (use subpopulations for error bars)")
            if key not in PROBLEM_KEYS and key not in SOLVER_KEYS:
                raise ParameterError(key, f"unknown grid key; known: {', '.join(PROBLEM_KEYS + SOLVER_KEYS)}")
            if key in problem or key in solver:
                raise ParameterError(key, f"given both in [{'problem' if key in problem else 'solver'}] and in "
                                          "[grid]: keep one")
            if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Sequence):
                raise ParameterError(key, f"[grid] values must be a list, got {values!r}")
            if len(values) == 0:
                raise ParameterError(key, "[grid] list is empty")
            coerced = tuple(_coerce(key, value) for value in values)
            if len(set(coerced)) != len(coerced):
                raise ParameterError(key, f"[grid] list has repeated values: {list(values)!r}")
            axes[key] = coerced
        object.__setattr__(self, "problem", problem)
        object.__setattr__(self, "solver", solver)
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "points", self._build_points())

    def _build_points(self) -> tuple[GridPoint, ...]:
        points, errors = [], []
        for index, values in enumerate(itertools.product(*self.axes.values())):
            coords = dict(zip(self.axes, values))
            merged = {**self.problem, **self.solver, **coords}
            try:
                problem = Problem.from_flat(**{k: v for k, v in merged.items() if k in PROBLEM_KEYS})
                options = SolverOptions.from_flat(**{k: v for k, v in merged.items() if k in SOLVER_KEYS},
                                                  seed=self.seed)
            except ParameterError as error:
                errors.append((index, coords, error))
                continue
            seed = point_seed(self.seed, {**problem.flat(), **options.flat()})
            points.append(GridPoint(index, coords, problem, dataclasses.replace(options, seed=seed)))
        if errors:
            index, coords, error = errors[0]
            others = f" (and {len(errors) - 1} more bad points)" if len(errors) > 1 else ""
            where = f"grid point {index} ({_format_coords(coords)})" if coords else "the configuration"
            raise ParameterError(error.parameter, f"{_message(error)} at {where}{others}")
        return tuple(points)

    # -- construction from TOML --------------------------------------------------------

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> "GridSpec":
        """Read and validate a grid configuration file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DmftError(f"config: no such file {path}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise DmftError(f"config: cannot read {path} ({error})") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise DmftError(f"config: {path} is not valid TOML ({error})") from None
        return cls.from_dict(data, source=text)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "") -> "GridSpec":
        """Validate a parsed TOML document ({"problem": {...}, "solver": {...}, "grid": {...}, "seed": s})."""
        for key in data:
            if key in _TOP_LEVEL:
                continue
            if key in PROBLEM_KEYS or key in SOLVER_KEYS:
                table = "problem" if key in PROBLEM_KEYS else "solver"
                raise ParameterError(key, f"top-level key: put it in [{table}] (or in [grid] to vary it)")
            raise ParameterError(key, "unknown table or key; a grid configuration has [problem], [solver], "
                                      "[grid] and an optional top-level seed")
        tables = {}
        for name in ("problem", "solver", "grid"):
            table = data.get(name, {})
            if not isinstance(table, Mapping):
                raise ParameterError(name, f"must be a table [{name}], got {table!r}")
            tables[name] = dict(table)
        for key in tables["problem"]:
            if key in SOLVER_KEYS and key not in PROBLEM_KEYS:
                raise ParameterError(key, "is a solver option: put it in [solver]")
        for key in tables["solver"]:
            if key in PROBLEM_KEYS:
                raise ParameterError(key, "is a problem parameter: put it in [problem]")
        solver = tables["solver"]
        seed = data.get("seed")
        if "seed" in solver:
            solver_seed = solver.pop("seed")
            if seed is not None and solver_seed != seed:
                raise ParameterError("seed", f"given twice with different values ({seed!r} at top level, "
                                             f"{solver_seed!r} in [solver])")
            seed = solver_seed
        if seed is None:
            seed = 0
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ParameterError("seed", f"must be an integer >= 0, got {seed!r}")
        return cls(problem=tables["problem"], solver=solver, axes=tables["grid"], seed=seed, source=source)

    # -- derived facts -----------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(values) for values in self.axes.values())

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(self.axes)

    def __len__(self) -> int:
        return len(self.points)

    def identity(self) -> dict[str, Any]:
        """What must match for a file to be resumed: every fixed parameter (defaults
        included, so a changed default is noticed), the axes in order, the grid seed."""
        fixed = {key: value for key, value in self.points[0].parameters().items()
                 if key not in self.axes and key != "seed"}
        return {"fixed": fixed, "axes": [[key, list(values)] for key, values in self.axes.items()],
                "seed": self.seed}

    def group_name(self, index: int) -> str:
        """``points/<index>``, zero-padded so that groups sort in grid order."""
        width = len(str(max(len(self.points) - 1, 0)))
        return f"{index:0{width}d}"


def _check_key(key: str, table: str) -> None:
    known = PROBLEM_KEYS if table == "problem" else SOLVER_KEYS
    if key not in known:
        raise ParameterError(key, f"unknown key in [{table}]; known: {', '.join(known)}")


# ----------------------------------------------------------------------------- one point (worker side)


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
class _Task:
    index: int
    problem: Problem
    options: SolverOptions
    threads: int  # numba threads for this point; 0: decide on the Dask worker; -1: leave as is


def effective_temperature(result: Result) -> tuple[float, float, str]:
    """(T_eff, its standard error, note) of a result from ``dmft.fdt``; NaN with the reason otherwise.

    ``dmft.fdt`` is developed separately: this adapter calls
    ``dmft.fdt.effective_temperature(result)`` when it exists, accepts a number or an
    object / mapping carrying ``T_eff`` (and ``T_eff_stderr``), and turns any refusal
    (not stationary, run too short for the lag window) into NaN with its reason, so that
    one point's FDT analysis never fails the grid.
    """
    nan = math.nan
    try:
        from . import fdt  # type: ignore[attr-defined]
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


def _numba_threads_on_dask() -> int:
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


def _solve_point(task: _Task) -> PointOutcome:
    """Solve one point; every exception raised by the point itself is returned, not raised.

    Infrastructure failures (a worker killed, a lost connection) surface as exceptions
    of the future instead, so that the coordinator can tell them apart and leave such
    points missing, to be computed by the next run.
    """
    import numba

    from .solvers import solve

    threads = task.threads or _numba_threads_on_dask()
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
    t_eff, t_eff_stderr, note = effective_temperature(result)
    return PointOutcome(task.index, result, time.perf_counter() - start, t_eff=t_eff, t_eff_stderr=t_eff_stderr,
                        t_eff_note=note, host=host)


def _worker_init(threads: int, parent: int) -> None:
    """Runs in each local worker process."""
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


# ----------------------------------------------------------------------------- executors


@dataclass
class _Lost:
    """A point not computed for a reason outside the point (worker died, connection lost)."""

    index: int
    reason: str


class _InProcess:
    """``workers=1``: solve in the coordinating process, no pool (simplest, debuggable)."""

    def __init__(self, tasks: list[_Task]):
        self.tasks = tasks

    def __enter__(self) -> "_InProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def __iter__(self) -> Iterator[PointOutcome | _Lost]:
        for task in self.tasks:
            yield _solve_point(task)


class _LocalPool:
    """Local worker processes (``concurrent.futures.ProcessPoolExecutor``, spawn start method).

    Spawn, not fork: numba's OpenMP threading layer is not fork-safe, and a forked child
    of a process that already ran a parallel kernel can hang.
    """

    def __init__(self, tasks: list[_Task], workers: int):
        self.tasks, self.workers = tasks, workers
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "_LocalPool":
        threads = max(1, _default_workers() // self.workers)
        self.pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_worker_init, initargs=(threads, os.getpid()))
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

    def __iter__(self) -> Iterator[PointOutcome | _Lost]:
        assert self.pool is not None
        futures: dict[Future, int] = {self.pool.submit(_solve_point, task): task.index for task in self.tasks}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=futures.__getitem__):
                try:
                    yield future.result()
                except Exception as error:  # BrokenProcessPool: a worker died (out of memory?)
                    yield _Lost(futures[future], f"{type(error).__name__}: {error}")


class _DaskCluster:
    """Points sent to an existing Dask distributed scheduler (address or ``Client``)."""

    def __init__(self, tasks: list[_Task], scheduler: Any):
        self.tasks, self.scheduler = tasks, scheduler
        self.client: Any = None
        self.own_client = False
        self.futures: list[Any] = []

    def __enter__(self) -> "_DaskCluster":
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

    def __iter__(self) -> Iterator[PointOutcome | _Lost]:
        from distributed import as_completed

        tag = f"{os.getpid()}-{time.time_ns()}"
        self.futures = [self.client.submit(_solve_point, task, key=f"dmft-grid-{tag}-{task.index}", pure=False)
                        for task in self.tasks]
        index = {future.key: task.index for future, task in zip(self.futures, self.tasks)}
        for future in as_completed(self.futures, loop=self.client.loop):
            try:
                yield future.result()
            except Exception as error:  # KilledWorker, lost connection: not the point's fault
                yield _Lost(index[future.key], f"{type(error).__name__}: {error}")
            finally:
                future.release()  # free worker memory as soon as the point is written


# ----------------------------------------------------------------------------- lock file


class OutputLock:
    """``<output>.lock``: one writer per output file, across processes and hosts.

    The lock is an ``flock`` held on the lock file for the whole run: the kernel releases
    it when its holder dies, however it dies, so a lock left behind by a killed run is
    recognised as stale and taken over. The file records PID, host and start time for
    the error message. Where flock is not available, a live PID on this host holds it.
    """

    def __init__(self, output: str | os.PathLike):
        self.output = Path(output)
        self.path = Path(f"{output}.lock")
        self.fd: int | None = None
        self.stale: dict[str, Any] | None = None

    def _holder(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            return json.loads(self.path.read_text() or "{}")
        return {}

    def _refuse(self, holder: Mapping[str, Any]) -> DmftError:
        who = f"PID {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')}"
        return DmftError(f"{self.output} is being written by another `dmft grid` ({who}); "
                         f"wait for it, or remove {self.path} if that process is gone")

    def acquire(self) -> "OutputLock":
        if not self.output.parent.exists():
            raise DmftError(f"cannot write {self.output}: directory {self.output.parent} does not exist")
        try:
            import fcntl
        except ImportError:  # not POSIX
            fcntl = None  # type: ignore[assignment]
        for _ in range(100):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        raise self._refuse(self._holder()) from None
                    except OSError as error:
                        if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                            raise
                        self._pid_check()
                else:
                    self._pid_check()
                # The previous holder may have unlinked the file between our open and our
                # flock: then we hold a lock on a dead inode; start again.
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
                holder = self._holder()
                self.stale = holder or None
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                         "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode())
                os.fsync(fd)
                self.fd = fd
                return self
            except BaseException:
                if self.fd != fd:
                    os.close(fd)
                raise
        raise DmftError(f"cannot take the lock {self.path}: it keeps changing")

    def _pid_check(self) -> None:
        holder = self._holder()
        pid, host = holder.get("pid"), holder.get("host")
        if isinstance(pid, int) and host == socket.gethostname() and pid != os.getpid():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return  # stale
            except PermissionError:
                pass
            raise self._refuse(holder)

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # while still holding the lock: see the inode check above
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


# ----------------------------------------------------------------------------- the HDF5 file


def _open_h5(path: Path, mode: str) -> h5py.File:
    """Open with patience: a reader holding the HDF5 file lock delays the writer, it does not kill the run."""
    deadline = time.monotonic() + _H5_LOCK_PATIENCE
    delay = 0.05
    while True:
        try:
            return h5py.File(path, mode)
        except OSError as error:
            text = str(error).lower()
            if "lock" not in text or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 1.0)


def _fsync(path: Path) -> None:
    """Push the point to the disk: h5py's flush hands data to the OS, not to the platter."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _column_values(values: Sequence[Any]) -> list[Any]:
    """Axis values as stored in columns: list-valued options (gap_steps) as JSON text."""
    return [json.dumps(list(v)) if isinstance(v, tuple) else v for v in values]


def _column_dtype(values: Sequence[Any]) -> Any:
    sample = _column_values(values)[0]
    if isinstance(sample, bool):
        return np.bool_
    if isinstance(sample, int):
        return np.int64
    if isinstance(sample, float):
        return np.float64
    return h5py.string_dtype()


# Columns rewritten point by point hold FIXED-length strings: a variable-length string
# lives in HDF5's global heap, and a kill between the dataset write and the heap's flush
# leaves a dangling heap reference ("bad heap index") that makes the column unreadable.
# Fixed-length elements are plain bytes at fixed offsets; the full texts stay in the
# point groups' attributes.
_STATUS_DTYPE = h5py.string_dtype("utf-8", 8)
_TEXT_DTYPE = h5py.string_dtype("utf-8", 240)


def _fit_text(text: str, size: int = 240) -> bytes:
    """UTF-8 bytes cut to ``size`` without splitting a character."""
    data = text.encode("utf-8")
    if len(data) <= size:
        return data
    return data[: size - 3].decode("utf-8", errors="ignore").encode("utf-8") + b"..."


def _as_array(data: Sequence[Any], dtype: Any) -> np.ndarray:
    """Values in the numpy form h5py writes to ``dtype`` (strings: variable or fixed length)."""
    info = h5py.check_string_dtype(np.dtype(dtype))
    if info is None:
        return np.array(data, dtype=dtype)
    if info.length is None:
        return np.array(data, dtype=object)
    return np.array([_fit_text(text, info.length) for text in data], dtype=dtype)


def _summary_columns(spec: GridSpec) -> list[tuple[str, Any]]:
    """(name, dtype) of the summary table, in order."""
    string = h5py.string_dtype()  # written once, atomically, when the file is created
    columns: list[tuple[str, Any]] = [("group", string)]
    columns += [(key, _column_dtype(values)) for key, values in spec.axes.items()]
    columns += [("status", _STATUS_DTYPE), ("error", _TEXT_DTYPE), ("seed", np.int64), ("wall_time", np.float64)]
    for name in SUMMARY_OBSERVABLES:
        columns += [(name, np.float64), (f"{name}_stderr", np.float64)]
    columns += [("T_eff", np.float64), ("T_eff_stderr", np.float64), ("T_eff_note", _TEXT_DTYPE)]
    return columns


def _create_file(path: Path, spec: GridSpec) -> None:
    """Write the empty grid (axes, pending summary) atomically: no half-created file, ever."""
    with atomic_h5(path, overwrite=False) as handle:
        _initialize(handle, spec)


def _initialize(handle: h5py.File, spec: GridSpec) -> None:
    """Root attributes, axes and an all-pending summary in a new file."""
    if True:  # one block: the layout below is the file format
        handle.attrs["kind"] = KIND_GRID
        handle.attrs["grid_format_version"] = GRID_FORMAT_VERSION
        handle.attrs["config"] = json.dumps(spec.identity(), sort_keys=True)
        handle.attrs["config_toml"] = spec.source
        handle.attrs["grid_seed"] = spec.seed
        handle.attrs["axes"] = json.dumps(list(spec.axes))
        handle.attrs["shape"] = json.dumps(list(spec.shape))
        handle.attrs["n_points"] = len(spec)
        for key, value in provenance().items():
            handle.attrs[key] = value
        axes = handle.create_group("axes")
        for key, values in spec.axes.items():
            dtype = _column_dtype(values)
            axes.create_dataset(key, data=_as_array(_column_values(values), dtype), dtype=dtype)
        points = handle.create_group("points")
        # Every point's group exists from the start, empty: writing a point then changes
        # only its own group, never the link table shared by all points, so that a kill
        # in the middle of a write cannot make earlier points unreachable.
        for point in spec.points:
            points.create_group(spec.group_name(point.index))
        summary = handle.create_group("summary")
        summary.attrs["columns"] = json.dumps(["point"] + [name for name, _ in _summary_columns(spec)])
        n = len(spec)
        # The dimension scale named like its dimension: xarray / netCDF readers see a
        # table along "point".
        scale = summary.create_dataset("point", data=np.arange(n, dtype=np.int64))
        scale.make_scale("point")
        values = {"group": [f"points/{spec.group_name(p.index)}" for p in spec.points],
                  "status": [STATUS_PENDING] * n, "error": [""] * n, "T_eff_note": [""] * n,
                  "seed": [p.options.seed for p in spec.points], "wall_time": [math.nan] * n}
        for key in spec.axes:
            values[key] = _column_values([p.coords[key] for p in spec.points])
        for name, dtype in _summary_columns(spec):
            data = values.get(name, [math.nan] * n)
            column = summary.create_dataset(name, data=_as_array(data, dtype), dtype=dtype)
            column.dims[0].attach_scale(scale)


def _grid_format(handle: h5py.File, path: Path, resume: bool = False) -> int:
    """The grid format of an open grid file; refuses, in one line, a format this dmft cannot read.

    Format 0 stands for a file without ``grid_format_version`` (written before the
    attribute existed). Formats 0 .. GRID_FORMAT_VERSION share one layout, so they are
    read, and resumed, as they are (a resumed file keeps its version: the points added
    have the same layout). A newer format is refused: upgrade dmft. When the layout
    changes, bump GRID_FORMAT_VERSION and refuse (or convert) the older formats here,
    saying which version and why; the points' own layout is checked by ``read_result``.
    """
    again = " (or pass --overwrite to discard it)" if resume else ""
    return format_version(handle.attrs, str(path), GRID_FORMAT_VERSION, "grid format", "grid_format_version", again)


def _check_compatible(handle: h5py.File, path: Path, spec: GridSpec) -> None:
    kind = attribute_value(handle.attrs.get("kind"))
    if kind != KIND_GRID:
        raise FileFormatError(f"{path} is not a dmft grid file (kind = {kind!r}); "
                              "choose another --output or pass --overwrite")
    _grid_format(handle, path, resume=True)
    stored = json.loads(attribute_value(handle.attrs["config"]))
    wanted = json.loads(json.dumps(spec.identity(), sort_keys=True))
    if stored != wanted:
        raise DmftError(f"{path} holds a different grid ({_differences(stored, wanted)}); "
                        "use another --output, or --overwrite to discard it")


def _differences(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> str:
    diffs = []
    if stored.get("seed") != wanted.get("seed"):
        diffs.append(f"seed {stored.get('seed')} in the file, {wanted.get('seed')} now")
    if stored.get("axes") != wanted.get("axes"):
        old, new = dict(stored.get("axes", [])), dict(wanted.get("axes", []))
        keys = [k for k in {**old, **new} if old.get(k) != new.get(k)]
        if not keys:
            keys = ["order of the axes"]
        diffs.append("grid " + ", ".join(f"{k}: {old.get(k)} in the file, {new.get(k)} now" if k in old or k in new
                                         else k for k in keys))
    old, new = stored.get("fixed", {}), wanted.get("fixed", {})
    keys = [k for k in sorted({**old, **new}) if old.get(k) != new.get(k)]
    if keys:
        diffs.append(", ".join(f"{k} = {old.get(k)!r} in the file, {new.get(k)!r} now" for k in keys[:5]))
    return "; ".join(diffs) or "configuration differs"


def _point_status(group: h5py.Group) -> str | None:
    status = attribute_value(group.attrs.get("status"))
    return status if status in (STATUS_DONE, STATUS_FAILED) else None


# What a finished `done` group must hold (write_result's layout) to be trusted on resume.
_REQUIRED = ("time", "m", "C", "R", "A", "train_loss", "train_error", "test_error", "kernels")


_INCOMPLETE = "incomplete"


def _inspect(points: h5py.Group, name: str) -> str:
    """"done", "failed", "pending" (an empty group) or "incomplete" (anything else).

    A kill during a write leaves the group without its status, possibly half filled;
    as HDF5 is not crash-consistent, some object in it may also be unreadable. Both are
    incomplete: cleared and recomputed. The check opens every object a done group must
    hold but reads no data, so that a restart stays cheap for large grids.
    """
    try:
        group = points[name]
        status = _point_status(group)
        if status == STATUS_DONE:
            for item in _REQUIRED:
                group[item].id  # noqa: B018 - opening the object header is the check
        if status is None:
            return STATUS_PENDING if len(group) == 0 and len(group.attrs) == 0 else _INCOMPLETE
        return status
    except Exception:
        return _INCOMPLETE


def _clear(group: h5py.Group) -> None:
    """Empty a point group in place (its link in /points stays untouched)."""
    for name in list(group.attrs):
        del group.attrs[name]
    for name in list(group):
        del group[name]


class _Damaged(Exception):
    """The grid file's shared structures are unreadable: salvage what can be salvaged."""


def _scan(path: Path, spec: GridSpec) -> tuple[dict[int, str], list[int], list[int]]:
    """Finished points (index -> status); incomplete points; points whose summary row lags.

    Raises ``_Damaged`` when the file opens but its points or summary cannot be read.
    """
    try:
        handle = _open_h5(path, "r")
    except OSError as error:
        raise FileFormatError(f"{path}: cannot open it as HDF5 ({error}); it may have been damaged by a "
                              "kill during a write: move it away (or pass --overwrite) and start again") from None
    with handle:
        try:
            _check_compatible(handle, path, spec)
        except DmftError:
            raise
        except Exception as error:
            raise FileFormatError(f"{path}: its root attributes are unreadable ({type(error).__name__}: {error}); "
                                  "move it away (or pass --overwrite) and start again") from None
        try:
            points = handle["points"]
            finished: dict[int, str] = {}
            incomplete: list[int] = []
            for point in spec.points:
                name = spec.group_name(point.index)
                if name not in points:
                    raise _Damaged(f"points/{name} is missing")
                status = _inspect(points, name)
                if status == _INCOMPLETE:
                    incomplete.append(point.index)
                elif status != STATUS_PENDING:
                    finished[point.index] = status
            summary_status = [attribute_value(v) for v in handle["summary/status"][()]]
            lagging = [index for index, status in finished.items() if summary_status[index] != status]
        except _Damaged:
            raise
        except Exception as error:
            raise _Damaged(f"{type(error).__name__}: {error}") from None
    return finished, incomplete, lagging


def _repair(path: Path, spec: GridSpec, incomplete: Sequence[int], lagging: Sequence[int]) -> None:
    """Empty incomplete point groups and bring lagging summary rows up to date (in place)."""
    with _open_h5(path, "a") as handle:
        points = handle["points"]
        for index in incomplete:
            _clear(points[spec.group_name(index)])
            _write_summary_row(handle, index, {"status": STATUS_PENDING, "error": ""})
        for index in lagging:
            _write_summary_row(handle, index, _row_from_group(points[spec.group_name(index)]))
        handle.flush()
    _fsync(path)


def _salvage(path: Path, spec: GridSpec) -> tuple[int, Path]:
    """Copy every readable finished point of a damaged file into a fresh one, atomically.

    The damaged file is kept beside it (``<name>.damaged-<time>``) for inspection.
    Returns (points kept, damaged file).
    """
    damaged = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    try:
        os.link(path, damaged)  # a second name for the same bytes, before the swap below
    except OSError:
        import shutil

        shutil.copy2(path, damaged)
    kept = 0
    with h5py.File(damaged, "r") as source, atomic_h5(path, overwrite=True) as target:
        _initialize(target, spec)
        try:
            source_points = source["points"]
        except Exception:
            source_points = None
        for point in spec.points:
            name = spec.group_name(point.index)
            try:
                if source_points is None or _inspect(source_points, name) not in (STATUS_DONE, STATUS_FAILED):
                    continue
                del target["points"][name]  # the fresh file is not yet visible: no care needed here
                source.copy(source_points[name], target["points"], name=name)
                _write_summary_row(target, point.index, _row_from_group(target["points"][name]))
                kept += 1
            except Exception:
                with contextlib.suppress(Exception):
                    if name in target["points"]:
                        del target["points"][name]
                    target["points"].create_group(name)
                _write_summary_row(target, point.index, {"status": STATUS_PENDING, "error": ""})
    _fsync(path)
    return kept, damaged


def _summary_row(status: str, wall_time: float, error: str, result: Result | None,
                 t_eff: tuple[float, float, str] = (math.nan, math.nan, "")) -> dict[str, Any]:
    row: dict[str, Any] = {"status": status, "error": error, "wall_time": wall_time,
                           "T_eff": t_eff[0], "T_eff_stderr": t_eff[1], "T_eff_note": t_eff[2]}
    if result is not None:
        k = result.problem.steps
        finals = {"m": result.m[k], "self_overlap": result.C[k, k], "train_loss": result.train_loss[k],
                  "train_error": result.train_error[k], "test_error": result.test_error[k]}
        for name, value in finals.items():
            row[name] = float(value)
            key = "C" if name == "self_overlap" else name
            error_array = result.stderr.get(key)
            if error_array is not None:
                row[f"{name}_stderr"] = float(error_array[k, k] if key == "C" else error_array[k])
    return row


def _write_summary_row(handle: h5py.File, index: int, row: Mapping[str, Any]) -> None:
    """Overwrite one row in place; ``status`` last, so that a row cut short by a kill still
    reads as not finished and is rebuilt from its group on the next start."""
    summary = handle["summary"]
    for name in sorted(row, key=lambda name: name == "status"):
        value = row[name]
        column = summary[name]
        if isinstance(value, str):  # the array carries the UTF-8 tag: HDF5 will not convert ASCII to it
            value = np.array(_fit_text(value, column.dtype.itemsize), dtype=column.dtype)
        column[index] = value


def _write_point(handle: h5py.File, spec: GridSpec, point: GridPoint, outcome: PointOutcome) -> None:
    """One point group, complete, then its status, then its summary row; flushed in that order."""
    points = handle["points"]
    name = spec.group_name(point.index)
    group = points.get(name)
    if group is None:  # only after a salvage that could not rebuild it; normally created with the file
        group = points.create_group(name)
    elif len(group) or len(group.attrs):  # should have been cleared on start
        _clear(group)
    if outcome.result is not None:
        write_result(group, outcome.result)
        status = STATUS_DONE
    else:
        for key, value in point.parameters().items():
            group.attrs[key] = value
        group.attrs["kind"] = KIND_FAILED_POINT
        group.attrs["error"] = outcome.error
        group.attrs["error_type"] = outcome.error_type
        group.attrs["traceback"] = outcome.traceback
        group.attrs["wall_time"] = outcome.wall_time
        for key, value in provenance().items():
            group.attrs[key] = value
        status = STATUS_FAILED
    group.attrs["grid_index"] = point.index
    group.attrs["grid_coords"] = json.dumps(point.coords)
    group.attrs["grid_seed"] = spec.seed
    group.attrs["computed_by"] = outcome.host
    group.attrs["grid_wall_time"] = outcome.wall_time  # solve + T_eff, as in the summary
    group.attrs["T_eff"] = outcome.t_eff
    group.attrs["T_eff_stderr"] = outcome.t_eff_stderr
    group.attrs["T_eff_note"] = outcome.t_eff_note
    handle.flush()
    # Written last: a group without a status (a kill before this point) is incomplete.
    # Fixed-length, so that it sits in the object header and not in the global heap.
    group.attrs.create("status", np.array(status.encode(), dtype=_STATUS_DTYPE))
    handle.flush()
    error = f"{outcome.error_type}: {outcome.error}" if status == STATUS_FAILED else ""
    t_eff = (outcome.t_eff, outcome.t_eff_stderr, outcome.t_eff_note)
    _write_summary_row(handle, point.index, _summary_row(status, outcome.wall_time, error, outcome.result, t_eff))
    handle.flush()


def _row_from_group(group: h5py.Group) -> dict[str, Any]:
    """Rebuild a summary row from a finished group (a kill fell between the two writes)."""
    status = _point_status(group)
    wall_time = float(group.attrs.get("grid_wall_time", group.attrs.get("wall_time", math.nan)))
    if status == STATUS_DONE:
        t_eff = (float(group.attrs.get("T_eff", math.nan)), float(group.attrs.get("T_eff_stderr", math.nan)),
                 str(attribute_value(group.attrs.get("T_eff_note", ""))))
        return _summary_row(status, wall_time, "", read_result(group), t_eff)
    error = f"{attribute_value(group.attrs.get('error_type', ''))}: {attribute_value(group.attrs.get('error', ''))}"
    return _summary_row(STATUS_FAILED, wall_time, error, None)


# ----------------------------------------------------------------------------- running


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


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_grid(spec: GridSpec, output: str | os.PathLike, workers: int | None = None, scheduler: Any = None,
             progress: Callable[[GridEvent], None] | None = None, overwrite: bool = False,
             retry_failed: bool = False) -> GridReport:
    """Compute every point of ``spec`` not yet in ``output``, writing each as it finishes.

    workers:       local processes (default: the cores available); 1 solves in this process.
    scheduler:     a Dask scheduler address or a ``distributed.Client``: points go to that cluster.
    progress:      called with a ``GridEvent`` at start and after each point is written.
    overwrite:     discard an existing ``output`` first.
    retry_failed:  recompute points recorded as failed (by default they are kept).

    Raises ``DmftError`` if another process writes ``output``, or if ``output`` holds a
    different grid. Points that fail record their error; points lost with a worker stay
    missing (``GridReport.missing``) and are computed by the next run.
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
            _create_file(output, spec)
        salvaged: tuple[int, Path] | None = None
        try:
            finished, incomplete, lagging = _scan(output, spec)
            if retry_failed:
                retry = [index for index, status in finished.items() if status == STATUS_FAILED]
                incomplete += retry
                for index in retry:
                    del finished[index]
            if incomplete or lagging:
                try:
                    _repair(output, spec, incomplete, lagging)
                except Exception as error:
                    raise _Damaged(f"{type(error).__name__}: {error}") from None
        except _Damaged:
            # HDF5 is not crash-consistent: a kill in the middle of a write can, rarely,
            # damage structures shared by all points. Keep every readable point.
            salvaged = _salvage(output, spec)
            finished, incomplete, lagging = _scan(output, spec)
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
            requested = workers or _default_workers()
            n_workers = min(requested, len(todo))
            if scheduler is not None:
                tasks = [_Task(p.index, p.problem, p.options, 0) for p in todo]
                executor: Any = _DaskCluster(tasks, scheduler)
            elif requested == 1:
                # Only an explicit single worker solves in this process: with --workers N > 1 a
                # point that crashes its process must never take the coordinator with it, even
                # when a single point is left.
                executor = _InProcess([_Task(p.index, p.problem, p.options, -1) for p in todo])
            else:
                threads = max(1, _default_workers() // n_workers)  # numba threads per worker: no oversubscription
                executor = _LocalPool([_Task(p.index, p.problem, p.options, threads) for p in todo], n_workers)
            with executor:
                for outcome in executor:
                    if isinstance(outcome, _Lost):
                        lost.append((outcome.index, outcome.reason))
                        continue
                    point = spec.points[outcome.index]
                    try:
                        with _open_h5(output, "a") as handle:
                            _write_point(handle, spec, point, outcome)
                    except OSError as error:  # disk full, file system gone: stop, the file stays resumable
                        raise DmftError(f"cannot write point {point.index} to {output} ({error}); "
                                        "fix the cause and run the same command again") from None
                    _fsync(output)
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


# ----------------------------------------------------------------------------- reading


def _open_grid(path: Path) -> h5py.File:
    """Open a grid file for reading (waiting out a writer's brief hold on the HDF5 lock)."""
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    try:
        handle = _open_h5(path, "r")
    except OSError as error:
        raise FileFormatError(f"{path}: not a readable HDF5 file ({error})") from None
    kind = attribute_value(handle.attrs.get("kind"))
    if kind != KIND_GRID:
        handle.close()
        raise FileFormatError(f"{path}: not a dmft grid file (kind = {kind!r})")
    try:
        _grid_format(handle, path)
    except BaseException:
        handle.close()
        raise
    return handle


def load_summary(path: str | os.PathLike) -> np.ndarray:
    """The summary table of a grid file as a structured numpy array, one row per point.

    Columns: point, group, one per grid axis, status ("pending"/"done"/"failed"), error,
    seed, wall_time, the final m, self_overlap, train_loss, train_error, test_error
    (each with <name>_stderr), T_eff and T_eff_note. Strings come back as ``str``.
    """
    with _open_grid(Path(path)) as handle:
        summary = handle["summary"]
        axes = json.loads(attribute_value(handle.attrs["axes"]))
        order = json.loads(attribute_value(summary.attrs.get("columns", "[]"))) or ["point", "group", *axes]
        order += [name for name in summary if name not in order]
        columns = {}
        for name in order:
            dataset = summary[name]
            if h5py.check_string_dtype(dataset.dtype) is not None:
                columns[name] = np.array(dataset.asstr()[()], dtype=str)
            else:
                columns[name] = dataset[()]
    n = len(columns["point"])
    table = np.empty(n, dtype=[(name, column.dtype) for name, column in columns.items()])
    for name, column in columns.items():
        table[name] = column
    return table


def load_point(path: str | os.PathLike, index: int) -> Result:
    """The Result of grid point ``index`` (raises FileFormatError if it is not done)."""
    path = Path(path)
    with _open_grid(path) as handle:
        n = int(handle.attrs["n_points"])
        if not 0 <= index < n:
            raise ParameterError("point", f"must lie in 0..{n - 1}, got {index}")
        name = f"{index:0{len(str(max(n - 1, 0)))}d}"
        group = handle["points"].get(name)
        if group is None or _point_status(group) is None:
            raise FileFormatError(f"{path}: point {index} has not been computed")
        if _point_status(group) == STATUS_FAILED:
            raise FileFormatError(f"{path}: point {index} failed: {attribute_value(group.attrs.get('error'))}")
        return read_result(group)


def grid_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Axes (name -> values), fixed parameters and grid seed of a grid file."""
    with _open_grid(Path(path)) as handle:
        config = json.loads(attribute_value(handle.attrs["config"]))
    return {"axes": {key: values for key, values in config["axes"]}, "fixed": config["fixed"],
            "seed": config["seed"]}


# ----------------------------------------------------------------------------- progress display


class GridProgress:
    """Progress for the command line: a bar with points done / total and time left on a
    terminal, one line per point otherwise (batch logs), nothing with ``quiet``."""

    def __init__(self, label: str, quiet: bool = False, stream: Any = None):
        self.stream = stream or sys.stderr
        self.label = label
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self.width = 0

    def __call__(self, event: GridEvent) -> None:
        if self.quiet:
            return
        if event.index is None:
            self.start = time.monotonic()
            if event.message:
                self._line(f"{self.label}: {event.message}", final=True)
            if event.done and not event.to_compute:
                self._line(f"{self.label}: all {event.total} points already computed, nothing to do", final=True)
                return
            if event.done:
                self._line(f"{self.label}: {event.done} of {event.total} points already computed, "
                           f"{event.to_compute} to go", final=True)
            if self.tty:
                self._bar(event)
            return
        if self.tty:
            self._bar(event)
        else:
            what = "failed: " + event.message if event.status == STATUS_FAILED else f"done in {event.wall_time:.2f} s"
            self._line(f"{self.label}: point {event.index} ({_format_coords(event.coords)}) {what} "
                       f"[{event.done}/{event.total}]", final=True)

    def _bar(self, event: GridEvent) -> None:
        fraction = event.done / event.total if event.total else 1.0
        filled = int(round(24 * fraction))
        elapsed = time.monotonic() - self.start
        remaining = event.to_compute - event.computed
        if event.computed and remaining:
            eta = f"{_clock(elapsed / event.computed * remaining)} left"
        elif remaining:
            eta = "--:-- left"
        else:
            eta = f"{_clock(elapsed)} total"
        failed = f", {event.failed} failed" if event.failed else ""
        self._line(f"{self.label} [{'#' * filled}{'-' * (24 - filled)}] {event.done}/{event.total} points{failed}  "
                   f"{eta}")

    def _line(self, text: str, final: bool = False) -> None:
        if self.tty:
            pad = max(0, self.width - len(text))
            self.stream.write("\r" + text + " " * pad + ("\n" if final else ""))
            self.width = 0 if final else len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.width and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


__all__ = [
    "GridEvent", "GridPoint", "GridProgress", "GridReport", "GridSpec", "OutputLock", "PointOutcome",
    "effective_temperature", "grid_metadata", "load_point", "load_summary", "point_seed", "run_grid",
]
