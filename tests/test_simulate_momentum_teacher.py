"""The simulator's heavy-ball momentum and teacher-student data (issue 26) against the
model's definition (docs/theory.md §1), written here in plain numpy.

* Momentum: whole trajectories (m, C, losses, errors, the tangent runs' R and chi, the
  replica distance) against the update rule iterated here on the same data with the
  selections, noises and kick rebuilt from the simulator's documented streams, to
  round-off; beta = 0 is the code path of before (identical numbers) and a vanishing beta
  through the velocity path agrees with it to round-off; the tangent responses agree with
  finite-field twins to O(eps).
* Teacher-student: the simulator's own labels (read back from its gaps) follow the law
  y = sign(teacher field) flipped with probability label_noise; its m, |w|^2/d and test
  error agree with a Monte Carlo over fresh inputs; ``Dataset.test_error`` (what the DMFT
  uses) agrees with fresh inputs too; whole trajectories agree with the rebuild to round-off.

Tolerances: round-off (``ROUND_OFF``) for the exact comparisons, binomial or sample
standard errors at a false-alarm probability of 1e-3 per test for the Monte Carlo ones.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit, ndtr

import dmft
from dmft.simulate import SimulationOptions, simulate
from test_simulator_independence import binomial_z, threshold
from test_simulator_independence_runs import QUIET, ROUND_OFF, closed_form_test_error, rebuild

OBSERVABLES = ("m", "self_overlap", "C", "R", "chi", "train_loss", "train_error", "test_error", "distance")


# ----------------------------------------------------------------------------- the model, rebuilt here


def streams(seed: int, index: int = 0, seeds: int = 1) -> list[np.random.SeedSequence]:
    """(data, w_0, dynamics, replica, kick) of seed ``index`` of a run of ``seeds`` seeds."""
    return np.random.SeedSequence(seed).spawn(seeds)[index].spawn(5)


def kick_direction(stream: np.random.SeedSequence, d: int) -> np.ndarray:
    kick = np.random.default_rng(stream).standard_normal(d)
    return kick * (math.sqrt(d) / np.linalg.norm(kick))


def teacher_data(problem: dmft.Problem, d: int, seed: int, index: int = 0, seeds: int = 1) -> dict:
    """Teacher-student data as the simulator's docstring documents the data stream: the
    teacher v rescaled to |v|^2 = d, x ~ N(0, I_d), then one uniform u per sample;
    y = sign(v.x / sqrt(d)), flipped where u < label_noise."""
    ds = problem.dataset
    data, init, dynamics, replica, kick = streams(seed, index, seeds)
    rng = np.random.default_rng(data)
    v = rng.standard_normal(d)
    v *= math.sqrt(d) / np.linalg.norm(v)
    n = round(ds.alpha * d)
    x = rng.standard_normal((n, d))
    t = x @ v / math.sqrt(d)
    flip = rng.random(n) < ds.label_noise
    y = np.where(t > 0, 1.0, -1.0) * np.where(flip, -1.0, 1.0)
    w0 = math.sqrt(problem.init_variance) * np.random.default_rng(init).standard_normal(d)
    return dict(A=x / math.sqrt(d), v=v, y=y, t=t, w0=w0, dynamics=dynamics, replica=replica,
                kick=kick_direction(kick, d))


def mixture_data(problem: dmft.Problem, d: int, seed: int) -> dict:
    """The mixtures' data from test_simulator_independence_runs.rebuild, plus the kick."""
    return dict(rebuild(problem, d, seed), kick=kick_direction(streams(seed)[4], d))


def square(y, h):
    """l'(y, h), l''(y, h) of the square loss l = (1 - y h)^2 / 2 (y = +-1)."""
    return h - y, np.ones_like(h)


def logistic(y, h):
    """l'(y, h), l''(y, h) of the logistic loss l = log(1 + exp(-y h))."""
    return -y * expit(-y * h), expit(y * h) * expit(-y * h)


def iterate(problem: dmft.Problem, data: dict, stream: np.random.SeedSequence, derivatives,
            pulses=(), constants=(), beta: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """w_k, k = 0..N, by the update rule of docs/theory.md §1,

        w_{k+1} = w_k - dt [ridge w_k + (1/B) sum_mu s_mu l'(y_mu, h_mu) x_mu / sqrt(d)]
                  + beta (w_k - w_{k-1}) + sqrt(2 T dt) xi_k,      w_{-1} = w_0,

    with the selections and noises of ``stream`` (per step: the update, the noise, the next
    selection; selected samples leave when a uniform is >= p_-, others join when it is
    < p_+), and the tangent runs u_k of fields dt kick at update j (``pulses``) or at every
    update from j on (``constants``): the same rule linearised, l' -> l'' (x.u/sqrt(d)),
    u_{-1} = u_0 = 0. Returns W (N+1, d) and the projections kick.u_k/d (N+1, runs)."""
    alg = problem.algorithm
    dt, T, ridge = problem.dt, alg.temperature, problem.ridge
    beta = alg.momentum if beta is None else beta
    A, y, kick = data["A"], data["y"], data["kick"]
    n, d = A.shape
    gd = alg.name == "gd"
    b = 1.0 if gd else alg.batch_fraction
    B = b if alg.batch_average else 1.0
    if alg.name == "sgd":
        leave, join = 1 - b, b
    else:
        leave, join = dt * (1 - b) / (b * alg.persistence_time), dt / alg.persistence_time
    rng = np.random.default_rng(stream)
    s = np.ones(n) if gd else (rng.random(n) < b).astype(float)
    starts = list(pulses) + list(constants)
    held = [False] * len(pulses) + [True] * len(constants)
    w = w_prev = data["w0"]
    U = U_prev = np.zeros((d, len(starts)))
    W, P = [w], [kick @ U / d]
    for k in range(problem.steps):
        h = A @ w
        d1, d2 = derivatives(y, h)
        on = np.array([j == k or (c and j <= k) for j, c in zip(starts, held)], float)
        w_next = w - dt * (ridge * w + A.T @ (s * d1) / B) + beta * (w - w_prev)
        U_next = (U - dt * (ridge * U + A.T @ ((s * d2 / B)[:, None] * (A @ U))) + beta * (U - U_prev)
                  + dt * np.outer(kick, on))
        if T > 0:
            w_next = w_next + math.sqrt(2 * T * dt) * rng.standard_normal(d)
        if not gd:
            u = rng.random(n)
            s = np.where(s > 0, u >= leave, u < join).astype(float)
        w_prev, w, U_prev, U = w, w_next, U, U_next
        W.append(w)
        P.append(kick @ U / d)
    return np.array(W), np.array(P)


def expected_observables(problem, W, P, data, derivatives_name, pulses, C_steps, test_error) -> dict:
    """m, |w|^2/d, C[k, j], R, chi, training loss and error, test error of the trajectory W."""
    A, y, v = data["A"], data["y"], data["v"]
    d = v.shape[0]
    H = W @ A.T
    if derivatives_name == "square":
        loss = 0.5 * (1 - y * H) ** 2
    else:
        loss = np.logaddexp(0.0, -y * H)
    m = W @ v / d
    overlap = np.einsum("kd,kd->k", W, W) / d
    C = np.full((len(W), len(C_steps)), np.nan)
    for a, j in enumerate(C_steps):
        C[j:, a] = W[j:] @ W[j] / d
    return dict(m=m, self_overlap=overlap, C=C, R=P[:, :len(pulses)] / problem.dt, chi=P[:, len(pulses):],
                train_loss=loss.mean(axis=1), train_error=np.mean(y * H <= 0, axis=1),
                test_error=test_error(m, overlap))


def teacher_test_error(m, overlap):
    """The angle between w and v over pi, written here (docs/theory.md §5)."""
    return np.arccos(m / np.sqrt(overlap)) / np.pi


def assert_round_off(result, expected: dict) -> None:
    for name, values in expected.items():
        np.testing.assert_allclose(getattr(result, name), values, **ROUND_OFF, err_msg=name)


# ----------------------------------------------------------------------------- momentum: exact trajectories


@pytest.mark.physics
def test_momentum_gd_square_loss_is_the_update_rule():
    """GD, square loss, gmm2, ridge, beta = 0.6, d = 120, one seed: every observable at every
    step, including C at three reference times and the tangent runs' R (pulses at updates
    0 and 10) and chi (field on from update 5), against the rule iterated here, to
    round-off. Detects a missing or misplaced momentum term (beta (w_k - w_{k-1}) taken
    as beta w_k, or with w_{k-1} one step stale), a velocity that starts non-zero
    (w_{-1} != w_0), momentum missing from the tangent runs or a field left out of their
    velocity (R and chi off by a factor ~ 1/(1 - beta) at late times), and the ridge
    applied twice. The teeth: without momentum the trajectory differs by far more."""
    problem = dmft.Problem.from_flat(dataset="gmm2", rho=0.3, delta=0.5, alpha=2.0, loss="square", algorithm="gd",
                                     ridge=0.1, dt=0.1, momentum=0.6, init_variance=0.8, steps=40)
    d, seed = 120, 17
    pulses, constants, C_steps = (0, 10), (5,), (0, 10, 25)
    options = SimulationOptions(dimension=d, seeds=1, seed=seed, correlation_times=tuple(0.1 * np.array(C_steps)),
                                response_times=(0.0, 1.0), chi_times=(0.5,), gap_times=())
    result = simulate(problem, options)
    data = mixture_data(problem, d, seed)
    W, P = iterate(problem, data, data["dynamics"], square, pulses, constants)
    expected = expected_observables(problem, W, P, data, "square", pulses, C_steps,
                                    lambda m, q: closed_form_test_error(problem.dataset, m, q))
    assert_round_off(result, expected)
    assert np.all(result.R[np.array(pulses) + 1, [0, 1]] == pytest.approx(1.0, rel=1e-12))
    plain, _ = iterate(problem, data, data["dynamics"], square, beta=0.0)
    assert np.max(np.abs(plain @ data["v"] / d - result.m)) > 1e-2  # momentum matters here


@pytest.mark.physics
def test_momentum_persistent_sgd_langevin_two_replicas_is_the_update_rule():
    """Persistent SGD (b = 0.4, tau = 0.5, batch average), T = 0.05, ridge 0.2, beta = 0.8,
    two replicas, square loss, d = 100: m, C, R, chi, losses, errors and the replica
    distance against the rule iterated here with the selections and Langevin noises of
    both replicas' streams, to round-off. Detects the Langevin noise kept out of the
    velocity (or added twice: once to w and once through beta (w_k - w_{k-1}) wrongly
    scaled), the second replica without momentum or sharing the first one's velocity, the
    momentum term applied before the selection of the step, and the tangent runs' velocity
    not following the selections."""
    problem = dmft.Problem.from_flat(dataset="gmm2", rho=0.5, alpha=2.0, delta=0.5, loss="square",
                                     algorithm="persistent-sgd", batch_fraction=0.4, persistence_time=0.5,
                                     batch_average=True, temperature=0.05, ridge=0.2, dt=0.1, momentum=0.8, steps=30)
    d, seed = 100, 23
    pulses, constants, C_steps = (5,), (0,), (0, 12)
    options = SimulationOptions(dimension=d, seeds=1, seed=seed, replicas=2, correlation_times=(0.0, 1.2),
                                response_times=(0.5,), chi_times=(0.0,), gap_times=())
    result = simulate(problem, options)
    data = mixture_data(problem, d, seed)
    W, P = iterate(problem, data, data["dynamics"], square, pulses, constants)
    W_b, _ = iterate(problem, data, data["replica"], square)
    expected = expected_observables(problem, W, P, data, "square", pulses, C_steps,
                                    lambda m, q: closed_form_test_error(problem.dataset, m, q))
    expected["distance"] = np.sum((W - W_b) ** 2, axis=1) / d
    assert_round_off(result, expected)
    assert expected["distance"][-1] > 0.01  # the replicas did separate
    plain, _ = iterate(problem, data, data["dynamics"], square, beta=0.0)
    assert np.max(np.abs(plain @ data["v"] / d - result.m)) > 1e-2


def test_zero_momentum_is_the_code_path_of_before():
    """momentum = 0 given explicitly and momentum omitted: identical arrays (beta = 0 skips
    the velocity, so the numbers are those of the simulator before momentum existed; the
    exact-trajectory tests of test_simulator_independence_runs.py pin them). Persistent
    SGD with Langevin noise, two replicas, tangent runs and finite-field twins."""
    flat = dict(algorithm="persistent-sgd", loss="logistic", temperature=0.05, steps=12)
    for response_field in (0.0, 1e-3):
        options = SimulationOptions(dimension=50, seeds=2, seed=3, replicas=2, response_field=response_field,
                                    gap_times=(0.6,))
        omitted = simulate(dmft.Problem.from_flat(**flat), options)
        zero = simulate(dmft.Problem.from_flat(**flat, momentum=0.0), options)
        for name in OBSERVABLES:
            np.testing.assert_array_equal(getattr(zero, name), getattr(omitted, name), err_msg=name)
        assert zero.gaps.keys() == omitted.gaps.keys() and len(zero.gaps) == 1
        for t in zero.gaps:
            np.testing.assert_array_equal(zero.gaps[t], omitted.gaps[t])


def test_vanishing_momentum_through_the_velocity_agrees_with_zero_momentum():
    """beta = 1e-300 > 0 runs the velocity code path, whose every other term (ridge,
    gradient, Langevin noise of both replicas, the fields of tangent runs switched on at
    different updates, twins sharing the noise) must reproduce the beta = 0 path to
    round-off (twins: R divides the round-off by eps dt). Detects errors of the velocity
    path that do not go through beta: a field or a noise counted twice (added to W and to
    V) or lost, tangent columns whose field is switched on but not moved into W, the ridge
    applied twice. (What does go through beta is checked by the exact trajectories.)"""
    flat = dict(algorithm="persistent-sgd", loss="logistic", temperature=0.05, steps=12, ridge=0.1)
    times = dict(correlation_times=(0.0, 0.5), response_times=(0.0, 0.3, 0.3, 0.8), chi_times=(0.3, 0.5))
    for response_field, atol in ((0.0, 1e-12), (1e-3, 1e-9)):
        options = SimulationOptions(dimension=50, seeds=2, seed=4, replicas=2, response_field=response_field, **times)
        zero = simulate(dmft.Problem.from_flat(**flat), options)
        tiny = simulate(dmft.Problem.from_flat(**flat, momentum=1e-300), options)
        for name in OBSERVABLES:
            np.testing.assert_allclose(getattr(tiny, name), getattr(zero, name), rtol=1e-10, atol=atol, err_msg=name)


@pytest.mark.physics
def test_momentum_finite_field_twins_agree_with_tangent_runs():
    """Like test_simulate.py's test without momentum: SGD at T = 0.1 with beta = 0.7,
    logistic loss; twins with a finite field eps = 1e-4 differ from the linearised runs by
    second-order terms, eps times the loss curvature (<= 1/4) times squared responses,
    which momentum carries up to R ~ 2.7 here: allowance 60 eps. Detects a
    tangent run whose momentum differs from the nonlinear run's (a velocity that is not
    the difference of consecutive tangent vectors, a pulse counted in the velocity of
    the wrong column): R off by O(beta), far above 60 eps = 6e-3."""
    problem = dmft.Problem.from_flat(algorithm="sgd", temperature=0.1, momentum=0.7, steps=15)
    tangent = simulate(problem, SimulationOptions(dimension=60, seeds=2))
    eps = 1e-4
    twin = simulate(problem, SimulationOptions(dimension=60, seeds=2, response_field=eps))
    np.testing.assert_allclose(tangent.m, twin.m, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(twin.R, tangent.R, rtol=0, atol=60 * eps)
    np.testing.assert_allclose(twin.chi, tangent.chi, rtol=0, atol=60 * eps)
    assert np.max(np.abs(twin.R - tangent.R)) > 0  # genuinely a different computation
    assert np.max(tangent.R) > 1.2  # momentum carries the pulse on: R overshoots 1


# ----------------------------------------------------------------------------- teacher-student


@pytest.mark.physics
@pytest.mark.parametrize("label_noise", [0.0, 0.2])
def test_teacher_student_labels_read_back_from_the_simulator(label_noise):
    """The simulator's own labels: at step 0 its gap is y h_0 with h_0 = x.w_0/sqrt(d), and
    x, w_0 are rebuilt here from the streams, so y = sign(gap h_0); the teacher field
    t = v.x/sqrt(d) is rebuilt too (|gap| = |h_0| to round-off first checks that x is).
    40 seeds of n = 500 (d = 100, alpha = 5): 20 000 labels.

    label_noise = 0: y = sign(t) for every sample. label_noise = 0.2: the flipped fraction
    in 4 bins (t > 0 or < 0, |t| below or above its median) and overall, each binomial
    (standard errors 0.0057 per bin, 0.0028 overall): detects a flip probability off by
    0.011 (5% of it: e.g. p/2 or 1 - p), flips that depend on the sign of t (one class
    flipped) or on |t| (margin noise, a bin off by 0.021), and labels taken from the
    noisy field instead of the clean teacher."""
    d, seeds, seed = 100, 40, 31
    problem = dmft.Problem.from_flat(dataset="teacher-student", alpha=5.0, label_noise=label_noise, loss="logistic",
                                     algorithm="gd", steps=1)
    result = simulate(problem, SimulationOptions(dimension=d, seeds=seeds, seed=seed, correlation_times=(),
                                                 response_times=(), chi_times=(), gap_times=(0.0,)))
    n = round(problem.dataset.alpha * d)
    gaps = result.gaps[0.0].reshape(seeds, n)
    labels, fields = [], []
    for index in range(seeds):
        data = teacher_data(problem, d, seed, index, seeds)
        h0 = data["A"] @ data["w0"]
        np.testing.assert_allclose(np.abs(gaps[index]), np.abs(h0), rtol=1e-12, atol=1e-14)
        labels.append(np.sign(gaps[index] * h0))
        fields.append(data["t"])
    y, t = np.concatenate(labels), np.concatenate(fields)
    flipped = y != np.sign(t)
    if label_noise == 0.0:
        assert not np.any(flipped)
        return
    z = {"all": binomial_z(np.count_nonzero(flipped), flipped.size, label_noise)}
    small = np.abs(t) < np.median(np.abs(t))
    for sign in (1, -1):
        for name, part in (("small", small), ("large", ~small)):
            chosen = part & (np.sign(t) == sign)
            z[f"{sign:+d} {name}"] = binomial_z(np.count_nonzero(flipped[chosen]), np.count_nonzero(chosen),
                                                label_noise)
    assert max(abs(value) for value in z.values()) < threshold(5), z


def teacher_problem(momentum: float) -> dmft.Problem:
    return dmft.Problem.from_flat(dataset="teacher-student", alpha=3.0, label_noise=0.2, loss="logistic",
                                  algorithm="sgd", batch_fraction=0.5, temperature=0.02, ridge=0.05, dt=0.2,
                                  momentum=momentum, init_variance=0.5, steps=30)


@pytest.mark.physics
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_teacher_student_trajectory_is_the_update_rule(momentum):
    """Teacher-student, label noise 0.2, logistic loss (nonlinear: the tangent runs use
    l''), SGD with T = 0.02, with and without momentum, d = 100: every observable, C, R
    and chi against the rebuild, to round-off; the simulator's test error is also
    ``Dataset.test_error`` (the DMFT's) to round-off. Detects inputs not isotropic
    (a Delta or a centre c v/sqrt(d) added), labels not from the same x, v or with the
    wrong flips, a wrong readout, and a test error using C for sqrt(C) or 1 - angle/pi."""
    problem = teacher_problem(momentum)
    d, seed = 100, 37
    pulses, constants, C_steps = (0, 10), (5,), (0, 15)
    options = SimulationOptions(dimension=d, seeds=1, seed=seed, correlation_times=(0.0, 3.0),
                                response_times=(0.0, 2.0), chi_times=(1.0,), gap_times=())
    result = simulate(problem, options)
    data = teacher_data(problem, d, seed)
    W, P = iterate(problem, data, data["dynamics"], logistic, pulses, constants)
    expected = expected_observables(problem, W, P, data, "logistic", pulses, C_steps, teacher_test_error)
    assert_round_off(result, expected)
    np.testing.assert_allclose(result.test_error, problem.dataset.test_error(result.m, result.self_overlap),
                               rtol=1e-12, atol=1e-14)
    assert expected["test_error"][-1] < 0.3  # it learns the teacher


@pytest.mark.physics
def test_teacher_student_observables_against_fresh_inputs():
    """The simulated m, |w|^2/d and test error at steps 0, 15 and 30 against 200 000 fresh
    inputs x ~ N(0, I_d): E[(w.x)(v.x)]/d, E[(w.x)^2]/d and P(sign(w.x) != sign(v.x)),
    with w the rebuilt trajectory (first checked to be the simulator's to round-off).
    Standard errors: binomial <= 1.1e-3 for the error (an error of 4.3e-3 is detected),
    sample ones 1.4e-3 to 1e-2 for m and |w|^2/d (1 to 3% of them); 9 comparisons.
    Detects a test error against the noisy labels instead of the clean teacher
    (+ 0.2 (1 - 2 eps)), the Gaussian-mixture formula Phi(-m/sqrt(C)) (checked below to be
    rejected), and m or |w|^2/d not normalised by d."""
    problem = teacher_problem(0.5)
    d, seed = 100, 37
    result = simulate(problem, SimulationOptions(dimension=d, seeds=1, seed=seed, **QUIET))
    data = teacher_data(problem, d, seed)
    W, _ = iterate(problem, data, data["dynamics"], logistic)
    v = data["v"]
    np.testing.assert_allclose(result.m, W @ v / d, **ROUND_OFF)
    rng = np.random.default_rng(2026)
    samples, block = 200_000, 50_000
    limit = threshold(9)
    for k in (0, 15, problem.steps):
        w = W[k]
        wrong, products, squares = 0, [], []
        for _ in range(samples // block):
            x = rng.standard_normal((block, d))
            student, teacher = x @ w / math.sqrt(d), x @ v / math.sqrt(d)
            wrong += int(np.count_nonzero(np.sign(student) != np.sign(teacher)))
            products.append(student * teacher)
            squares.append(student**2)
        products, squares = np.concatenate(products), np.concatenate(squares)
        z = {"test_error": binomial_z(wrong, samples, result.test_error[k])}
        for name, values in (("m", products), ("self_overlap", squares)):
            z[name] = (values.mean() - getattr(result, name)[k]) / (values.std(ddof=1) / math.sqrt(samples))
        assert max(abs(value) for value in z.values()) < limit, (k, z)
        if k > 0:  # the check has teeth: the mixtures' formula is rejected
            mixture = float(ndtr(-result.m[k] / math.sqrt(result.self_overlap[k])))
            assert abs(binomial_z(wrong, samples, mixture)) > limit


@pytest.mark.parametrize("m, overlap", [(0.6, 1.5), (-0.3, 0.8), (0.95, 1.0), (0.0, 0.0)],
                         ids=["learning", "anti-aligned", "nearly-aligned", "zero-weights"])
def test_dataset_test_error_for_teacher_student_against_fresh_inputs(m, overlap):
    """``Dataset.test_error`` (used by the DMFT) for teacher-student against the fraction
    of 400 000 fresh x ~ N(0, I_d) with sign(w.x) != sign(v.x) (binomial standard error
    <= 7.9e-4: an error of 0.27 percentage points is detected, e.g. the angle taken from
    m / C instead of m / sqrt(C), or a label-noise term added). w = 0 predicts sign(0):
    the closed form's value there is the coin flip 1/2, checked exactly."""
    ds = dmft.Dataset(name="teacher-student", label_noise=0.1)
    closed = float(ds.test_error(np.array([m]), np.array([overlap]))[0])
    if overlap == 0.0:
        assert closed == 0.5
        return
    rng = np.random.default_rng(77)
    d = 10  # the law of the two fields is exact at any d
    v = rng.standard_normal(d)
    v *= math.sqrt(d) / np.linalg.norm(v)
    u = rng.standard_normal(d)
    u -= (u @ v) / d * v
    u *= math.sqrt(d) / np.linalg.norm(u)
    w = m * v + math.sqrt(overlap - m * m) * u
    samples = 400_000
    x = rng.standard_normal((samples, d))
    wrong = np.count_nonzero(np.sign(x @ w) != np.sign(x @ v))
    assert abs(binomial_z(wrong, samples, closed)) < threshold(), (closed, wrong / samples)
    assert closed == pytest.approx(math.acos(m / math.sqrt(overlap)) / math.pi, rel=1e-12)
