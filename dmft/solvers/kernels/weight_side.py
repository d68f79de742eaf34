"""The weight side's step: A, m, R row and C row k+1 from the kernel rows 0..k
(docs/theory.md §2), reading only the nonzero triangles, stored by rows (``triangles``).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .layout import FAST
from .triangles import R_BLOCK, packed_row
from .variants import serial

# The weight side's scatter passes take four rows per sweep only in blocks whose rows
# reach past this length; shorter ones go one at a time: one short row and its partial
# row stay in L1 between the dot product and the scatter, four do not.
FOUR_ROWS_FROM = 1024


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


# Called, not inlined: compiled once for its calls in both kernels, which it makes faster to
# compile (the threaded one most: parfor passes over a prange body grow with what it inlines);
# uncached, as ``kernels.paths.step_outputs``, and with the callers' flags.
@numba.njit(cache=False, fastmath=FAST)
def _lower_triangle_times(M_packed, r, start, first, last, dots, partial):
    """Rows first..last-1 of the lower triangle of a symmetric M (stored by rows:
    ``packed_row``) against r (zero before ``start``).

    dots[j] = sum_{start<=i<=j} M[j,i] r_i (complete), partial[i] += M[j,i] r_j for i < j
    (the upper triangle's share, to be added up over blocks of rows).

    Four rows per sweep share the loads of r and the loads and stores of ``partial``, and
    keep four streams in flight. Blocks of short rows go one row at a time
    (``FOUR_ROWS_FROM``).
    """
    j = first
    while j + 4 <= last and last > FOUR_ROWS_FROM:
        a, b, c, d = packed_row(M_packed, j), packed_row(M_packed, j + 1), packed_row(M_packed, j + 2), \
            packed_row(M_packed, j + 3)
        r0, r1, r2, r3 = r[j], r[j + 1], r[j + 2], r[j + 3]
        s0, s1, s2, s3 = _four_dots(r[start:j], a[start:j], b[start:j], c[start:j], d[start:j])
        # A separate loop: one that both sums into a scalar and stores would be compiled with
        # a run-time aliasing check, whose outcome depends on where the arrays lie in memory,
        # choosing between two summation orders (REPRODUCIBLE: ``layout.FAST``).
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


# Called, not inlined: as ``_lower_triangle_times``.
@numba.njit(cache=False, fastmath=FAST)
def _add_weighted_rows(R_packed, start, lo, hi, weights, partial):
    """partial[i] += sum_{lo<=j<hi} weights[j] R[j, i] for i >= start (R strictly lower
    triangular, stored by rows: ``packed_row``).

    Four rows per sweep share the loads and stores of ``partial`` and keep four streams in
    flight. Blocks of short rows go one row at a time (``FOUR_ROWS_FROM``)."""
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


# Called, not inlined: as ``_lower_triangle_times``.
@numba.njit(cache=False, fastmath=FAST)
def _rows_times(R_packed, window, lo, hi, v, out):
    """out[j] = sum_{j-window<=i<j} R[j, i] v_i for the rows lo <= j < hi (<= 4) of R
    (strictly lower triangular, stored by rows: ``packed_row``; zero outside the window).

    Four rows in one sweep share the loads of v and keep four streams in flight. The sweep
    starts at the first row's window; the later rows' R is zero there, adding zeros."""
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
def advance_weight_rows(k, window, decay, dt, langevin, init_variance, momentum, mean_feedback, K, R, A, m, mu_hat,
                        Gamma_packed, C, Gamma_minus_packed, C_minus, R_packed):
    """Step k+1 of the weight side from kernel rows 0..k (docs/theory.md §2).

    A_{k+1}, m_{k+1}, R[k+1, :] and C[k+1, :k+2] (and C - C_ab when ``C_minus`` has rows):
    rows of lower triangles only (``Trajectory.symmetrize`` fills the upper ones). The
    passes over earlier rows of R read its copy stored by rows (``R_packed``:
    ``packed_row``), which each new row is written to as well, in R_packed's type: C's
    closed form takes R so rounded on both sides. Gamma_C (and Gamma_C - Gamma_ab) are
    read stored by rows too (``Trajectory.Gamma_packed``). Every loop is parallel over
    output elements, each summed in a fixed order, so the numbers do not depend on the
    number of threads. Only lower triangles are read: R is strictly lower triangular and
    Gamma symmetric. ``langevin`` = 2 T dt.

    C takes the closed form of docs/theory.md §2, s0^2 A A^T + m m^T + R N R^T with
    N = dt^2 Gamma + 2 T dt I.

    ``momentum`` beta adds beta (X_k - X_{k-1}) to the recursions of A, m and R, with
    X_{-1} = X_0 (docs/theory.md §2.8). ``mean_feedback`` is False for the teacher-student
    perceptron, where K does not act on m (docs/theory.md §2.7).

    ``window`` is the memory window in steps: R[k', i] and K[k', i] are zero for
    k' - i > window (window > k: none). Then R row k+1 costs O(window^2) and the noise and
    C row O(window k) instead of O(k^2).
    """
    # Loops over [first, last) run over slices from 0: a loop from a variable start ran slower.
    two_replicas = C_minus.shape[0] > 0
    k_first = max(k - window, 0)  # K[k, j] = 0 for j < k_first
    r_first = max(k + 1 - window, 0)  # R[k+1, i] = 0 for i < r_first
    a_sum = 0.0
    m_sum = 0.0
    for j in range(k_first, k + 1):
        a_sum += K[k, j] * A[j]
        m_sum += K[k, j] * m[j]
    A[k + 1] = decay * A[k] - dt * a_sum
    if mean_feedback:
        m[k + 1] = decay * m[k] - dt * mu_hat[k] - dt * m_sum
    else:
        m[k + 1] = decay * m[k] - dt * mu_hat[k]
    if momentum != 0.0 and k > 0:  # at k = 0 the velocity X_0 - X_{-1} is zero
        A[k + 1] += momentum * (A[k] - A[k - 1])
        m[k + 1] += momentum * (m[k] - m[k - 1])
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
    if momentum != 0.0:  # R[k-1, i] is zero for i >= k - 1
        for i in range(r_first, k):
            R[k + 1, i] += momentum * (R[k, i] - R[k - 1, i])
    R[k + 1, k] = 1.0
    r = packed_row(R_packed, k + 1)
    for i in range(k + 2):  # not r[:] = ...: see cholesky_row
        r[i] = R[k + 1, i]
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
# parallel loops cost more than the O(k^2) work.
advance_weight_rows_serial = serial(advance_weight_rows)
WEIGHTS_PARALLEL_FROM = 2 * R_BLOCK
