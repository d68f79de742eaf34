"""Helpers of the population step for one chunk: the samples' outputs at step k, the
probe tangents, and how a row of a path is stored (docs/theory.md §2-3); the sums over
the past steps that precede them are in ``past``. Inlined, except the two largest.
Storage and sum types: ``layout``.
"""

from __future__ import annotations

import numba
import numpy as np

from ...loss_kernels import loss_terms_given, softplus_and_sigmoid_rows, softplus_argument
from ...losses import LOGISTIC, SMOOTH_HINGE
from .layout import (DT, FAST, INV_B, LOSS, MARGIN, OBS_ERROR, OBS_LOSS, OBS_MU_HAT, QUANTIZE, READOUT, SHARPNESS,
                     SQRT_DELTA, THETA)

# Largest stored magnitude of a 16-bit block-scaled row (precision "compact").
INT16_MAX = 32767.0


@numba.njit(cache=True, inline="always")
def training_error(gap):
    """1 for a misclassified sample, 1/2 for a gap exactly 0: a lattice atom of the stored
    innovations, half of whose mass came from below (docs/theory.md §8, "atoms")."""
    if gap < 0.0:
        return 1.0
    return 0.5 if gap == 0.0 else 0.0


@numba.njit(cache=True, inline="always", fastmath=FAST)
def store_row(k, width, values, stored, scales, quantize):
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


# Called, not inlined (and not cached: compiled with the kernel that first calls it in a
# process, so every kernel is compiled alike, fresh or not): the probe, exact and two-replica
# kernels, threaded and serial, share one compilation of it. A called helper keeps its own
# flags, which must be the callers' (an inlined one takes its caller's).
@numba.njit(cache=False, fastmath=FAST, error_model="numpy")
def step_outputs(k, start, width, g, memory, m_k, params, codes, c, y, s_k, F, F_scale, f_k, lam_k, h_out,
                 acc_obs, ch, obs_weight, losses, errors):
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
        # only after it is read). The two branches repeat the loop body on purpose: sharing
        # the loops before and after the branch made this branch slower.
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
            errors[s] = training_error(gap)
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
            errors[s] = training_error(gap)
    # Use the stored (rounded) values everywhere, so Gamma_C stays the Gram matrix of what
    # the memory sums read, and C stays positive semi-definite.
    store_row(k, width, f_k, F, F_scale, codes[QUANTIZE] == 1)
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


# Called, not inlined: as ``step_outputs``.
@numba.njit(cache=False, fastmath=FAST, error_model="numpy")
def finish_tangents(k, width, dt_delta, P, T, T_scale, lam_k, rows, tangent, weight_scale, quantize):
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
        store_row(k, width, tangent, T[p], T_scale[p], quantize)
