"""The losses of ``dmft.losses`` and their derivatives in h, as numba functions (docs/theory.md §1).

The solver's kernels and the simulator call the same code (the solver's population kernel
takes the softplus of the logistic and smooth hinge losses for a chunk of samples at once,
by polynomials: ``softplus_and_sigmoid_rows``, within a few ulp of libm's). The functions
take a loss's integer code (``Loss.code``) and a readout code (``Dataset.readout_code``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ._numba_cache import clear_stale_caches_once
from .losses import LINEAR, LOGISTIC, SMOOTH_HINGE, SQUARE, SQUARE_HINGE


@numba.njit(cache=True, inline="always")
def _softplus_and_sigmoid(x: float) -> tuple[float, float]:
    """log(1 + e^x) and 1 / (1 + e^-x) from one exponential, e^-|x|, which cannot overflow
    (taken separately they cost two exponentials and a log)."""
    e = math.exp(-abs(x))
    softplus = max(x, 0.0) + math.log1p(e)
    sigmoid = 1.0 / (1.0 + e) if x >= 0.0 else e / (1.0 + e)
    return softplus, sigmoid


@numba.njit(cache=True)
def loss_terms(loss_code, readout_code, margin, sharpness, theta, y, h):
    """Return (l, l', l'', gap) at preactivation h, derivatives taken in h; gap = y phi(h)."""
    softplus = sigmoid = 0.0
    if loss_code == LOGISTIC or loss_code == SMOOTH_HINGE:
        softplus, sigmoid = _softplus_and_sigmoid(softplus_argument(loss_code, readout_code, margin, sharpness,
                                                                    theta, y, h))
    return loss_terms_given(loss_code, readout_code, margin, sharpness, theta, y, h, softplus, sigmoid)


@numba.njit(cache=True, inline="always")
def softplus_argument(loss_code, readout_code, margin, sharpness, theta, y, h):
    """x of the softplus the logistic (x = -z) and smooth hinge (x = beta (kappa - z)) losses
    take, z = y phi(h)."""
    phi = h if readout_code == LINEAR else h * h - theta
    z = y * phi
    return -z if loss_code == LOGISTIC else sharpness * (margin - z)


@numba.njit(cache=True, inline="always")
def loss_terms_given(loss_code, readout_code, margin, sharpness, theta, y, h, softplus, sigmoid):
    """``loss_terms``, given softplus(x) and sigmoid(x) of ``softplus_argument`` for the
    logistic and smooth hinge losses (ignored by the others)."""
    if readout_code == LINEAR:
        phi, dphi, d2phi = h, 1.0, 0.0
    else:
        phi, dphi, d2phi = h * h - theta, 2.0 * h, 2.0
    z = y * phi
    if loss_code == LOGISTIC:
        value, s = softplus, sigmoid
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
        s = sigmoid
        value = softplus / sharpness
        d1 = -y * s
        d2 = sharpness * s * (1.0 - s)
    # Chain rule through the readout (y^2 = 1 folds into d2).
    return value, d1 * dphi, d2 * dphi * dphi + d1 * d2phi, z


# exp(-|x|) by Cody and Waite's reduction, e^a = 2^n e^r with |r| <= ln2 / 2, and the
# Taylor polynomial of e^r to degree 13 (truncation below 5e-18 of it); log1p(e) for
# 0 < e <= 1 as 2 atanh(t), t = e / (2 + e) <= 1/3, to t^37 (truncation below 3e-20).
LOG2E = 1.4426950408889634
LN2_HIGH = 6.93147180369123816490e-01  # ln 2 in two parts (fdlibm): LN2_HIGH * n is exact
LN2_LOW = 1.90821492927058770002e-10
EXP_FLOOR = -708.0  # e^-708 is still a normal double; below, e^-|x| counts as that
# Coefficients, highest power first: 1/13!, ..., 1/1!, 1/0! and 1/37, 1/35, ..., 1/3, 1
# (atanh(t) / t as a series in t^2).
EXP_TAYLOR = tuple(1.0 / math.factorial(n) for n in range(13, -1, -1))
ATANH_SERIES = tuple(1.0 / (2 * n + 1) for n in range(18, -1, -1))


def _horner(coefficients: tuple[float, ...]) -> numba.core.registry.CPUDispatcher:
    """The polynomial with these coefficients (highest power first), as a numba function of x
    that evaluates it by Horner's rule written out, one line per coefficient.

    Written out so that a loop calling it vectorises: a loop over the coefficients (even
    under ``literal_unroll``, which leaves tuples of one type as loops) is unrolled only
    when LLVM's heuristics allow, and the 19-term atanh series was not: its loop ran one
    sample at a time.
    """
    lines = ["def polynomial(x):", "    value = 0.0"]
    lines += [f"    value = value * x + {c!r}" for c in coefficients]
    lines.append("    return value")
    namespace: dict = {}
    exec("\n".join(lines), namespace)  # the coefficients become literals of the code
    return numba.njit(inline="always")(namespace["polynomial"])


_exp_taylor = _horner(EXP_TAYLOR)
_atanh_series = _horner(ATANH_SERIES)


@numba.njit(cache=True, inline="always")
def softplus_and_sigmoid_rows(x, softplus, sigmoid, work):
    """softplus(x) = log(1 + e^x) and sigmoid(x) = 1 / (1 + e^-x) of every entry of x,
    as ``_softplus_and_sigmoid`` (one exponential, e^-|x|) but by polynomials, in loops that
    vectorise: numba calls libm's exp and log1p one number at a time. Within a few ulp of
    the libm values (tested); a NaN stays NaN.
    ``work``: a float64 row, for the powers of 2 (written through an int64 view of it).
    The caller must compile with error_model="numpy" (no zero-division checks, which stop
    the vectorisation; nothing here divides by zero).
    """
    n = x.shape[0]
    powers = work.view(np.int64)
    for s in range(n):
        a = -abs(x[s])
        a = a if a > EXP_FLOOR else EXP_FLOOR  # and a NaN: the poison below restores it
        k = np.rint(a * LOG2E)
        r = (a - k * LN2_HIGH) - k * LN2_LOW
        softplus[s] = _exp_taylor(r)  # e^r, for now
        powers[s] = (np.int64(k) + 1023) << 52  # the bits of 2^k, -1022 <= k <= 0
    for s in range(n):
        xs = x[s]
        e = softplus[s] * work[s]
        t = e / (2.0 + e)
        q = _atanh_series(t * t)
        poison = 0.0 if xs == xs else xs  # NaN where x is NaN
        inverse = 1.0 / (1.0 + e)
        sigmoid[s] = (inverse if xs >= 0.0 else e * inverse) + poison
        softplus[s] = (xs if xs > 0.0 else 0.0) + 2.0 * t * q + poison


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


# Importing this module loads no kernel yet: stale caches are cleared before any can run.
clear_stale_caches_once()
