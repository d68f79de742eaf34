"""The population step: every effective sample advanced to step k, and its sums towards
row k of the kernels, per chunk (docs/theory.md §2-3, §7 for two replicas).

Three kernels: random-probe responses (the default), exact tangents (the reference for
small problems), two replicas. Each also has a single-threaded compilation
(``variants.serial``): for subpopulations side by side, small runs and early steps
(``Population.parallel``). Their loops over the past steps are ``past.sweep_past``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from .columns import add_diagonal, add_diagonal_response, zero_chunk
from .layout import (DELTA, DT, ERROR_K, F_K, F_K_B, FAST, G, G_MINUS, LAM_K, LAM_K_B, LOSS_K, MEMORY, MEMORY_B,
                     N_SUMS, QUANTIZE, TANGENT_MEMORY)
from .past import sweep_past
from .paths import finish_tangents, step_outputs
from .variants import serial

# Below this many sample-steps of work (samples x (k + 1)) a step runs on one thread.
PARALLEL_THRESHOLD = 200_000


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _streams_and_columns(k, first, ch, done, chunk_starts, L_row, R_row, zeta, f, f_scale, lam_du, lam_du_scale,
                         probes, sums, scratch, zero, acc_gamma, acc_response):
    """``sweep_past`` for two chunks: the streaming sums of chunk ``ch`` and the column sums
    of chunk ``done``, whose f_k and response weights are known. Either may be -1: none.
    The numbers do not depend on the pairing."""
    width = chunk_starts[ch + 1] - chunk_starts[ch] if ch >= 0 else 0
    done_width = chunk_starts[done + 1] - chunk_starts[done] if done >= 0 else 0
    ch, done = max(ch, 0), max(done, 0)  # views of chunk 0 stand for none: width 0
    sweep_past(k, first, width, L_row, R_row, zeta[ch], f[ch], f_scale[ch], sums[ch, G], sums[ch, MEMORY],
               lam_du[ch], lam_du_scale[ch], sums[ch, N_SUMS:], done_width, f[done], f_scale[done],
               scratch[done, F_K], probes[done], sums[done, N_SUMS:], zero, acc_gamma, acc_response, done)


@numba.njit(parallel=True, cache=True, fastmath=FAST, error_model="numpy")
def population_step_probe(
    k, first, L_row, R_row, m_k, params, codes, c, y, s_k, zeta, f, f_scale, probes, lam_du, lam_du_scale,
    chunk_starts, acc_gamma, acc_response, acc_obs, h_out, sums, scratch, groups,
):
    """Step k of every sample with random-probe responses (docs/theory.md §3).

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
                zero_chunk(ch, k, acc_gamma, acc_response, acc_obs)
            _streams_and_columns(k, first, current, ch - 1 if ch > begin else -1, chunk_starts, L_row, R_row, zeta,
                                 f, f_scale, lam_du, lam_du_scale, probes, sums, scratch, zero, acc_gamma,
                                 acc_response)
            if current < 0:
                continue
            start = chunk_starts[ch]
            width = chunk_starts[ch + 1] - start
            rows, paths = scratch[ch], sums[ch]
            step_outputs(k, start, width, paths[G], paths[MEMORY], m_k, params, codes, c, y, s_k, f[ch], f_scale[ch],
                         rows[F_K], rows[LAM_K], h_out, acc_obs, ch, 1.0, rows[LOSS_K], rows[ERROR_K])
            finish_tangents(k, width, dt_delta, probes[ch], lam_du[ch], lam_du_scale[ch], rows[LAM_K],
                            paths[N_SUMS:], rows[TANGENT_MEMORY], 1.0, codes[QUANTIZE] == 1)
            add_diagonal(k, width, rows[F_K], acc_gamma, ch)
            add_diagonal_response(k, width, rows[LAM_K], acc_response, ch, 1.0)


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
        none = paths[N_SUMS:]  # no rows: no probe tangents, no response columns
        zero_chunk(ch, k, acc_gamma, acc_response, acc_obs)
        sweep_past(k, first, width, L_row, R_row, zeta[ch], f[ch], f_scale[ch], paths[G], paths[MEMORY],
                   no_probes[ch], none, none, 0, f[ch], f_scale[ch], rows[F_K], no_probes[ch], none, 0.0, acc_gamma,
                   acc_response, ch)
        step_outputs(k, start, width, paths[G], paths[MEMORY], m_k, params, codes, c, y, s_k, f[ch], f_scale[ch],
                     rows[F_K], lam_k, h_out, acc_obs, ch, 1.0, rows[LOSS_K], rows[ERROR_K])
        sweep_past(k, first, 0, L_row, R_row, zeta[ch], f[ch], f_scale[ch], paths[G], paths[MEMORY], no_probes[ch],
                   none, none, width, f[ch], f_scale[ch], rows[F_K], no_probes[ch], none, 0.0, acc_gamma,
                   acc_response, ch)
        add_diagonal(k, width, rows[F_K], acc_gamma, ch)
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
    """Step k of two replicas per sample (docs/theory.md §7), random-probe responses.

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
        zero_chunk(ch, k, acc_gamma, acc_response, acc_obs)
        for j in range(k + 1):
            acc_gamma_minus[ch, j] = 0.0
        weights_a = paths[N_SUMS:N_SUMS + n_probes]
        weights_b = paths[N_SUMS + n_probes:]
        zero = np.zeros(1, weights_a.dtype)[0]
        # The paths and tangent memories of each replica (no column sums: below, both at once).
        sweep_past(k, first, width, L_plus_row, R_row, zeta_plus[ch], f_a[ch], f_a_scale[ch], g_a, paths[MEMORY],
                   lam_du_a[ch], lam_du_a_scale[ch], weights_a, 0, f_a[ch], f_a_scale[ch], rows[F_K], probes_a[ch],
                   weights_a, zero, acc_gamma, acc_response, ch)
        sweep_past(k, first, width, L_minus_row, R_row, zeta_minus[ch], f_b[ch], f_b_scale[ch], g_b,
                   paths[MEMORY_B], lam_du_b[ch], lam_du_b_scale[ch], weights_b, 0, f_b[ch], f_b_scale[ch],
                   rows[F_K_B], probes_b[ch], weights_b, zero, acc_gamma, acc_response, ch)
        for s in range(width):
            g_plus = g_a[s]
            g_minus = g_b[s]
            g_a[s] = root_half * (g_plus + g_minus)
            g_b[s] = root_half * (g_plus - g_minus)
        step_outputs(k, start, width, g_a, paths[MEMORY], m_k, params, codes, c, y, s_a, f_a[ch], f_a_scale[ch],
                     rows[F_K], rows[LAM_K], h_a, acc_obs, ch, 0.5, rows[LOSS_K], rows[ERROR_K])
        step_outputs(k, start, width, g_b, paths[MEMORY_B], m_k, params, codes, c, y, s_b, f_b[ch], f_b_scale[ch],
                     rows[F_K_B], rows[LAM_K_B], h_b, acc_obs, ch, 0.5, rows[LOSS_K], rows[ERROR_K])
        quantize = codes[QUANTIZE] == 1
        finish_tangents(k, width, dt_delta, probes_a[ch], lam_du_a[ch], lam_du_a_scale[ch], rows[LAM_K], weights_a,
                        rows[TANGENT_MEMORY], 0.5, quantize)
        finish_tangents(k, width, dt_delta, probes_b[ch], lam_du_b[ch], lam_du_b_scale[ch], rows[LAM_K_B],
                        weights_b, rows[TANGENT_MEMORY], 0.5, quantize)
        # One pass over j for all column sums: Gamma_C from both replicas, Gamma_C - Gamma_ab
        # from (f^a - f^b)_k (f^a - f^b)_j / 2 (stored values), K from both replicas' probes.
        fa_k, fb_k, Fa, Fb = rows[F_K], rows[F_K_B], f_a[ch], f_b[ch]
        Pa, Pb = probes_a[ch], probes_b[ch]
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
        add_diagonal_response(k, width, rows[LAM_K], acc_response, ch, 0.5)
        add_diagonal_response(k, width, rows[LAM_K_B], acc_response, ch, 0.5)


population_step_probe_serial = serial(population_step_probe)
population_step_exact_serial = serial(population_step_exact)
population_step_two_replicas_serial = serial(population_step_two_replicas)
