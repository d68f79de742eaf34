"""Langevin dynamics with a convex loss and ridge relaxes to equilibrium at temperature T."""

import numpy as np
import pytest

import dmft
from stats import z_threshold

pytestmark = pytest.mark.physics

T, SUBPOPULATIONS = 0.5, 8


def solve_langevin(dt, horizon=20.0):
    problem = dmft.Problem.from_flat(dataset="gmm2", alpha=2, delta=0.5, ridge=0.5, loss="logistic",
                                     algorithm="gd", temperature=T, dt=dt, steps=int(round(horizon / dt)))
    return dmft.solve(problem, dmft.SolverOptions(samples=8000, subpopulations=SUBPOPULATIONS, seed=11))


def fdt_temperature(result, lag_window=(0.5, 5.0)):
    """Inverse slope of chi[k, k-s] against C[k,k] - C[k,k-s] at the final time (fit through 0)."""
    k, dt = result.problem.steps, result.problem.dt
    lags = np.arange(1, k + 1)
    chi = dt * np.cumsum(result.R[k, ::-1][1:])  # chi[k, k-s] = dt sum_{i=k-s}^{k-1} R[k, i]
    delta_C = result.C[k, k] - result.C[k, k - lags]
    window = (lags * dt >= lag_window[0]) & (lags * dt <= lag_window[1])
    return np.sum(delta_C[window] ** 2) / np.sum(chi[window] * delta_C[window])


@pytest.fixture(scope="module")
def runs():
    return {dt: solve_langevin(dt) for dt in (0.1, 0.05)}


def test_langevin_is_stationary_at_long_times(runs):
    result = runs[0.05]
    k, earlier = result.problem.steps, result.problem.steps - 100  # 5 time units apart
    difference = result.C[k, k] - result.C[earlier, earlier]
    error = np.hypot(result.stderr["C"][k, k], result.stderr["C"][earlier, earlier])
    assert abs(difference) < z_threshold(SUBPOPULATIONS) * error
    # Time-translation invariance of the two-time function over the same window.
    lag = 40
    shifted = result.C[k, k - lag] - result.C[earlier, earlier - lag]
    assert abs(shifted) < z_threshold(SUBPOPULATIONS) * np.hypot(result.stderr["C"][k, k - lag],
                                                                  result.stderr["C"][earlier, earlier - lag])


def test_fdt_slope_is_one_over_T_up_to_order_dt(runs):
    t_coarse, t_fine = fdt_temperature(runs[0.1]), fdt_temperature(runs[0.05])
    # docs/theory.md §6: 2% at dt = 0.05 with ridge 0.5; the error is O(dt): halving dt halves it.
    assert abs(t_fine / T - 1) < 0.03
    assert abs(t_fine - T) < abs(t_coarse - T)
    # Richardson extrapolation removes the O(dt) term: what remains is O(dt^2) and Monte Carlo.
    assert abs(2 * t_fine - t_coarse - T) / T < 0.01
