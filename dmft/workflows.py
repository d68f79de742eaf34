"""Workflows that call the solver and then analyse: independent runs, T_eff with honest errors, sweeps.

Analysis modules (``dmft.fdt``, ``dmft.gaps``, ``dmft.compare``) never call the solver;
what needs fresh solutions lives here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .errors import ParameterError
from .fdt import TeffEstimate, effective_temperature_from_runs, teff_table
from .options import SolverOptions
from .problem import Problem
from .result import KERNELS, OBSERVABLES, Result
from .solvers import solve, subpopulations_at_once
from .solvers.runs import in_order
from .statistics import mean_and_stderr


def run_seeds(seed: int, runs: int) -> list[int]:
    """Independent integer seeds derived from ``seed`` (numpy SeedSequence spawning)."""
    return [int(child.generate_state(1)[0]) for child in np.random.SeedSequence(seed).spawn(runs)]


def solve_runs(problem: Problem, options: SolverOptions | None = None, runs: int | None = None) -> list[Result]:
    """``runs`` independent DMFT solutions (default ``options.subpopulations``), each with samples / runs.

    The same total population as one ``dmft.solve(problem, options)``, but every
    subpopulation is kept, so nonlinear functionals (T_eff) get honest error bars. The
    runs are solved side by side, as ``solve`` does its subpopulations.
    """
    options = options or SolverOptions()
    runs = options.subpopulations if runs is None else runs
    if runs < 2:
        raise ParameterError("runs", f"need >= 2 independent runs for an error bar, got {runs}")
    samples = options.samples // runs
    each = [replace(options, samples=samples, subpopulations=1, seed=seed) for seed in run_seeds(options.seed, runs)]
    at_once = subpopulations_at_once(problem, replace(options, samples=samples * runs, subpopulations=runs))
    # Each solve gets in_order's progress callback, by which a stopped run stops.
    runs_at_once = [functools.partial(solve, problem, one) for one in each]
    return list(in_order(runs_at_once, at_once, options.steps_per_run(problem.steps)))


def combine_runs(runs: Sequence[Result]) -> Result:
    """One Result from independent runs: their mean, and standard errors from their spread."""
    if len(runs) < 2:
        raise ParameterError("runs", f"need >= 2 runs, got {len(runs)}")
    arrays, stderr = {}, {}
    for name in OBSERVABLES + KERNELS:
        values = [getattr(r, name) for r in runs]
        if name in OBSERVABLES:
            arrays[name], stderr[name] = mean_and_stderr(values)
        else:
            arrays[name] = np.mean(np.asarray(values, dtype=float), axis=0)
    first = runs[0]
    gaps = getattr(first, "gaps", None)
    if gaps:  # the pooled population's gap distribution
        arrays["gaps"] = {step: np.concatenate([r.gaps[step] for r in runs]) for step in gaps}
    samples = sum(r.options.samples for r in runs)
    diagnostics = {"wall_time": sum(r.diagnostics.get("wall_time", 0.0) for r in runs), "subpopulations": len(runs)}
    return replace(first, options=replace(first.options, samples=samples, subpopulations=len(runs)),
                   stderr=stderr, diagnostics=diagnostics, **arrays)


def teff_with_errors(problem: Problem, options: SolverOptions | None = None, runs: int | None = None,
                     **kwargs: Any) -> TeffEstimate:
    """Solve in independent runs and return T_eff with its jackknife error (kwargs as ``effective_temperature``)."""
    return effective_temperature_from_runs(solve_runs(problem, options, runs), **kwargs)


def teff_sweep(problem: Problem, parameter: str, values: Iterable[float], options: SolverOptions | None = None,
               runs: int | None = None, **kwargs: Any) -> np.ndarray:
    """Solve ``problem`` at each value of ``parameter`` in independent runs; return ``teff_table``."""
    solutions = [solve_runs(problem.replace(**{parameter: value}), options, runs) for value in values]
    return teff_table(solutions, parameter, **kwargs)
