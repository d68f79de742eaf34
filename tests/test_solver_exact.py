"""Square loss + GD is linear: the DMFT must equal the exact Marchenko-Pastur solution."""

import numpy as np
import pytest

import dmft
from exact_square_gd import exact_square_gd
from stats import max_z, z_threshold

pytestmark = pytest.mark.physics

ALPHA, DELTA, RIDGE, DT, STEPS, SIGMA0_SQ = 2.0, 0.5, 0.1, 0.1, 40, 1.0
SUBPOPULATIONS = 8


@pytest.fixture(scope="module")
def exact():
    return exact_square_gd(ALPHA, DELTA, RIDGE, DT, STEPS, SIGMA0_SQ)


def solve(response):
    problem = dmft.Problem.from_flat(dataset="random-labels", loss="square", algorithm="gd", alpha=ALPHA,
                                     delta=DELTA, ridge=RIDGE, dt=DT, steps=STEPS, init_variance=SIGMA0_SQ)
    return dmft.solve(problem, dmft.SolverOptions(samples=8000, subpopulations=SUBPOPULATIONS,
                                                  response=response, seed=3))


def test_quadrature_is_converged(exact):
    # The exact solution itself: C[0,0] = sigma0^2, R[j+1,j] = 1, loss_0 = (Delta sigma0^2 + 1)/2.
    C, R, loss, _ = exact
    assert C[0, 0] == pytest.approx(SIGMA0_SQ, rel=1e-12)
    assert np.allclose(np.diagonal(R, offset=-1), 1.0, atol=1e-12)
    assert loss[0] == pytest.approx((DELTA * SIGMA0_SQ + 1) / 2, rel=1e-12)


def test_exact_responses_are_exact(exact):
    # With l'' = 1 and s = 1 the tangent S is deterministic: K, hence R, carries no noise at all.
    _, R, _, _ = exact
    result = solve("exact")
    np.testing.assert_allclose(result.R, R, atol=1e-12)


@pytest.mark.parametrize("response", ["exact", "probe"])
def test_correlation_and_loss_match_marchenko_pastur(exact, response):
    C, R, loss, _ = exact
    result = solve(response)
    threshold = z_threshold(SUBPOPULATIONS, comparisons=STEPS + 1)
    assert max_z(result.C - C, result.stderr["C"]) < threshold
    assert max_z(result.train_loss - loss, result.stderr["train_loss"]) < threshold
    assert max_z(result.R - R, result.stderr["R"]) < threshold if response == "probe" else True
    assert np.allclose(result.m, 0.0) and np.allclose(result.test_error, 0.5)
