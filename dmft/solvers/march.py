"""The causal march: one forward pass in k solves the DMFT for a given set of draws.

Row k of the sample paths needs C up to k, R row k and m_k; C row k+1 needs the
kernels up to k only (THEORY.md section 2, "Causality").
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import DivergenceError
from ..problem import Problem
from .kernels import cholesky_row, diagonal_blocks, packed_row, packed_size
from .population import Population
from .weights import Trajectory, advance_weights

# A squared pivot d (relative to C[k,k]) is known only to ~eps/d, and an accepted small
# pivot divides the rest of its column by sqrt(d): round-off grows through every such
# column. GD's C has numerical rank ~5, so dozens of its pivots sit at round-off. With
# 1e-8, pivots of 1-4e-8 were accepted, and square-loss GD (ridge 0, 400 steps) lost
# positive semi-definiteness in 6 of 30 seeds (squared pivots down to -2e-6 of C[k,k],
# growing smoothly with k while C itself kept eigenvalues >= -2e-16 of its largest);
# with 1e-7, none of 36 (1000 steps too), the smallest pivot +5e-10. Dropping a direction
# of relative variance below 1e-7 is far below the Monte Carlo error.
PIVOT_THRESHOLD = 1e-7
PSD_TOLERANCE = 1e-6  # a squared pivot below -PSD_TOLERANCE * C[k,k] is not round-off

Progress = Callable[[int, int], None]


def factor_row(k: int, C: np.ndarray, L: np.ndarray, blocks: np.ndarray) -> float:
    """Cholesky row k, refusing a covariance that lost positive semi-definiteness.

    ``L``: the factor's lower triangle stored by rows (``kernels.packed_row``); ``blocks``:
    its diagonal blocks (``kernels.diagonal_blocks``). Returns the squared pivot relative
    to C[k,k] (a diagnostic of round-off).
    """
    pivot = cholesky_row(C, L, blocks, k, PIVOT_THRESHOLD)
    relative = pivot / C[k, k] if C[k, k] > 0 else 0.0
    if relative < -PSD_TOLERANCE:
        raise DivergenceError(k, f"C lost positive semi-definiteness (pivot {pivot:.3g}, C[k,k] = {C[k, k]:.3g}); "
                                 "Monte Carlo noise in the kernels is too large: use more samples")
    return relative


class PathFactors:
    """Incremental Cholesky factors of the covariances the Gaussian paths are drawn from.

    One replica: C. Two replicas: C + C_ab and C - C_ab, whose paths g+ and g- are
    independent (g^a, g^b = (g+ +- g-)/sqrt(2)).
    """

    def __init__(self, traj: Trajectory):
        self.traj = traj
        n = traj.C.shape[0]
        if traj.replicas == 1:
            self.covariances = (traj.C,)
        else:
            self.covariances = (np.zeros((n, n)), traj.C_minus)
        # Lower triangles stored by rows (kernels.packed_row): the factor is only ever read by rows.
        self.factors = tuple(np.zeros(packed_size(n)) for _ in self.covariances)
        self.blocks = tuple(diagonal_blocks(n) for _ in self.covariances)

    def rows(self, k: int) -> tuple[np.ndarray, ...]:
        """Factor row k of every covariance (C row k must be known) and return them."""
        traj = self.traj
        if traj.replicas == 2:
            self.covariances[0][k, : k + 1] = 2.0 * traj.C[k, : k + 1] - traj.C_minus[k, : k + 1]
        for covariance, factor, blocks in zip(self.covariances, self.factors, self.blocks):
            traj.min_relative_pivot = min(traj.min_relative_pivot, factor_row(k, covariance, factor, blocks))
        return tuple(packed_row(factor, k) for factor in self.factors)


def march(problem: Problem, population: Population, progress: Progress | None = None,
          gap_steps: tuple[int, ...] = (), memory_steps: int | None = None) -> Trajectory:
    """Solve the DMFT in one causal pass over k = 0..N; keep the gaps at ``gap_steps`` and N.

    ``memory_steps``: the memory window (``Trajectory.memory_steps``; None: exact).
    """
    traj = Trajectory.start(problem, population.replicas, memory_steps, population.sum_dtype)
    factors = PathFactors(traj)
    n = problem.steps
    for k in range(n + 1):
        L_rows = factors.rows(k)
        population.draw(k)
        row = population.step(k, L_rows, traj.R[k, :k], traj.m[k], first=traj.memory_start(k))
        traj.set_kernel_row(k, row.gamma, row.response, row.mu_hat, row.gamma_minus)
        traj.train_loss[k], traj.train_error[k] = row.train_loss, row.train_error
        if k in gap_steps or k == n:
            traj.gaps[k] = population.gaps()
        if k < n:
            advance_weights(k, traj, problem)
        if progress is not None:
            progress(k + 1, n + 1)
    traj.symmetrize()
    return traj
