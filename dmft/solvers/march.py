"""The causal march: one forward pass in k solves the DMFT for a given set of draws.

Row k of the sample paths needs C up to k, R row k and m_k; C row k+1 needs the
kernels up to k only (THEORY.md section 2, "Causality").
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import DivergenceError
from ..problem import Problem
from .kernels import cholesky_row
from .population import Population
from .weights import Trajectory, advance_weights

PIVOT_THRESHOLD = 1e-10  # relative; below it a Cholesky pivot is numerically zero
PSD_TOLERANCE = 1e-6  # a squared pivot below -PSD_TOLERANCE * C[k,k] is not round-off

Progress = Callable[[int, int], None]


def factor_row(k: int, C: np.ndarray, L: np.ndarray) -> None:
    """Cholesky row k, refusing a covariance that lost positive semi-definiteness."""
    pivot = cholesky_row(C, L, k, PIVOT_THRESHOLD)
    if pivot < -PSD_TOLERANCE * max(C[k, k], 1e-300):
        raise DivergenceError(k, f"C lost positive semi-definiteness (pivot {pivot:.3g}, C[k,k] = {C[k, k]:.3g}); "
                                 "Monte Carlo noise in the kernels is too large: use more samples")


def march(problem: Problem, population: Population, progress: Progress | None = None) -> Trajectory:
    """Solve the DMFT in one causal pass over k = 0..N."""
    traj = Trajectory.start(problem)
    L = np.zeros_like(traj.C)
    n = problem.steps
    for k in range(n + 1):
        factor_row(k, traj.C, L)
        population.draw(k)
        row = population.step(k, L[k, : k + 1], traj.R[k, :k], traj.m[k])
        traj.set_kernel_row(k, row.gamma, row.response, row.mu_hat)
        traj.train_loss[k], traj.train_error[k] = row.train_loss, row.train_error
        if k < n:
            advance_weights(k, traj, problem)
        if progress is not None:
            progress(k + 1, n + 1)
    return traj
