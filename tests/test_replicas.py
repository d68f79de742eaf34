"""Two-replica DMFT (docs/theory.md §7): exact zero for GD, exact Langevin distance, methods agree."""

import contextlib

import numpy as np
import pytest

import dmft
from compiled_kernels import threaded_runs
from exact_square_gd import exact_square_gd
from stats import POWER, POWER_RESPONSE, assert_agrees, z_threshold

pytestmark = pytest.mark.physics

SUBPOPULATIONS = 32
# The exact Langevin distance must resolve 1% of D, finer than POWER_RESPONSE: a 5% error in
# Gamma_C - Gamma_ab moves it by about that much.
DISTANCE_POWER = 0.01


def over_parametrized(algorithm, **changes):
    # Random labels at alpha = 0.5 with the square hinge: the training error reaches zero.
    base = dict(dataset="random-labels", alpha=0.5, loss="square-hinge", margin=1.0, ridge=0.0,
                algorithm=algorithm, batch_fraction=0.3, persistence_time=1.0, dt=0.1, steps=60)
    return dmft.Problem.from_flat(**{**base, **changes})


# The small runs use the serial kernels; a threaded run of 20000 (two populations of 10^4
# over 41 steps) reaches the threaded one from step 19 on, whose fast-math code once made
# the replicas differ in the last bit. Double precision, because float32 paths hide such differences for many steps.
@pytest.mark.parametrize("method, samples, steps, precision", [
    ("march", 2000, 60, "single"), ("iterate", 2000, 60, "single"), ("march", 20_000, 40, "double"),
    ("march", 2000, 60, "compact")])
def test_gd_at_zero_temperature_has_exactly_zero_distance(method, samples, steps, precision):
    # An identity: it detects any nonzero distance, at every step.
    threads = threaded_runs() if samples == 20_000 else contextlib.nullcontext()
    with threads:
        result = dmft.solve(over_parametrized("gd", steps=steps),
                            dmft.SolverOptions(samples=samples, subpopulations=2, replicas=2, method=method,
                                               precision=precision))
    assert np.all(result.distance == 0.0)
    np.testing.assert_array_equal(result.C_ab, result.C)


def test_langevin_distance_of_square_loss_gd_is_exact():
    # The replicas differ only by their Langevin noise, so D and C are exact (tests/exact_square_gd.py).
    # Two times of D and two entries of C; 32 subpopulations of 4000 samples: the threshold is
    # 4.1 standard errors and the resolution 0.3% of D and 1.1% of C. A 5% error in
    # Gamma_C - Gamma_ab (how the population estimates it) moves D[30] by 0.8-1.1%, 8-11 sigma.
    alpha, delta, ridge, dt, steps, temperature = 2.0, 0.5, 0.1, 0.1, 30, 0.2
    C, _, _, distance = exact_square_gd(alpha, delta, ridge, dt, steps, 1.0, temperature)
    problem = dmft.Problem.from_flat(dataset="random-labels", loss="square", algorithm="gd", alpha=alpha,
                                     delta=delta, ridge=ridge, dt=dt, steps=steps, temperature=temperature)
    result = dmft.solve(problem, dmft.SolverOptions(samples=128_000, subpopulations=SUBPOPULATIONS, replicas=2,
                                                    seed=2))
    half = steps // 2
    limit = z_threshold(SUBPOPULATIONS, comparisons=4)
    for k in (half, steps):
        assert_agrees(f"D[{k}]", result.distance[k], distance[k], (result.stderr["distance"][k],), limit,
                      DISTANCE_POWER)
    for k, j in ((steps, steps), (steps, half)):
        assert_agrees(f"C[{k},{j}]", result.C[k, j], C[k, j], (result.stderr["C"][k, j],), limit, POWER)
    assert distance[-1] > 0.1  # the check is not vacuous


@pytest.mark.parametrize("algorithm", ["sgd", "persistent-sgd"])
def test_march_and_iterate_agree_on_the_distance(algorithm):
    # D on its way up and near its peak (t = 1.5, 3) and C at the final time. The fixed-point
    # loop is the costly side (a Python loop per step, iteration and subpopulation): 16
    # subpopulations of 1000 samples there, 32 of 2000 for the march. Threshold 4.6 (15
    # degrees of freedom, 3 comparisons); resolution 6-7% of D and 1% of C.
    problem = over_parametrized(algorithm, steps=30)
    march = dmft.solve(problem, dmft.SolverOptions(samples=64_000, subpopulations=32, replicas=2, seed=1))
    iterate = dmft.solve(problem, dmft.SolverOptions(samples=16_000, subpopulations=16, replicas=2, seed=2,
                                                     method="iterate"))
    assert iterate.diagnostics["converged"]
    limit = z_threshold(16, comparisons=3)
    for k in (15, 30):
        assert_agrees(f"D[{k}]", march.distance[k], iterate.distance[k],
                      (march.stderr["distance"][k], iterate.stderr["distance"][k]), limit, POWER_RESPONSE)
    assert_agrees("C[30,30]", march.C[30, 30], iterate.C[30, 30], (march.stderr["C"][30, 30],
                                                                   iterate.stderr["C"][30, 30]), limit, POWER)
    assert march.distance[-1] > 10 * march.stderr["distance"][-1]  # a real, resolved distance


def test_single_replica_observables_do_not_depend_on_the_second_replica():
    # The second replica adds C_ab and D; m, C, R stay the single-replica ones within MC error.
    # Two times of C, one lag of R, the loss early and late; 32 subpopulations of 2000 samples:
    # threshold 4.3, resolution 0.7-1.1% of C, 0.2% of R, 2.4-2.8% of the loss.
    problem = over_parametrized("sgd", steps=30)
    one = dmft.solve(problem, dmft.SolverOptions(samples=64_000, subpopulations=SUBPOPULATIONS, seed=3))
    two = dmft.solve(problem, dmft.SolverOptions(samples=64_000, subpopulations=SUBPOPULATIONS, seed=4, replicas=2))
    points = {"C": [((15, 15), POWER), ((30, 30), POWER), ((30, 15), POWER)], "R": [((30, 15), POWER_RESPONSE)],
              "train_loss": [((10,), POWER), ((30,), POWER)]}
    limit = z_threshold(SUBPOPULATIONS, comparisons=sum(map(len, points.values())))
    for name, checks in points.items():
        for index, power in checks:
            assert_agrees(f"{name}{list(index)}", getattr(one, name)[index], getattr(two, name)[index],
                          (one.stderr[name][index], two.stderr[name][index]), limit, power)
