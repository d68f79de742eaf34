"""Compile the numba kernels ahead of time, so that no later run waits for them.

numba compiles a kernel at its first call and keeps it in its on-disk cache; a fresh
install, a container image or a new Dask worker host pays that once per kernel variant
(threaded or serial, precision, response estimator, one or two replicas). ``compile_kernels``
makes those first calls on tiny problems (what ``dmft compile`` runs), and
``CompileNotice`` is the line a terminal shows while a first run compiles.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TextIO

from .options import DEFAULT_PRECISION, PRECISIONS, RESPONSES, SolverOptions
from .problem import Problem
from .simulate import simulate
from .simulation_options import SimulationOptions

# Sizes that reach the kernels a real run uses: a population of 20 000 samples over 20
# steps does 420 000 sample-steps, above the threaded-run threshold (400 000), and its
# first steps run serially; 200 samples over 3 steps stay serial throughout.
THREADED = {"samples": 20_000, "subpopulations": 1, "steps": 20}
SERIAL = {"samples": 200, "subpopulations": 1, "steps": 3}


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
    """Solve a tiny problem with ``variant``'s options (the answer is thrown away)."""
    size = THREADED if variant.threaded else SERIAL
    problem = Problem.from_flat(algorithm="sgd", batch_fraction=0.3, steps=size["steps"])
    options = SolverOptions(samples=size["samples"], subpopulations=size["subpopulations"],
                            precision=variant.precision, response=variant.response, replicas=variant.replicas)
    from .solvers import solve  # the solver package imports its kernels, which load lazily anyway

    solve(problem, options)


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


class CompileNotice:
    """Prints one line if a run has shown no progress ``after`` seconds in: at that point
    it is almost always numba compiling kernels on a first run. ``progressed()`` cancels it."""

    MESSAGE = "compiling kernels, first run only (`dmft compile` does it ahead of time) ..."

    def __init__(self, after: float = 1.0, stream: TextIO | None = None, enabled: bool = True):
        self.stream = stream if stream is not None else sys.stderr
        self.shown = False
        self._timer = threading.Timer(after, self._show) if enabled else None
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()

    def _show(self) -> None:
        self.shown = True
        print(self.MESSAGE, file=self.stream, flush=True)

    def progressed(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
