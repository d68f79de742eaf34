"""The causal march: one forward pass in k solves the DMFT for a given set of draws.

Row k of the sample paths needs C up to k, R row k and m_k; C row k+1 needs the
kernels up to k only (docs/theory.md §2, "Causality").
"""

from __future__ import annotations

from typing import Callable

from ..problem import Problem
from .population import Population
from .step import PathFactors, step
from .weights import Trajectory, advance_weights

Progress = Callable[[int, int], None]


def march(problem: Problem, population: Population, progress: Progress | None = None,
          gap_steps: tuple[int, ...] = (), memory_steps: int | None = None) -> Trajectory:
    """Solve the DMFT in one causal pass over k = 0..N; keep the gaps at ``gap_steps`` and N.

    ``memory_steps``: the memory window (``Trajectory.memory_steps``; None: exact).
    """
    traj = Trajectory.start(problem, population.replicas, memory_steps, population.sum_dtype)
    factors = PathFactors(traj, problem.dataset.teacher, population.threaded)
    n = problem.steps
    for k in range(n + 1):
        step(k, factors, population, traj, traj, gap_steps)
        if k < n:
            advance_weights(k, traj, problem, population.threaded)
        if progress is not None:
            progress(k + 1, n + 1)
    traj.symmetrize()
    return traj
