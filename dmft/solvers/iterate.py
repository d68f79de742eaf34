"""The classical outer fixed-point loop (docs/theory.md §2).

Given kernels on the whole window: compute the weight side, sample fresh paths, estimate
new kernels, mix old and new with damping, repeat until the change is within Monte
Carlo noise. It must converge to the march's answer within Monte Carlo error; with
``resample=False`` (one fixed set of draws) its fixed point is the march's answer for
those draws, up to round-off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..problem import Problem
from .population import Population
from .step import PathFactors, step
from .weights import Trajectory, advance_weights, square_zeros


@dataclass
class IterationReport:
    converged: bool = False
    iterations: int = 0
    # RMS change of the kernels in units of its value at the noise floor (1 = pure noise).
    residual: list[float] = field(default_factory=list)
    # ||new - old|| / ||new|| of the concatenated kernels, per iteration.
    relative_change: list[float] = field(default_factory=list)


def weights_from_kernels(problem: Problem, traj: Trajectory, threaded: bool = True) -> None:
    """Recompute A, m, R, C on the whole window from the kernels stored in ``traj``
    (``threaded``: as ``advance_weights``'s)."""
    fresh = Trajectory.start(problem, traj.replicas, traj.memory_steps, traj.R_packed.dtype.type)
    traj.A[:], traj.m[:], traj.R[:], traj.C[:] = fresh.A, fresh.m, fresh.R, fresh.C
    traj.R_packed[:] = fresh.R_packed
    if traj.C_minus is not None:
        traj.C_minus[:] = 0.0
    traj.pack_kernels()  # the loop mixes Gamma_C in its square storage
    for k in range(problem.steps):
        advance_weights(k, traj, problem, threaded)
    traj.symmetrize()


def iterate(
    problem: Problem,
    make_population: Callable[[int], Population],
    damping: float,
    tolerance: float,
    max_iterations: int,
    progress: Callable[[int, int], None] | None = None,
    gap_steps: tuple[int, ...] = (),
    memory_steps: int | None = None,
) -> tuple[Trajectory, IterationReport]:
    """Fixed-point loop; ``make_population(i)`` gives the population of iteration i.

    ``memory_steps``: the memory window (``Trajectory.memory_steps``; None: exact).
    """
    first = make_population(0)
    replicas, R_rows_type, threaded = first.replicas, first.sum_dtype, first.threaded
    traj = Trajectory.start(problem, replicas, memory_steps, R_rows_type)  # kernels start at zero: free dynamics
    report = IterationReport()
    n = problem.steps
    for iteration in range(max_iterations):
        weights_from_kernels(problem, traj, threaded)
        factors = PathFactors(traj, problem.dataset.teacher, threaded)
        population = make_population(iteration)
        new = Trajectory.start(problem, replicas, memory_steps, R_rows_type)
        gamma_se, response_se = square_zeros(n + 1), square_zeros(n + 1)  # written a row per step, as traj's
        for k in range(n + 1):
            row = step(k, factors, population, traj, new, gap_steps, with_errors=True)
            gamma_se[k, : k + 1] = row.gamma_stderr
            response_se[k, : k + 1] = row.response_stderr
        new.symmetrize()
        residual, relative = _change(traj, new, gamma_se, response_se, damping)
        report.residual.append(residual)
        report.relative_change.append(relative)
        report.iterations = iteration + 1
        for name in traj.kernel_names:
            old_value, new_value = getattr(traj, name), getattr(new, name)
            setattr(traj, name, damping * old_value + (1.0 - damping) * new_value)
        if progress is not None:
            progress(iteration + 1, max_iterations)
        # Two iterations in a row at the noise floor: one can dip below it by chance.
        if len(report.residual) >= 2 and max(report.residual[-2:]) < tolerance:
            report.converged = True
            break
    weights_from_kernels(problem, traj, threaded)
    return traj, report


def _change(old: Trajectory, new: Trajectory, gamma_se: np.ndarray, response_se: np.ndarray,
            damping: float) -> tuple[float, float]:
    """(residual, relative norm of the change of the kernels).

    At the fixed point the new estimate carries noise of variance se^2 and the damped
    kernels an AR(1) average of past noise, variance se^2 (1 - d) / (1 + d): the change has
    variance 2 se^2 / (1 + d). Each statistic below is an RMS z-score divided by that
    floor, 1 for pure noise. The residual is the largest of: all lower-triangular entries,
    the diagonal of Gamma_C, the diagonal of K. The diagonals matter: a drift still moving
    the late rows is coherent along them but drowned among the noisy off-diagonal entries.
    """
    noise_floor = 2.0 / (1.0 + damping)
    scale = 1.0 + np.abs(new.Gamma_C).max() + np.abs(new.K).max()
    lower = np.tril(np.ones_like(new.K, dtype=bool))
    diagonal = np.eye(new.K.shape[0], dtype=bool)
    statistics = []
    pooled = []
    for difference, error in ((new.Gamma_C - old.Gamma_C, gamma_se), (new.K - old.K, response_se)):
        # Entries without sampling noise (e.g. the K diagonal of square-loss GD) must stop moving.
        if np.any(np.abs(difference[lower & (error == 0)]) > 1e-12 * scale):
            return np.inf, np.inf
        z = np.zeros_like(difference)
        noisy = error > 0
        z[noisy] = difference[noisy] / error[noisy]
        pooled.append(z[lower & noisy])
        statistics.append(np.sqrt(np.mean(z[diagonal & noisy] ** 2) / noise_floor) if np.any(diagonal & noisy) else 0.0)
    all_entries = np.concatenate(pooled)
    statistics.append(np.sqrt(np.mean(all_entries**2) / noise_floor) if all_entries.size else 0.0)
    new_all = np.concatenate([new.Gamma_C.ravel(), new.K.ravel(), new.mu_hat])
    old_all = np.concatenate([old.Gamma_C.ravel(), old.K.ravel(), old.mu_hat])
    relative = float(np.linalg.norm(new_all - old_all) / max(np.linalg.norm(new_all), 1e-300))
    return float(max(statistics)), relative
