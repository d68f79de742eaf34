"""Datasets: how a training pair (c, y) is drawn and which readout phi the model uses.

Mixtures: x = c v / sqrt(d) + sqrt(Delta) z. Teacher-student: x ~ N(0, I_d), c = x.v/sqrt(d)
is the teacher's field and y = sign(c), flipped with probability ``label_noise``
(docs/theory.md §1, "Data"). The DMFT needs only the law of (c, y) and the readout; the
simulator also draws x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ParameterError
from .losses import LINEAR, SYMMETRIC

DATASETS = ("gmm2", "gmm3", "random-labels", "teacher-student")


@dataclass(frozen=True)
class Dataset:
    """n = alpha d samples with noise variance ``delta``; ``rho``, ``theta`` and ``label_noise``
    as in docs/theory.md §1.

    The teacher-student perceptron uses neither ``delta`` nor ``rho``: its inputs are
    isotropic (``noise_variance`` 1).
    """

    name: str = "gmm2"
    alpha: float = 2.0
    delta: float = 0.5
    rho: float = 0.5
    theta: float = 1.0
    label_noise: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in DATASETS:
            raise ParameterError("dataset", f"unknown dataset {self.name!r}; choose from {', '.join(DATASETS)}")
        if not (self.alpha > 0 and math.isfinite(self.alpha)):
            raise ParameterError("alpha", f"must be > 0 and finite, got {self.alpha}")
        if not (self.delta > 0 and math.isfinite(self.delta)):
            raise ParameterError("delta", f"must be > 0 and finite, got {self.delta}")
        if self.name in ("gmm2", "gmm3") and not (0 < self.rho < 1):
            raise ParameterError("rho", f"must lie in (0, 1), got {self.rho}")
        if not (self.theta >= 0 and math.isfinite(self.theta)):
            raise ParameterError("theta", f"must be >= 0 and finite, got {self.theta}")
        if not (0 <= self.label_noise <= 0.5):
            raise ParameterError("label_noise", f"must lie in [0, 0.5], got {self.label_noise}")
        if self.label_noise > 0 and self.name != "teacher-student":
            raise ParameterError("label_noise", "applies to --dataset teacher-student only")

    @property
    def teacher(self) -> bool:
        """The teacher-student perceptron: the direction v carries the whole input along it,
        so the Gaussian paths have covariance C - m m and K does not act on m
        (docs/theory.md §2.7)."""
        return self.name == "teacher-student"

    @property
    def noise_variance(self) -> float:
        """Delta of the effective sample: ``delta`` for the mixtures, 1 for teacher-student."""
        return 1.0 if self.teacher else self.delta

    @property
    def readout_code(self) -> int:
        return SYMMETRIC if self.name == "gmm3" else LINEAR

    def draw_labels(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw n pairs (c, y) as float arrays."""
        if self.name == "gmm2":
            c = np.where(rng.random(n) < self.rho, 1.0, -1.0)
            return c, c.copy()
        if self.name == "gmm3":
            u = rng.random(n)
            c = np.where(u < self.rho / 2, 1.0, np.where(u < self.rho, -1.0, 0.0))
            return c, np.where(c != 0, 1.0, -1.0)
        if self.name == "teacher-student":
            c = rng.standard_normal(n)  # the teacher's field x.v/sqrt(d)
            flip = rng.random(n) < self.label_noise
            return c, np.where(c > 0, 1.0, -1.0) * np.where(flip, -1.0, 1.0)
        return np.zeros(n), np.where(rng.random(n) < 0.5, 1.0, -1.0)

    def test_error(self, m: np.ndarray, self_overlap: np.ndarray) -> np.ndarray:
        """Generalisation error of weights with overlap m = w.v/d and |w|^2/d = self_overlap.

        A fresh sample has h = c m + sqrt(Delta |w|^2/d) N(0, 1) (docs/theory.md §5). For
        teacher-student: the probability of disagreeing with the clean teacher,
        arccos(m / sqrt(|w|^2/d)) / pi.
        """
        from scipy.special import ndtr  # here, not at import: scipy.special takes longer to import than dmft

        m = np.asarray(m, dtype=float)
        if self.teacher:
            norm = np.sqrt(np.maximum(np.asarray(self_overlap, dtype=float), 0.0))
            with np.errstate(divide="ignore", invalid="ignore"):
                cosine = np.where(norm > 0, m / np.where(norm > 0, norm, 1.0), 0.0)
            return np.arccos(np.clip(cosine, -1.0, 1.0)) / np.pi
        sigma = np.sqrt(self.delta * np.maximum(np.asarray(self_overlap, dtype=float), 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.name == "gmm2":
                # P(c h <= 0) = Phi(-m / sigma) for both classes; with sigma = 0 every sample is
                # right (m > 0), wrong (m < 0) or a coin flip (m = 0).
                z = np.where(sigma > 0, -m / np.where(sigma > 0, sigma, 1.0),
                             np.where(m > 0, -np.inf, np.where(m < 0, np.inf, 0.0)))
                return np.where((sigma == 0) & (m == 0), 0.5, ndtr(z))
            if self.name == "random-labels":
                return np.full_like(m, 0.5)
            # gmm3: y = +1 iff c != 0, prediction +1 iff h^2 > theta.
            r = math.sqrt(self.theta)
            s = np.where(sigma > 0, sigma, np.inf)
            inside_signal = ndtr((r - m) / s) - ndtr((-r - m) / s)  # P(|m + sigma z| <= r)
            outside_noise = 2.0 * ndtr(-r / s)  # P(|sigma z| > r)
            return self.rho * inside_signal + (1.0 - self.rho) * outside_noise
