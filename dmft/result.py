"""The result of ``dmft.solve``: arrays indexed by step k = 0..N, errors, diagnostics."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .problem import Problem
from .options import SolverOptions

if TYPE_CHECKING:
    from .gaps import GapSummary

# Observables carrying a Monte Carlo standard error (from independent subpopulations).
OBSERVABLES = ("m", "C", "R", "A", "train_loss", "train_error", "test_error")
KERNELS = ("Gamma_C", "K", "mu_hat")
# Two-replica runs add the cross correlation C_ab[k, j] = w^a_k.w^b_j/d and D_k = 2 (C - C_ab)[k, k].
REPLICA_OBSERVABLES = ("C_ab", "distance")


@dataclass(frozen=True)
class Result:
    """DMFT solution. ``R[k, j]`` is the response of w_k to a field at update j.

    ``stderr[name]`` is the Monte Carlo standard error of observable ``name`` (NaN when
    the population was not split into independent subpopulations).
    """

    problem: Problem
    options: SolverOptions
    time: np.ndarray
    m: np.ndarray
    C: np.ndarray
    R: np.ndarray
    A: np.ndarray
    train_loss: np.ndarray
    train_error: np.ndarray
    test_error: np.ndarray
    Gamma_C: np.ndarray
    K: np.ndarray
    mu_hat: np.ndarray
    C_ab: np.ndarray | None = None
    distance: np.ndarray | None = None
    gaps: dict[int, np.ndarray] = field(default_factory=dict)
    stderr: dict[str, np.ndarray] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def self_overlap(self) -> np.ndarray:
        """C[k, k] = |w_k|^2 / d."""
        return np.diagonal(self.C).copy()

    def gap_summary(self, step: int) -> "GapSummary":
        """Quantiles, fractions below 0 and the margin, smallest gap at step ``step``."""
        from .gaps import summarize

        return summarize(self.gaps[step], float(self.time[step]), self.problem.loss.margin)

    def gap_groups(self, step: int) -> list[np.ndarray]:
        """The gaps at ``step`` cut into the independent subpopulations they came from."""
        from .gaps import split

        return split(self.gaps[step], self.options.subpopulation_sizes())

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        """Write the HDF5 file described in the README (atomically)."""
        from .io import save_result

        save_result(self, path, overwrite=overwrite)

    def summary(self) -> str:
        """A few lines on the final state, for the command line."""
        k = self.problem.steps
        lines = [f"t = {self.time[k]:g} (k = {k}), method {self.options.method}, "
                 f"{self.options.samples} samples, {self.diagnostics.get('wall_time', float('nan')):.2f} s"]
        rows = [("m", self.m[k]), ("C[k,k]", self.C[k, k]), ("train_loss", self.train_loss[k]),
                ("train_error", self.train_error[k]), ("test_error", self.test_error[k])]
        if self.distance is not None:
            rows.append(("distance", self.distance[k]))
        for name, value in rows:
            key = "C" if name == "C[k,k]" else name
            error = self.stderr.get(key)
            if error is not None:
                error = error[k, k] if key == "C" else error[k]
            suffix = f" +- {error:.2g}" if error is not None and np.isfinite(error) else ""
            lines.append(f"  {name:<12}{value:.5g}{suffix}")
        for step in self.gaps:
            lines.append("  " + self.gap_summary(step).line())
        edge, edge_error, tail = (self.diagnostics.get(key, np.nan) for key in
                                  ("memory_edge", "memory_edge_stderr", "memory_tail"))
        if self.options.memory_window > 0 and not np.isnan(edge):
            line = f"  memory window {self.options.memory_window:g}: |R| at its edge {edge:.2g}"
            if edge <= 5 * edge_error:  # the largest of many noisy values: 3-4 standard errors
                line += f" +- {edge_error:.2g}, within Monte Carlo error: the window cuts no measurable memory"
            else:
                line += f", integral of |R| beyond it ~ {tail:.2g}"
                line += "  (large: widen the window)" if tail > 1e-2 else ""
            lines.append(line)
        if self.options.method == "iterate":
            lines.append(f"  converged   {self.diagnostics.get('converged')} after "
                         f"{self.diagnostics.get('iterations')} iterations")
        return "\n".join(lines)
