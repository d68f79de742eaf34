"""The memory window (SolverOptions.memory_window): R and K cut beyond a time lag.

The error it introduces is measured against the exact solution of square-loss GD with a
ridge (whose responses decay), and against the full equations for the same draws.
"""

import numpy as np
import pytest

import dmft
from exact_square_gd import exact_square_gd
from stats import POWER_RESPONSE, assert_agrees, z_threshold

ALPHA, DELTA, RIDGE, DT, STEPS = 2.0, 0.5, 1.0, 0.1, 80
SUBPOPULATIONS, PROBE_SUBPOPULATIONS = 8, 32
LAG = np.subtract.outer(np.arange(STEPS + 1), np.arange(STEPS + 1))


@pytest.fixture(scope="module")
def exact():
    return exact_square_gd(ALPHA, DELTA, RIDGE, DT, STEPS, 1.0)


def square_gd(response, memory_window):
    # Probes: 32 subpopulations of 1000 samples, for the comparison of R with its power.
    problem = dmft.Problem.from_flat(dataset="random-labels", loss="square", algorithm="gd", alpha=ALPHA,
                                     delta=DELTA, ridge=RIDGE, dt=DT, steps=STEPS, init_variance=1.0)
    samples, subpopulations = (8000, SUBPOPULATIONS) if response == "exact" else (32_000, PROBE_SUBPOPULATIONS)
    return dmft.solve(problem, dmft.SolverOptions(samples=samples, subpopulations=subpopulations, response=response,
                                                  seed=3, memory_window=memory_window))


@pytest.mark.parametrize("response", ["exact", "probe"])
@pytest.mark.parametrize("window", [1.0, 2.0])
@pytest.mark.physics
def test_the_error_of_the_window_is_of_the_order_of_the_memory_it_drops(exact, response, window):
    C, R, _, _ = exact
    steps = int(round(window / DT))
    inside, outside = (LAG > 0) & (LAG <= steps), LAG > steps
    edge = np.abs(R[LAG == steps]).max()
    # What the window drops: the integral of |R| over the lags beyond it.
    tail = max(DT * np.abs(R[k, : k - steps]).sum() for k in range(steps + 1, STEPS + 1))
    result = square_gd(response, window)
    # The diagnostics: R at the edge, and the tail extrapolated from inside the window.
    assert result.diagnostics["memory_edge"] == pytest.approx(edge, rel=1e-9 if response == "exact" else 0.1)
    assert result.diagnostics["memory_tail"] == pytest.approx(tail, rel=0.2)
    assert np.all(result.R[outside] == 0.0)
    # Inside the window R only involves K inside it: with exact responses (no noise for
    # square-loss GD) it is the exact R; with probes, within Monte Carlo error.
    if response == "exact":
        np.testing.assert_allclose(result.R[inside], R[inside], rtol=0, atol=1e-12)
    else:  # at the window's edge and half-way: resolution 0.7-3% of R
        points = ((STEPS, STEPS - steps), (STEPS, STEPS - 1 - steps // 2))
        limit = z_threshold(PROBE_SUBPOPULATIONS, comparisons=len(points))
        for k, j in points:
            assert_agrees(f"R[{k},{j}]", result.R[k, j], R[k, j], (result.stderr["R"][k, j],), limit, POWER_RESPONSE)
    # C loses that memory: an error of the order of the tail (0.65-0.7 of it measured here).
    # Entry by entry it is at most the tail plus 4 standard errors, and somewhere it exceeds
    # 4 standard errors by a tenth of the tail (these windows are short enough for the
    # error to stand out of the Monte Carlo noise). This bounds the window's own error (the
    # tail is 45% and 10% of C[k,k] for these windows), not the solver's precision.
    error, monte_carlo = np.abs(result.C - C), 4 * result.stderr["C"]
    assert np.all(error <= tail + monte_carlo)
    assert (error - monte_carlo).max() > 0.1 * tail


def persistent_sgd(steps, ridge=0.5, persistence_time=2.0):
    return dmft.Problem.from_flat(dataset="gmm2", alpha=2, delta=0.5, ridge=ridge, loss="logistic",
                                  algorithm="persistent-sgd", batch_fraction=0.3, persistence_time=persistence_time,
                                  dt=0.1, steps=steps)


def test_a_window_longer_than_the_run_changes_nothing():
    problem = persistent_sgd(40)
    base = dict(samples=3000, subpopulations=2, seed=1)
    full = dmft.solve(problem, dmft.SolverOptions(**base))
    longer = dmft.solve(problem, dmft.SolverOptions(**base, memory_window=4.1))
    for name in ("m", "C", "R", "K", "Gamma_C", "train_loss"):
        np.testing.assert_array_equal(getattr(longer, name), getattr(full, name), err_msg=name)
    assert np.isnan(longer.diagnostics["memory_edge"]) and np.isnan(longer.diagnostics["memory_tail"])


@pytest.mark.physics
def test_persistent_sgd_converges_to_the_full_equations_as_the_window_grows():
    # Same draws with and without the window: the difference is the window's error alone.
    # It falls with the window, below the Monte Carlo error once the dropped tail is a few 1e-3.
    # Power: "within the Monte Carlo error" is within the largest standard error, 1.4% of the
    # final m and 2.5% of the final C[k,k].
    problem = persistent_sgd(200)
    base = dict(samples=4000, subpopulations=4, seed=2)
    full = dmft.solve(problem, dmft.SolverOptions(**base))
    errors, tails = [], []
    for window in (2.0, 4.0, 12.0):
        result = dmft.solve(problem, dmft.SolverOptions(**base, memory_window=window))
        errors.append(max(np.abs(result.m - full.m).max() / full.stderr["m"].max(),
                          np.abs(result.C - full.C).max() / full.stderr["C"].max()))
        tails.append(result.diagnostics["memory_tail"])
    assert tails[0] > tails[1] > tails[2] and tails[2] < 5e-3, tails
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[0] > 3  # a short window is visibly wrong...
    assert errors[2] < 1  # ...a long enough one is within the Monte Carlo error


@pytest.mark.parametrize("replicas", [1, 2])
@pytest.mark.physics
def test_iterate_without_resampling_is_the_windowed_march_exactly(replicas):
    # The fixed point of the loop on one set of draws is the march's answer, window included
    # (to 1e-9: any difference above that is caught).
    problem = persistent_sgd(25, ridge=0.1, persistence_time=1.0)
    base = dict(samples=2000, subpopulations=1, seed=5, memory_window=0.8, replicas=replicas)
    march = dmft.solve(problem, dmft.SolverOptions(**base))
    iterate = dmft.solve(problem, dmft.SolverOptions(**base, method="iterate", resample=False, damping=0.0,
                                                     tolerance=1e-9, max_iterations=problem.steps + 2))
    assert iterate.diagnostics["converged"]
    assert np.all(march.R[LAG[:26, :26] > 8] == 0.0) and np.all(march.K[LAG[:26, :26] > 8] == 0.0)
    names = ("m", "C", "R", "K", "Gamma_C", "train_loss") + (("distance",) if replicas == 2 else ())
    for name in names:
        np.testing.assert_allclose(getattr(iterate, name), getattr(march, name), rtol=0, atol=1e-9, err_msg=name)


@pytest.mark.physics
def test_gd_replicas_stay_equal_with_a_window():
    # An identity: any nonzero distance fails.
    problem = dmft.Problem.from_flat(dataset="random-labels", alpha=0.5, loss="square-hinge", margin=1.0, ridge=0.2,
                                     algorithm="gd", dt=0.1, steps=60)
    result = dmft.solve(problem, dmft.SolverOptions(samples=2000, subpopulations=2, replicas=2, memory_window=1.5))
    assert np.all(result.distance == 0.0)


def test_the_window_diagnostics_on_known_responses():
    from dmft.solvers import memory_cut

    steps, dt, decay_time = 400, 0.1, 3.0
    lag = np.subtract.outer(np.arange(steps + 1), np.arange(steps + 1)) * dt
    R = np.where(lag > 0, np.exp(-np.maximum(lag - dt, 0) / decay_time), 0.0)
    stderr = np.full_like(R, 1e-4)
    window = dmft.SolverOptions(memory_window=6.0)
    cut = memory_cut(R, stderr, window, dt)
    assert cut["memory_edge"] == pytest.approx(np.exp(-5.9 / decay_time), rel=1e-12)
    assert cut["memory_edge_stderr"] == pytest.approx(1e-4)
    # The tail extrapolated from T/2..T is the exact integral of the exponential beyond T
    # (up to the grid: a Riemann sum of step dt).
    exact_tail = dt * np.exp(-6.0 / decay_time) / (1 - np.exp(-dt / decay_time))
    assert cut["memory_tail"] == pytest.approx(exact_tail, rel=0.02)
    # Flat beyond T/2 (a noise floor): no decay to extrapolate.
    assert memory_cut(np.where(lag > 3.0, R[lag == 3.0].max(), R), stderr, window, dt)["memory_tail"] == np.inf
    # No window, no diagnostics.
    assert all(np.isnan(value) for value in memory_cut(R, stderr, dmft.SolverOptions(), dt).values())


@pytest.mark.physics
def test_the_summary_says_when_the_edge_is_lost_in_the_noise():
    # The summary's diagnostics (a contract on what it says, not a comparison with a reference).
    # R decays as exp(-0.5 t) here: at t - t' = 25 it is 1e-5, far below its Monte Carlo
    # error, and the extrapolated tail would only measure noise.
    result = dmft.solve(persistent_sgd(300), dmft.SolverOptions(samples=2000, subpopulations=4, seed=2,
                                                                memory_window=25.0))
    assert result.diagnostics["memory_edge"] < 5 * result.diagnostics["memory_edge_stderr"]
    assert "within Monte Carlo error: the window cuts no measurable memory" in result.summary()
    short = dmft.solve(persistent_sgd(100), dmft.SolverOptions(samples=2000, subpopulations=4, memory_window=2.0))
    assert "(large: widen the window)" in short.summary()


@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan"), True])
def test_a_bad_window_is_refused_by_name(bad):
    with pytest.raises(dmft.ParameterError, match="memory_window"):
        dmft.SolverOptions(memory_window=bad)
