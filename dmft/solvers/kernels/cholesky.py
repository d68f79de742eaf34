"""The semidefinite Cholesky factor of C, one row per step (docs/theory.md §4)."""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from .layout import FAST
from .triangles import R_BLOCK, packed_row
from .variants import serial


def diagonal_blocks(n: int) -> np.ndarray:
    """Storage for the diagonal blocks of an n x n Cholesky factor (``cholesky_row``)."""
    return np.zeros(((n + R_BLOCK - 1) // R_BLOCK, R_BLOCK, R_BLOCK))


@numba.njit(cache=True, inline="always", fastmath=FAST)
def _subtract_earlier_rows(C, L, k, first, lo, hi, own):
    """own[j] = C[k, j] - sum_{i<first} own[i] L[j, i] for the rows lo <= j < hi (<= 4).

    Four rows in one sweep share the loads of own, and four streams keep more reads in
    flight than one. The same bits: each row's sum is still one local scalar in a loop that
    stores nothing (REPRODUCIBLE: ``layout.FAST``)."""
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
    zero: that direction is already spanned by earlier rows (docs/theory.md §4). No
    jitter is added. Returns the squared pivot before thresholding, so the caller can
    detect a loss of positive semi-definiteness beyond round-off.

    Blocked forward substitution: for each block of R_BLOCK columns j, the sums over the
    columns before the block are independent (parallel over groups of four j:
    ``_subtract_earlier_rows``); the rest is sequential. Each sum runs in a fixed order,
    so the numbers do not depend on the threads. Rows up to R_BLOCK long run on one thread.

    The sequential part reads the block's diagonal triangle from ``blocks`` (from
    ``diagonal_blocks``; row k adds its own): a contiguous copy, where the block's rows
    lie far apart and, evicted by the population kernel since the last step, cost a
    memory latency per short row.
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
    # An element loop, not a slice assignment: that would compile numba's shape-mismatch
    # error path (string formatting), about 2 s of every first run (docs/performance.md).
    diagonal = blocks[k // R_BLOCK, k - first]
    for j in range(first, k + 1):
        diagonal[j - first] = own[j]
    return d


# Rows up to R_BLOCK long use no threads: a run that has no longer ones need not compile
# the threaded kernel.
cholesky_row_serial = serial(cholesky_row)
