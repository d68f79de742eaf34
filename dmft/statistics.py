"""The mean of independent runs and its standard error from their spread."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def mean_and_stderr(runs: Sequence[np.ndarray | float]) -> tuple[np.ndarray, np.ndarray]:
    """Mean over independent runs (axis 0) and its standard error, std(ddof=1) / sqrt(n):
    NaN with a single run."""
    stack = np.asarray(runs, dtype=float)
    mean = stack.mean(axis=0)
    if len(stack) < 2:
        return mean, np.full_like(mean, np.nan)
    return mean, stack.std(axis=0, ddof=1) / math.sqrt(len(stack))


def jackknife_stderr(leave_one_out: Sequence[float]) -> float:
    """Standard error of a statistic from its n leave-one-out values over independent runs:
    sqrt((n - 1) / n * sum (x_i - mean)^2)."""
    values = np.asarray(leave_one_out, dtype=float)
    n = len(values)
    return float(math.sqrt((n - 1) / n * np.sum((values - values.mean()) ** 2)))
