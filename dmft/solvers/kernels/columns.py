"""Inlined helpers of the population step for one chunk: its sums towards row k of the
kernels Gamma_C and K (docs/theory.md §2-3). Sum types: ``layout``.
"""

from __future__ import annotations

import numba
import numpy as np

from .layout import FAST, N_OBS


@numba.njit(cache=True, inline="always", fastmath=FAST)
def add_column(j, with_response, width, F, F_scale, f_k, P, weights, zero, acc_gamma, acc_response, ch):
    """Entry j of row k of Gamma_C and (``with_response``) of K from the chunk:
    acc_gamma[j] += sum_s f_k f_j, acc_response[j] += sum_p sum_s weights[p] pi_j. Gamma_C
    sums in float64, K in the type of ``weights`` and of ``zero`` (``layout``)."""
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
def add_diagonal(k, width, f_k, acc_gamma, ch):
    """acc_gamma[k] += sum_s f_k^2. (K[k,k] is lam_k: ``add_diagonal_response``.)"""
    diagonal = 0.0
    for s in range(width):
        diagonal += f_k[s] * f_k[s]
    acc_gamma[ch, k] += diagonal


@numba.njit(cache=True, inline="always", fastmath=FAST)
def add_columns(k, first, width, F, F_scale, f_k, P, weights, acc_gamma, acc_response, ch):
    """Row k of Gamma_C and K from the chunk: ``add_column`` for j < k (K for first <= j < k,
    the memory window) and ``add_diagonal``. The f block was the last one the path sums read:
    it is re-read from cache.
    """
    zero = np.zeros(1, weights.dtype)[0]  # of the sums' type: K's sums run in it
    for j in range(k):
        add_column(j, j >= first, width, F, F_scale, f_k, P, weights, zero, acc_gamma, acc_response, ch)
    add_diagonal(k, width, f_k, acc_gamma, ch)


@numba.njit(cache=True, inline="always", fastmath=FAST)
def add_diagonal_response(k, width, lam_k, acc_response, ch, weight):
    """K[k,k] gets lam_k directly (no probe needed)."""
    total = 0.0
    for s in range(width):
        total += lam_k[s]
    acc_response[ch, k] += weight * total


@numba.njit(cache=True, inline="always", fastmath=FAST)
def zero_chunk(ch, k, acc_gamma, acc_response, acc_obs):
    """Clear chunk ``ch``'s sums of kernel row k and of the observables."""
    for j in range(k + 1):
        acc_gamma[ch, j] = 0.0
        acc_response[ch, j] = 0.0
    for o in range(N_OBS):
        acc_obs[ch, o] = 0.0

