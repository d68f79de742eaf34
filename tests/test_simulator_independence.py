"""The physics pieces the simulator shares with the DMFT, each against its definition
(docs/theory.md §1, §5), written here in plain numpy/scipy.

A DMFT-versus-simulation comparison cannot see an error in a piece both use: the law of
the labels (``Dataset.draw_labels``), the selection chains (``Algorithm`` and the
population's ``draw_step``), the losses and their derivatives (``loss_terms`` and the
population kernel's ``loss_terms_given``) and the closed-form test error
(``Dataset.test_error``). Here every expectation is computed from the model's
definition without calling the piece under test. The whole-run checks (the simulator
against the exact square-loss trajectory on its own data, the replica distance of the
reference files) are in test_simulator_independence_runs.py.

Tolerances: a fixed seed, and a two-sided normal quantile at a false-alarm probability of
1e-3 per test (Bonferroni over the few comparisons inside a test), applied to the exact
binomial standard error of each Monte Carlo estimate. Each test says what it detects.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit, ndtr
from scipy.stats import norm

import dmft
# The numba loss functions are the things under test; nothing else comes from their module.
from dmft.loss_kernels import loss_terms_array, loss_terms_given, softplus_and_sigmoid_rows, softplus_argument
from dmft.solvers.population import Population

FALSE_ALARM = 1e-3


def threshold(comparisons: int = 1) -> float:
    """Two-sided normal quantile: all ``comparisons`` pass together with probability 1 - 1e-3."""
    return float(norm.isf(FALSE_ALARM / (2 * comparisons)))


def binomial_z(successes: float, trials: float, p: float) -> float:
    """(frequency - p) in units of the binomial standard error of the frequency under p."""
    return (successes / trials - p) / math.sqrt(p * (1 - p) / trials)


# ----------------------------------------------------------------------------- the model, from its definition


def draw_pairs(rng: np.random.Generator, name: str, rho: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(c, y) by the table of docs/theory.md §1, independently of Dataset.draw_labels."""
    if name == "gmm2":
        c = rng.choice([1.0, -1.0], p=[rho, 1 - rho], size=n)
        return c, c.copy()
    if name == "gmm3":
        c = rng.choice([1.0, -1.0, 0.0], p=[rho / 2, rho / 2, 1 - rho], size=n)
        return c, np.where(c != 0, 1.0, -1.0)
    return np.zeros(n), rng.choice([1.0, -1.0], size=n)


def readout(name: str, h: np.ndarray, theta: float) -> np.ndarray:
    return h * h - theta if name == "gmm3" else h


def centre_and_weights(rng: np.random.Generator, d: int, m: float, overlap: float) -> tuple[np.ndarray, np.ndarray]:
    """v with |v|^2 = d and w with w.v/d = m, |w|^2/d = overlap exactly."""
    v = rng.standard_normal(d)
    v *= math.sqrt(d) / np.linalg.norm(v)
    u = rng.standard_normal(d)
    u -= (u @ v) / d * v
    u *= math.sqrt(d) / np.linalg.norm(u)
    return v, m * v + math.sqrt(overlap - m * m) * u


def monte_carlo_test_error(rng, name, rho, theta, delta, v, w, samples, block=50_000) -> float:
    """Fraction of fresh samples x = c v / sqrt(d) + sqrt(Delta) z, (c, y) from their law,
    that the readout misclassifies (y phi(h) <= 0, h = w.x / sqrt(d))."""
    d = v.shape[0]
    wrong = 0
    for start in range(0, samples, block):
        size = min(block, samples - start)
        c, y = draw_pairs(rng, name, rho, size)
        x = np.outer(c, v) / math.sqrt(d) + math.sqrt(delta) * rng.standard_normal((size, d))
        wrong += int(np.count_nonzero(y * readout(name, x @ w / math.sqrt(d), theta) <= 0))
    return wrong / samples


# ----------------------------------------------------------------------------- 1. the test error


# (dataset, rho, theta, Delta, m, |w|^2/d): an error below and above 1/2 for gmm2 (rho != 1/2:
# the classes must not matter), two gmm3 geometries, and random labels.
TEST_ERROR_POINTS = [
    ("gmm2", 0.3, 1.0, 0.5, 0.6, 1.5),
    ("gmm2", 0.7, 1.0, 1.2, -0.3, 0.8),
    ("gmm3", 0.6, 0.5, 0.5, 1.0, 1.5),
    ("gmm3", 0.4, 2.0, 0.3, 0.5, 3.0),
    ("random-labels", 0.5, 1.0, 0.5, 0.6, 1.5),
]


def closed_form_test_error(name, rho, theta, delta, m, overlap) -> float:
    """docs/theory.md §5, written here: h = c m + sigma zeta, sigma^2 = Delta |w|^2/d."""
    sigma = math.sqrt(delta * overlap)
    if name == "gmm2":
        return float(ndtr(-m / sigma))
    if name == "gmm3":
        r = math.sqrt(theta)
        return float(rho * (ndtr((r - m) / sigma) - ndtr((-r - m) / sigma)) + (1 - rho) * 2 * ndtr(-r / sigma))
    return 0.5


@pytest.mark.parametrize("name, rho, theta, delta, m, overlap", TEST_ERROR_POINTS,
                         ids=["gmm2", "gmm2-worse-than-chance", "gmm3", "gmm3-wide", "random-labels"])
def test_closed_form_test_error_against_fresh_samples(name, rho, theta, delta, m, overlap):
    """Dataset.test_error(m, |w|^2/d) against the misclassified fraction of 400 000 fresh
    samples: the binomial standard error is at most 8e-4, so an error of 0.27 percentage
    points is detected (0.4 to 0.9% of these errors): a missing or doubled Delta in sigma,
    rho and 1 - rho swapped in gmm3, a wrong sign of m in gmm2 (Phi(m/sigma))."""
    rng = np.random.default_rng(20231)
    d = 10  # the law of h is exact at any d
    v, w = centre_and_weights(rng, d, m, overlap)
    samples = 400_000
    observed = monte_carlo_test_error(rng, name, rho, theta, delta, v, w, samples)
    dataset = dmft.Dataset(name=name, rho=rho, theta=theta, delta=delta)
    closed = float(dataset.test_error(np.array([w @ v / d]), np.array([w @ w / d]))[0])
    z = binomial_z(observed * samples, samples, closed)
    assert abs(z) < threshold(), (name, closed, observed, z)
    # The same formula written here agrees to round-off (the sharp check, given the Monte Carlo one).
    assert closed == pytest.approx(closed_form_test_error(name, rho, theta, delta, m, overlap), rel=1e-12)
    # The Monte Carlo check has teeth: it rejects the closed form with sigma^2 = |w|^2/d (Delta forgotten).
    if name != "random-labels":
        wrong = closed_form_test_error(name, rho, theta, 1.0, m, overlap)
        assert abs(binomial_z(observed * samples, samples, wrong)) > threshold()


def test_gmm2_test_error_without_noise_is_right_wrong_or_a_coin_flip():
    """sigma = 0 (the limit |w|^2/d -> 0 read literally): h = c m, so every fresh sample is
    classified right for m > 0, wrong for m < 0 and by a coin flip at m = 0. Detects the
    limit taken as 1/2 on one side."""
    dataset = dmft.Dataset(name="gmm2")
    np.testing.assert_array_equal(dataset.test_error(np.array([0.3, -0.3, 0.0]), np.zeros(3)), [0.0, 1.0, 0.5])


# ----------------------------------------------------------------------------- 2. labels and centres


def test_gmm2_labels():
    """y = c exactly, c in {-1, +1}, P(c = +1) = rho over 10^6 draws (standard error 4.6e-4):
    detects a 1.5e-3 error in rho (0.5%), and rho taken as P(c = -1)."""
    rho, n = 0.3, 1_000_000
    c, y = dmft.Dataset(name="gmm2", rho=rho).draw_labels(np.random.default_rng(1), n)
    np.testing.assert_array_equal(y, c)
    assert set(np.unique(c)) == {-1.0, 1.0}
    assert abs(binomial_z(np.count_nonzero(c == 1), n, rho)) < threshold()


def test_gmm3_labels():
    """c = +1, -1 with probability rho/2 each and 0 otherwise; y = +1 iff c != 0 exactly.
    Three frequencies over 10^6 draws (standard errors <= 4.9e-4): detects a 2e-3 error in
    the mass of a cluster, e.g. an uneven split of the outer clusters or rho for 1 - rho."""
    rho, n = 0.6, 1_000_000
    c, y = dmft.Dataset(name="gmm3", rho=rho, theta=0.5).draw_labels(np.random.default_rng(2), n)
    np.testing.assert_array_equal(y, np.where(c != 0, 1.0, -1.0))
    assert set(np.unique(c)) == {-1.0, 0.0, 1.0}
    for value, p in ((1.0, rho / 2), (-1.0, rho / 2), (0.0, 1 - rho)):
        assert abs(binomial_z(np.count_nonzero(c == value), n, p)) < threshold(3), (value, p)


def test_random_labels():
    """c = 0 exactly (no centre in x) and y = +-1 with probability 1/2 (detects a 1.6e-3 bias)."""
    n = 1_000_000
    c, y = dmft.Dataset(name="random-labels").draw_labels(np.random.default_rng(3), n)
    assert np.all(c == 0.0)
    assert set(np.unique(y)) == {-1.0, 1.0}
    assert abs(binomial_z(np.count_nonzero(y == 1), n, 0.5)) < threshold()


# ----------------------------------------------------------------------------- 3. selection variables


def leave_and_join(name: str, b: float, tau: float, dt: float) -> tuple[float, float]:
    """p_- and p_+ from the table of docs/theory.md §1."""
    if name == "sgd":
        return 1 - b, b
    return dt * (1 - b) / (b * tau), dt / tau


def simulator_chain(algorithm: dmft.Algorithm, dt: float, n: int, steps: int) -> np.ndarray:
    """s_mu(k), k = 0..steps, of n samples as the simulator draws them."""
    rng = np.random.default_rng(5)
    chain = [algorithm.initial_selection(rng, n)]
    for _ in range(steps):
        chain.append(algorithm.next_selection(rng, chain[-1], dt))
    return np.array(chain)


def population_chain(problem: dmft.Problem, n: int) -> np.ndarray:
    """s_mu(k), k = 0..steps, of n effective samples as the DMFT population draws them."""
    population = Population(problem, n, np.random.SeedSequence(6))
    chain = []
    for k in range(problem.steps + 1):
        population.draw(k)
        chain.append(population.selection.copy())
    return np.array(chain)


CHAINS = [("simulator", "sgd"), ("simulator", "persistent-sgd"), ("dmft", "sgd"), ("dmft", "persistent-sgd")]


@pytest.mark.parametrize("drawer, name", CHAINS, ids=["-".join(chain) for chain in CHAINS])
def test_selection_chain_law(drawer, name):
    """200 000 chains of 16 steps, b = 0.3, tau = 2, dt = 0.1 (persistent: p_- = 0.117,
    p_+ = 0.05, memory 1 - p_+ - p_- = 0.83; SGD: fresh Bernoulli(b) batches).

    Seven comparisons, each with its binomial standard error: P(s(0) = 1) = b and
    P(s(16) = 1) = b (standard error 1.0e-3: a start out of the stationary law, or a drifting
    fraction); the pooled switching frequencies (about 1% of p_- and p_+ for persistent
    SGD: dt/tau for dt/(b tau), the leave and join rules swapped); and the autocorrelation
    E[s(k)s(k+l)] = b^2 + b(1-b)(1-p_+-p_-)^l at lags 1, 4, 12 (2% of the connected part
    at lag 1: a chain remembered over tau instead of b tau, or SGD batches correlated
    from one step to the next)."""
    b, tau, dt, n, steps = 0.3, 2.0, 0.1, 200_000, 16
    problem = dmft.Problem.from_flat(algorithm=name, batch_fraction=b, persistence_time=tau, dt=dt, steps=steps)
    if drawer == "simulator":
        chain = simulator_chain(problem.algorithm, dt, n, steps)
    else:
        chain = population_chain(problem, n)
    assert set(np.unique(chain)) == {0.0, 1.0}
    leave, join = leave_and_join(name, b, tau, dt)
    limit = threshold(7)
    z = {"s(0)": binomial_z(chain[0].sum(), n, b), f"s({steps})": binomial_z(chain[-1].sum(), n, b)}
    before, after = chain[:-1], chain[1:]
    z["leave"] = binomial_z(np.sum(before * (1 - after)), np.sum(before), leave)
    z["join"] = binomial_z(np.sum((1 - before) * after), np.sum(1 - before), join)
    memory = 1 - join - leave
    for lag in (1, 4, 12):
        z[f"lag {lag}"] = binomial_z(np.sum(chain[2] * chain[2 + lag]), n, b * b + b * (1 - b) * memory**lag)
    assert max(abs(value) for value in z.values()) < limit, z


@pytest.mark.parametrize("drawer", ["simulator", "dmft"])
def test_gd_selects_every_sample_at_every_step(drawer):
    """GD: s = 1 for every sample and step (b = 1, p_- = 0), in both drawers."""
    problem = dmft.Problem.from_flat(algorithm="gd", steps=5)
    if drawer == "simulator":
        chain = simulator_chain(problem.algorithm, problem.dt, 1000, problem.steps)
    else:
        chain = population_chain(problem, 1000)
    assert chain.shape == (6, 1000) and np.all(chain == 1.0)


# ----------------------------------------------------------------------------- 4. losses


MARGIN, SHARPNESS, THETA = 0.5, 4.0, 0.7  # all different from 1: a margin read as theta shows
LOSSES = ("logistic", "square", "square-hinge", "smooth-hinge")


def l0(name: str, z: np.ndarray) -> np.ndarray:
    """The losses of docs/theory.md §1 as functions of the gap z."""
    if name == "logistic":
        return np.logaddexp(0.0, -z)
    if name == "square":
        return 0.5 * (1 - z) ** 2
    if name == "square-hinge":
        return 0.5 * np.maximum(0.0, MARGIN - z) ** 2
    return np.logaddexp(0.0, SHARPNESS * (MARGIN - z)) / SHARPNESS


def l0_derivatives(name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """l0'(z), l0''(z) in closed form (the table of docs/theory.md §1)."""
    if name == "logistic":
        return -expit(-z), expit(-z) * expit(z)
    if name == "square":
        return z - 1, np.ones_like(z)
    if name == "square-hinge":
        return -np.maximum(0.0, MARGIN - z), (z < MARGIN).astype(float)
    x = SHARPNESS * (MARGIN - z)
    return -expit(x), SHARPNESS * expit(x) * expit(-x)


def phi(dataset: str, h: np.ndarray) -> np.ndarray:
    """The readout: h for gmm2, h^2 - theta for gmm3."""
    return h if dataset == "gmm2" else h * h - THETA


def loss_of_h(name: str, dataset: str, y: np.ndarray, h: np.ndarray) -> np.ndarray:
    """l(y, h) = l0(y phi(h)), composed here."""
    return l0(name, y * phi(dataset, h))


def grid(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels and preactivations on both sides of every kink, away from the square hinge's
    (|kappa - z| > 0.01: no finite difference straddles it)."""
    h = np.linspace(-2.0, 2.0, 81) + 0.0123
    y = np.concatenate([np.ones_like(h), -np.ones_like(h)])
    h = np.concatenate([h, h])
    keep = np.abs(MARGIN - y * phi(dataset, h)) > 0.01
    return y[keep], h[keep]


def test_closed_form_derivatives_of_l0_are_its_derivatives():
    """The test's own closed forms against central differences of its own l0 (step 1e-4:
    truncation below 1e-6 here), so that the next tests rest on l0 alone."""
    z = np.linspace(-4, 4, 161) + 0.0123
    e = 1e-4
    for name in LOSSES:
        z_ok = z[np.abs(MARGIN - z) > 0.01] if name == "square-hinge" else z
        d1, d2 = l0_derivatives(name, z_ok)
        np.testing.assert_allclose((l0(name, z_ok + e) - l0(name, z_ok - e)) / (2 * e), d1, atol=1e-6, err_msg=name)
        second = (l0(name, z_ok + e) - 2 * l0(name, z_ok) + l0(name, z_ok - e)) / e**2
        np.testing.assert_allclose(second, d2, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("dataset", ["gmm2", "gmm3"], ids=["linear", "symmetric"])
@pytest.mark.parametrize("name", LOSSES)
def test_loss_terms_against_the_chain_rule_and_finite_differences(name, dataset):
    """(l, l', l'', gap) of the simulator's ``loss_terms_array`` and of the DMFT population's
    path (``softplus_argument``, ``softplus_and_sigmoid_rows``, ``loss_terms_given``):

    * against the chain rule written here, l' = y l0'(z) phi'(h), l'' = l0''(z) phi'^2
      + y l0'(z) phi'' (to 1e-12: any wrong sign of l' or l'', a missing label y, a missing
      beta in the smooth hinge's l'', the missing y l0' phi'' term of the gmm3 readout);
    * against central differences in h of l(y, h) = l0(y phi(h)) composed here (step 1e-4;
      truncation and rounding below 1e-7 of the scale 1 + |l'| or 1 + |l''| for |h| <= 2),
      which checks the chain rule without the closed forms: an error of 1e-6 is detected.
    """
    code = dmft.Loss(name=name).code
    readout_code = dmft.Dataset(name=dataset, theta=THETA).readout_code
    y, h = grid(dataset)
    dphi, d2phi = (np.ones_like(h), 0.0) if dataset == "gmm2" else (2 * h, 2.0)
    z = y * phi(dataset, h)
    d1_0, d2_0 = l0_derivatives(name, z)
    expected = (l0(name, z), y * d1_0 * dphi, d2_0 * dphi**2 + y * d1_0 * d2phi, z)

    simulator = loss_terms_array(code, readout_code, MARGIN, SHARPNESS, THETA, y, h)
    x = np.array([softplus_argument(code, readout_code, MARGIN, SHARPNESS, THETA, y[i], h[i]) for i in range(len(h))])
    softplus, sigmoid = np.empty_like(x), np.empty_like(x)
    softplus_and_sigmoid_rows(x, softplus, sigmoid, np.empty_like(x))
    population = np.array([loss_terms_given(code, readout_code, MARGIN, SHARPNESS, THETA, y[i], h[i], softplus[i],
                                            sigmoid[i]) for i in range(len(h))]).T
    for where, terms in (("simulator", simulator), ("population", population)):
        for label, got, want in zip(("l", "l'", "l''", "gap"), terms, expected):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13, err_msg=f"{where} {label}")
        e = 1e-4
        plus, centre, minus = (loss_of_h(name, dataset, y, h + s) for s in (e, 0.0, -e))
        d1_fd = (plus - minus) / (2 * e)
        d2_fd = (plus - 2 * centre + minus) / e**2
        np.testing.assert_allclose(terms[1], d1_fd, rtol=1e-6, atol=1e-6, err_msg=f"{where} l' vs differences")
        np.testing.assert_allclose(terms[2], d2_fd, rtol=1e-6, atol=1e-6, err_msg=f"{where} l'' vs differences")


def test_logistic_far_from_the_boundary():
    """Large gaps, where a naive exp overflows or log(1 + e^-z) loses everything, against
    log1p/exp written here: l and l' to 1e-14 relative. l'' = sigma(-z) sigma(z) is computed
    as s (1 - s), s = sigma(-z), which rounds to 0 for z < -37 (the true value e^z < 1e-16):
    it is checked to an absolute 1e-16 of its scale 1/4 there (what the dynamics can feel),
    relative to 1e-12 for z > 0."""
    z = np.array([-700.0, -40.0, 40.0, 700.0])
    args = (dmft.Loss(name="logistic").code, dmft.Dataset(name="gmm2").readout_code, MARGIN, SHARPNESS, THETA)
    value, d1, d2, _ = loss_terms_array(*args, np.ones(4), z)
    np.testing.assert_allclose(value, np.where(z < 0, -z + np.log1p(np.exp(z)), np.log1p(np.exp(-z))), rtol=1e-14)
    np.testing.assert_allclose(d1, -1 / (1 + np.exp(z)), rtol=1e-14)
    exact = np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))) ** 2
    np.testing.assert_allclose(d2[z > 0], exact[z > 0], rtol=1e-12)
    np.testing.assert_allclose(d2[z < 0], exact[z < 0], rtol=0, atol=1e-16)
