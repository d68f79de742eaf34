"""numba kernels of the effective-sample population (THEORY.md sections 2-4).

Samples are grouped in fixed chunks, each owned by one thread and accumulated in its own
row: the summation order, hence every number, does not depend on the number of threads.
Storage is chunk-major and time-major within a chunk: ``zeta[chunk, j, s]`` holds sample
``chunk_starts[chunk] + s`` at step j. So step k streams one contiguous block of
k x chunk_size numbers per array and chunk, and every loop runs over the samples of a
chunk, which vectorises. (Sample-major rows read only a prefix of each row; at k of a
few hundred that wasted more than half of the memory bandwidth on row starts and on
prefetches past the prefix.)

``params`` packs the floats (dt, sqrt(Delta), Delta, 1/B, margin, sharpness, theta)
and ``codes`` the integers (loss, readout, quantize) so the signatures stay short.
Per-chunk rows over the samples live in two arrays, named by the row constants below:
``sums`` (Gaussian paths, memory sums, probe tangent memories and weights) and
``scratch`` (float64: f_k, lam_k, losses). Except in double precision zeta is int8 and
the caller scales L accordingly (population.ZETA_UNIT); each stored row of f and lam du
has a scale (1, or the block scale of precision "compact": ``_store_row``).

The streaming sums (Gaussian path, memory sums, tangent memories, response columns) run
in the type of ``sums``, of L_row and R_row and of the scales, which the caller chooses
(population.SUM_TYPES): float32 except in double precision and for exact responses. That
halves their arithmetic (16 lanes per vector, no conversion from the stored float32 or
int16): the kernel took 0.47 ns per sample and past step with float64 sums and 0.38 with
float32 (0.45 and 0.30 in compact). Their round-off, ~1e-7 relative per term, is far
below the Monte Carlo error. The column sums of Gamma_C stay float64, on the stored values
with float64 scales: Gamma_C is the Gram matrix of what the memory sums read to float64
round-off, and C stays positive semi-definite.
"""

from __future__ import annotations

import math
import types

import numba
import numpy as np
from numba import prange

from ..losses import LOGISTIC, SMOOTH_HINGE, loss_terms_given, softplus_and_sigmoid_rows, softplus_argument
from . import streams

# Reassociation lets LLVM vectorise the reductions (otherwise bound by the latency of
# dependent adds); no nnan/ninf, so NaN and overflow still propagate and are caught.
# REPRODUCIBLE: the order is then fixed by the compiled code, provided every sum runs into
# a local scalar in a loop that stores nothing. A loop that also stores (or sums into an
# array element) is compiled in two versions behind a run-time aliasing check on the
# arrays' addresses; the two sum in different orders, and which one runs changed from run
# to run (seen: mu_hat differing in the last bit between identical solves). Element-wise
# updates (g[s] += ...) are safe: both versions do the same operations per element.
FAST = {"reassoc", "contract"}

DT, SQRT_DELTA, DELTA, INV_B, MARGIN, SHARPNESS, THETA = range(7)
LOSS, READOUT, QUANTIZE = range(3)
# Largest stored magnitude of a 16-bit block-scaled row (precision "compact").
INT16_MAX = 32767.0
# Largest stored magnitude of an innovation in units of its lattice (int8 storage).
ZETA_MAX = 127.0
# Observables accumulated per chunk besides the kernel rows.
OBS_MU_HAT, OBS_LOSS, OBS_ERROR = range(3)
N_OBS = 3
# Rows of the per-chunk sums (G_MINUS, MEMORY_B: two replicas only); the probe tangent
# memories, then weights, follow: n_probes rows per replica.
G, MEMORY, G_MINUS, MEMORY_B = range(4)
N_SUMS = 4
# Rows of the per-chunk float64 scratch (TANGENT_MEMORY: the tangent memory of exact
# responses, a work row for probe tangents; F_K_B, LAM_K_B: two replicas only).
F_K, LAM_K, TANGENT_MEMORY, LOSS_K, ERROR_K, F_K_B, LAM_K_B = range(7)
N_SCRATCH = 7


def pack_params(dt, delta, gradient_divisor, margin, sharpness, theta, loss_code, readout_code, quantize=False):
    params = np.array([dt, math.sqrt(delta), delta, 1.0 / gradient_divisor, margin, sharpness, theta])
    codes = np.array([loss_code, readout_code, int(quantize)], dtype=np.int64)
    return params, codes


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _store_row(k, width, values, stored, scales, quantize):
    """Store step k of a chunk's path (``values`` over its samples) and put the stored
    values back into ``values``, so that everything downstream uses what later steps read.

    Floating-point storage rounds to its type. 16-bit storage (``quantize``) is block
    floating point: stored[k, s] = round(values[s] / scales[k]) with scales[k] = max |values|
    / INT16_MAX, an absolute error of at most max |values| / 65534 per entry. A NaN or an
    infinity makes the scale NaN, which propagates into every later sum.
    """
    if quantize:
        largest = 0.0
        poison = 0.0
        for s in range(width):
            largest = max(largest, abs(values[s]))  # may skip a NaN (compiled as a max)
            poison += values[s] - values[s]  # 0, or NaN where a value is not finite
        scales[k] = largest / INT16_MAX + poison
        scale = scales[k]  # as stored: later steps read values[s] as stored[k, s] * scales[k]
        if scale > 0.0 and scale < np.inf:
            inverse = 1.0 / scale
            for s in range(width):
                quantum = np.rint(values[s] * inverse)
                stored[k, s] = quantum
                values[s] = quantum * scale
        else:
            for s in range(width):
                stored[k, s] = 0
                values[s] = values[s] * scale  # zero, or NaN where the scale is not finite
    else:
        for s in range(width):
            stored[k, s] = values[s]
            values[s] = stored[k, s]


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _start_path_sums(k, width, L_row, Z, g, memory):
    for s in range(width):
        g[s] = L_row[k] * Z[k, s]
        memory[s] = 0.0


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _add_path_row(j, first, width, L_row, R_row, Z, F, F_scale, g, memory):
    """Past step j's terms of ``_path_sums`` (element-wise: the same bits however the loop
    is compiled)."""
    l_kj = L_row[j]
    if j < first:
        for s in range(width):
            g[s] += l_kj * Z[j, s]
    else:
        r_kj = R_row[j] * F_scale[j]
        for s in range(width):
            g[s] += l_kj * Z[j, s]
            memory[s] += r_kj * F[j, s]


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _path_sums(k, first, width, L_row, R_row, Z, F, F_scale, g, memory):
    """g_k = sum_{j<=k} L[k,j] zeta_j and memory = sum_{first<=j<k} R[k,j] f_j of each sample.

    ``first`` > 0 is the memory window: R[k,j] is taken as zero for j < first. The sums
    run in the type of L_row, R_row and F_scale (module docstring).
    """
    _start_path_sums(k, width, L_row, Z, g, memory)
    for j in range(k):
        _add_path_row(j, first, width, L_row, R_row, Z, F, F_scale, g, memory)


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _outputs(k, start, width, g, memory, m_k, params, codes, c, y, s_k, F, F_scale, f_k, lam_k, h_out, acc_obs,
             ch, obs_weight, losses, errors):
    """Each sample at step k from g_k and its memory sum; stores f_k, fills f_k and lam_k.

    u_k = g_k - dt sqrt(Delta) memory, h_k = c m_k + sqrt(Delta) u_k, f_k = s(k) l'/B,
    lam_k = s(k) l''/B. The observables get ``obs_weight`` times each sample's share
    (``losses`` and ``errors`` are work rows: the sums run in loops of their own, REPRODUCIBLE).
    """
    loss_code, readout = codes[LOSS], codes[READOUT]
    # The chunk's samples as views indexed from 0: indexed by start + s, whose sign numba
    # cannot know, every access carried a wraparound check and compiled to gathers.
    c_chunk, y_chunk = c[start:start + width], y[start:start + width]
    s_chunk, h_chunk = s_k[start:start + width], h_out[start:start + width]
    margin, sharpness, theta = params[MARGIN], params[SHARPNESS], params[THETA]
    if loss_code == LOGISTIC or loss_code == SMOOTH_HINGE:
        # The softplus for all samples at once, by loops that vectorise (losses: the
        # arguments, f_k and lam_k: softplus and sigmoid, errors: work; each is overwritten
        # only after it is read). The two branches repeat the loop body on purpose: h in
        # one loop before the branch and one final loop for both (loss_terms_given with
        # zeros) made this branch 1.5-2 times slower per step (measured interleaved).
        for s in range(width):
            u = g[s] - params[DT] * params[SQRT_DELTA] * memory[s]
            h_chunk[s] = c_chunk[s] * m_k + params[SQRT_DELTA] * u
            losses[s] = softplus_argument(loss_code, readout, margin, sharpness, theta, y_chunk[s], h_chunk[s])
        softplus_and_sigmoid_rows(losses[:width], f_k[:width], lam_k[:width], errors[:width])
        for s in range(width):
            value, d1, d2, gap = loss_terms_given(loss_code, readout, margin, sharpness, theta, y_chunk[s], h_chunk[s],
                                                  f_k[s], lam_k[s])
            scale = s_chunk[s] * params[INV_B]
            f_k[s] = scale * d1
            lam_k[s] = scale * d2
            losses[s] = value
            errors[s] = 1.0 if gap <= 0.0 else 0.0
    else:
        for s in range(width):
            u = g[s] - params[DT] * params[SQRT_DELTA] * memory[s]
            h = c_chunk[s] * m_k + params[SQRT_DELTA] * u
            # (loss_terms_given, inlined, ignores the softplus of these losses; loss_terms,
            # a call per sample, kept this loop from vectorising)
            value, d1, d2, gap = loss_terms_given(loss_code, readout, margin, sharpness, theta, y_chunk[s], h,
                                                  0.0, 0.0)
            scale = s_chunk[s] * params[INV_B]
            f_k[s] = scale * d1
            lam_k[s] = scale * d2
            h_chunk[s] = h
            losses[s] = value
            errors[s] = 1.0 if gap <= 0.0 else 0.0
    # Use the stored (rounded) values everywhere, so Gamma_C stays the Gram matrix of what
    # the memory sums read, and C stays positive semi-definite.
    _store_row(k, width, f_k, F, F_scale, codes[QUANTIZE] == 1)
    mu_hat = 0.0
    loss = 0.0
    error = 0.0
    for s in range(width):
        mu_hat += c_chunk[s] * f_k[s]
        loss += losses[s]
        error += errors[s]
    acc_obs[ch, OBS_MU_HAT] += obs_weight * mu_hat
    acc_obs[ch, OBS_LOSS] += obs_weight * loss
    acc_obs[ch, OBS_ERROR] += obs_weight * error


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _add_tangent_row(i, width, R_row, T, T_scale, memories):
    """Past step i's terms of ``_tangent_memories`` (element-wise, as ``_add_path_row``)."""
    for p in range(T.shape[0]):
        r_ki = R_row[i] * T_scale[p, i]
        for s in range(width):
            memories[p, s] += r_ki * T[p, i, s]


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _tangent_memories(k, first, width, R_row, T, T_scale, memories):
    """memories[p] = sum_{first<=i<k} R[k,i] lam_i du_i of each probe p (THEORY.md section 3).

    Needs nothing of step k, so it runs before the path sums: the chunk's f block is then
    the last one read before the column sums re-read it, the likeliest still in cache.
    """
    memories[:, :width] = 0.0
    for i in range(first, k):
        _add_tangent_row(i, width, R_row, T, T_scale, memories)


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _finish_tangents(k, width, dt_delta, P, T, T_scale, lam_k, rows, tangent, weight_scale, quantize):
    """du_k = pi_k - dt Delta memory; stores T[p,k] = lam_k du_k (``tangent``: a float64 work row).

    ``rows[p]`` holds probe p's tangent memory on entry and, on exit, the coefficient of
    pi_j in the response row: ``weight_scale`` lam_k (du_k - pi_k) / n_probes (own probe removed).
    """
    n_probes = P.shape[0]
    for p in range(n_probes):
        for s in range(width):
            deviation = -dt_delta * rows[p, s]  # du_k - pi_k
            tangent[s] = lam_k[s] * (P[p, k, s] + deviation)
            rows[p, s] = weight_scale * lam_k[s] * deviation / n_probes
        _store_row(k, width, tangent, T[p], T_scale[p], quantize)


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _column(j, with_response, width, F, F_scale, f_k, P, weights, zero, acc_gamma, acc_response, ch):
    """Entry j of row k of Gamma_C and (``with_response``) of K from the chunk:
    acc_gamma[j] += sum_s f_k f_j, acc_response[j] += sum_p sum_s weights[p] pi_j. Gamma_C
    sums in float64, K in the type of ``weights`` and of ``zero`` (module docstring)."""
    gamma = 0.0
    for s in range(width):
        gamma += f_k[s] * F[j, s]
    acc_gamma[ch, j] += F_scale[j] * gamma
    if with_response:
        response = zero
        for p in range(P.shape[0]):
            for s in range(width):
                response += weights[p, s] * P[p, j, s]
        acc_response[ch, j] += response


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _diagonal(k, width, f_k, acc_gamma, ch):
    """acc_gamma[k] += sum_s f_k^2. (K[k,k] is lam_k: ``_add_diagonal_response``.)"""
    diagonal = 0.0
    for s in range(width):
        diagonal += f_k[s] * f_k[s]
    acc_gamma[ch, k] += diagonal


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _columns(k, first, width, F, F_scale, f_k, P, weights, acc_gamma, acc_response, ch):
    """Row k of Gamma_C and K from the chunk: ``_column`` for j < k (K for first <= j < k,
    the memory window) and ``_diagonal``. The f block was the last one the path sums read:
    it is re-read from cache.
    """
    zero = np.zeros(1, weights.dtype)[0]  # of the sums' type: K's sums run in it
    for j in range(k):
        _column(j, j >= first, width, F, F_scale, f_k, P, weights, zero, acc_gamma, acc_response, ch)
    _diagonal(k, width, f_k, acc_gamma, ch)


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _streams_and_columns(k, first, ch, done, chunk_starts, L_row, R_row, zeta, f, f_scale, lam_du, lam_du_scale,
                         probes, sums, scratch, zero, acc_gamma, acc_response):
    """One pass over the past steps j for two chunks: the streaming sums of chunk ``ch``
    (those of ``_tangent_memories`` and ``_path_sums``) and the column sums of chunk
    ``done``, whose f_k and response weights are known (``_column``). Either may be -1: none.

    The streaming sums wait on memory; the column sums re-read ``done``'s f block from the
    cache and are bound by arithmetic: in one loop each can run while the other waits. On
    random compact paths at k = 1000, in ns per sample and past step: 0.22-0.23 in three
    passes (tangents, paths, columns), 0.21 with the first two in one, 0.19-0.20 with the
    columns of the chunk before in it too. Each sum adds the same terms in the same order
    whatever the pairing: the numbers do not change.
    """
    width = chunk_starts[ch + 1] - chunk_starts[ch] if ch >= 0 else 0
    columns = done >= 0
    done_width = chunk_starts[done + 1] - chunk_starts[done] if columns else 0
    ch, done = max(ch, 0), max(done, 0)  # views of chunk 0 stand for none: width 0, no columns
    Z, F, F_scale, T, T_scale = zeta[ch], f[ch], f_scale[ch], lam_du[ch], lam_du_scale[ch]
    g, memory, memories = sums[ch, G], sums[ch, MEMORY], sums[ch, N_SUMS:]
    F_done, F_done_scale, f_k, P_done = f[done], f_scale[done], scratch[done, F_K], probes[done]
    weights_done = sums[done, N_SUMS:]
    _start_path_sums(k, width, L_row, Z, g, memory)
    memories[:, :width] = 0.0
    for j in range(k):
        _add_path_row(j, first, width, L_row, R_row, Z, F, F_scale, g, memory)
        if j >= first:
            _add_tangent_row(j, width, R_row, T, T_scale, memories)
        if columns:
            _column(j, j >= first, done_width, F_done, F_done_scale, f_k, P_done, weights_done, zero, acc_gamma,
                    acc_response, done)


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _add_diagonal_response(k, width, lam_k, acc_response, ch, weight):
    """K[k,k] gets lam_k directly (no probe needed)."""
    total = 0.0
    for s in range(width):
        total += lam_k[s]
    acc_response[ch, k] += weight * total


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _zero_chunk(ch, k, acc_gamma, acc_response, acc_obs):
    for j in range(k + 1):
        acc_gamma[ch, j] = 0.0
        acc_response[ch, j] = 0.0
    for o in range(N_OBS):
        acc_obs[ch, o] = 0.0


@numba.njit(parallel=True, cache=True, fastmath=FAST, error_model="numpy")
def population_step_probe(
    k, first, L_row, R_row, m_k, params, codes, c, y, s_k, zeta, f, f_scale, probes, lam_du, lam_du_scale,
    chunk_starts, acc_gamma, acc_response, acc_obs, h_out, sums, scratch, groups,
):
    """Step k of every sample with random-probe responses (THEORY.md section 3).

    ``first`` is the start of the memory window: R[k,j] and K[k,j] are taken as zero for
    j < first (0: no window).

    Per chunk: the probe tangents' memory sums (one pass over lam du per probe) and the row
    sums that give u_k (over zeta and f), the outputs, then the column sums of Gamma_C and
    K, which need the chunk's f_k: they run in the next chunk's pass over the past
    (``_streams_and_columns``). The chunks form ``groups`` contiguous groups, each such a
    pipeline (``Population._chunk_groups``: one per thread, or one per chunk: no pipeline).
    Every chunk's sums are the same whatever the groups.
    """
    dt_delta = params[DT] * params[DELTA]
    n_chunks = chunk_starts.shape[0] - 1
    zero = np.zeros(1, sums.dtype)[0]  # of the sums' type: K's sums run in it
    for group in prange(groups):
        begin = group * n_chunks // groups
        end = (group + 1) * n_chunks // groups
        for ch in range(begin, end + 1):
            current = ch if ch < end else -1
            if current >= 0:
                _zero_chunk(ch, k, acc_gamma, acc_response, acc_obs)
            _streams_and_columns(k, first, current, ch - 1 if ch > begin else -1, chunk_starts, L_row, R_row, zeta,
                                 f, f_scale, lam_du, lam_du_scale, probes, sums, scratch, zero, acc_gamma,
                                 acc_response)
            if current < 0:
                continue
            start = chunk_starts[ch]
            width = chunk_starts[ch + 1] - start
            rows, paths = scratch[ch], sums[ch]
            _outputs(k, start, width, paths[G], paths[MEMORY], m_k, params, codes, c, y, s_k, f[ch], f_scale[ch],
                     rows[F_K], rows[LAM_K], h_out, acc_obs, ch, 1.0, rows[LOSS_K], rows[ERROR_K])
            _finish_tangents(k, width, dt_delta, probes[ch], lam_du[ch], lam_du_scale[ch], rows[LAM_K],
                             paths[N_SUMS:], rows[TANGENT_MEMORY], 1.0, codes[QUANTIZE] == 1)
            _diagonal(k, width, rows[F_K], acc_gamma, ch)
            _add_diagonal_response(k, width, rows[LAM_K], acc_response, ch, 1.0)


@numba.njit(parallel=True, cache=True, fastmath=FAST, error_model="numpy")
def population_step_exact(
    k, first, L_row, R_row, m_k, params, codes, c, y, s_k, zeta, f, f_scale, no_probes, lam_S, chunk_starts,
    acc_gamma, acc_response, acc_obs, h_out, sums, scratch,
):
    """Step k of every sample with the exact tangent matrix S[k,j] = du_k/dP_j.

    S[k,j] = delta_kj - dt Delta sum_{j<=i<k} R[k,i] lam_i S[i,j]; stores lam_k S[k,j]
    in lam_S[chunk, k, j, s]. O(k^2) per sample per step: the reference for small problems.
    ``no_probes`` has zero probes: the column sums then give Gamma_C only. With a memory
    window (``first`` > 0) only the columns j >= first are needed, and they only involve
    rows i >= j of S.
    """
    dt_delta = params[DT] * params[DELTA]
    for ch in prange(chunk_starts.shape[0] - 1):
        start = chunk_starts[ch]
        width = chunk_starts[ch + 1] - start
        rows, paths = scratch[ch], sums[ch]
        lam_k = rows[LAM_K]
        tangent_memory = rows[TANGENT_MEMORY]
        S_chunk = lam_S[ch]
        _zero_chunk(ch, k, acc_gamma, acc_response, acc_obs)
        _path_sums(k, first, width, L_row, R_row, zeta[ch], f[ch], f_scale[ch], paths[G], paths[MEMORY])
        _outputs(k, start, width, paths[G], paths[MEMORY], m_k, params, codes, c, y, s_k, f[ch], f_scale[ch],
                 rows[F_K], lam_k, h_out, acc_obs, ch, 1.0, rows[LOSS_K], rows[ERROR_K])
        _columns(k, first, width, f[ch], f_scale[ch], rows[F_K], no_probes[ch], paths[N_SUMS:], acc_gamma,
                 acc_response, ch)
        for j in range(first, k + 1):
            for s in range(width):
                tangent_memory[s] = 0.0
            for i in range(j, k):
                r_ki = R_row[i]
                for s in range(width):
                    tangent_memory[s] += r_ki * S_chunk[i, j, s]
            diagonal = 1.0 if j == k else 0.0
            for s in range(width):
                S_chunk[k, j, s] = lam_k[s] * (diagonal - dt_delta * tangent_memory[s])
            response = 0.0
            for s in range(width):  # a loop of its own: REPRODUCIBLE
                response += S_chunk[k, j, s]
            acc_response[ch, j] += response


@numba.njit(parallel=True, cache=True, fastmath=FAST, error_model="numpy")
def population_step_two_replicas(
    k, first, L_plus_row, L_minus_row, R_row, m_k, params, codes, c, y, s_a, s_b, zeta_plus, zeta_minus, f_a, f_b,
    f_a_scale, f_b_scale, probes_a, probes_b, lam_du_a, lam_du_b, lam_du_a_scale, lam_du_b_scale, chunk_starts,
    acc_gamma, acc_gamma_minus, acc_response, acc_obs, h_a, h_b, sums, scratch,
):
    """Step k of two replicas per sample (THEORY.md section 7), random-probe responses.

    g^a = (g+ + g-)/sqrt(2), g^b = (g+ - g-)/sqrt(2) with g+ ~ C + C_ab and g- ~ C - C_ab
    independent. Kernels are estimated symmetrically: Gamma_C from (f^a f^a + f^b f^b)/2,
    Gamma_C - Gamma_ab from (f^a - f^b)(f^a - f^b)/2 (positive semi-definite by
    construction), K, mu_hat and the observables from the mean of both replicas.

    g^a and g^b are stored by one loop and read back by the next, so that fast-math cannot
    regroup (g+ +- g-)/sqrt(2) with the sums that follow: it once did so differently for
    the two signs, and GD replicas (g- = 0) came out unequal in the last bit. ``first``:
    the memory window, as in ``population_step_probe``.
    """
    dt_delta = params[DT] * params[DELTA]
    root_half = math.sqrt(0.5)
    n_probes = probes_a.shape[1]
    for ch in prange(chunk_starts.shape[0] - 1):
        start = chunk_starts[ch]
        width = chunk_starts[ch + 1] - start
        rows, paths = scratch[ch], sums[ch]
        g_a, g_b = paths[G], paths[G_MINUS]
        _zero_chunk(ch, k, acc_gamma, acc_response, acc_obs)
        for j in range(k + 1):
            acc_gamma_minus[ch, j] = 0.0
        weights_a = paths[N_SUMS:N_SUMS + n_probes]
        weights_b = paths[N_SUMS + n_probes:]
        _tangent_memories(k, first, width, R_row, lam_du_a[ch], lam_du_a_scale[ch], weights_a)
        _tangent_memories(k, first, width, R_row, lam_du_b[ch], lam_du_b_scale[ch], weights_b)
        _path_sums(k, first, width, L_plus_row, R_row, zeta_plus[ch], f_a[ch], f_a_scale[ch], g_a, paths[MEMORY])
        _path_sums(k, first, width, L_minus_row, R_row, zeta_minus[ch], f_b[ch], f_b_scale[ch], g_b, paths[MEMORY_B])
        for s in range(width):
            g_plus = g_a[s]
            g_minus = g_b[s]
            g_a[s] = root_half * (g_plus + g_minus)
            g_b[s] = root_half * (g_plus - g_minus)
        _outputs(k, start, width, g_a, paths[MEMORY], m_k, params, codes, c, y, s_a, f_a[ch], f_a_scale[ch],
                 rows[F_K], rows[LAM_K], h_a, acc_obs, ch, 0.5, rows[LOSS_K], rows[ERROR_K])
        _outputs(k, start, width, g_b, paths[MEMORY_B], m_k, params, codes, c, y, s_b, f_b[ch], f_b_scale[ch],
                 rows[F_K_B], rows[LAM_K_B], h_b, acc_obs, ch, 0.5, rows[LOSS_K], rows[ERROR_K])
        quantize = codes[QUANTIZE] == 1
        _finish_tangents(k, width, dt_delta, probes_a[ch], lam_du_a[ch], lam_du_a_scale[ch], rows[LAM_K], weights_a,
                         rows[TANGENT_MEMORY], 0.5, quantize)
        _finish_tangents(k, width, dt_delta, probes_b[ch], lam_du_b[ch], lam_du_b_scale[ch], rows[LAM_K_B],
                         weights_b, rows[TANGENT_MEMORY], 0.5, quantize)
        # One pass over j for all column sums: Gamma_C from both replicas, Gamma_C - Gamma_ab
        # from (f^a - f^b)_k (f^a - f^b)_j / 2 (stored values), K from both replicas' probes.
        fa_k, fb_k, Fa, Fb = rows[F_K], rows[F_K_B], f_a[ch], f_b[ch]
        Pa, Pb = probes_a[ch], probes_b[ch]
        zero = np.zeros(1, weights_a.dtype)[0]
        for j in range(k + 1):
            # float64 scales: the Gram sums stay in float64
            scale_a = np.float64(f_a_scale[ch, j])
            scale_b = np.float64(f_b_scale[ch, j])
            gamma_a = 0.0
            gamma_b = 0.0
            gamma_minus = 0.0
            for s in range(width):
                gamma_a += fa_k[s] * Fa[j, s]
                gamma_b += fb_k[s] * Fb[j, s]
                gamma_minus += (fa_k[s] - fb_k[s]) * (scale_a * Fa[j, s] - scale_b * Fb[j, s])
            acc_gamma[ch, j] += 0.5 * (scale_a * gamma_a + scale_b * gamma_b)
            acc_gamma_minus[ch, j] += 0.5 * gamma_minus
            if first <= j < k:
                response = zero
                for p in range(n_probes):
                    for s in range(width):
                        response += weights_a[p, s] * Pa[p, j, s] + weights_b[p, s] * Pb[p, j, s]
                acc_response[ch, j] += response
        _add_diagonal_response(k, width, rows[LAM_K], acc_response, ch, 0.5)
        _add_diagonal_response(k, width, rows[LAM_K_B], acc_response, ch, 0.5)


@numba.njit(parallel=True, cache=True)
def draw_step(k, key, replica, switching, zeta_step, zeta, probes, selection):
    """Step k's draws of one replica into the chunked storage: zeta_k (in units of
    ``zeta_step``, rounded and capped to +-ZETA_MAX unless ``zeta`` is float64), the
    probe signs pi_k, and s(k) (``selection``, in place: s(k-1) on entry for k > 0).

    Blocks of streams.DRAW_BLOCK samples, each from its own counter-based streams
    (``key``, k, block, purpose, ``replica``): the numbers depend neither on the threads
    nor on the chunk width. ``switching`` = (P(s(0) = 1), P(leave), P(join))
    (``Algorithm.switching_probabilities``); s(k) stays 1 when it cannot change (GD).
    """
    n = selection.shape[0]
    width = zeta.shape[2]
    n_probes = probes.shape[1]
    quantize = zeta_step != 1.0
    inverse_step = 1.0 / zeta_step  # a power of 2: the same as dividing
    first_use, leave, join = switching[0], switching[1], switching[2]
    always = first_use >= 1.0 and leave <= 0.0
    purposes = streams.N_PURPOSES * replica
    n_blocks = (n + streams.DRAW_BLOCK - 1) // streams.DRAW_BLOCK
    words = np.empty((n_blocks, streams.BUFFER_WORDS), np.uint64)
    normals = np.empty((n_blocks, streams.DRAW_BLOCK))
    signs = np.empty((n_blocks, (n_probes + 15) // 16 * 16), np.uint64)  # whole vectors of Philox blocks
    for block in prange(n_blocks):
        first = block * streams.DRAW_BLOCK
        size = min(streams.DRAW_BLOCK, n - first)
        z = normals[block, :size]
        streams.standard_normals(z, words[block], (key, k, block, purposes + streams.NORMALS))
        if quantize:
            for s in range(size):
                z[s] = min(max(np.rint(z[s] * inverse_step), -ZETA_MAX), ZETA_MAX)
        if n_probes > 0:
            streams.fill_words(signs[block], streams.ZERO, (key, k, block, purposes + streams.PROBE_SIGNS))
        # The block in segments that each lie in one chunk (one segment whenever 64 divides
        # the width), stored through row views by loops that vectorise.
        done = 0
        while done < size:
            chunk, offset = (first + done) // width, (first + done) % width
            length = min(size - done, width - offset)
            zeta_part = zeta[chunk, k, offset:offset + length]
            for s in range(length):
                zeta_part[s] = z[done + s]
            for p in range(n_probes):
                word = signs[block, p] >> np.uint64(done)
                probe_part = probes[chunk, p, k, offset:offset + length]
                for s in range(length):
                    probe_part[s] = 2 * np.int8((word >> np.uint64(s)) & streams.ONE) - 1
            done += length
        if always:
            selection[first : first + size] = 1.0
            continue
        uniforms = words[block, : streams.DRAW_BLOCK // 2]  # two 32-bit uniforms per word
        streams.fill_words(uniforms, streams.ZERO, (key, k, block, purposes + streams.SELECTION))
        for s in range(size):
            u = streams.unit_32(uniforms[s // 2], s % 2)
            if k == 0:
                selection[first + s] = 1.0 if u < first_use else 0.0
            else:  # without branches: s(k-1) is a coin flip to the branch predictor
                stays = selection[first + s]
                selection[first + s] = stays * (u >= leave) + (1.0 - stays) * (u < join)


@numba.njit(parallel=True, cache=True)
def chunk_means(acc, k, sizes, scale, out, stderr):
    """out[r, j] = scale * (sum over chunks of acc[r, chunk, j]) / total for j <= k: the
    kernel rows r (Gamma_C, K, ...) from their per-chunk sums, in one call. ``sizes``: the
    chunks' samples (total: their sum).

    ``stderr`` (unless it has no rows): also each entry's batch-means standard error, scale *
    sqrt(n / (n - 1) * sum over chunks of (acc - size * mean)^2) / total over n chunks (NaN
    for one chunk), the chunk sums weighted by their sizes.

    The chunks are added one after another in their order, with the operations of numpy's
    mean and standard error (no fast-math: the same bits whatever the threads), over blocks
    of columns of every row in parallel. (numpy's ``sum(axis=0)`` adds them so too, except
    over a single column, which it adds pairwise.) numpy's sum, division and scaling made
    three temporaries per row: 0.17 ms per step at N = 4000; its standard errors, six.
    """
    n_rows, n_chunks = acc.shape[0], acc.shape[1]
    total = 0.0
    for ch in range(n_chunks):
        total += sizes[ch]
    with_errors = stderr.shape[0] > 0
    n_blocks = (k + COLUMN_BLOCK) // COLUMN_BLOCK
    for item in prange(n_rows * n_blocks):
        r, block = item // n_blocks, item % n_blocks
        first = block * COLUMN_BLOCK
        last = min(first + COLUMN_BLOCK, k + 1)
        for j in range(first, last):
            out[r, j] = acc[r, 0, j]
        for ch in range(1, n_chunks):
            for j in range(first, last):
                out[r, j] += acc[r, ch, j]
        for j in range(first, last):
            out[r, j] = out[r, j] / total
        if with_errors:
            for j in range(first, last):
                stderr[r, j] = 0.0
            for ch in range(n_chunks):
                for j in range(first, last):
                    deviation = acc[r, ch, j] - sizes[ch] * out[r, j]
                    stderr[r, j] += deviation * deviation
            for j in range(first, last):
                if n_chunks < 2:
                    stderr[r, j] = np.nan
                else:
                    stderr[r, j] = scale * np.sqrt(stderr[r, j] * n_chunks / ((n_chunks - 1) * total**2))
        for j in range(first, last):
            out[r, j] = scale * out[r, j]


# The same kernels compiled without threads: for small populations the cost of waking the
# thread pool at every step (milliseconds on a busy machine) exceeds the work itself.
# Both versions sum in the same order, and which one runs depends only on the problem's
# size and the step, never on the threads available.
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
    options = {key: kernel.targetoptions[key] for key in ("fastmath", "error_model") if key in kernel.targetoptions}
    return numba.njit(cache=True, **options)(copy)


population_step_probe_serial = _serial(population_step_probe)
population_step_exact_serial = _serial(population_step_exact)
population_step_two_replicas_serial = _serial(population_step_two_replicas)
draw_step_serial = _serial(draw_step)
# Below this many sample-steps of work (samples x (k + 1)) a step runs on one thread.
PARALLEL_THRESHOLD = 200_000
# Columns per work item of chunk_means.
COLUMN_BLOCK = 512
# From this many samples on, a step's draws run on all threads.
DRAW_PARALLEL_THRESHOLD = 2048
# Rows per work item of the weight side, columns per block of the Cholesky row: enough
# work per item to amortise starting it, enough items for both cores.
R_BLOCK = 256
# The weight side's scatter passes take four rows per sweep only in blocks whose rows
# reach past this length; shorter ones go one at a time. (One short row and its partial
# row stay in L1 between the dot product and the scatter; four do not. The weight side
# in a march at N = 1000 took 0.18-0.21 s with four rows everywhere, 0.15-0.17 s so.)
FOUR_ROWS_FROM = 1024


@numba.njit(cache=True, inline="always")
def packed_row(packed: np.ndarray, j: int) -> np.ndarray:
    """Row j (columns 0..j, a view) of a lower triangle stored by rows: row j holds its
    j + 1 entries right after row j - 1, so a block of rows is one contiguous stretch,
    which streams at the memory bandwidth. (Rows of a square array lie n apart; read cold,
    their prefixes ran at 20-26 GB/s against 35 stored by rows, at N = 4000.)"""
    start = j * (j + 1) // 2
    return packed[start : start + j + 1]


def packed_size(n: int) -> int:
    """Entries of an n x n lower triangle stored by rows (``packed_row``)."""
    return n * (n + 1) // 2


def diagonal_blocks(n: int) -> np.ndarray:
    """Storage for the diagonal blocks of an n x n Cholesky factor (``cholesky_row``)."""
    return np.zeros(((n + R_BLOCK - 1) // R_BLOCK, R_BLOCK, R_BLOCK))


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _subtract_earlier_rows(C, L, k, first, lo, hi, own):
    """own[j] = C[k, j] - sum_{i<first} own[i] L[j, i] for the rows lo <= j < hi (<= 4).

    Four rows in one sweep share the loads of own, and four streams keep more reads in
    flight than one: row k = 3999 of the factor took 3.2 ms one row at a time and 2.4 ms
    four at a time, caches flushed (20 and 26 GB/s). The same bits: each row's sum is
    still one local scalar in a loop that stores nothing (REPRODUCIBLE)."""
    before = own[:first]
    if hi - lo == 4:
        a, b = packed_row(L, lo)[:first], packed_row(L, lo + 1)[:first]
        c, d = packed_row(L, lo + 2)[:first], packed_row(L, lo + 3)[:first]
        s0, s1, s2, s3 = C[k, lo], C[k, lo + 1], C[k, lo + 2], C[k, lo + 3]
        for i in range(first):
            x = before[i]
            s0 -= x * a[i]
            s1 -= x * b[i]
            s2 -= x * c[i]
            s3 -= x * d[i]
        own[lo], own[lo + 1], own[lo + 2], own[lo + 3] = s0, s1, s2, s3
        return
    for j in range(lo, hi):
        s = C[k, j]
        earlier = packed_row(L, j)[:first]
        for i in range(first):
            s -= before[i] * earlier[i]
        own[j] = s


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def cholesky_row(C, L, blocks, k, relative_threshold):
    """Row k of the semidefinite Cholesky factor L of C (L L^T = C), from the rows before.

    L is the lower triangle stored by rows (``packed_row``), of size ``packed_size(n)``.
    A pivot whose squared value falls below ``relative_threshold * C[k,k]`` is taken as
    zero: that direction is already spanned by earlier rows (THEORY.md section 4). No
    jitter is added. Returns the squared pivot before thresholding, so the caller can
    detect a loss of positive semi-definiteness beyond round-off.

    Blocked forward substitution: for each block of R_BLOCK columns j, the sums over the
    columns before the block are independent (parallel over groups of four j:
    ``_subtract_earlier_rows``); the rest is sequential. Each sum runs in a fixed order,
    so the numbers do not depend on the threads. Rows up to R_BLOCK long run on one thread.

    The sequential part reads the block's diagonal triangle from ``blocks`` (from
    ``diagonal_blocks``; row k adds its own): a contiguous copy, where the block's rows
    lie far apart and, evicted by the population kernel since the last step, cost a
    memory latency per short row (0.3-0.4 ms of 1.9 at k = 3000).
    """
    own = packed_row(L, k)
    for first in range(0, k, R_BLOCK):
        last = min(first + R_BLOCK, k)
        if first == 0:  # nothing before the block: no threads to wake
            for j in range(last):
                own[j] = C[k, j]
        else:
            n_groups = (last - first + 3) // 4
            for t in prange(n_groups):
                _subtract_earlier_rows(C, L, k, first, min(first + 4 * t, last), min(first + 4 * t + 4, last), own)
        block = blocks[first // R_BLOCK]
        for j in range(first, last):
            row = j - first
            if block[row, row] == 0.0:
                own[j] = 0.0
                continue
            s = own[j]
            own_part = own[first:j]
            earlier = block[row, :row]
            for i in range(row):
                s -= own_part[i] * earlier[i]
            own[j] = s / block[row, row]
    d = C[k, k]
    for i in range(k):
        d -= own[i] * own[i]
    if d > relative_threshold * C[k, k] and d > 0.0:
        own[k] = math.sqrt(d)
    else:
        own[k] = 0.0
    first = k - k % R_BLOCK
    blocks[k // R_BLOCK, k - first, : k - first + 1] = own[first : k + 1]
    return d


@numba.njit(cache=True, inline="always")
def _balanced(t, n):
    """The t-th of n triangular work items in the order 0, n-1, 1, n-2, ...

    prange hands each thread a contiguous range of t; pairing heavy items with light ones
    gives each range the same work. The result of each item does not depend on who runs it.
    """
    return t // 2 if t % 2 == 0 else n - 1 - t // 2


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _sum_of_partials(partials, i, origin):
    """sum over blocks, in block order, of partials[block, i]; block b holds rows j from
    origin + b R_BLOCK on, and only blocks with rows j > i can be nonzero."""
    total = 0.0
    for block in range(max(i - origin, 0) // R_BLOCK, partials.shape[0]):
        total += partials[block, i]
    return total


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _four_dots(x, a, b, c, d):
    """The dot products of x with a, b, c and d (of x's length), in one sweep: x is loaded
    once, and four streams stay in flight. Each sum is a local scalar in a loop that stores
    nothing (REPRODUCIBLE)."""
    s0 = s1 = s2 = s3 = 0.0
    for i in range(x.shape[0]):
        s0 += a[i] * x[i]
        s1 += b[i] * x[i]
        s2 += c[i] * x[i]
        s3 += d[i] * x[i]
    return s0, s1, s2, s3


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _lower_triangle_times(M_packed, r, start, first, last, dots, partial):
    """Rows first..last-1 of the lower triangle of a symmetric M (stored by rows:
    ``packed_row``) against r (zero before ``start``).

    dots[j] = sum_{start<=i<=j} M[j,i] r_i (complete), partial[i] += M[j,i] r_j for i < j
    (the upper triangle's share, to be added up over blocks of rows).

    Four rows per sweep share the loads of r and the loads and stores of ``partial``, and
    keep four streams in flight: at k = 3999 the pass took 2.8 ms one row at a time and
    2.0 ms four at a time, caches flushed (22 and 31 GB/s). Blocks of short rows go one
    row at a time (``FOUR_ROWS_FROM``).
    """
    j = first
    while j + 4 <= last and last > FOUR_ROWS_FROM:
        a, b, c, d = packed_row(M_packed, j), packed_row(M_packed, j + 1), packed_row(M_packed, j + 2), \
            packed_row(M_packed, j + 3)
        r0, r1, r2, r3 = r[j], r[j + 1], r[j + 2], r[j + 3]
        s0, s1, s2, s3 = _four_dots(r[start:j], a[start:j], b[start:j], c[start:j], d[start:j])
        # A separate loop: one that both sums into a scalar and stores would be compiled with
        # a run-time aliasing check, whose outcome depends on where the arrays lie in memory,
        # choosing between two summation orders (REPRODUCIBLE below).
        target, a_all, b_all, c_all, d_all = partial[:j], a[:j], b[:j], c[:j], d[:j]
        for i in range(j):
            target[i] += (a_all[i] * r0 + b_all[i] * r1) + (c_all[i] * r2 + d_all[i] * r3)
        # The corner the sweep left: columns j..j+3 of the four rows.
        dots[j] = s0 + a[j] * r0
        dots[j + 1] = s1 + b[j] * r0 + b[j + 1] * r1
        dots[j + 2] = s2 + c[j] * r0 + c[j + 1] * r1 + c[j + 2] * r2
        dots[j + 3] = s3 + d[j] * r0 + d[j + 1] * r1 + d[j + 2] * r2 + d[j + 3] * r3
        partial[j] += b[j] * r1 + c[j] * r2 + d[j] * r3
        partial[j + 1] += c[j + 1] * r2 + d[j + 1] * r3
        partial[j + 2] += d[j + 2] * r3
        j += 4
    for j in range(j, last):  # the rows left over, one at a time
        r_j = r[j]
        row = packed_row(M_packed, j)
        s = 0.0
        head = row[start:j]
        r_part = r[start:j]
        for i in range(j - start):
            s += head[i] * r_part[i]
        for i in range(j):
            partial[i] += row[i] * r_j
        dots[j] = s + row[j] * r_j


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _add_weighted_rows(R_packed, start, lo, hi, weights, partial):
    """partial[i] += sum_{lo<=j<hi} weights[j] R[j, i] for i >= start (R strictly lower
    triangular, stored by rows: ``packed_row``).

    Four rows per sweep share the loads and stores of ``partial`` and keep four streams in
    flight: at k = 3999 the pass took 1.5 ms one row at a time and 1.2 ms four at a time.
    Blocks of short rows go one row at a time (``FOUR_ROWS_FROM``)."""
    j = max(lo, start)  # rows before ``start`` add only to columns before it
    while j + 4 <= hi and hi > FOUR_ROWS_FROM:
        w0, w1, w2, w3 = weights[j], weights[j + 1], weights[j + 2], weights[j + 3]
        if w0 != 0.0 or w1 != 0.0 or w2 != 0.0 or w3 != 0.0:  # K vanishes outside a memory window
            a, b, c, d = packed_row(R_packed, j), packed_row(R_packed, j + 1), packed_row(R_packed, j + 2), \
                packed_row(R_packed, j + 3)
            target, a_part, b_part, c_part, d_part = partial[start:j], a[start:j], b[start:j], c[start:j], \
                d[start:j]
            for i in range(j - start):
                target[i] += (w0 * a_part[i] + w1 * b_part[i]) + (w2 * c_part[i] + w3 * d_part[i])
            # The corner the sweep left: columns j..j+2 of rows j+1..j+3.
            partial[j] += w1 * b[j] + w2 * c[j] + w3 * d[j]
            partial[j + 1] += w2 * c[j + 1] + w3 * d[j + 1]
            partial[j + 2] += w3 * d[j + 2]
        j += 4
    for j in range(j, hi):  # the rows left over, one at a time
        weight = weights[j]
        if weight != 0.0:
            target = partial[start:j]
            row = packed_row(R_packed, j)[start:j]
            for i in range(j - start):
                target[i] += weight * row[i]


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _rows_times(R_packed, window, lo, hi, v, out):
    """out[j] = sum_{j-window<=i<j} R[j, i] v_i for the rows lo <= j < hi (<= 4) of R
    (strictly lower triangular, stored by rows: ``packed_row``; zero outside the window).

    Four rows in one sweep share the loads of v and keep four streams in flight: at
    k = 3999 the pass took 1.6 ms one row at a time and 1.0-1.25 ms four at a time. The
    sweep starts at the first row's window; the later rows' R is zero there, adding zeros."""
    i_first = max(lo - window, 0)
    if hi - lo == 4:
        b, c, d = packed_row(R_packed, lo + 1), packed_row(R_packed, lo + 2), packed_row(R_packed, lo + 3)
        s0, s1, s2, s3 = _four_dots(v[i_first:lo], packed_row(R_packed, lo)[i_first:lo], b[i_first:lo],
                                    c[i_first:lo], d[i_first:lo])
        # The corner the sweep left: columns lo..lo+2 of rows lo+1..lo+3.
        out[lo] = s0
        out[lo + 1] = s1 + b[lo] * v[lo]
        out[lo + 2] = s2 + c[lo] * v[lo] + c[lo + 1] * v[lo + 1]
        out[lo + 3] = s3 + d[lo] * v[lo] + d[lo + 1] * v[lo + 1] + d[lo + 2] * v[lo + 2]
        return
    for j in range(lo, hi):
        s = 0.0
        i_first = max(j - window, 0)
        row = packed_row(R_packed, j)[i_first:j]
        v_part = v[i_first:j]
        for i in range(j - i_first):
            s += row[i] * v_part[i]
        out[j] = s


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def advance_weight_rows(k, window, decay, dt, langevin, init_variance, K, R, A, m, mu_hat, Gamma_packed, C,
                        Gamma_minus_packed, C_minus, R_packed):
    """Step k+1 of the weight side from kernel rows 0..k (THEORY.md section 2).

    A_{k+1}, m_{k+1}, R[k+1, :] and C[k+1, :k+2] (and C - C_ab when ``C_minus`` has rows):
    rows of lower triangles only (``Trajectory.symmetrize`` fills the upper ones). The
    passes over earlier rows of R read its copy stored by rows (``R_packed``:
    ``packed_row``), which each new row is written to as well, in R_packed's type: C's
    closed form takes R so rounded on both sides. Gamma_C (and Gamma_C - Gamma_ab) are
    read stored by rows too (``Trajectory.Gamma_packed``). Every loop is parallel over
    output elements, each summed in a fixed order, so the numbers do not depend on the
    number of threads. Only lower triangles are read: R is strictly lower triangular and
    Gamma symmetric. ``langevin`` = 2 T dt.

    C takes THEORY's closed form, s0^2 A A^T + m m^T + R N R^T with N = dt^2 Gamma + 2 T dt I.
    (C is also the covariance of w_{k+1} = decay w_k - dt sum_j K[k,j] w_j - dt mu_hat_k + xi_k,
    so its rows obey a recursion in k that reads two triangles per step, C and R, instead
    of three. Tried: square-loss GD lost positive semi-definiteness at step 287, pivot
    -1.1e-6 of C[k,k]. But the closed form failed so too on other seeds while the Cholesky
    threshold was 1e-8 (march.PIVOT_THRESHOLD): the comparison was not conclusive.)

    ``window`` is the memory window in steps: R[k', i] and K[k', i] are zero for
    k' - i > window (window > k: none). Then R row k+1 costs O(window^2) and the noise and
    C row O(window k) instead of O(k^2).
    """
    # Loops over [first, last) run over slices from 0: a loop from a variable start ran 2-2.5
    # times slower (measured at k = 2000).
    two_replicas = C_minus.shape[0] > 0
    k_first = max(k - window, 0)  # K[k, j] = 0 for j < k_first
    r_first = max(k + 1 - window, 0)  # R[k+1, i] = 0 for i < r_first
    a_sum = 0.0
    m_sum = 0.0
    for j in range(k_first, k + 1):
        a_sum += K[k, j] * A[j]
        m_sum += K[k, j] * m[j]
    A[k + 1] = decay * A[k] - dt * a_sum
    m[k + 1] = decay * m[k] - dt * mu_hat[k] - dt * m_sum
    # R[k+1, i] = decay R[k, i] - dt sum_{i<j<=k} K[k, j] R[j, i]. Each block of rows j adds
    # its share into its own partial row (rows of R stream whole); partials are added in
    # block order, so the sum is fixed whatever the threads.
    j_first = max(k_first, 1)
    n_blocks = (k + R_BLOCK - j_first) // R_BLOCK
    r_partials = np.zeros((n_blocks, k + 1))
    weights = -dt * K[k, : k + 1]
    for t in prange(n_blocks):
        block = _balanced(t, n_blocks)
        _add_weighted_rows(R_packed, r_first, j_first + block * R_BLOCK, min(j_first + (block + 1) * R_BLOCK, k + 1),
                           weights, r_partials[block])
    for i in prange(r_first, k + 1):
        R[k + 1, i] = decay * R[k, i] + _sum_of_partials(r_partials, i, j_first)
    R[k + 1, k] = 1.0
    r = packed_row(R_packed, k + 1)
    r[:] = R[k + 1, : k + 2]
    # noise = N r with r = R[k+1, :k+1] as stored in R_packed (so that C = R N R^T takes the
    # same rounded R on both sides), reading only the lower triangle of Gamma: row j gives
    # its dot product with r and scatters Gamma[j, i] r_j to i < j. Each block of rows
    # scatters into its own partial vector; partials are added in block order, so the sum is
    # fixed whatever the threads. r vanishes before r_first: only rows j >= r_first contribute.
    n_matrices = 2 if two_replicas else 1
    n_blocks = (k + R_BLOCK - r_first) // R_BLOCK
    dots = np.zeros((n_matrices, k + 1))
    partials = np.zeros((n_matrices, n_blocks, k + 1))
    for t in prange(n_matrices * n_blocks):
        which = t // n_blocks
        block = _balanced(t % n_blocks, n_blocks)
        first = r_first + block * R_BLOCK
        _lower_triangle_times(Gamma_packed if which == 0 else Gamma_minus_packed, r, r_first, first,
                              min(first + R_BLOCK, k + 1), dots[which], partials[which, block])
    dt2 = dt * dt
    noise = np.empty(k + 1)
    noise_minus = np.empty(k + 1 if two_replicas else 0)
    for i in prange(k + 1):
        for which in range(n_matrices):
            value = langevin * r[i] + dt2 * (dots[which, i] + _sum_of_partials(partials[which], i, r_first))
            if which == 0:
                noise[i] = value
            else:
                noise_minus[i] = value
    # C[k+1, j'] = s0^2 A_{k+1} A_j' + m_{k+1} m_j' + sum_{j'-window<=i<j'} R[j', i] noise_i:
    # rows are independent; four per work item (``_rows_times``).
    n_groups = (k + 5) // 4
    s_plus = np.empty(k + 2)
    s_minus = np.empty(k + 2 if two_replicas else 0)
    for t in prange(n_groups):
        lo = 4 * _balanced(t, n_groups)
        hi = min(lo + 4, k + 2)
        _rows_times(R_packed, window, lo, hi, noise, s_plus)
        if two_replicas:
            _rows_times(R_packed, window, lo, hi, noise_minus, s_minus)
        for jp in range(lo, hi):
            C[k + 1, jp] = init_variance * A[k + 1] * A[jp] + m[k + 1] * m[jp] + s_plus[jp]
            if two_replicas:
                C_minus[k + 1, jp] = s_minus[jp]


# Below this step the weight side runs on one thread: waking the pool for its five
# parallel loops cost more than the O(k^2) work (a 150-step solve was 20% slower).
advance_weight_rows_serial = _serial(advance_weight_rows)
WEIGHTS_PARALLEL_FROM = 2 * R_BLOCK
