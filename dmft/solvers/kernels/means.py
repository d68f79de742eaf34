"""Kernel rows and their standard errors from the population's per-chunk sums."""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .variants import serial

# Columns per work item of chunk_means.
COLUMN_BLOCK = 512


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
    over a single column, which it adds pairwise.) One call, without numpy's temporaries
    per row for the sum, division and scaling.
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


# For the steps whose population kernel runs on one thread (``Population.parallel``).
chunk_means_serial = serial(chunk_means)
