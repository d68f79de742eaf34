"""Inlined helpers of the population step for one chunk: the diagonal entries of row k of
the kernels Gamma_C and K, and clearing the chunk's sums (docs/theory.md §2-3). The
columns j < k are summed in the pass over the past (``past``).
"""

from __future__ import annotations

import numba

from .layout import FAST, N_OBS


@numba.njit(cache=True, inline="always", fastmath=FAST)
def add_diagonal(k, width, f_k, acc_gamma, ch):
    """acc_gamma[k] += sum_s f_k^2. (K[k,k] is lam_k: ``add_diagonal_response``.)"""
    diagonal = 0.0
    for s in range(width):
        diagonal += f_k[s] * f_k[s]
    acc_gamma[ch, k] += diagonal


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
