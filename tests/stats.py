"""Thresholds for z-scores whose standard errors come from a few independent runs, and the
power every physics comparison must have (issue 23)."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import t as student_t

POWER = 0.03
"""The largest relative error a comparison may miss in m, C, the losses and the errors."""

POWER_RESPONSE = 0.10
"""The largest relative error a comparison may miss in R, chi, T_eff and the replica distance."""


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


def assert_agrees(name: str, value: float, reference: float, errors: tuple[float, ...], limit: float,
                  power: float, scale: float | None = None) -> float:
    """One comparison and its power.

    ``|value - reference|`` must be below ``limit`` times the combined standard error (the
    quadrature sum of ``errors``), and that detection limit must be at most ``power`` times
    ``|scale|`` (by default the reference): the comparison would catch an error of that
    relative size. Returns the resolution, ``limit x error / |scale|``.
    """
    error = math.sqrt(sum(float(e) ** 2 for e in errors))
    size = abs(float(reference if scale is None else scale))
    difference = abs(float(value) - float(reference))
    assert difference < limit * error, (
        f"{name}: {float(value):.6g} against {float(reference):.6g} +- {error:.2g} "
        f"(z = {difference / error if error > 0 else math.inf:.2f} >= {limit:.2f})")
    resolution = limit * error / size
    assert resolution <= power, f"{name}: the comparison resolves only {resolution:.1%} (more than {power:.0%})"
    return resolution
