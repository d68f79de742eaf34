"""How the population's arrays and parameters are laid out for the numba kernels.

Samples are grouped in fixed chunks, each owned by one thread and accumulated in its own
row: the summation order, hence every number, does not depend on the number of threads.
Storage is chunk-major and time-major within a chunk: ``zeta[chunk, j, s]`` holds sample
``chunk_starts[chunk] + s`` at step j. So step k streams one contiguous block of
k x chunk_size numbers per array and chunk, and every loop runs over the samples of a
chunk, which vectorises. (Sample-major rows read only a prefix of each row, wasting
memory bandwidth on row starts and on prefetches past the prefix.)

``params`` packs the floats (dt, sqrt(Delta), Delta, 1/B, margin, sharpness, theta)
and ``codes`` the integers (loss, readout, quantize) so the signatures stay short.
Per-chunk rows over the samples live in two arrays, named by the row constants below:
``sums`` (Gaussian paths, memory sums, probe tangent memories and weights) and
``scratch`` (float64: f_k, lam_k, losses). Except in double precision zeta is int8 and
the caller scales L accordingly (population.ZETA_UNIT); each stored row of f and lam du
has a scale (1, or the block scale of precision "compact": ``paths.store_row``).

The streaming sums (Gaussian path, memory sums, tangent memories, response columns) run
in the type of ``sums``, of L_row and R_row and of the scales, which the caller chooses
(population.SUM_TYPES): float32 except in double precision and for exact responses. That
halves their arithmetic (16 lanes per vector, no conversion from the stored float32 or
int16). Their round-off, ~1e-7 relative per term, is far below the Monte Carlo error.
The column sums of Gamma_C stay float64, on the stored values with float64 scales:
Gamma_C is the Gram matrix of what the memory sums read to float64 round-off, and C
stays positive semi-definite.
"""

from __future__ import annotations

import math

import numpy as np

# Reassociation lets LLVM vectorise the reductions (otherwise bound by the latency of
# dependent adds); no nnan/ninf, so NaN and overflow still propagate and are caught.
# REPRODUCIBLE: the order is then fixed by the compiled code, provided every sum runs into
# a local scalar in a loop that stores nothing. A loop that also stores (or sums into an
# array element) is compiled in two versions behind a run-time aliasing check on the
# arrays' addresses; the two sum in different orders, and which one runs can change from
# run to run. Element-wise updates (g[s] += ...) are safe: both versions do the same
# operations per element.
FAST = {"reassoc", "contract"}

DT, SQRT_DELTA, DELTA, INV_B, MARGIN, SHARPNESS, THETA = range(7)
LOSS, READOUT, QUANTIZE = range(3)
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


def pack_params(dt: float, delta: float, gradient_divisor: float, margin: float, sharpness: float, theta: float,
                loss_code: int, readout_code: int, quantize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The kernels' ``params`` (float64, indexed by DT ... THETA) and ``codes`` (int64,
    indexed by LOSS, READOUT, QUANTIZE)."""
    params = np.array([dt, math.sqrt(delta), delta, 1.0 / gradient_divisor, margin, sharpness, theta])
    codes = np.array([loss_code, readout_code, int(quantize)], dtype=np.int64)
    return params, codes
