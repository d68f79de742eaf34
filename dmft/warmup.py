"""Compile the numba kernels ahead of time, or on a first run in two processes at once.

numba compiles a kernel at its first call and keeps it in its on-disk cache; a fresh
install, a container image or a new Dask worker host pays that once per kernel variant
(threaded or serial, precision, response estimator, one or two replicas). ``compile_part``
makes those first calls through the solver's own code on a small run; ``compile_kernels``
does it for whole variants (what ``dmft compile`` runs), ``compile_for_run`` for what one
run needs, on a first run half of it in a second process while this one compiles the rest
(what ``dmft solve`` runs first). ``CompileNotice`` is the line a terminal shows while
kernels compile.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Self, TextIO

import numpy as np

from .options import DEFAULT_PRECISION, PRECISIONS, RESPONSES, SolverOptions
from .problem import Problem


@dataclass(frozen=True)
class Variant:
    """One combination of the options that select a compiled kernel."""

    precision: str
    response: str
    replicas: int
    threaded: bool

    def describe(self) -> str:
        return (f"{self.precision:<8}{self.response:<6}{self.replicas} replica{'s' if self.replicas > 1 else ' '} "
                f"{'threaded' if self.threaded else 'serial'}")


def variants(precisions: Iterable[str] = (DEFAULT_PRECISION,), responses: Iterable[str] = ("probe",),
             replicas: Iterable[int] = (1, 2)) -> list[Variant]:
    """Every variant of the given options, threaded and serial (two replicas take probe responses only)."""
    return [Variant(p, r, n, threaded) for p in precisions for r in responses for n in replicas
            for threaded in (False, True) if not (n == 2 and r == "exact")]


def all_variants() -> list[Variant]:
    return variants(PRECISIONS, RESPONSES, (1, 2))


def compile_variant(variant: Variant) -> None:
    """Compile (or load) ``variant``'s kernels, through step 0 of a small run (``compile_part``)."""
    problem = Problem.from_flat(algorithm="sgd", batch_fraction=0.3, steps=3)
    options = SolverOptions(samples=200, subpopulations=1, precision=variant.precision, response=variant.response,
                            replicas=variant.replicas)
    for part in PARTS:
        compile_part(part, problem, options, threaded=variant.threaded)


def _timed_compile(variant: Variant) -> float:
    begin = time.perf_counter()
    compile_variant(variant)
    return time.perf_counter() - begin


def compile_kernels(selected: Iterable[Variant], report: Callable[[str, float], None] | None = None,
                    jobs: int = 1) -> float:
    """Compile (or load from numba's cache) the kernels of every variant and the simulator's.

    numba compiles on one core; with ``jobs`` > 1 the variants are shared among that many
    new processes, the costliest first (threaded, then two replicas), and each kernel a
    process compiles is in numba's on-disk cache for every later process.
    ``report(what, seconds)`` is called after each; returns the total time.
    """
    from .simulate import simulate
    from .simulation_options import SimulationOptions

    start = time.perf_counter()
    selected = list(selected)
    if jobs > 1 and len(selected) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        costliest_first = sorted(selected, key=lambda v: (v.threaded, v.replicas, v.response == "probe"), reverse=True)
        # spawn: a fork would copy numba's threading runtime if this process has started it.
        with ProcessPoolExecutor(max_workers=min(jobs, len(selected)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_timed_compile, variant): variant for variant in costliest_first}
            for future in as_completed(futures):
                seconds = future.result()
                if report is not None:
                    report(futures[future].describe(), seconds)
    else:
        for variant in selected:
            seconds = _timed_compile(variant)
            if report is not None:
                report(variant.describe(), seconds)
    begin = time.perf_counter()
    simulate(Problem.from_flat(steps=2), SimulationOptions(dimension=20, seeds=1))
    if report is not None:
        report("finite-d simulator", time.perf_counter() - begin)
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- one run's kernels

# The parts of a step of the march (solvers/step.py, solvers/weights.py), each calling its
# kernels through the solver's own code on a small run of the same types, so that a part
# compiles exactly the kernels (and signatures) the real run then loads from the cache.
# A second process compiles HELPER_PARTS while this one compiles the rest: the draws and
# the weight side take about as long to compile as the population kernel and the Cholesky
# row, with the second interpreter's start (docs/performance.md).
PARTS = ("population", "draws", "cholesky", "weights")
HELPER_PARTS = ("draws", "weights")
SMALL_SAMPLES = 64
# Seconds this process waits for the helper; then it stops it and compiles what is left.
HELPER_TIMEOUT = 600.0
# The options that decide which kernels (and signatures) a run uses.
KERNEL_OPTIONS = ("samples", "subpopulations", "response", "probes", "replicas", "precision", "memory_window")


@dataclass(frozen=True)
class RunKernels:
    """The threaded kernels a run uses besides the single-threaded ones (every run starts
    on those), by the rules of ``solvers.solve``, ``solvers.population``, ``solvers.step``
    and ``solvers.weights``: none unless the run solves one subpopulation at a time and is
    large enough (``uses_threads``), then those that some step's size calls for. (Were
    the rules to change, a run would compile what this misses itself: slower, never
    different.)"""

    population: bool
    draws: bool
    cholesky: bool
    weights: bool

    @classmethod
    def of(cls, problem: Problem, options: SolverOptions, threads: int | None = None) -> RunKernels:
        """``threads``: numba's (None: the calling thread's count)."""
        import numba

        from .solvers import subpopulations_at_once, threaded_kernels
        from .solvers.kernels.draws import DRAW_PARALLEL_THRESHOLD
        from .solvers.kernels.triangles import R_BLOCK
        from .solvers.kernels.weight_side import WEIGHTS_PARALLEL_FROM
        from .solvers.population import PARALLEL_THRESHOLD

        n = problem.steps
        largest = max(options.subpopulation_sizes())
        threads = threads or numba.get_num_threads()
        threaded = threaded_kernels(problem, options, subpopulations_at_once(problem, options, threads), threads)
        return cls(population=threaded and largest * (n + 1) >= PARALLEL_THRESHOLD,
                   draws=threaded and largest >= DRAW_PARALLEL_THRESHOLD,
                   cholesky=threaded and n > R_BLOCK, weights=threaded and n - 1 >= WEIGHTS_PARALLEL_FROM)


def compile_part(part: str, problem: Problem, options: SolverOptions, threaded: bool = False) -> None:
    """Make one part of a step of a small run like ``problem``'s with ``options``: its kernels
    are compiled (or loaded from numba's cache). ``threaded``: the threaded kernels instead."""
    from .solvers.kernels.draws import DRAW_PARALLEL_THRESHOLD
    from .solvers.kernels.triangles import R_BLOCK
    from .solvers.kernels.weight_side import WEIGHTS_PARALLEL_FROM
    from .solvers.population import PARALLEL_THRESHOLD, make_population
    from .solvers.step import PathFactors
    from .solvers.weights import Trajectory, advance_weights

    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; known: {', '.join(PARTS)}")
    # A threaded kernel runs from a population and step size on: reach it at step k (the
    # population small: exact responses store samples x steps^2 tangents).
    samples, k = SMALL_SAMPLES, 0
    if threaded:
        samples, k = {"population": (-(-PARALLEL_THRESHOLD // 8), 7), "draws": (DRAW_PARALLEL_THRESHOLD, 0),
                      "cholesky": (SMALL_SAMPLES, R_BLOCK + 1), "weights": (SMALL_SAMPLES, WEIGHTS_PARALLEL_FROM)}[part]
    small = problem.replace(steps=k + 1)
    population = make_population(small if part in ("population", "draws") else problem.replace(steps=1), samples,
                                 np.random.SeedSequence(0), options.response, options.probes, SMALL_SAMPLES,
                                 options.replicas, options.precision, threaded)
    traj = Trajectory.start(small, options.replicas, options.memory_steps(problem.dt), population.sum_dtype)
    if part == "population":
        factor_rows = tuple(np.zeros(k + 1) for _ in range(options.replicas))  # what they hold does not matter
        population.step(k, factor_rows, traj.R[k, :k], traj.m[k], first=traj.memory_start(k))
        population.gaps()
    elif part == "draws":
        population.draw(k)
    elif part == "cholesky":
        PathFactors(traj, small.dataset.teacher, threaded).rows(k)
    else:
        advance_weights(k, traj, small, threaded)


def compile_parts(parts: Iterable[str], problem: Problem, options: SolverOptions, threads: int | None = None) -> None:
    """``compile_part`` for each of ``parts``, serial kernels and those threaded ones the run
    uses (``threads``: numba's in the solve; None: this thread's count)."""
    threaded = RunKernels.of(problem, options, threads)
    for part in parts:
        compile_part(part, problem, options)
        if getattr(threaded, part):
            compile_part(part, problem, options, threaded=True)


class _WouldCompile(Exception):
    """Raised at the first kernel that is not in numba's cache (``_all_cached``)."""


def _numba_event():
    from numba.core import event

    return event


def _all_cached(parts: Iterable[str], problem: Problem, options: SolverOptions, threads: int | None = None) -> bool:
    """Whether ``parts``' kernels all load from the cache. Loads those it meets; compiles
    none: numba signals a compilation before it starts, and the signal stops it."""
    event = _numba_event()

    def stop(_event) -> None:
        raise _WouldCompile

    listener = _listener(stop)
    event.register("numba:compile", listener)
    try:
        compile_parts(parts, problem, options, threads)
    except _WouldCompile:
        return False
    finally:
        event.unregister("numba:compile", listener)
    return True


def compile_for_run(problem: Problem, options: SolverOptions, helper: bool = True, threads: int | None = None) -> None:
    """Compile the kernels a solve of ``problem`` with ``options`` uses, or load them from
    numba's cache, before it starts.

    On a first run (the kernels of both halves not in the cache) a second process compiles
    the draws and the weight side into the cache while this one compiles the population
    kernel and the Cholesky row; this one then waits for it and loads them. numba compiles
    on one core, so on two cores that nearly halves the wait. Nothing is compiled twice,
    and if the second process fails this one compiles what it left (the numbers are the
    same wherever a kernel was compiled: the same code, compiled alike). ``helper=False``:
    all here, one after the other. ``threads``: numba's thread count in the solve (None:
    this thread's), which decides the threaded kernels it uses.

    Raises ``ParameterError`` as ``solve`` would when the run does not fit in memory.
    """
    from .solvers import check_memory

    check_memory(problem, options)
    here = tuple(part for part in PARTS if part not in HELPER_PARTS)
    if not helper:
        compile_parts(PARTS, problem, options, threads)
        return
    # With one half in the cache (loaded by its check), the other is compiled here: a second
    # process would save nothing.
    if _all_cached(HELPER_PARTS, problem, options, threads):
        compile_parts(here, problem, options, threads)
        return
    if _all_cached(here, problem, options, threads):
        compile_parts(HELPER_PARTS, problem, options, threads)
        return
    process = _start_helper(problem, options, threads)
    try:
        compile_parts(here, problem, options, threads)
    except BaseException:  # interrupted, or failed: the helper must not outlive the run
        _stop_helper(process)
        raise
    _finish_helper(process)
    compile_parts(HELPER_PARTS, problem, options, threads)  # loads what the helper compiled; compiles what it did not


def _start_helper(problem: Problem, options: SolverOptions, threads: int | None = None) -> subprocess.Popen | None:
    """A new interpreter compiling HELPER_PARTS into the cache (not a fork: numba's
    threads; not multiprocessing: a Dask worker's daemonic process may not have children,
    and a spawned child would run the user's script again). None if it cannot start."""
    try:
        flat = options.flat()
        payload = json.dumps({"problem": problem.flat(), "options": {key: flat[key] for key in KERNEL_OPTIONS},
                              "threads": threads})
        code = "import sys; from dmft.warmup import helper_main; helper_main(sys.argv[1])"
        return subprocess.Popen([sys.executable, "-c", code, payload],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except (OSError, TypeError, ValueError):  # no interpreter to start, or options JSON cannot carry
        return None


def _finish_helper(process: subprocess.Popen | None) -> None:
    """Wait for the helper; stop it if it takes longer than HELPER_TIMEOUT. Its failure is
    not this run's: what it did not compile is compiled here."""
    if process is None:
        return
    try:
        process.communicate(timeout=HELPER_TIMEOUT)
    except subprocess.TimeoutExpired:
        _stop_helper(process)
    except BaseException:  # interrupted: the helper must not outlive the run
        _stop_helper(process)
        raise


def _stop_helper(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.kill()
        process.communicate()


def helper_main(payload: str) -> None:
    """The second process of ``compile_for_run``: compile HELPER_PARTS of the run in ``payload``."""
    given = json.loads(payload)
    problem = Problem.from_flat(**given["problem"])
    options = SolverOptions.from_flat(**given["options"])
    compile_parts(HELPER_PARTS, problem, options, given.get("threads"))


# ----------------------------------------------------------------------------- the notice

def _listener(action: Callable[[object], None]):
    """A numba event listener calling ``action(event)`` when a compilation starts."""
    event = _numba_event()

    class Listener(event.Listener):
        def on_start(self, numba_event) -> None:
            action(numba_event)

        def on_end(self, numba_event) -> None:
            pass

    return Listener()


class CompileNotice:
    """Prints one line when numba starts compiling one of the package's kernels (one not
    in its cache: a first run), and never on a run that loads them all. A context manager:
    it listens while the run is inside it."""

    MESSAGE = "compiling kernels, first run only (`dmft compile` does it ahead of time) ..."

    def __init__(self, stream: TextIO | None = None, enabled: bool = True):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.shown = False
        self._listener = _listener(self._compiling) if enabled else None

    def _compiling(self, numba_event) -> None:
        if self.shown:
            return
        dispatcher = numba_event.data.get("dispatcher") if isinstance(numba_event.data, dict) else None
        module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
        if module.split(".")[0] == __package__:
            self.shown = True
            print(self.MESSAGE, file=self.stream, flush=True)

    def __enter__(self) -> Self:
        if self._listener is not None:
            _numba_event().register("numba:compile", self._listener)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._listener is not None:
            _numba_event().unregister("numba:compile", self._listener)
