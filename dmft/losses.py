"""Losses l(y, h) = l0(y, phi(h)) (docs/theory.md §1): ``Loss``, the validated user-facing
description, and the integer codes the numba kernels dispatch on.

The losses themselves and their derivatives in h are numba functions in
``dmft.loss_kernels``, shared by the solver and the simulator; this module imports no numba.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
# Pathwise responses differentiate l' once more: l' must be Lipschitz (docs/theory.md §3).
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
