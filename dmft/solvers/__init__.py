"""``solve``: the single entry point taking a problem and solver options, returning a Result."""

from __future__ import annotations

import functools
import os
import time as _time
from typing import Callable

import numba
import numpy as np

from ..problem import Problem
from ..result import KERNELS, OBSERVABLES, REPLICA_OBSERVABLES, Result
from .iterate import iterate
from .kernels.triangles import R_BLOCK
from . import runs
from .march import march
from ..options import SolverOptions
from ..errors import ParameterError
from .population import Population, TwoReplicaPopulation, draw_scheme, make_population, uses_threads
from .._numba_cache import clear_stale_caches_once

# Importing the kernels loads none of them yet: stale caches are cleared before any can run.
clear_stale_caches_once()

Progress = Callable[[int, int], None]
# Per-subpopulation arrays kept with keep_runs (for jackknife errors of derived quantities).
KEPT_PER_RUN = ("C", "R", "m", "A")


def solve(problem: Problem, options: SolverOptions | None = None, progress: Progress | None = None) -> Result:
    """Solve the DMFT of ``problem``.

    The population of ``options.samples`` effective samples is split into
    ``options.subpopulations`` independent parts, each solved self-consistently; the
    result is their mean, and their spread gives the Monte Carlo standard errors. Up to
    one subpopulation per numba thread is solved at once (``runs``); the numbers do not
    depend on how many. ``progress(done, total)`` is called as work advances. Raises
    ``ParameterError`` before any work when the run would not fit in memory,
    ``DivergenceError`` when it blows up.
    """
    options = options or SolverOptions()
    threads = numba.get_num_threads()
    side_by_side = subpopulations_at_once(problem, options, threads)
    start = _time.perf_counter()
    n_sub = options.subpopulations
    seeds = np.random.SeedSequence(options.seed).spawn(n_sub)
    sizes = options.subpopulation_sizes()
    chunk_width = options.chunk_width(min(sizes))  # the same summation layout in every subpopulation
    steps_per_run = options.steps_per_run(problem.steps)
    names = OBSERVABLES + (REPLICA_OBSERVABLES if options.replicas == 2 else ()) + KERNELS
    statistics = {name: _RunningMean() for name in names}
    reports, gaps, kept, min_pivot = [], {}, {}, np.inf
    threaded = threaded_kernels(problem, options, side_by_side, threads)
    subpopulations = [functools.partial(_solve_one, problem, options, size, chunk_width, seed, threaded=threaded)
                      for seed, size in zip(seeds, sizes)]
    for traj, report in runs.in_order(subpopulations, side_by_side, steps_per_run, progress):
        # Keep running sums, not the runs: memory stays that of the runs in progress whatever n_sub.
        for name in names:
            statistics[name].add(_observable(problem, traj, name))
        reports.append(report)
        if options.keep_runs:
            for name in KEPT_PER_RUN:
                kept.setdefault(f"{name}_runs", []).append(getattr(traj, name).copy())
        min_pivot = min(min_pivot, traj.min_relative_pivot)
        for k, values in traj.gaps.items():  # independent samples of one law: pooled
            gaps.setdefault(k, []).append(values)
    arrays = {name: statistics[name].mean for name in names}
    stderr = {name: statistics[name].stderr for name in names if name not in KERNELS}
    diagnostics = {"wall_time": _time.perf_counter() - start, "subpopulations": n_sub, "chunk_width": chunk_width,
                   "random_streams": draw_scheme(options.precision), "min_relative_pivot": min_pivot,
                   **memory_cut(arrays["R"], stderr["R"], options, problem.dt)}
    diagnostics.update(kept)
    if options.method == "iterate":
        diagnostics["converged"] = all(r.converged for r in reports)
        diagnostics["iterations"] = max(r.iterations for r in reports)
        diagnostics["residual"] = [np.asarray(r.residual) for r in reports]
        diagnostics["relative_change"] = [np.asarray(r.relative_change) for r in reports]
    result = Result(problem=problem, options=options, time=problem.time, stderr=stderr, diagnostics=diagnostics,
                    gaps={k: np.concatenate(v) for k, v in sorted(gaps.items())}, **arrays)
    if progress is not None:
        progress(n_sub * steps_per_run, n_sub * steps_per_run)
    return result


class _RunningMean:
    """Welford's mean and variance over runs; entries that never vary get exactly zero error.

    The first value is kept, not copied: ``solve`` passes arrays of a finished run it no
    longer uses, and copying N x N arrays is slow at large N.
    """

    def __init__(self) -> None:
        self.count, self.mean, self._m2 = 0, None, None

    def add(self, value: np.ndarray) -> None:
        value = np.asarray(value, dtype=float)
        self.count += 1
        if self.mean is None:
            self.mean = value
            return
        delta = value - self.mean
        self.mean = self.mean + delta / self.count
        increment = delta * (value - self.mean)
        self._m2 = increment if self._m2 is None else self._m2 + increment

    @property
    def stderr(self) -> np.ndarray:
        if self.count < 2:
            return np.full_like(self.mean, np.nan)
        return np.sqrt(np.maximum(self._m2, 0.0) / (self.count - 1) / self.count)


def memory_estimate(problem: Problem, options: SolverOptions, side_by_side: int = 1) -> int:
    """Bytes a solve needs with ``side_by_side`` subpopulations solved at once: their
    populations' paths and N x N arrays, and the sums over runs."""
    n = problem.steps + 1
    size = -(-options.samples // options.subpopulations)
    kind = TwoReplicaPopulation if options.replicas == 2 else Population
    paths = kind.memory_bytes(size, problem.steps, options.response, options.probes, options.precision)
    # Trajectory (C, R, Gamma_C, K [, C_minus, Gamma_minus]) with R and Gamma_C [and
    # Gamma_minus] again stored by rows (half a matrix each), the Cholesky factors (stored by
    # rows; two replicas: and C + C_ab), rounded up: 6 [10]; the fixed-point loop holds a
    # second trajectory. Then the running mean and variance of C, R, A, K, Gamma_C [, C_ab].
    per_run = (6 if options.replicas == 1 else 10) + (4 if options.method == "iterate" else 0)
    sums = 2 * (4 if options.replicas == 1 else 5)
    if options.keep_runs:
        sums += 2 * options.subpopulations
    diagonal_blocks = 8 * options.replicas * n * R_BLOCK  # of each Cholesky factor
    return side_by_side * (paths + 8 * per_run * n * n + diagonal_blocks) + 8 * sums * n * n


def threaded_kernels(problem: Problem, options: SolverOptions, at_once: int, threads: int) -> bool:
    """Whether a solve running ``at_once`` subpopulations at once, with ``threads`` numba
    threads, uses the threaded kernels: only one subpopulation at a time (otherwise the
    threads are the subpopulations'), with threads to run them, and work enough to pay for
    compiling them (``population.uses_threads``)."""
    return at_once == 1 and threads > 1 and uses_threads(options.samples, problem.steps)


def subpopulations_at_once(problem: Problem, options: SolverOptions, threads: int | None = None) -> int:
    """How many subpopulations ``solve`` runs at once: one per numba thread (``threads``, or
    the calling thread's count), as many as fit in memory. Raises ``ParameterError`` if
    not even one does."""
    check_memory(problem, options)
    available = available_memory()
    at_once = min(options.subpopulations, threads or numba.get_num_threads())
    while at_once > 1 and memory_estimate(problem, options, at_once) > 0.9 * available:
        at_once -= 1
    return at_once


def available_memory() -> int:
    """Bytes of memory available now (MemAvailable), or total physical memory as a fallback."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(problem: Problem, options: SolverOptions) -> None:
    needed, available = memory_estimate(problem, options), available_memory()
    if needed <= 0.9 * available:
        return
    # Name what dominates: the N x N arrays (steps) or the sample paths (samples).
    n = problem.steps + 1
    parameter = "steps" if 8 * 20 * n * n > needed / 2 else "samples"
    raise ParameterError(parameter, f"this run needs about {needed / 2**30:.1f} GiB and {available / 2**30:.1f} GiB "
                         "is available: use fewer --steps, fewer --samples or more --subpopulations")


def memory_cut(R: np.ndarray, R_stderr: np.ndarray, options: SolverOptions, dt: float) -> dict[str, float]:
    """Diagnostics of the memory window (all NaN without one, or when the run is shorter).

    memory_edge: the largest |R(t, t')| at t - t' = memory_window, the last lag kept, and
    memory_edge_stderr the RMS standard error along that lag (NaN with one subpopulation;
    pure noise gives a largest |R| of 3-4 of it over hundreds of steps). memory_tail: an
    estimate of what the window drops, the integral of |R| over the lags beyond it,
    extrapolating the decay from half the window to its edge as an exponential (inf if R
    does not decay there, as when it has reached its Monte Carlo noise).
    """
    cut = {"memory_edge": np.nan, "memory_edge_stderr": np.nan, "memory_tail": np.nan}
    window = options.memory_steps(dt)
    if window is None or window >= R.shape[0]:
        return cut
    cut["memory_edge"] = edge = float(np.abs(np.diagonal(R, offset=-window)).max())
    cut["memory_edge_stderr"] = float(np.sqrt(np.mean(np.diagonal(R_stderr, offset=-window) ** 2)))
    half = float(np.abs(np.diagonal(R, offset=-(window // 2))[window - window // 2:]).max())
    if edge == 0.0:
        cut["memory_tail"] = 0.0
    elif half <= edge:
        cut["memory_tail"] = np.inf
    else:
        cut["memory_tail"] = float(edge * (window - window // 2) * dt / np.log(half / edge))
    return cut


def _solve_one(problem, options, samples, chunk_width, seed, progress, threaded):
    def population(seed_sequence: np.random.SeedSequence) -> Population:
        return make_population(problem, samples, seed_sequence, options.response, options.probes,
                               chunk_width, options.replicas, options.precision, threaded)

    memory_steps = options.memory_steps(problem.dt)
    if options.method == "march":
        return march(problem, population(seed), progress, options.gap_steps, memory_steps), None

    def population_for_iteration(iteration: int) -> Population:
        if not options.resample:  # the same draws every iteration
            return population(seed)
        return population(np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key + (iteration,)))

    return iterate(problem, population_for_iteration, options.damping, options.tolerance, options.max_iterations,
                   progress, options.gap_steps, memory_steps)


def _observable(problem: Problem, traj, name: str) -> np.ndarray:
    if name == "test_error":
        return problem.dataset.test_error(traj.m, np.diagonal(traj.C))
    if name == "C_ab":
        return traj.C - traj.C_minus
    if name == "distance":  # D_k = |w^a_k - w^b_k|^2 / d = 2 (C - C_ab)[k, k]
        return 2.0 * np.diagonal(traj.C_minus)
    return getattr(traj, name)


__all__ = ["solve", "SolverOptions", "memory_estimate", "subpopulations_at_once", "threaded_kernels"]
