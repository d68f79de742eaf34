"""numba kernels of the effective-sample population (THEORY.md sections 2-4).

Storage is sample-major (one contiguous row of times per sample), so the memory sums
of one sample stream one row. Samples are grouped in fixed chunks, each chunk owned by
one thread and accumulated in its own row: the summation order, hence every number,
does not depend on the number of threads.

``params`` packs the floats (dt, sqrt(Delta), Delta, 1/B, margin, sharpness, theta)
and ``codes`` the integers (loss, readout) so the signatures stay short.
"""

from __future__ import annotations

import math
import types

import numba
import numpy as np
from numba import prange

from ..losses import loss_terms

# Reassociation lets LLVM vectorise the dot-product reductions (otherwise bound by the
# latency of dependent adds); no nnan/ninf, so NaN and overflow still propagate and are caught.
# The order is fixed by the code, so results stay reproducible.
FAST = {"reassoc", "contract"}

DT, SQRT_DELTA, DELTA, INV_B, MARGIN, SHARPNESS, THETA = range(7)
LOSS, READOUT = range(2)
# Observables accumulated per chunk besides the kernel rows.
OBS_MU_HAT, OBS_LOSS, OBS_ERROR = range(3)
N_OBS = 3


def pack_params(dt, delta, gradient_divisor, margin, sharpness, theta, loss_code, readout_code):
    params = np.array([dt, math.sqrt(delta), delta, 1.0 / gradient_divisor, margin, sharpness, theta])
    codes = np.array([loss_code, readout_code], dtype=np.int64)
    return params, codes


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _gaussian(a, k, L_row, zeta):
    """g_k = sum_{j<=k} L[k,j] zeta_j of sample a."""
    g = 0.0
    for j in range(k + 1):
        g += L_row[j] * zeta[a, j]
    return g


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _output(a, k, g, memory, m_k, params, codes, c, y, s_k, f):
    """Sample a at step k from g_k and memory = sum_{j<k} R[k,j] f_j: (h_k, l, f_k, lam_k, gap).

    u_k = g_k - dt sqrt(Delta) memory, h_k = c m_k + sqrt(Delta) u_k, f_k = s(k) l'/B,
    lam_k = s(k) l''/B; stores f_k.
    """
    u = g - params[DT] * params[SQRT_DELTA] * memory
    h = c[a] * m_k + params[SQRT_DELTA] * u
    value, d1, d2, gap = loss_terms(
        codes[LOSS], codes[READOUT], params[MARGIN], params[SHARPNESS], params[THETA], y[a], h
    )
    scale = s_k[a] * params[INV_B]
    f[a, k] = scale * d1
    # Use the stored (possibly float32-rounded) value everywhere, so Gamma_C stays an exact
    # Gram matrix: float32 products are exact in float64, and C stays positive semi-definite.
    return h, value, np.float64(f[a, k]), scale * d2, gap


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _forward_from_g(a, k, g, R_row, m_k, params, codes, c, y, s_k, f):
    """Advance sample a to step k given g_k: returns (h_k, l, f_k, lam_k, gap) and stores f_k."""
    memory = 0.0
    for j in range(k):
        memory += R_row[j] * f[a, j]
    return _output(a, k, g, memory, m_k, params, codes, c, y, s_k, f)


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _forward_sample(a, k, L_row, R_row, m_k, params, codes, c, y, s_k, zeta, f):
    return _forward_from_g(a, k, _gaussian(a, k, L_row, zeta), R_row, m_k, params, codes, c, y, s_k, f)


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _probe_tangents(a, k, lam_k, R_row, dt_delta, probes, lam_du, acc_response, ch, weight_scale, first_probe=0):
    """Propagate the random-probe tangents of sample a to step k, accumulate its response row.

    du_k = pi_k - dt Delta sum_{i<k} R[k,i] lam_i du_i; the row gets lam_k (du_k - pi_k) pi_j
    for j < k (own probe removed), scaled by ``weight_scale`` / n_probes. Probes before
    ``first_probe`` are left to the caller.
    """
    n_probes = probes.shape[1]
    for p in range(first_probe, n_probes):
        tangent_memory = 0.0
        for i in range(k):
            tangent_memory += R_row[i] * lam_du[a, p, i]
        deviation = -dt_delta * tangent_memory  # du_k - pi_k
        lam_du[a, p, k] = lam_k * (probes[a, p, k] + deviation)
        weight = weight_scale * lam_k * deviation / n_probes
        if weight != 0.0:
            for j in range(k):
                acc_response[ch, j] += weight * probes[a, p, j]


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _accumulate_common(ch, a, k, f_k, value, gap, c, f, acc_gamma, acc_obs):
    for j in range(k + 1):
        acc_gamma[ch, j] += f_k * f[a, j]
    acc_obs[ch, OBS_MU_HAT] += c[a] * f_k
    acc_obs[ch, OBS_LOSS] += value
    if gap <= 0.0:
        acc_obs[ch, OBS_ERROR] += 1.0


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _zero_chunk(ch, k, acc_gamma, acc_response, acc_obs):
    for j in range(k + 1):
        acc_gamma[ch, j] = 0.0
        acc_response[ch, j] = 0.0
    for o in range(N_OBS):
        acc_obs[ch, o] = 0.0


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def population_step_probe(
    k, L_row, R_row, m_k, params, codes, c, y, s_k, zeta, f, probes, lam_du, chunk_starts,
    acc_gamma, acc_response, acc_obs, h_out,
):
    """Step k of every sample with random-probe responses (THEORY.md section 3).

    du_k = pi_k - dt Delta sum_{i<k} R[k,i] lam_i du_i; the response row accumulates
    lam_k (du_k - pi_k) pi_j for j < k (own probe removed) and lam_k on the diagonal.
    """
    # The march is bound by passes over each sample's row, so they are fused: one pass for
    # the three sums that do not need f_k (Gaussian path, memory, first probe's tangent), one
    # for the two accumulations that do. Further probes take the generic route.
    n_probes = probes.shape[1]
    dt_delta = params[DT] * params[DELTA]
    for ch in prange(chunk_starts.shape[0] - 1):
        _zero_chunk(ch, k, acc_gamma, acc_response, acc_obs)
        for a in range(chunk_starts[ch], chunk_starts[ch + 1]):
            g = L_row[k] * zeta[a, k]
            memory = 0.0
            tangent_memory = 0.0
            for j in range(k):
                g += L_row[j] * zeta[a, j]
                memory += R_row[j] * f[a, j]
                tangent_memory += R_row[j] * lam_du[a, 0, j]
            h, value, f_k, lam_k, gap = _output(a, k, g, memory, m_k, params, codes, c, y, s_k, f)
            h_out[a] = h
            deviation = -dt_delta * tangent_memory  # du_k - pi_k of the first probe
            lam_du[a, 0, k] = lam_k * (probes[a, 0, k] + deviation)
            weight = lam_k * deviation / n_probes
            for j in range(k):
                acc_gamma[ch, j] += f_k * f[a, j]
                acc_response[ch, j] += weight * probes[a, 0, j]
            acc_gamma[ch, k] += f_k * f_k
            acc_response[ch, k] += lam_k
            acc_obs[ch, OBS_MU_HAT] += c[a] * f_k
            acc_obs[ch, OBS_LOSS] += value
            if gap <= 0.0:
                acc_obs[ch, OBS_ERROR] += 1.0
            if n_probes > 1:
                _probe_tangents(a, k, lam_k, R_row, dt_delta, probes, lam_du, acc_response, ch, 1.0, 1)


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def population_step_exact(
    k, L_row, R_row, m_k, params, codes, c, y, s_k, zeta, f, lam_S, chunk_starts,
    acc_gamma, acc_response, acc_obs, h_out,
):
    """Step k of every sample with the exact tangent matrix S[k,j] = du_k/dP_j.

    S[k,j] = delta_kj - dt Delta sum_{j<=i<k} R[k,i] lam_i S[i,j]; stores lam_k S[k,j].
    O(k^2) per sample per step: the reference for small problems.
    """
    dt_delta = params[DT] * params[DELTA]
    for ch in prange(chunk_starts.shape[0] - 1):
        _zero_chunk(ch, k, acc_gamma, acc_response, acc_obs)
        for a in range(chunk_starts[ch], chunk_starts[ch + 1]):
            h, value, f_k, lam_k, gap = _forward_sample(a, k, L_row, R_row, m_k, params, codes, c, y, s_k, zeta, f)
            h_out[a] = h
            _accumulate_common(ch, a, k, f_k, value, gap, c, f, acc_gamma, acc_obs)
            for j in range(k + 1):
                tangent_memory = 0.0
                for i in range(j, k):
                    tangent_memory += R_row[i] * lam_S[a, i, j]
                S_kj = (1.0 if j == k else 0.0) - dt_delta * tangent_memory
                lam_S[a, k, j] = lam_k * S_kj
                acc_response[ch, j] += lam_k * S_kj


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def population_step_two_replicas(
    k, L_plus_row, L_minus_row, R_row, m_k, params, codes, c, y, s_a, s_b, zeta_plus, zeta_minus, f_a, f_b,
    probes_a, probes_b, lam_du_a, lam_du_b, chunk_starts, acc_gamma, acc_gamma_minus, acc_response, acc_obs,
    h_a, h_b,
):
    """Step k of two replicas per sample (THEORY.md section 7), random-probe responses.

    g^a = (g+ + g-)/sqrt(2), g^b = (g+ - g-)/sqrt(2) with g+ ~ C + C_ab and g- ~ C - C_ab
    independent. Kernels are estimated symmetrically: Gamma_C from (f^a f^a + f^b f^b)/2,
    Gamma_C - Gamma_ab from (f^a - f^b)(f^a - f^b)/2 (positive semi-definite by
    construction), K, mu_hat and the observables from the mean of both replicas.

    g^a and g^b are stored in h_a, h_b by a first pass over the chunk and read back by the
    second, so that fast-math cannot regroup (g+ +- g-)/sqrt(2) with the sums that follow:
    it did so differently for the two signs, and GD replicas (g- = 0) came out unequal in
    the last bit. Read back, both replicas go through the same expressions.
    """
    dt_delta = params[DT] * params[DELTA]
    root_half = math.sqrt(0.5)
    for ch in prange(chunk_starts.shape[0] - 1):
        _zero_chunk(ch, k, acc_gamma, acc_response, acc_obs)
        for j in range(k + 1):
            acc_gamma_minus[ch, j] = 0.0
        for a in range(chunk_starts[ch], chunk_starts[ch + 1]):
            g_plus = _gaussian(a, k, L_plus_row, zeta_plus)
            g_minus = _gaussian(a, k, L_minus_row, zeta_minus)
            h_a[a] = root_half * (g_plus + g_minus)
            h_b[a] = root_half * (g_plus - g_minus)
        for a in range(chunk_starts[ch], chunk_starts[ch + 1]):
            ha, value_a, fa, lam_a, gap_a = _forward_from_g(a, k, h_a[a], R_row, m_k, params, codes, c, y, s_a, f_a)
            hb, value_b, fb, lam_b, gap_b = _forward_from_g(a, k, h_b[a], R_row, m_k, params, codes, c, y, s_b, f_b)
            h_a[a] = ha
            h_b[a] = hb
            for j in range(k + 1):
                acc_gamma[ch, j] += 0.5 * (fa * f_a[a, j] + fb * f_b[a, j])
                acc_gamma_minus[ch, j] += 0.5 * (fa - fb) * (np.float64(f_a[a, j]) - np.float64(f_b[a, j]))
            acc_obs[ch, OBS_MU_HAT] += 0.5 * c[a] * (fa + fb)
            acc_obs[ch, OBS_LOSS] += 0.5 * (value_a + value_b)
            acc_obs[ch, OBS_ERROR] += 0.5 * ((1.0 if gap_a <= 0.0 else 0.0) + (1.0 if gap_b <= 0.0 else 0.0))
            acc_response[ch, k] += 0.5 * (lam_a + lam_b)
            _probe_tangents(a, k, lam_a, R_row, dt_delta, probes_a, lam_du_a, acc_response, ch, 0.5)
            _probe_tangents(a, k, lam_b, R_row, dt_delta, probes_b, lam_du_b, acc_response, ch, 0.5)


# The same kernels compiled without threads: for small populations the cost of waking the
# thread pool at every step (milliseconds on a busy machine) exceeds the work itself.
# Chunks fix the summation order, so both versions give identical numbers.
def _serial(kernel: numba.core.registry.CPUDispatcher) -> numba.core.registry.CPUDispatcher:
    """A single-threaded compilation of ``kernel`` under its own name.

    numba names cache files after the Python function's qualified name and line, and
    does not key them on ``parallel``: compiling the same Python function twice would
    make both dispatchers share one cache entry, and the parallel kernel would load the
    serial machine code (seen: no speed-up from the second core). A renamed copy of the
    function gets its own cache file.
    """
    original = kernel.py_func
    copy = types.FunctionType(original.__code__, original.__globals__, original.__name__ + "_serial",
                              original.__defaults__, original.__closure__)
    copy.__qualname__ = original.__qualname__ + "_serial"
    copy.__module__ = original.__module__
    return numba.njit(cache=True, fastmath=FAST)(copy)


population_step_probe_serial = _serial(population_step_probe)
population_step_exact_serial = _serial(population_step_exact)
population_step_two_replicas_serial = _serial(population_step_two_replicas)
# Below this many sample-steps of work (samples x (k + 1)) a step runs on one thread.
PARALLEL_THRESHOLD = 200_000


@numba.njit(cache=True, fastmath=FAST)
def cholesky_row(C, L, k, relative_threshold):
    """Row k of the semidefinite Cholesky factor L of C (L L^T = C), from the rows before.

    A pivot whose squared value falls below ``relative_threshold * C[k,k]`` is taken as
    zero: that direction is already spanned by earlier rows (THEORY.md section 4). No
    jitter is added. Returns the squared pivot before thresholding, so the caller can
    detect a loss of positive semi-definiteness beyond round-off.
    """
    for j in range(k):
        if L[j, j] == 0.0:
            L[k, j] = 0.0
            continue
        s = C[k, j]
        for i in range(j):
            s -= L[k, i] * L[j, i]
        L[k, j] = s / L[j, j]
    d = C[k, k]
    for i in range(k):
        d -= L[k, i] * L[k, i]
    if d > relative_threshold * C[k, k] and d > 0.0:
        L[k, k] = math.sqrt(d)
    else:
        L[k, k] = 0.0
    return d


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def advance_weight_rows(k, decay, dt, langevin, init_variance, K, R, A, m, mu_hat, Gamma, C, Gamma_minus, C_minus):
    """Step k+1 of the weight side from kernel rows 0..k (THEORY.md section 2).

    A_{k+1}, m_{k+1}, R[k+1, :] and C[k+1, :k+2] (and C - C_ab when ``C_minus`` has rows),
    reading only the triangles that can be nonzero: R is strictly lower triangular and
    Gamma symmetric, so each step streams 1.5 k^2 numbers instead of 3 k^2.
    ``langevin`` = 2 T dt.
    """
    two_replicas = C_minus.shape[0] > 0
    a_sum = 0.0
    m_sum = 0.0
    for j in range(k + 1):
        a_sum += K[k, j] * A[j]
        m_sum += K[k, j] * m[j]
    A[k + 1] = decay * A[k] - dt * a_sum
    m[k + 1] = decay * m[k] - dt * mu_hat[k] - dt * m_sum
    # R[k+1, i] = decay R[k, i] - dt sum_{i<j<=k} K[k, j] R[j, i], row by row of R.
    for i in range(k + 1):
        R[k + 1, i] = decay * R[k, i]
    for j in range(1, k + 1):
        weight = -dt * K[k, j]
        if weight != 0.0:
            for i in range(j):
                R[k + 1, i] += weight * R[j, i]
    R[k + 1, k] = 1.0
    # noise = (dt^2 Gamma + 2 T dt) r with r = R[k+1, :k+1], from the lower triangle of Gamma.
    dt2 = dt * dt
    noise = np.empty(k + 1)
    noise_minus = np.empty(k + 1 if two_replicas else 0)
    for i in range(k + 1):
        noise[i] = (langevin + dt2 * Gamma[i, i]) * R[k + 1, i]
        if two_replicas:
            noise_minus[i] = (langevin + dt2 * Gamma_minus[i, i]) * R[k + 1, i]
    for i in range(1, k + 1):
        r_i = R[k + 1, i]
        s = 0.0
        for j in range(i):
            s += Gamma[i, j] * R[k + 1, j]
            noise[j] += dt2 * Gamma[i, j] * r_i
        noise[i] += dt2 * s
        if two_replicas:
            s = 0.0
            for j in range(i):
                s += Gamma_minus[i, j] * R[k + 1, j]
                noise_minus[j] += dt2 * Gamma_minus[i, j] * r_i
            noise_minus[i] += dt2 * s
    # C[k+1, j'] = s0^2 A_{k+1} A_j' + m_{k+1} m_j' + sum_{i<j'} R[j', i] noise_i: rows are independent.
    for jp in prange(k + 2):
        s = 0.0
        s_minus = 0.0
        for i in range(jp if jp <= k else k + 1):
            s += R[jp, i] * noise[i]
            if two_replicas:
                s_minus += R[jp, i] * noise_minus[i]
        value = init_variance * A[k + 1] * A[jp] + m[k + 1] * m[jp] + s
        C[k + 1, jp] = value
        C[jp, k + 1] = value
        if two_replicas:
            C_minus[k + 1, jp] = s_minus
            C_minus[jp, k + 1] = s_minus
