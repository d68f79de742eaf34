"""The runs the claims share: the two models, independent DMFT runs, simulations seed by seed,
and the memory-window check.

Both sides keep their independent runs: the DMFT solves ``runs`` independent
populations (``dmft.workflows.solve_runs``), the simulator one seed at a time
(``dmft.workflows.run_seeds``), so that every derived number (a half-decay time, T_eff,
a gap statistic) gets its standard error from the spread of per-run values.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..options import SolverOptions
from ..problem import Problem
from ..result import Result, SimulationResult
from ..simulate import simulate
from ..simulation_options import SimulationOptions
from ..solvers import solve
from ..statistics import mean_and_stderr
from ..warmup import compile_for_run
from ..workflows import run_seeds, solve_runs
from .verdicts import Estimate

# One line per solved or simulated point (the command line shows them on stderr).
LOG = logging.getLogger("dmft.reproduce")

# The 2020 paper's model: two Gaussian clusters, logistic loss with a ridge (docs/theory.md §10).
MIXTURE = dict(dataset="gmm2", alpha=2.0, delta=0.5, rho=0.5, loss="logistic", ridge=0.1)
# The 2022 paper's constraint satisfaction problem: the perceptron storing random labels with
# the square hinge at margin 1, no ridge. Its capacity at margin 1 is alpha_c = 0.52: above
# it (under-parametrized) the training loss stays positive, below it (over-parametrized) it
# reaches zero and the dynamics stops.
PERCEPTRON = dict(dataset="random-labels", loss="square-hinge", margin=1.0, ridge=0.0)


@dataclass(frozen=True)
class DmftSize:
    """A DMFT population: ``samples`` in all, in ``runs`` independent runs, from ``seed``."""

    samples: int
    runs: int
    seed: int

    def options(self, **extra: Any) -> SolverOptions:
        return SolverOptions(samples=self.samples, subpopulations=self.runs, seed=self.seed, **extra)


@dataclass(frozen=True)
class SimulationSize:
    """Simulations at dimension ``dimension``, ``seeds`` independent seeds from ``seed``."""

    dimension: int
    seeds: int
    seed: int


def problem_of(base: dict[str, Any], **changes: Any) -> Problem:
    """A Problem from flat parameters; ``steps`` may be given as a final ``time``."""
    flat = {**base, **changes}
    if "time" in flat:
        flat["steps"] = steps_for(flat.pop("time"), flat.get("dt", 0.1))
    return Problem.from_flat(**flat)


def steps_for(time: float, dt: float) -> int:
    """The number of steps reaching ``time``, which must be a multiple of ``dt``."""
    steps = int(round(time / dt))
    if abs(steps * dt - time) > 1e-9 * max(time, 1.0):
        raise ValueError(f"t = {time:g} is not a multiple of dt = {dt:g}")
    return steps


def _describe(problem: Problem) -> str:
    flat = problem.flat()
    keys = ("algorithm", "alpha", "batch_fraction", "persistence_time", "dt", "steps")
    return " ".join(f"{key}={flat[key]}" for key in keys)


def dmft_runs(problem: Problem, size: DmftSize, **options: Any) -> list[Result]:
    """Independent DMFT solutions (each ``size.samples / size.runs`` samples). Their kernels
    are compiled first, on a first run in two processes, as ``dmft solve`` does."""
    start = time.perf_counter()
    compile_for_run(problem, size.options(**options))
    runs = solve_runs(problem, size.options(**options))
    LOG.info("DMFT %s: %d runs in %.1f s", _describe(problem), size.runs, time.perf_counter() - start)
    return runs


def simulation_runs(problem: Problem, size: SimulationSize, **options: Any) -> list[SimulationResult]:
    """One ``simulate`` per seed (seeds from ``run_seeds``), so that per-seed numbers are kept."""
    start = time.perf_counter()
    runs = [simulate(problem, SimulationOptions(dimension=size.dimension, seeds=1, seed=seed, **options))
            for seed in run_seeds(size.seed, size.seeds)]
    LOG.info("simulation %s: d = %d, %d seeds in %.1f s", _describe(problem), size.dimension, size.seeds,
             time.perf_counter() - start)
    return runs


def curve_estimates(runs: Sequence[Any], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over runs of a one-time observable (``self_overlap`` on either side)."""
    values = [np.asarray(getattr(run, name), dtype=float) for run in runs]
    return mean_and_stderr(values)


def final_estimate(runs: Sequence[Any], name: str, source: str, step: int = -1) -> Estimate:
    """An observable at ``step`` (default: the last) over independent runs."""
    return Estimate.of_runs([float(np.asarray(getattr(run, name))[step]) for run in runs], source)


@dataclass(frozen=True)
class MemoryCheck:
    """Whether a memory window of ``window`` may replace the exact equations for a family of runs.

    The window is used only if the memory it drops (``tail``, docs/theory.md §9) is below
    the Monte Carlo error of C[k,k] at the last step of the unwindowed run
    (``self_overlap_stderr``). ``self_overlap_shift`` is how much C[k,k] actually moved.
    """

    window: float
    tail: float
    edge: float
    edge_stderr: float
    self_overlap_shift: float
    self_overlap_stderr: float

    @property
    def used(self) -> bool:
        return bool(np.isfinite(self.tail) and self.tail < self.self_overlap_stderr)

    def to_dict(self) -> dict[str, Any]:
        return {"window": self.window, "memory_tail": self.tail, "memory_edge": self.edge,
                "memory_edge_stderr": self.edge_stderr, "self_overlap_shift": self.self_overlap_shift,
                "self_overlap_stderr": self.self_overlap_stderr, "used": self.used,
                "rule": "used only if memory_tail < the Monte Carlo error of C[k,k] at the last step"}

    def text(self) -> str:
        verdict = "used" if self.used else "not used"
        return (f"memory window {self.window:g}: tail {self.tail:.2g} against a Monte Carlo error of C[k,k] of "
                f"{self.self_overlap_stderr:.2g} (C[k,k] moved by {self.self_overlap_shift:.2g}): {verdict}")


def check_memory_window(problem: Problem, size: DmftSize, window: float, exact: Result, **options: Any) -> MemoryCheck:
    """Solve ``problem`` once with the window and compare with the unwindowed ``exact`` (same size)."""
    windowed = solve(problem, replace(size.options(**options), memory_window=window))
    k = problem.steps
    shift = float(windowed.C[k, k] - exact.C[k, k])
    return MemoryCheck(window=window, tail=float(windowed.diagnostics.get("memory_tail", np.nan)),
                       edge=float(windowed.diagnostics.get("memory_edge", np.nan)),
                       edge_stderr=float(windowed.diagnostics.get("memory_edge_stderr", np.nan)),
                       self_overlap_shift=shift, self_overlap_stderr=float(exact.stderr["C"][k, k]))
