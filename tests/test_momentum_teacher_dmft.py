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
from stats import z_threshold

pytestmark = pytest.mark.physics

SUBPOPULATIONS, SEEDS, DIMENSION = 32, 16, 3000  # 6000 samples per subpopulation: the serial kernels
OBSERVABLES = ("m", "self_overlap", "train_loss", "test_error")
POWER = 0.03  # the largest relative error a test may miss


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
