"""DMFT against finite-d simulation with heavy-ball momentum and for the teacher-student perceptron.

Each test compares the DMFT (independent subpopulations) with simulations (independent
seeds) at a few chosen steps, with a Student-t threshold Bonferroni-corrected over those
comparisons only, and asserts its own power: the smallest difference it detects
(threshold x combined standard error) is at most 3% of m, C[k,k], the training loss and
the test error (docs/theory.md §2.7-2.8 for the equations tested).
"""

from __future__ import annotations

import numpy as np
import pytest

import dmft
from stats import POWER, assert_agrees, z_threshold

pytestmark = pytest.mark.physics

# 6000 samples per subpopulation: the serial kernels. d = 1500 with 32 seeds costs half of d = 3000
# with 16 for the same statistical error; the O(1/d) difference stays far below it (z < 1.6).
SUBPOPULATIONS, SEEDS, DIMENSION = 32, 32, 1500
OBSERVABLES = ("m", "self_overlap", "train_loss", "test_error")


def solve_and_simulate(**flat):
    problem = dmft.Problem.from_flat(**flat)
    theory = dmft.solve(problem, dmft.SolverOptions(samples=192_000, subpopulations=SUBPOPULATIONS, seed=5))
    simulation = dmft.simulate(problem, dmft.SimulationOptions(dimension=DIMENSION, seeds=SEEDS, seed=5,
                                                               response_times=(), chi_times=()))
    return theory, simulation


def stderr(result, name: str, k: int) -> float:
    if name == "self_overlap" and name not in result.stderr:  # the DMFT's is C's diagonal
        return float(result.stderr["C"][k, k])
    return float(result.stderr[name][k])


def check(theory, simulation, steps: tuple[int, ...], observables=OBSERVABLES) -> None:
    """|DMFT - simulation| below the threshold at ``steps``, and the test able to see POWER."""
    limit = z_threshold(min(SUBPOPULATIONS, SEEDS), comparisons=len(steps) * len(observables))
    for name in observables:
        for k in steps:
            a, b = getattr(theory, name)[k], getattr(simulation, name)[k]
            error = np.hypot(stderr(theory, name, k), stderr(simulation, name, k))
            assert abs(a - b) < limit * error, f"{name}[{k}]: DMFT {a:.5g}, simulation {b:.5g} ± {error:.2g}"
            # The power of this comparison: it would catch an error of POWER x the value.
            assert limit * error <= POWER * abs(b), f"{name}[{k}]: resolves only {limit * error / abs(b):.1%}"


TEACHER = dict(dataset="teacher-student", alpha=3.0, loss="logistic", ridge=0.01, dt=0.1, steps=40)


def test_teacher_student_with_label_noise_and_momentum_matches_simulation():
    # Detects: the paths drawn from C instead of C - m m, K acting on the teacher's m, a wrong
    # test-error formula, mishandled label noise, a misplaced momentum term (each moves m, C
    # or the test error at t = 4 by more than the 3% this comparison resolves).
    theory, simulation = solve_and_simulate(**TEACHER, algorithm="sgd", batch_fraction=0.3, label_noise=0.1,
                                            momentum=0.5)
    check(theory, simulation, steps=(40,))


def test_persistent_sgd_with_momentum_matches_simulation_on_the_mixture():
    # Detects: a momentum term dropped or misplaced in A, m or R (docs/theory.md §2.8), or
    # applied to the sample side: each changes m and C[k,k] by far more than 3% at beta = 0.6.
    theory, simulation = solve_and_simulate(dataset="gmm2", alpha=2.0, delta=0.5, loss="logistic", ridge=0.1,
                                            dt=0.1, steps=40, algorithm="persistent-sgd", batch_fraction=0.3,
                                            persistence_time=2.0, momentum=0.6)
    check(theory, simulation, steps=(40,))


NOISY_TEACHER = dict(TEACHER, algorithm="sgd", batch_fraction=0.3, label_noise=0.1, momentum=0.5)


def test_teacher_student_with_momentum_iterate_without_resampling_is_the_march_exactly():
    # The other solver method on one fixed set of draws: by causality its fixed point is the
    # march's answer (to 1e-9). Detects a fixed-point loop whose weight side or paths miss the
    # momentum or teacher-student terms (docs/theory.md §2.5, §2.7-2.8).
    problem = dmft.Problem.from_flat(**{**NOISY_TEACHER, "steps": 20})
    options = dict(samples=2000, subpopulations=1, seed=7)
    march = dmft.solve(problem, dmft.SolverOptions(**options))
    iterate = dmft.solve(problem, dmft.SolverOptions(**options, method="iterate", resample=False, damping=0.0,
                                                     tolerance=1e-9, max_iterations=problem.steps + 2))
    assert iterate.diagnostics["converged"]
    for name in ("m", "C", "R", "A", "K", "mu_hat", "train_loss", "test_error"):
        np.testing.assert_allclose(getattr(iterate, name), getattr(march, name), rtol=0, atol=1e-9, err_msg=name)


def test_teacher_student_second_replica_leaves_the_first_unchanged():
    # Two replicas draw g+ from 2 (C - m m) - (C - C_ab) (docs/theory.md §2.7): a wrong m m
    # term there changes each replica's own m, C and test error, which must stay those of
    # the one-replica solve (independent draws: within Monte Carlo error, resolving 3%).
    problem = dmft.Problem.from_flat(**{**NOISY_TEACHER, "steps": 30})
    one = dmft.solve(problem, dmft.SolverOptions(samples=64_000, subpopulations=32, seed=3))
    two = dmft.solve(problem, dmft.SolverOptions(samples=64_000, subpopulations=32, seed=4, replicas=2))
    points = [("m", (30,)), ("C", (15, 15)), ("C", (30, 30)), ("test_error", (30,))]
    limit = z_threshold(32, comparisons=len(points))
    for name, index in points:
        assert_agrees(f"{name}{list(index)}", getattr(two, name)[index], getattr(one, name)[index],
                      (one.stderr[name][index], two.stderr[name][index]), limit, POWER)
    assert np.all(two.distance[1:] > 0)  # SGD's replicas do separate


def test_teacher_student_gd_replicas_stay_together():
    # GD at T = 0: the two replicas see the same batches and no noise, so D = 0 exactly.
    problem = dmft.Problem.from_flat(**{**NOISY_TEACHER, "algorithm": "gd", "steps": 20})
    two = dmft.solve(problem, dmft.SolverOptions(samples=4000, subpopulations=2, seed=3, replicas=2))
    assert np.all(two.distance == 0.0)
