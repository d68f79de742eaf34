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

# A squared pivot d (relative to C[k,k]) is known only to ~eps/d: accepting pivots near
# 1e-10 let round-off of 1e-6 into later rows (seen for GD). Below 1e-8 a pivot is zero.
PIVOT_THRESHOLD = 1e-8
PSD_TOLERANCE = 1e-6  # a squared pivot below -PSD_TOLERANCE * C[k,k] is not round-off

Progress = Callable[[int, int], None]


def factor_row(k: int, C: np.ndarray, L: np.ndarray) -> float:
    """Cholesky row k, refusing a covariance that lost positive semi-definiteness.

    Returns the squared pivot relative to C[k,k] (a diagnostic of round-off).
    """
    pivot = cholesky_row(C, L, k, PIVOT_THRESHOLD)
    relative = pivot / C[k, k] if C[k, k] > 0 else 0.0
    if relative < -PSD_TOLERANCE:
        raise DivergenceError(k, f"C lost positive semi-definiteness (pivot {pivot:.3g}, C[k,k] = {C[k, k]:.3g}); "
                                 "Monte Carlo noise in the kernels is too large: use more samples")
    return relative


def march(problem: Problem, population: Population, progress: Progress | None = None) -> Trajectory:
    """Solve the DMFT in one causal pass over k = 0..N."""
    traj = Trajectory.start(problem)
    L = np.zeros_like(traj.C)
    n = problem.steps
    for k in range(n + 1):
        traj.min_relative_pivot = min(traj.min_relative_pivot, factor_row(k, traj.C, L))
        population.draw(k)
        row = population.step(k, L[k, : k + 1], traj.R[k, :k], traj.m[k])
        traj.set_kernel_row(k, row.gamma, row.response, row.mu_hat)
        traj.train_loss[k], traj.train_error[k] = row.train_loss, row.train_error
        if k < n:
            advance_weights(k, traj, problem)
        if progress is not None:
            progress(k + 1, n + 1)
    return traj
