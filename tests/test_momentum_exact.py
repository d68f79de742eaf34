"""Heavy-ball momentum on square-loss GD (random labels) is linear: the DMFT must equal the
exact solution of tests/exact_square_gd.py (docs/theory.md §2.8), which is itself checked
against plain GD (beta = 0), against the update rule iterated at finite d to round-off, and
against finite-d simulations within Monte Carlo error.

Statistical comparisons use a few chosen times (TIMES) rather than every entry, each with
a Student-t threshold shared over the comparisons of the test (false alarm 1e-3), and each
test also asserts its own resolution: the relative error it would detect,
threshold x standard error / value, is below 3% for C, the training loss and the distance,
10% for R.
"""

import numpy as np
import pytest
from exact_square_gd import exact_square_gd, impulse_responses, marchenko_pastur_nodes
from stats import max_z, z_threshold

import dmft

pytestmark = pytest.mark.physics

ALPHA, DELTA, RIDGE, DT, STEPS, SIGMA0_SQ = 2.0, 0.5, 0.1, 0.1, 40, 1.0
TIMES = np.array([10, 20, 40])  # comparison times k
LAGS = np.array([3, 6, 10])  # comparison lags of R[k, k - lag] (R depends on the lag only here)
SUBPOPULATIONS, SAMPLES = 32, 192_000
RESOLUTION, R_RESOLUTION = 0.03, 0.10


def powers_reference(alpha, delta, ridge, dt, steps, init_variance, temperature):
    """The plain-GD formulas with powers a^k (the reference as it was before momentum)."""
    s, weight = marchenko_pastur_nodes(alpha)
    a = 1 - dt * ridge - dt * delta * s
    k = np.arange(steps + 1)
    powers = a[None, :] ** k[:, None]
    partial = np.cumsum(np.vstack([np.zeros_like(a), powers[:-1]]), axis=0)
    C = init_variance * (powers * weight) @ powers.T + dt**2 * delta * (partial * weight * s) @ partial.T
    langevin = np.zeros((steps + 1, steps + 1))
    for kk in range(1, steps + 1):
        for jj in range(1, kk + 1):
            lags = np.arange(jj)
            langevin[kk, jj] = langevin[jj, kk] = np.sum(
                (a[None, :] ** (kk - 1 - lags)[:, None] * a[None, :] ** (jj - 1 - lags)[:, None]) @ weight)
    C = C + 2 * temperature * dt * langevin
    R = np.zeros((steps + 1, steps + 1))
    for lag in range(1, steps + 1):
        R[np.arange(lag, steps + 1), np.arange(0, steps + 1 - lag)] = weight @ a ** (lag - 1)
    g = np.append(s, 0.0)
    g_weight = np.append(weight / alpha, 1 - 1 / alpha)
    a_g = 1 - dt * ridge - dt * delta * g
    powers_g = a_g[None, :] ** k[:, None]
    partial_g = np.cumsum(np.vstack([np.zeros_like(a_g), powers_g[:-1]]), axis=0)
    residual = (powers_g**2 * (delta * init_variance * g + 1) + (dt * ridge * partial_g) ** 2
                + 2 * powers_g * dt * ridge * partial_g)
    return C, R, 0.5 * residual @ g_weight, 4 * temperature * dt * np.diagonal(langevin).copy()


def assert_resolved(name, value, stderr, threshold, resolution):
    """The comparison would detect a relative error ``resolution``: threshold x stderr < resolution |value|."""
    detectable = threshold * np.asarray(stderr) / np.abs(value)
    assert np.all(detectable < resolution), f"{name}: detects only {np.max(detectable):.1%}"


def assert_within(name, difference, stderr, threshold):
    z = max_z(difference, stderr)
    assert z < threshold, f"{name}: max z = {z:.2f} (threshold {threshold:.2f})"


# (a) The reference with beta = 0 is the plain-GD reference.

def test_zero_momentum_reproduces_the_powers_of_plain_gd():
    for args in [(ALPHA, DELTA, RIDGE, DT, STEPS, SIGMA0_SQ, 0.0), (3.0, 1.0, 0.0, 0.2, 25, 0.5, 0.3)]:
        for new, old in zip(exact_square_gd(*args, momentum=0.0), powers_reference(*args)):
            np.testing.assert_allclose(new, old, rtol=1e-12, atol=1e-14)


def test_impulse_response_is_the_two_root_formula():
    # x^2 = (a + beta) x - beta has roots r1, r2, and G_l = (r1^l - r2^l) / (r1 - r2), real or complex.
    a, beta = np.array([0.95, 0.7, 0.3, -0.5]), 0.6
    G = impulse_responses(a, beta, 30)
    root = np.sqrt((a + beta) ** 2 - 4 * beta + 0j)
    r1, r2 = (a + beta + root) / 2, (a + beta - root) / 2
    lags = np.arange(31)[:, None]
    np.testing.assert_allclose(G, ((r1**lags - r2**lags) / (r1 - r2)).real, rtol=1e-10, atol=1e-12)


# (b) The reference against the update rule at finite d.

def finite_d_run(d, momentum, temperature, runs, rng, kicks=None, steps=STEPS):
    """The update of docs/theory.md §1 with momentum, square loss, random labels, GD, at dimension d.

    ``runs`` independent label vectors and initial weights share one data matrix; with
    T > 0 each has a second replica (same w_0 and labels, its own Langevin noise); ``kicks``
    tangent runs (default ``runs``) are kicked along random directions at update 0.
    Returns the trajectories of the runs, the replicas and the tangents, each of shape
    (steps + 1, d, columns), the data X (h = X w), the labels and the kicks.
    """
    kicks = runs if kicks is None else kicks
    replicas = runs if temperature > 0 else 0
    n = int(ALPHA * d)
    X = rng.standard_normal((n, d)) * np.sqrt(DELTA / d)
    y = np.where(rng.random((n, runs)) < 0.5, 1.0, -1.0)
    w0 = rng.standard_normal((d, runs)) * np.sqrt(SIGMA0_SQ)
    kick = rng.standard_normal((d, kicks))
    labels = np.hstack([y, y[:, :replicas], np.zeros((n, kicks))])  # the tangent runs see no labels
    w = np.hstack([w0, w0[:, :replicas], np.zeros((d, kicks))])
    noisy = runs + replicas
    previous = w.copy()  # w_{-1} = w_0
    trajectory = np.empty((steps + 1, d, w.shape[1]))
    for k in range(steps + 1):
        trajectory[k] = w
        if k == steps:
            break
        gradient = X.T @ (X @ w - labels)  # sum_mu l'(y, h) x_mu / sqrt(d), l' = h - y
        new = (1 - DT * RIDGE) * w - DT * gradient + momentum * (w - previous)
        if temperature > 0:
            new[:, :noisy] += np.sqrt(2 * temperature * DT) * rng.standard_normal((d, noisy))
        if k == 0:
            new[:, noisy:] += kick
        previous, w = w, new
    return trajectory[:, :, :runs], trajectory[:, :, runs:noisy], trajectory[:, :, noisy:], X, y, kick


def test_reference_solves_the_update_rule_to_round_off():
    # One draw at d = 150: the iterated update equals A_k(M) w_0 + dt P_k(M) b in the eigenbasis
    # of S, the tangent run equals G_k(M) kick, and the residual equals A_k(G) r_0 - dt lam P_k(G) y.
    momentum, d = 0.7, 150
    main, _, tangent, X, y, kick = finite_d_run(d, momentum, 0.0, 1, np.random.default_rng(0))
    s, V = np.linalg.eigh(X.T @ X / DELTA)  # S = Z^T Z / d with X = sqrt(Delta / d) Z
    a = 1 - DT * RIDGE - DT * DELTA * s
    G = impulse_responses(a, momentum, STEPS + 1)
    A, P = G[1:] - momentum * G[:-1], np.cumsum(G[:-1], axis=0)
    w0, b = V.T @ main[0, :, 0], V.T @ (X.T @ y[:, 0])  # b = sqrt(Delta) Z^T y / sqrt(d)
    predicted = V @ (A * w0 + DT * P * b).T  # (d, k)
    scale = np.max(np.abs(main[:, :, 0]))
    np.testing.assert_allclose(main[:, :, 0], predicted.T, atol=1e-11 * scale)
    np.testing.assert_allclose(tangent[:, :, 0], (V @ (G[:-1] * (V.T @ kick[:, 0])).T).T, atol=1e-11 * scale)
    g, U = np.linalg.eigh(X @ X.T / DELTA)  # G = Z Z^T / d
    a_g = 1 - DT * RIDGE - DT * DELTA * g
    G_g = impulse_responses(a_g, momentum, STEPS + 1)
    A_g, P_g = G_g[1:] - momentum * G_g[:-1], np.cumsum(G_g[:-1], axis=0)
    residual = X @ main[:, :, 0].T - y  # (n, k)
    r0, y_g = U.T @ residual[:, 0], U.T @ y[:, 0]
    np.testing.assert_allclose(residual, U @ (A_g * r0 - DT * RIDGE * P_g * y_g).T, atol=1e-11 * scale)


@pytest.mark.parametrize("momentum, temperature", [(0.8, 0.0), (0.5, 0.2)])
def test_reference_matches_finite_d_simulations(momentum, temperature):
    # d = 400, 16 data matrices with 32 runs each (labels, w_0, noise, kick): averaging the runs
    # of one matrix removes the O(d^-1/2) noise of the projections of w_0 and y, leaving the
    # spectral fluctuations. Finite-d bias O(1/d) ~ 0.3%, below the resolution.
    d, runs, seeds = 400, 32, 16
    kicks = 16  # the tangents average over kicks in the same way
    C, R, loss, distance = exact_square_gd(ALPHA, DELTA, RIDGE, DT, STEPS, SIGMA0_SQ, temperature, momentum)
    samples = {"C": [], "R": [], "loss": [], "distance": []}
    for seed in range(seeds):
        main, replica, tangent, X, y, kick = finite_d_run(d, momentum, temperature, runs,
                                                          np.random.default_rng(100 + seed), kicks=kicks)
        flat = main.reshape(STEPS + 1, -1)
        samples["C"].append((flat @ flat.T / (d * runs))[TIMES, TIMES])
        samples["R"].append((np.einsum("kdr,dr->k", tangent, kick) / np.sum(kick**2))[LAGS])
        samples["loss"].append(0.5 * np.mean((X @ main[TIMES] - y) ** 2, axis=(1, 2)))
        if temperature > 0:
            samples["distance"].append(np.sum((main - replica)[TIMES] ** 2, axis=(1, 2)) / (d * runs))
    expected = {"C": C[TIMES, TIMES], "R": R[LAGS, 0], "loss": loss[TIMES], "distance": distance[TIMES]}
    names = ["C", "R"] + (["distance"] if temperature > 0 else ["loss"])  # the reference's loss is for T = 0
    threshold = z_threshold(seeds, comparisons=3 * len(names))
    for name in names:
        values = np.asarray(samples[name])
        mean, stderr = values.mean(axis=0), values.std(axis=0, ddof=1) / np.sqrt(seeds)
        assert_resolved(name, expected[name], stderr, threshold, R_RESOLUTION if name == "R" else RESOLUTION)
        assert_within(name, mean - expected[name], stderr, threshold)


# (c) The DMFT against the reference.

def solve(momentum, response, temperature=0.0, replicas=1, samples=SAMPLES, probes=1, seed=3):
    problem = dmft.Problem.from_flat(dataset="random-labels", loss="square", algorithm="gd", alpha=ALPHA,
                                     delta=DELTA, ridge=RIDGE, dt=DT, steps=STEPS, init_variance=SIGMA0_SQ,
                                     temperature=temperature, momentum=momentum)
    return dmft.solve(problem, dmft.SolverOptions(samples=samples, subpopulations=SUBPOPULATIONS, response=response,
                                                  replicas=replicas, probes=probes, seed=seed))


@pytest.mark.parametrize("momentum", [0.5, 0.8])
def test_exact_responses_are_exact_with_momentum(momentum):
    # l'' = 1 and s = 1: the tangent, hence K and R, is deterministic (as without momentum), so
    # R must equal the reference to round-off: this checks the second-order R recursion alone.
    _, R, _, _ = exact_square_gd(ALPHA, DELTA, RIDGE, DT, STEPS, SIGMA0_SQ, momentum=momentum)
    result = solve(momentum, "exact", samples=2000)
    np.testing.assert_allclose(result.R, R, atol=1e-12)
    assert result.R[STEPS, STEPS - 2] == pytest.approx(1 - DT * RIDGE - DT * ALPHA * DELTA + momentum, abs=1e-12)


@pytest.mark.parametrize("momentum", [0.5, 0.8])
@pytest.mark.parametrize("response", ["exact", "probe"])
def test_correlation_and_loss_match_the_exact_solution(momentum, response):
    C, R, loss, _ = exact_square_gd(ALPHA, DELTA, RIDGE, DT, STEPS, SIGMA0_SQ, momentum=momentum)
    # Probe noise on R grows with beta (larger, oscillating responses): 4 probes.
    result = solve(momentum, response, probes=4 if response == "probe" else 1)
    later, earlier = np.append(TIMES, STEPS), np.append(TIMES, STEPS // 2)  # the diagonal and C[40, 20]
    checks = {"C": (result.C - C, result.stderr["C"], C, later, earlier),
              "train_loss": (result.train_loss - loss, result.stderr["train_loss"], loss, TIMES)}
    if response == "probe":
        checks["R"] = (result.R - R, result.stderr["R"], R, np.full(LAGS.size, STEPS), STEPS - LAGS)
    threshold = z_threshold(SUBPOPULATIONS, comparisons=sum(len(c[3]) for c in checks.values()))
    for name, (difference, stderr, value, *where) in checks.items():
        where = tuple(where)
        assert_resolved(name, value[where], stderr[where], threshold, R_RESOLUTION if name == "R" else RESOLUTION)
        assert_within(name, difference[where], stderr[where], threshold)
    assert np.allclose(result.m, 0.0) and np.allclose(result.test_error, 0.5)


@pytest.mark.parametrize("momentum", [0.5, 0.8])
def test_langevin_distance_with_momentum_is_exact(momentum):
    # Two replicas, Langevin T > 0: D_k = 4 T dt sum_{i<k} int G_{k-i}^2 and C with its Langevin part.
    temperature = 0.2
    C, _, _, distance = exact_square_gd(ALPHA, DELTA, RIDGE, DT, STEPS, SIGMA0_SQ, temperature, momentum)
    result = solve(momentum, "probe", temperature=temperature, replicas=2, probes=4)
    threshold = z_threshold(SUBPOPULATIONS, comparisons=2 * TIMES.size)
    for name, value, stderr, exact in [("distance", result.distance[TIMES], result.stderr["distance"][TIMES],
                                        distance[TIMES]),
                                       ("C", result.C[TIMES, TIMES], result.stderr["C"][TIMES, TIMES],
                                        C[TIMES, TIMES])]:
        assert_resolved(name, exact, stderr, threshold, RESOLUTION)
        assert_within(name, value - exact, stderr, threshold)
