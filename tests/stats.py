"""Thresholds for z-scores whose standard errors come from a few independent runs."""

from __future__ import annotations

import numpy as np
from scipy.stats import t as student_t


def z_threshold(runs: int, comparisons: int = 1, false_alarm: float = 1e-3) -> float:
    """Two-sided Student-t quantile for a standard error estimated from ``runs`` runs.

    Bonferroni over ``comparisons`` (a conservative count of independent checks), so
    the whole assertion fails by chance with probability <= ``false_alarm``.
    """
    return float(student_t.ppf(1 - false_alarm / (2 * comparisons), df=max(runs - 1, 1)))


def max_z(difference: np.ndarray, *errors: np.ndarray, round_off: float = 1e-10) -> float:
    """max |difference| / sqrt(sum errors^2 + round_off^2).

    Entries without sampling noise (e.g. C[k, 0] = sigma0^2 A_k for GD) must then agree to
    ``round_off``.
    """
    variance = sum(np.asarray(e, dtype=float) ** 2 for e in errors) + round_off**2
    return float(np.max(np.abs(difference) / np.sqrt(variance)))
