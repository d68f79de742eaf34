"""Losses l(y, h) = l0(y, phi(h)) and their derivatives in h (THEORY.md section 1).

The scalar functions are numba-compiled so the hot kernels of the solver and the
simulator call the same code; ``Loss`` is the validated user-facing description.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from .errors import ParameterError

# Integer codes let numba kernels dispatch without Python objects.
LOGISTIC, SQUARE, SQUARE_HINGE, SMOOTH_HINGE, HINGE = 0, 1, 2, 3, 4
LOSS_CODES = {
    "logistic": LOGISTIC,
    "square": SQUARE,
    "square-hinge": SQUARE_HINGE,
    "smooth-hinge": SMOOTH_HINGE,
    "hinge": HINGE,
}
# Pathwise responses differentiate l' once more: l' must be Lipschitz (THEORY.md section 3).
PATHWISE_LOSSES = ("logistic", "square", "square-hinge", "smooth-hinge")

LINEAR, SYMMETRIC = 0, 1  # readouts phi(h) = h and phi(h) = h^2 - theta


@dataclass(frozen=True)
class Loss:
    """Per-sample loss. ``margin`` is kappa (hinge losses), ``sharpness`` beta (smooth hinge)."""

    name: str = "logistic"
    margin: float = 1.0
    sharpness: float = 10.0

    def __post_init__(self) -> None:
        if self.name not in LOSS_CODES:
            raise ParameterError("loss", f"unknown loss {self.name!r}; choose from {', '.join(LOSS_CODES)}")
        if self.name == "hinge":
            raise ParameterError(
                "loss",
                "'hinge' has a jump in l' and pathwise responses need a Lipschitz l'; "
                "use 'square-hinge' or 'smooth-hinge'",
            )
        if not math.isfinite(self.margin):
            raise ParameterError("margin", f"must be a finite number, got {self.margin}")
        if not (self.sharpness > 0 and math.isfinite(self.sharpness)):
            raise ParameterError("sharpness", f"must be > 0 and finite, got {self.sharpness}")

    @property
    def code(self) -> int:
        return LOSS_CODES[self.name]


@numba.njit(cache=True, inline="always")
def _softplus_and_sigmoid(x: float) -> tuple[float, float]:
    """log(1 + e^x) and 1 / (1 + e^-x) from one exponential, e^-|x|, which cannot overflow.

    (Taken separately: two exponentials and a log per sample and step; loss_terms then took
    46 ns per sample, against 40 ns now.)
    """
    e = math.exp(-abs(x))
    softplus = max(x, 0.0) + math.log1p(e)
    sigmoid = 1.0 / (1.0 + e) if x >= 0.0 else e / (1.0 + e)
    return softplus, sigmoid


@numba.njit(cache=True)
def loss_terms(loss_code, readout_code, margin, sharpness, theta, y, h):
    """Return (l, l', l'', gap) at preactivation h, derivatives taken in h; gap = y phi(h)."""
    if readout_code == LINEAR:
        phi, dphi, d2phi = h, 1.0, 0.0
    else:
        phi, dphi, d2phi = h * h - theta, 2.0 * h, 2.0
    z = y * phi
    if loss_code == LOGISTIC:
        value, s = _softplus_and_sigmoid(-z)
        d1 = -y * s
        d2 = s * (1.0 - s)
    elif loss_code == SQUARE:
        value = 0.5 * (y - phi) ** 2
        d1 = phi - y
        d2 = 1.0
    elif loss_code == SQUARE_HINGE:
        gap = margin - z
        if gap > 0.0:
            value = 0.5 * gap * gap
            d1 = -y * gap
            d2 = 1.0
        else:
            value, d1, d2 = 0.0, 0.0, 0.0
    else:  # SMOOTH_HINGE: softplus(beta (kappa - z)) / beta
        x = sharpness * (margin - z)
        softplus, s = _softplus_and_sigmoid(x)
        value = softplus / sharpness
        d1 = -y * s
        d2 = sharpness * s * (1.0 - s)
    # Chain rule through the readout (y^2 = 1 folds into d2).
    return value, d1 * dphi, d2 * dphi * dphi + d1 * d2phi, z


@numba.njit(cache=True)
def loss_terms_array(loss_code, readout_code, margin, sharpness, theta, y, h):
    """Vectorised ``loss_terms`` over arrays y, h: returns (l, l', l'', gap) arrays."""
    n = h.shape[0]
    value = np.empty(n)
    d1 = np.empty(n)
    d2 = np.empty(n)
    gap = np.empty(n)
    for a in range(n):
        value[a], d1[a], d2[a], gap[a] = loss_terms(loss_code, readout_code, margin, sharpness, theta, y[a], h[a])
    return value, d1, d2, gap
