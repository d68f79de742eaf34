"""The classical outer fixed-point loop (THEORY.md section 2).

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
from .march import factor_row
from .population import Population
from .weights import Trajectory, advance_weights


@dataclass
class IterationReport:
    converged: bool = False
    iterations: int = 0
    # RMS change of the kernels in units of its value at the noise floor (1 = pure noise).
    residual: list[float] = field(default_factory=list)
    # ||new - old|| / ||new|| of the concatenated kernels, per iteration.
    relative_change: list[float] = field(default_factory=list)


def weights_from_kernels(problem: Problem, traj: Trajectory) -> None:
    """Recompute A, m, R, C on the whole window from the kernels stored in ``traj``."""
    fresh = Trajectory.start(problem)
    traj.A[:], traj.m[:], traj.R[:], traj.C[:] = fresh.A, fresh.m, fresh.R, fresh.C
    for k in range(problem.steps):
        advance_weights(k, traj, problem)


def iterate(
    problem: Problem,
    make_population: Callable[[int], Population],
    damping: float,
    tolerance: float,
    max_iterations: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Trajectory, IterationReport]:
    """Fixed-point loop; ``make_population(i)`` gives the population of iteration i."""
    traj = Trajectory.start(problem)  # kernels start at zero: free dynamics
    report = IterationReport()
    n = problem.steps
    for iteration in range(max_iterations):
        weights_from_kernels(problem, traj)
        L = np.zeros_like(traj.C)
        population = make_population(iteration)
        new = Trajectory.start(problem)
        gamma_se = np.zeros_like(traj.Gamma_C)
        response_se = np.zeros_like(traj.K)
        for k in range(n + 1):
            traj.min_relative_pivot = min(traj.min_relative_pivot, factor_row(k, traj.C, L))
            population.draw(k)
            row = population.step(k, L[k, : k + 1], traj.R[k, :k], traj.m[k])
            new.set_kernel_row(k, row.gamma, row.response, row.mu_hat)
            gamma_se[k, : k + 1] = row.gamma_stderr
            response_se[k, : k + 1] = row.response_stderr
            traj.train_loss[k], traj.train_error[k] = row.train_loss, row.train_error
        residual, relative = _change(traj, new, gamma_se, response_se, damping)
        report.residual.append(residual)
        report.relative_change.append(relative)
        report.iterations = iteration + 1
        for name in ("Gamma_C", "K", "mu_hat"):
            old_value, new_value = getattr(traj, name), getattr(new, name)
            setattr(traj, name, damping * old_value + (1.0 - damping) * new_value)
        if progress is not None:
            progress(iteration + 1, max_iterations)
        if residual < tolerance:
            report.converged = True
            break
    weights_from_kernels(problem, traj)
    return traj, report


def _change(old: Trajectory, new: Trajectory, gamma_se: np.ndarray, response_se: np.ndarray,
            damping: float) -> tuple[float, float]:
    """(RMS z-score of new - old, divided by its noise floor; relative norm of the change).

    At the fixed point the new estimate carries noise of variance se^2 and the damped
    kernels an AR(1) average of past noise, variance se^2 (1 - d) / (1 + d): the change has
    variance 2 se^2 / (1 + d). The residual is 1 when the change is pure noise and larger
    when the kernels are still moving.
    """
    z_squares, count = 0.0, 0
    scale = 1.0 + np.abs(new.Gamma_C).max() + np.abs(new.K).max()
    for difference, error in ((new.Gamma_C - old.Gamma_C, gamma_se), (new.K - old.K, response_se)):
        lower = np.tril(np.ones_like(difference, dtype=bool))
        noisy = lower & (error > 0)
        # Entries without sampling noise (e.g. GD diagonal of K for square loss) must stop moving.
        if np.any(np.abs(difference[lower & (error == 0)]) > 1e-12 * scale):
            return np.inf, np.inf
        z_squares += float(np.sum((difference[noisy] / error[noisy]) ** 2))
        count += int(noisy.sum())
    noise_floor = 2.0 / (1.0 + damping)
    residual = float(np.sqrt(z_squares / max(count, 1) / noise_floor))
    new_all = np.concatenate([new.Gamma_C.ravel(), new.K.ravel(), new.mu_hat])
    old_all = np.concatenate([old.Gamma_C.ravel(), old.K.ravel(), old.mu_hat])
    relative = float(np.linalg.norm(new_all - old_all) / max(np.linalg.norm(new_all), 1e-300))
    return residual, relative
