"""Two-replica DMFT (docs/theory.md §7): exact zero for GD, exact Langevin distance, methods agree."""

import numpy as np
import pytest

import dmft
from dmft.solvers.population import THREADED_RUN_WORK
from exact_square_gd import exact_square_gd
from stats import max_z, z_threshold

pytestmark = pytest.mark.physics

SUBPOPULATIONS = 8


def over_parametrized(algorithm, **changes):
    # Random labels at alpha = 0.5 with the square hinge: the training error reaches zero.
    base = dict(dataset="random-labels", alpha=0.5, loss="square-hinge", margin=1.0, ridge=0.0,
                algorithm=algorithm, batch_fraction=0.3, persistence_time=1.0, dt=0.1, steps=60)
    return dmft.Problem.from_flat(**{**base, **changes})


# 2000 samples run the serial kernel; 20000 (two populations of 10^4 over 41 steps:
# THREADED_RUN_WORK) reach the threaded one from step 19 on, whose fast-math code once made
# the replicas differ in the last bit. Double precision, because float32 paths hide such differences for many steps.
@pytest.mark.parametrize("method, samples, steps, precision", [
    ("march", 2000, 60, "single"), ("iterate", 2000, 60, "single"), ("march", 20_000, 40, "double"),
    ("march", 2000, 60, "compact")])
def test_gd_at_zero_temperature_has_exactly_zero_distance(method, samples, steps, precision):
    reaches_threads = samples // 2 * (steps + 1) >= THREADED_RUN_WORK
    assert reaches_threads == (samples == 20_000)  # the cases still cover both kernels
    result = dmft.solve(over_parametrized("gd", steps=steps),
                        dmft.SolverOptions(samples=samples, subpopulations=2, replicas=2, method=method,
                                           precision=precision))
    assert np.all(result.distance == 0.0)
    np.testing.assert_array_equal(result.C_ab, result.C)


def test_langevin_distance_of_square_loss_gd_is_exact():
    alpha, delta, ridge, dt, steps, temperature = 2.0, 0.5, 0.1, 0.1, 30, 0.2
    C, _, _, distance = exact_square_gd(alpha, delta, ridge, dt, steps, 1.0, temperature)
    problem = dmft.Problem.from_flat(dataset="random-labels", loss="square", algorithm="gd", alpha=alpha,
                                     delta=delta, ridge=ridge, dt=dt, steps=steps, temperature=temperature)
    result = dmft.solve(problem, dmft.SolverOptions(samples=8000, subpopulations=SUBPOPULATIONS, replicas=2,
                                                    seed=2))
    threshold = z_threshold(SUBPOPULATIONS, comparisons=steps + 1)
    assert max_z(result.distance - distance, result.stderr["distance"]) < threshold
    assert max_z(result.C - C, result.stderr["C"]) < threshold
    assert distance[-1] > 0.1  # the check is not vacuous


@pytest.mark.parametrize("algorithm", ["sgd", "persistent-sgd"])
def test_march_and_iterate_agree_on_the_distance(algorithm):
    problem = over_parametrized(algorithm)
    options = dict(samples=4000, subpopulations=SUBPOPULATIONS, replicas=2)
    march = dmft.solve(problem, dmft.SolverOptions(**options, seed=1))
    iterate = dmft.solve(problem, dmft.SolverOptions(**options, seed=2, method="iterate"))
    assert iterate.diagnostics["converged"]
    threshold = z_threshold(SUBPOPULATIONS, comparisons=problem.steps + 1)
    for name in ("distance", "C", "train_loss"):
        z = max_z(getattr(march, name) - getattr(iterate, name), march.stderr[name], iterate.stderr[name])
        assert z < threshold, f"{name}: max z {z:.2f}"
    assert march.distance[-1] > 10 * march.stderr["distance"][-1]  # a real, resolved distance


def test_single_replica_observables_do_not_depend_on_the_second_replica():
    # The second replica adds C_ab and D; m, C, R stay the single-replica ones within MC error.
    problem = over_parametrized("sgd", steps=30)
    one = dmft.solve(problem, dmft.SolverOptions(samples=4000, subpopulations=SUBPOPULATIONS, seed=3))
    two = dmft.solve(problem, dmft.SolverOptions(samples=4000, subpopulations=SUBPOPULATIONS, seed=4, replicas=2))
    threshold = z_threshold(SUBPOPULATIONS, comparisons=problem.steps + 1)
    for name in ("C", "R", "train_loss"):
        assert max_z(one.__getattribute__(name) - two.__getattribute__(name), one.stderr[name],
                     two.stderr[name]) < threshold, name
