"""Lower triangles stored by rows: row j holds its j + 1 entries right after row j - 1, so
a block of rows is one contiguous stretch, which streams at the memory bandwidth (rows of
a square array lie n apart, and their prefixes read cold stream slower)."""

from __future__ import annotations

import numba
import numpy as np

# Rows per work item of the weight side, columns per block of the Cholesky row: enough
# work per item to amortise starting it, enough items for both cores.
R_BLOCK = 256


@numba.njit(cache=True, inline="always")
def packed_row(packed: np.ndarray, j: int) -> np.ndarray:
    """Row j (columns 0..j, a view) of a lower triangle stored by rows."""
    start = j * (j + 1) // 2
    return packed[start : start + j + 1]


def packed_size(n: int) -> int:
    """Entries of an n x n lower triangle stored by rows (``packed_row``)."""
    return n * (n + 1) // 2
