"""The pass over the past steps j < k for one chunk (docs/theory.md §2-3): the Gaussian
paths' sums, the probe tangents' memory sums, and the column sums of Gamma_C and K.

Every population kernel runs its loops over the past through ``sweep_past``, whose loop
body holds no call. An inlined helper called inside the loop binds its array arguments
at every j, and a single-threaded compilation counts each binding with two atomic
reference-count operations: tens per j and chunk, which once made the serial kernels
three times slower than the threaded ones on one thread (docs/performance.md). The
threaded kernels' arrays carry no reference count inside the parallel loop.
"""

from __future__ import annotations

import numba

from .layout import FAST


@numba.njit(cache=True, inline="always", fastmath=FAST)
def sweep_past(k, first, width, L_row, R_row, Z, F, F_scale, g, memory, T, T_scale, memories,
               done_width, F_done, F_done_scale, f_k, P_done, weights_done, zero, acc_gamma, acc_response, done):
    """One pass over j < k doing, for each j, the terms of up to three sums.

    The streaming sums of a chunk of ``width`` samples (0: none), its paths' innovations
    ``Z`` and stored outputs ``F``:

    - g = sum_{j<=k} L[k,j] zeta_j (``g``) and sum_{first<=j<k} R[k,j] f_j (``memory``);
    - for each of the chunk's probes p (rows of ``T``, stored lam_i du_i; none if it has
      no rows): sum_{first<=i<k} R[k,i] lam_i du_i (``memories[p]``, docs/theory.md §3).

    The column sums of a chunk ``done`` of ``done_width`` samples (0: none), whose f_k and
    response weights are known: acc_gamma[done, j] += sum_s f_k f_j (float64) and, for
    first <= j, acc_response[done, j] += sum_p sum_s weights[p] pi_j (in the type of
    ``zero``: ``layout``).

    ``first`` is the memory window: R[k,j] and K[k,j] are taken as zero for j < first.
    The streaming sums wait on memory and the column sums, which re-read a block of f
    just read, on arithmetic: in one loop each runs while the other waits. Each sum adds
    the same terms in the same order whatever else the pass does.
    """
    for s in range(width):
        g[s] = L_row[k] * Z[k, s]
        memory[s] = 0.0
    memories[:, :width] = 0.0
    for j in range(k):
        l_kj = L_row[j]
        if j < first:
            for s in range(width):
                g[s] += l_kj * Z[j, s]
        else:
            r_kj = R_row[j] * F_scale[j]
            for s in range(width):
                g[s] += l_kj * Z[j, s]
                memory[s] += r_kj * F[j, s]
            for p in range(T.shape[0]):
                r_ki = R_row[j] * T_scale[p, j]
                for s in range(width):
                    memories[p, s] += r_ki * T[p, j, s]
        if done_width > 0:
            gamma = 0.0
            for s in range(done_width):
                gamma += f_k[s] * F_done[j, s]
            acc_gamma[done, j] += F_done_scale[j] * gamma
            if j >= first:
                response = zero
                for p in range(P_done.shape[0]):
                    for s in range(done_width):
                        response += weights_done[p, s] * P_done[p, j, s]
                acc_response[done, j] += response
