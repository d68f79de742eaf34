"""``solve``: the single entry point taking a problem and solver options, returning a Result."""

from __future__ import annotations

import time as _time
from typing import Callable

import numpy as np

from ..problem import Problem
from ..result import KERNELS, OBSERVABLES, REPLICA_OBSERVABLES, Result
from .iterate import iterate
from .march import march
from ..options import SolverOptions
from .population import Population, make_population

Progress = Callable[[int, int], None]


def solve(problem: Problem, options: SolverOptions | None = None, progress: Progress | None = None) -> Result:
    """Solve the DMFT of ``problem``.

    The population of ``options.samples`` effective samples is split into
    ``options.subpopulations`` independent parts, each solved self-consistently; the
    result is their mean, and their spread gives the Monte Carlo standard errors.
    ``progress(done, total)`` is called as work advances.
    """
    options = options or SolverOptions()
    start = _time.perf_counter()
    n_sub = options.subpopulations
    seeds = np.random.SeedSequence(options.seed).spawn(n_sub)
    sizes = [options.samples // n_sub + (1 if i < options.samples % n_sub else 0) for i in range(n_sub)]
    steps_per_run = problem.steps + 1 if options.method == "march" else options.max_iterations
    runs, reports = [], []
    for index, (seed, size) in enumerate(zip(seeds, sizes)):
        run_progress = None
        if progress is not None:
            offset = index * steps_per_run
            run_progress = lambda done, total, offset=offset: progress(offset + done, n_sub * steps_per_run)  # noqa: E731
        traj, report = _solve_one(problem, options, size, seed, run_progress)
        runs.append(traj)
        reports.append(report)
    result = _combine(problem, options, runs, reports, _time.perf_counter() - start)
    if progress is not None:
        progress(n_sub * steps_per_run, n_sub * steps_per_run)
    return result


def _solve_one(problem, options, samples, seed, progress):
    def population(seed_sequence: np.random.SeedSequence) -> Population:
        return make_population(problem, samples, seed_sequence, options.response, options.probes,
                               options.chunk_size, options.replicas, options.precision)

    if options.method == "march":
        return march(problem, population(seed), progress, options.gap_steps), None

    def population_for_iteration(iteration: int) -> Population:
        if not options.resample:  # the same draws every iteration
            return population(seed)
        return population(np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key + (iteration,)))

    return iterate(problem, population_for_iteration, options.damping, options.tolerance, options.max_iterations, progress,
                   options.gap_steps)


def _observable(problem: Problem, traj, name: str) -> np.ndarray:
    if name == "test_error":
        return problem.dataset.test_error(traj.m, np.diagonal(traj.C))
    if name == "C_ab":
        return traj.C - traj.C_minus
    if name == "distance":  # D_k = |w^a_k - w^b_k|^2 / d = 2 (C - C_ab)[k, k]
        return 2.0 * np.diagonal(traj.C_minus)
    return getattr(traj, name)


def _combine(problem, options, runs, reports, wall_time) -> Result:
    arrays, stderr = {}, {}
    observables = OBSERVABLES + (REPLICA_OBSERVABLES if options.replicas == 2 else ())
    for name in observables + KERNELS:
        stack = np.stack([_observable(problem, t, name) for t in runs])
        arrays[name] = stack.mean(axis=0)
        if name in observables:
            stderr[name] = (stack.std(axis=0, ddof=1) / np.sqrt(len(runs)) if len(runs) > 1
                            else np.full_like(arrays[name], np.nan))
    diagnostics = {"wall_time": wall_time, "subpopulations": len(runs),
                   "min_relative_pivot": min(t.min_relative_pivot for t in runs)}
    if options.method == "iterate":
        diagnostics["converged"] = all(r.converged for r in reports)
        diagnostics["iterations"] = max(r.iterations for r in reports)
        diagnostics["residual"] = [np.asarray(r.residual) for r in reports]
        diagnostics["relative_change"] = [np.asarray(r.relative_change) for r in reports]
    # Gap distributions: the subpopulations are independent samples of one law, pooled.
    gaps = {k: np.concatenate([t.gaps[k] for t in runs]) for k in sorted(runs[0].gaps)}
    return Result(problem=problem, options=options, time=problem.time, stderr=stderr,
                  diagnostics=diagnostics, gaps=gaps, **arrays)


__all__ = ["solve", "SolverOptions"]
