"""Direct simulation of the learning dynamics at finite dimension d (docs/theory.md §1).

The simulator runs the algorithm exactly as defined on the same ``dmft.Problem`` the
DMFT solver takes, reusing the mixtures' label law, the algorithm's selection process
and the numba loss terms, so that the two can only disagree through finite-d effects,
Monte Carlo error or a bug. The teacher-student data and test error are written here
from the model's definition, independently of ``dmft.datasets``.

Per seed: fresh data, fresh w_0, fresh selections and Langevin noise, all from
``np.random.SeedSequence(seed).spawn(seeds)``; each seed's sequence spawns five streams
(data, w_0, dynamics, replica, kick). The data stream gives, in this order: mixtures, v
(rescaled to |v|^2 = d), the pairs (c, y) of ``Dataset.draw_labels`` and the noise z, with
x = c v / sqrt(d) + sqrt(Delta) z; teacher-student, the teacher v (|v|^2 = d), the inputs
x ~ N(0, I_d) and one uniform u per sample, with y = sign(v.x / sqrt(d)) flipped where
u < label_noise (docs/theory.md §1, "Data"). Every step costs two BLAS matrix products
``X @ W`` and ``X.T @ F`` where the columns of W are the main run, the optional second
replica and the response runs, advanced in lockstep with the same selections and noise
(memory O(n d + columns d)).

The update (docs/theory.md §1, "The update rule") is, for every column,

    w_{k+1} = w_k - dt [ridge w_k + (1/B) sum_mu s_mu(k) l'(y_mu, h_mu(k)) x_mu / sqrt(d)]
              + beta (w_k - w_{k-1}) + sqrt(2 T dt) xi_k + (fields),     w_{-1} = w_0,

with heavy-ball ``momentum`` beta; with beta > 0 the velocity w_{k+1} - w_k (which
contains the noise and the fields) is kept as one more d x columns array. With beta = 0
the update is computed as w_k (1 - dt ridge) - dt gradient, without the velocity.

Responses. ``R[k, j]`` is the response of w_k to a field added at update j
(w_{j+1} += dt eps kick), normalised so that R[j+1, j] = 1: the kick is a Gaussian
direction rescaled to |kick|^2 = d, and R[k, j] = dw_k(eps).kick / (eps d dt), an
unbiased estimate of Tr(dw_k/dfield_j)/d. ``chi[k, j] = dt sum_{i=j}^{k-1} R[k, i]`` is
measured directly by a run with the field on at every update i >= j. With
``response_field = 0`` (default) the response runs are linearised (tangent) runs, the
exact eps -> 0 limit of the twin runs (a tangent run and its velocity start at 0); with
``response_field = eps > 0`` they are genuine twin runs with a finite field (nonlinear,
O(eps) bias), useful as a check.
"""

from __future__ import annotations

import math
import time as _time
from typing import Any, Callable

import numpy as np

from .errors import DivergenceError
from .loss_kernels import loss_terms_array
from .problem import DIVERGENCE_BOUND, Problem
from .result import SimulationResult
from .simulation_options import (MAX_DATA_BYTES, SIMULATION_KEYS, TIME_OPTIONS, SimulationOptions, sample_count,
                                 time_steps)
from .statistics import mean_and_stderr

# Observables averaged over seeds, with a standard error each.
SIM_OBSERVABLES = ("m", "self_overlap", "C", "R", "chi", "train_loss", "train_error", "test_error", "distance")

Progress = Callable[[int, int], None]


def simulate(problem: Problem, options: SimulationOptions | None = None,
             progress: Progress | None = None) -> SimulationResult:
    """Simulate ``problem`` at dimension ``options.dimension`` over ``options.seeds`` seeds.

    ``progress(done, total)`` is called after every step of every seed.
    """
    options = (options or SimulationOptions()).resolve(problem)
    start = _time.perf_counter()
    total = options.seeds * (problem.steps + 1)
    runs = []
    for index, seed in enumerate(np.random.SeedSequence(options.seed).spawn(options.seeds)):
        offset = index * (problem.steps + 1)
        seed_progress = None
        if progress is not None:
            seed_progress = lambda done, _total, offset=offset: progress(offset + done, total)  # noqa: E731
        runs.append(_simulate_seed(problem, options, seed, seed_progress))
    return _combine(problem, options, runs, _time.perf_counter() - start)


def _simulate_seed(problem: Problem, options: SimulationOptions, seed: np.random.SeedSequence,
                   progress: Progress | None) -> dict[str, Any]:
    """One seed: draw data, w_0, kick; run the main, replica and response columns in lockstep."""
    d = options.dimension
    n = sample_count(problem, d)
    ds, loss, algorithm = problem.dataset, problem.loss, problem.algorithm
    dt, n_steps = problem.dt, problem.steps
    decay = 1.0 - dt * problem.ridge
    noise_scale = math.sqrt(2.0 * algorithm.temperature * dt)
    inv_b = 1.0 / algorithm.gradient_divisor
    loss_args = (loss.code, ds.readout_code, loss.margin, loss.sharpness, ds.theta)
    data_seed, init_seed, dynamics_seed, replica_seed, kick_seed = seed.spawn(5)

    # Data. X is stored already divided by sqrt(d) so that h = X @ w.
    data_rng = np.random.default_rng(data_seed)
    v = data_rng.standard_normal(d)
    v *= math.sqrt(d) / np.linalg.norm(v)
    if ds.teacher:
        X, y = _teacher_student_data(data_rng, v, n, ds.label_noise)
    else:
        c, y = ds.draw_labels(data_rng, n)
        X = data_rng.standard_normal((n, d))
        X *= math.sqrt(ds.delta)
        for rows_ in range(0, n, 1024):  # in blocks: no second n x d temporary
            X[rows_:rows_ + 1024] += np.outer(c[rows_:rows_ + 1024], v / math.sqrt(d))
        X /= math.sqrt(d)
    w0 = math.sqrt(problem.init_variance) * np.random.default_rng(init_seed).standard_normal(d)
    kick = np.random.default_rng(kick_seed).standard_normal(d)
    kick *= math.sqrt(d) / np.linalg.norm(kick)  # |kick|^2 = d exactly, so R[j+1, j] = 1

    # Columns of W: main run, [replica b], pulse runs (R), constant-field runs (chi).
    c_steps = time_steps(problem, "correlation_times", options.correlation_times)
    r_steps = time_steps(problem, "response_times", options.response_times)
    x_steps = time_steps(problem, "chi_times", options.chi_times)
    gap_steps = time_steps(problem, "gap_times", options.gap_times)
    replica = options.replicas == 2
    first_response = 2 if replica else 1
    # Response columns sorted by the update at which their field starts, so that the
    # tangent runs already under way are always a contiguous block (a view, no copy).
    starts = np.concatenate([r_steps, x_steps])
    constant = np.concatenate([np.zeros(len(r_steps), bool), np.ones(len(x_steps), bool)])
    order = np.argsort(starts, kind="stable")
    starts, constant = starts[order], constant[order]
    is_pulse = ~constant
    slot = np.empty(len(order), np.int64)  # slot[c]: index of column c in R (pulse) or chi (constant)
    slot[is_pulse] = order[is_pulse]
    slot[constant] = order[constant] - len(r_steps)
    ncol = first_response + len(starts)
    tangent = options.response_field == 0.0
    eps = 1.0 if tangent else options.response_field
    W = np.zeros((d, ncol))
    W[:, 0] = w0
    if replica:
        W[:, 1] = w0
    if not tangent:
        W[:, first_response:] = w0[:, None]  # twins start as copies of the main run
    beta = algorithm.momentum
    # With momentum the step goes first into the velocity V = w_{k+1} - w_k (V = 0 before
    # the first update: w_{-1} = w_0), then into W; without it, straight into W.
    V = np.zeros((d, ncol)) if beta > 0 else None
    step = W if V is None else V
    responses, response_steps = W[:, first_response:], step[:, first_response:]
    rng_a = np.random.default_rng(dynamics_seed)
    rng_b = np.random.default_rng(replica_seed)
    s_a = algorithm.initial_selection(rng_a, n)
    s_b = algorithm.initial_selection(rng_b, n) if replica else None

    rows = n_steps + 1
    out = {name: np.empty(rows) for name in ("m", "self_overlap", "train_loss", "train_error")}
    out["C"] = np.full((rows, len(c_steps)), np.nan)
    out["R"] = np.zeros((rows, len(r_steps)))
    out["chi"] = np.zeros((rows, len(x_steps)))
    out["distance"] = np.zeros(rows) if replica else None
    out["gaps"] = {}
    references = np.zeros((d, len(c_steps)))
    F = np.empty((n, ncol))

    for k in range(rows):
        w = W[:, 0]
        # A tangent run is zero up to update start + 1: leave it out of the products until then.
        n_active = first_response + int(np.searchsorted(starts, k, side="left")) if tangent else ncol
        H = X @ W[:, :n_active]
        value, d1, d2, gap = loss_terms_array(*loss_args, y, np.ascontiguousarray(H[:, 0]))
        # Observables of step k (before the update k -> k+1).
        out["m"][k] = w @ v / d
        out["self_overlap"][k] = w @ w / d
        out["train_loss"][k] = value.mean()
        out["train_error"][k] = np.mean(gap <= 0.0)
        references[:, c_steps == k] = w[:, None]
        recorded = c_steps <= k
        out["C"][k, recorded] = (w @ references[:, recorded]) / d
        if tangent:
            projections = kick @ responses / d
        else:
            projections = kick @ (responses - w[:, None]) / (eps * d)
        out["R"][k, slot[is_pulse]] = projections[is_pulse] / dt
        out["chi"][k, slot[constant]] = projections[constant]
        if replica:
            out["distance"][k] = np.sum((w - W[:, 1]) ** 2) / d
        if k in gap_steps:
            out["gaps"][float(k * dt)] = gap.copy()
        if progress is not None:
            progress(k + 1, rows)
        if k == n_steps:
            break

        # Forces F[mu, col] = s_mu l'(h_mu)/B (tangent runs: the linearisation s l'' dh/B).
        Fa = F[:, :n_active]
        Fa[:, 0] = s_a * d1 * inv_b
        if replica:
            d1_b = loss_terms_array(*loss_args, y, np.ascontiguousarray(H[:, 1]))[1]
            Fa[:, 1] = s_b * d1_b * inv_b
        if tangent:
            np.multiply((s_a * d2 * inv_b)[:, None], H[:, first_response:], out=Fa[:, first_response:])
        else:
            for col in range(first_response, ncol):
                Fa[:, col] = s_a * loss_terms_array(*loss_args, y, np.ascontiguousarray(H[:, col]))[1] * inv_b
        active = W[:, :n_active]
        if V is None:
            active *= decay
            active -= dt * (X.T @ Fa)
        else:
            velocity = V[:, :n_active]
            velocity *= beta
            if problem.ridge != 0.0:
                velocity -= (dt * problem.ridge) * active
            velocity -= dt * (X.T @ Fa)
        if noise_scale > 0:
            xi = noise_scale * rng_a.standard_normal(d)
            step[:, 0] += xi
            if not tangent:
                response_steps += xi[:, None]  # twins share the main run's noise
            if replica:
                step[:, 1] += noise_scale * rng_b.standard_normal(d)
        # Fields: a pulse at update j for R, a constant field from update j on for chi.
        on = np.flatnonzero((starts == k) | (constant & (starts <= k)))
        if on.size:
            response_steps[:, on] += (dt * eps) * kick[:, None]
        if V is not None:
            # Columns past these (tangent runs not started yet) are 0 in W and V: nothing to add.
            moved = max(n_active, first_response + int(on.max()) + 1) if on.size else n_active
            W[:, :moved] += V[:, :moved]
        _check_finite(k + 1, W[:, :first_response])
        s_a = algorithm.next_selection(rng_a, s_a, dt)
        if replica:
            s_b = algorithm.next_selection(rng_b, s_b, dt)

    if ds.teacher:
        out["test_error"] = _teacher_test_error(out["m"], out["self_overlap"])
    else:
        out["test_error"] = ds.test_error(out["m"], out["self_overlap"])
    out["samples"] = n
    return out


def _teacher_student_data(rng: np.random.Generator, v: np.ndarray, n: int,
                          label_noise: float) -> tuple[np.ndarray, np.ndarray]:
    """X = x / sqrt(d) for x ~ N(0, I_d) and y = sign(v.x / sqrt(d)), each flipped with
    probability ``label_noise`` (docs/theory.md §1, "Data")."""
    d = v.shape[0]
    X = rng.standard_normal((n, d))
    X /= math.sqrt(d)
    teacher_field = X @ v
    flip = rng.random(n) < label_noise
    y = np.where(teacher_field > 0, 1.0, -1.0)
    y[flip] = -y[flip]
    return X, y


def _teacher_test_error(m: np.ndarray, self_overlap: np.ndarray) -> np.ndarray:
    """P(sign(w.x) != sign(v.x)) for fresh x ~ N(0, I_d): the two fields are Gaussian with
    correlation m / sqrt(|w|^2/d) (|v|^2 = d), so the error is the angle over pi; 1/2 at w = 0."""
    norm = np.sqrt(self_overlap)
    cosine = np.divide(m, norm, out=np.zeros_like(m), where=norm > 0)
    return np.arccos(np.clip(cosine, -1.0, 1.0)) / np.pi


def _check_finite(k: int, W: np.ndarray) -> None:
    overlap = np.einsum("ij,ij->j", W, W) / W.shape[0]
    if not np.all(np.isfinite(overlap)):
        raise DivergenceError(k, "the simulated weights are not finite: the dynamics diverged (try a smaller --dt)")
    if np.any(overlap > DIVERGENCE_BOUND):
        raise DivergenceError(k, f"|w|^2/d = {overlap.max():.3g} exceeds {DIVERGENCE_BOUND:g}: the dynamics "
                                 "diverged (try a smaller --dt)")


def _combine(problem: Problem, options: SimulationOptions, runs: list[dict[str, Any]],
             wall_time: float) -> SimulationResult:
    arrays: dict[str, Any] = {}
    stderr: dict[str, np.ndarray] = {}
    for name in SIM_OBSERVABLES:
        if runs[0][name] is None:
            arrays[name] = None
            continue
        arrays[name], stderr[name] = mean_and_stderr([run[name] for run in runs])
    gaps = {t: np.concatenate([run["gaps"][t] for run in runs]) for t in runs[0]["gaps"]}
    diagnostics = {"wall_time": wall_time, "samples": runs[0]["samples"]}
    return SimulationResult(
        problem=problem, options=options, time=problem.time,
        C_times=np.asarray(options.correlation_times, float), R_times=np.asarray(options.response_times, float),
        chi_times=np.asarray(options.chi_times, float), gaps=gaps, stderr=stderr, diagnostics=diagnostics,
        **arrays,
    )


__all__ = ["MAX_DATA_BYTES", "SIMULATION_KEYS", "TIME_OPTIONS", "SimulationOptions", "SimulationResult",
           "sample_count", "simulate", "time_steps"]
