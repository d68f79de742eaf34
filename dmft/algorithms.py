"""Training algorithms: GD, SGD, persistent SGD (+ Langevin noise), as selection processes.

The selection variable s_mu(k) in {0, 1} says whether sample mu is in the minibatch at
step k (docs/theory.md §1). The same process drives the DMFT effective samples and
the finite-d simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ParameterError

ALGORITHMS = ("gd", "sgd", "persistent-sgd")


@dataclass(frozen=True)
class Algorithm:
    """``batch_fraction`` b, ``persistence_time`` tau (persistent SGD), Langevin ``temperature`` T,
    heavy-ball ``momentum`` beta (docs/theory.md §1, "The update rule").

    ``batch_average`` divides the minibatch gradient by b (everyday SGD) instead of the
    partial sum of the DMFT literature (B = 1).
    """

    name: str = "sgd"
    batch_fraction: float = 0.3
    persistence_time: float = 2.0
    temperature: float = 0.0
    batch_average: bool = False
    momentum: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in ALGORITHMS:
            raise ParameterError("algorithm", f"unknown algorithm {self.name!r}; choose from {', '.join(ALGORITHMS)}")
        if self.name != "gd" and not (0 < self.batch_fraction <= 1):
            raise ParameterError("batch_fraction", f"must lie in (0, 1], got {self.batch_fraction}")
        if self.name == "persistent-sgd" and not (self.persistence_time > 0 and math.isfinite(self.persistence_time)):
            raise ParameterError("persistence_time", f"must be > 0 and finite, got {self.persistence_time}")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise ParameterError("temperature", f"must be >= 0 and finite, got {self.temperature}")
        if not (0 <= self.momentum < 1):
            raise ParameterError("momentum", f"must lie in [0, 1), got {self.momentum}")

    @property
    def effective_batch_fraction(self) -> float:
        """The fraction of samples selected at each step, 1 for GD: the stationary P(s = 1),
        in which the selection starts (P(s(0) = 1))."""
        return 1.0 if self.name == "gd" else self.batch_fraction

    @property
    def gradient_divisor(self) -> float:
        """B of docs/theory.md §1: 1 for the partial sum, b for the batch average."""
        return self.effective_batch_fraction if self.batch_average else 1.0

    def check_step(self, dt: float) -> None:
        """Persistent SGD's switching probabilities per step must be <= 1."""
        if self.name != "persistent-sgd":
            return
        b, tau = self.batch_fraction, self.persistence_time
        if dt / tau > 1:
            raise ParameterError("persistence_time", f"must be >= dt = {dt} (join probability dt/tau <= 1), got {tau}")
        if dt * (1 - b) / (b * tau) > 1:
            raise ParameterError(
                "persistence_time",
                f"must be >= dt (1 - b) / b = {dt * (1 - b) / b:g} (leave probability <= 1), got {tau}",
            )

    def switching_probabilities(self, dt: float) -> tuple[float, float, float]:
        """(P(s(0) = 1), P(s(k+1) = 0 | s(k) = 1), P(s(k+1) = 1 | s(k) = 0)) at step ``dt``.

        GD: (1, 0, 1). SGD: (b, 1 - b, b), a fresh Bernoulli(b) at each step. Persistent
        SGD: (b, dt (1 - b) / (b tau), dt / tau).
        """
        if self.name == "gd":
            return self.effective_batch_fraction, 0.0, 1.0
        b = self.batch_fraction
        if self.name == "sgd":
            return self.effective_batch_fraction, 1.0 - b, b
        tau = self.persistence_time
        return self.effective_batch_fraction, dt * (1 - b) / (b * tau), dt / tau

    def initial_selection(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """s(0) for n samples, as floats in {0, 1}: the simulation's draw of the law the DMFT
        population draws from (``switching_probabilities``)."""
        if self.name == "gd":
            return np.ones(n)  # every sample, without a draw
        return (rng.random(n) < self.effective_batch_fraction).astype(float)

    def next_selection(self, rng: np.random.Generator, s: np.ndarray, dt: float) -> np.ndarray:
        """s(k+1) given s(k)."""
        if self.name == "gd":
            return s
        # The same switching rule as the DMFT population's draws (kernels.draw_step).
        _, leave, join = self.switching_probabilities(dt)
        u = rng.random(s.shape[0])
        return np.where(s > 0, u >= leave, u < join).astype(float)
