"""The weight side of a solve, recomputed in plain numpy from its own kernels.

Given the kernels Gamma_C, K and mu_hat of a solve, the weight side of docs/theory.md §2.3
is linear algebra without randomness: the recursions give A, m and R, and the closed form
gives C, and with two replicas C - C_ab (docs/theory.md §7). So the arrays a solve stores
must satisfy these equations to round-off, whatever the Monte Carlo noise of its kernels.

The solves have one subpopulation, so that the stored arrays are one run's own (the mean
of several runs is not the closed form of the mean kernels), and double precision, so that
the closed form takes R in float64. R is recomputed from K rather than read back, so an
error in the response recursion is caught as well as one in the closed form. The kernels
themselves are the population's estimates: this checks the weight side only, and against
the equations, not against another implementation of them.

Gamma_C - Gamma_ab is not stored in a Result. The two-replica test takes it from the march
of the same draws, and first checks that this march reproduces the solve bit for bit.
"""

import numpy as np
import pytest

import dmft
from dmft.solvers.march import march
from dmft.solvers.population import make_population

# SGD noise, Langevin noise, a ridge and an initial variance other than 1: every term of
# the equations is present.
DT, RIDGE, TEMPERATURE, INIT_VARIANCE = 0.1, 0.2, 0.05, 0.7
PROBLEM = dict(dataset="gmm2", algorithm="sgd", batch_fraction=0.3, ridge=RIDGE, dt=DT, temperature=TEMPERATURE,
               init_variance=INIT_VARIANCE, steps=30)
# Round-off of the recomputed arrays relative to their largest entry: the kernel and numpy
# add the same terms in different orders, over 30 steps of a stable recursion.
ROUND_OFF = 1e-12


def weight_side(K: np.ndarray, mu_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A, m and R from the kernels K and mu_hat by the recursions of docs/theory.md §2.3."""
    n = K.shape[0]
    decay = 1.0 - DT * RIDGE
    A, m, R = np.zeros(n), np.zeros(n), np.zeros((n, n))
    A[0] = 1.0
    for k in range(n - 1):
        A[k + 1] = decay * A[k] - DT * K[k, : k + 1] @ A[: k + 1]
        m[k + 1] = decay * m[k] - DT * mu_hat[k] - DT * K[k, : k + 1] @ m[: k + 1]
        # R[k+1, i] = decay R[k, i] - dt sum_{i<j<=k} K[k, j] R[j, i]: R[j, i] = 0 for j <= i,
        # so the sum may run over every j <= k.
        R[k + 1, :k] = decay * R[k, :k] - DT * K[k, : k + 1] @ R[: k + 1, :k]
        R[k + 1, k] = 1.0
    return A, m, R


def closed_form(R: np.ndarray, gamma: np.ndarray, A: np.ndarray | None = None,
                m: np.ndarray | None = None) -> np.ndarray:
    """sigma0^2 A A^T + m m^T + R (dt^2 gamma + 2 T dt I) R^T (docs/theory.md §2.3); without A
    and m, the difference of two replicas, R (dt^2 (Gamma_C - Gamma_ab) + 2 T dt I) R^T (§7)."""
    noise = DT**2 * gamma + 2.0 * TEMPERATURE * DT * np.eye(R.shape[0])
    covariance = R @ noise @ R.T
    if A is not None:
        covariance += INIT_VARIANCE * np.outer(A, A) + np.outer(m, m)
    return covariance


def assert_round_off(actual: np.ndarray, expected: np.ndarray, name: str) -> None:
    np.testing.assert_allclose(actual, expected, rtol=0, atol=ROUND_OFF * np.abs(expected).max(), err_msg=name)


def check_one_replica_arrays(result: dmft.Result) -> np.ndarray:
    """A, m, R and C of ``result`` against the equations from its K, mu_hat and Gamma_C;
    returns the recomputed R."""
    A, m, R = weight_side(result.K, result.mu_hat)
    assert_round_off(result.A, A, "A")
    assert_round_off(result.m, m, "m")
    assert_round_off(result.R, R, "R")
    assert_round_off(result.C, closed_form(R, result.Gamma_C, A, m), "C")
    return R


def small_solve(replicas: int) -> tuple[dmft.Problem, dmft.SolverOptions, dmft.Result]:
    problem = dmft.Problem.from_flat(**PROBLEM)
    options = dmft.SolverOptions(samples=1000, subpopulations=1, precision="double", seed=3, replicas=replicas)
    return problem, options, dmft.solve(problem, options)


@pytest.mark.physics
def test_solved_correlation_is_the_closed_form_of_its_own_kernels():
    _, _, result = small_solve(replicas=1)
    R = check_one_replica_arrays(result)
    # The solve is not trivial: the kernels move the weights, the responses decay.
    assert np.abs(result.K).max() > 0.01 and np.abs(result.mu_hat).max() > 0.01
    assert np.abs(R[-1, 0]) < 0.9


@pytest.mark.physics
def test_replica_difference_is_the_closed_form_of_its_own_kernels():
    problem, options, result = small_solve(replicas=2)
    R = check_one_replica_arrays(result)
    # Gamma_C - Gamma_ab is not in the Result: take it from the march of the same draws
    # (those of the solve's only subpopulation), which must reproduce the solve exactly.
    seed = np.random.SeedSequence(options.seed).spawn(1)[0]
    population = make_population(problem, options.samples, seed, options.response, options.probes,
                                 options.chunk_width(options.samples), replicas=2, precision=options.precision)
    traj = march(problem, population)
    for name in ("C", "R", "K", "Gamma_C"):
        np.testing.assert_array_equal(getattr(traj, name), getattr(result, name), err_msg=name)
    np.testing.assert_array_equal(traj.C - traj.C_minus, result.C_ab, err_msg="C_ab")
    gamma_minus = traj.Gamma_minus
    assert_round_off(result.C - result.C_ab, closed_form(R, gamma_minus), "C - C_ab")
    # Gamma_C - Gamma_ab and Gamma_C + Gamma_ab = 2 Gamma_C - (Gamma_C - Gamma_ab) are Gram
    # matrices of the population's f^a -+ f^b (docs/theory.md §7).
    for name, gram in (("Gamma_C - Gamma_ab", gamma_minus), ("Gamma_C + Gamma_ab", 2 * result.Gamma_C - gamma_minus)):
        assert np.linalg.eigvalsh(gram).min() >= -1e-12 * np.abs(gram).max(), name
    # The replicas separate: the difference is not just the Langevin term.
    assert np.abs(gamma_minus).max() > 0.1 * np.abs(result.Gamma_C).max()
