"""One step k of a pass over the grid, shared by the march and the fixed-point loop.

Row k of the sample paths needs C up to k, R row k and m_k (docs/theory.md §2,
"Causality"): factor C's row k, draw step k's innovations, advance the population and
estimate kernel row k.
"""

from __future__ import annotations

import numpy as np

from ..errors import DivergenceError
from .kernels.cholesky import cholesky_row, cholesky_row_serial, diagonal_blocks
from .kernels.triangles import R_BLOCK, packed_row, packed_size
from .population import KernelRow, Population
from .weights import Trajectory

# A squared pivot d (relative to C[k,k]) is known only to ~eps/d, and an accepted small
# pivot divides the rest of its column by sqrt(d): round-off grows through every such
# column, and GD's C (numerical rank ~5) has dozens of pivots at round-off. 1e-7 keeps
# square-loss GD positive semi-definite where 1e-8 did not; dropping a direction of
# relative variance below 1e-7 is far below the Monte Carlo error.
PIVOT_THRESHOLD = 1e-7
PSD_TOLERANCE = 1e-6  # a squared pivot below -PSD_TOLERANCE * C[k,k] is not round-off


def factor_row(k: int, C: np.ndarray, L: np.ndarray, blocks: np.ndarray, threaded: bool = True) -> float:
    """Cholesky row k, refusing a covariance that lost positive semi-definiteness.

    ``L``: the factor's lower triangle stored by rows (``kernels.triangles``); ``blocks``:
    its diagonal blocks (``kernels.cholesky.diagonal_blocks``). Returns the squared pivot
    relative to C[k,k] (a diagnostic of round-off). ``threaded``: whether the run uses the
    threaded kernels (``population.uses_threads``).
    """
    # The same bits either way: rows up to R_BLOCK use no threads.
    kernel = cholesky_row if threaded and k > R_BLOCK else cholesky_row_serial
    pivot = kernel(C, L, blocks, k, PIVOT_THRESHOLD)
    relative = pivot / C[k, k] if C[k, k] > 0 else 0.0
    if relative < -PSD_TOLERANCE:
        raise DivergenceError(k, f"C lost positive semi-definiteness (pivot {pivot:.3g}, C[k,k] = {C[k, k]:.3g}); "
                                 "Monte Carlo noise in the kernels is too large: use more samples")
    return relative


class PathFactors:
    """Incremental Cholesky factors of the covariances the Gaussian paths are drawn from.

    One replica: C. Two replicas: C + C_ab and C - C_ab, whose paths g+ and g- are
    independent (g^a, g^b = (g+ +- g-)/sqrt(2); docs/theory.md §7). For the teacher-student
    perceptron (``teacher``) the paths are orthogonal to the teacher: C - m m^T takes the
    place of C (docs/theory.md §2.7). ``threaded``: as ``factor_row``'s.
    """

    def __init__(self, traj: Trajectory, teacher: bool = False, threaded: bool = True):
        self.traj = traj
        self.teacher = teacher
        self.threaded = threaded
        n = traj.C.shape[0]
        if traj.replicas == 1:
            self.covariances = (np.zeros((n, n)) if teacher else traj.C,)
        else:
            self.covariances = (np.zeros((n, n)), traj.C_minus)
        # Lower triangles stored by rows (kernels.triangles): the factor is only ever read by rows.
        self.factors = tuple(np.zeros(packed_size(n)) for _ in self.covariances)
        self.blocks = tuple(diagonal_blocks(n) for _ in self.covariances)

    def rows(self, k: int) -> tuple[np.ndarray, ...]:
        """Factor row k of every covariance (C row k must be known) and return them."""
        traj = self.traj
        row = traj.C[k, : k + 1]
        if self.teacher:
            row = row - traj.m[k] * traj.m[: k + 1]
        if traj.replicas == 2:
            self.covariances[0][k, : k + 1] = 2.0 * row - traj.C_minus[k, : k + 1]
        elif self.teacher:
            self.covariances[0][k, : k + 1] = row
        for covariance, factor, blocks in zip(self.covariances, self.factors, self.blocks):
            pivot = factor_row(k, covariance, factor, blocks, self.threaded)
            traj.min_relative_pivot = min(traj.min_relative_pivot, pivot)
        return tuple(packed_row(factor, k) for factor in self.factors)


def step(k: int, factors: PathFactors, population: Population, traj: Trajectory, into: Trajectory,
         gap_steps: tuple[int, ...] = (), with_errors: bool = False) -> KernelRow:
    """Advance ``population`` to step k on ``traj``'s weight side (C, R, m up to k) and
    write kernel row k into ``into`` (``traj`` itself in the march, the next iterate in
    the fixed-point loop).

    ``traj`` also gets the training loss and error at k, and the population's gaps when k
    is in ``gap_steps`` or the last step. ``with_errors``: the row's standard errors too.
    """
    L_rows = factors.rows(k)
    population.draw(k)
    row = population.step(k, L_rows, traj.R[k, :k], traj.m[k], with_errors=with_errors, first=traj.memory_start(k))
    into.set_kernel_row(k, row.gamma, row.response, row.mu_hat, row.gamma_minus)
    traj.train_loss[k], traj.train_error[k] = row.train_loss, row.train_error
    if k in gap_steps or k == traj.C.shape[0] - 1:
        traj.gaps[k] = population.gaps()
    return row
