"""The results of ``dmft.solve`` and ``dmft.simulate``: arrays indexed by step k = 0..N, errors, diagnostics.

Data only: writing and reading them is ``dmft.io``'s (``dmft.save``, ``dmft.load``),
analysing them ``dmft.fdt``'s, ``dmft.gaps``' and ``dmft.compare``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .gaps import summarize
from .options import SolverOptions
from .problem import Problem
from .simulation_options import SimulationOptions

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

    def gap_time(self, step: int) -> float:
        """The time of the gaps stored under ``step`` (``gaps`` is keyed by step)."""
        return float(self.time[step])

    def gap_group_sizes(self) -> list[int]:
        """Sizes of the independent subpopulations whose gaps ``gaps`` pools, in order."""
        return self.options.subpopulation_sizes()

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
            lines.append("  " + summarize(self.gaps[step], self.gap_time(step), self.problem.loss.margin).line())
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


@dataclass(frozen=True)
class SimulationResult:
    """Means over seeds of the finite-d observables, indexed by step k = 0..N.

    C[k, a] = w_k.w_j/d for j the a-th entry of ``C_steps`` (NaN for k < j: those
    would need w_k stored until step j). R[k, a] and chi[k, a] likewise for
    ``R_steps`` and ``chi_steps`` (exactly 0 for k <= j). ``*_times`` are the same
    references as times t = k dt. ``gaps[t]`` pools y phi(h) of the training sets of all
    seeds at time t. ``stderr[name]`` is std(ddof=1)/sqrt(seeds) over seeds (NaN for
    one seed). ``test_error`` is the exact generalisation error of each trained w
    (``Dataset.test_error`` of its m and |w|^2/d: given w, a fresh preactivation is
    exactly Gaussian), averaged over seeds. ``distance`` is None unless replicas = 2.
    """

    problem: Problem
    options: SimulationOptions
    time: np.ndarray
    m: np.ndarray
    self_overlap: np.ndarray
    C: np.ndarray
    C_times: np.ndarray
    R: np.ndarray
    R_times: np.ndarray
    chi: np.ndarray
    chi_times: np.ndarray
    train_loss: np.ndarray
    train_error: np.ndarray
    test_error: np.ndarray
    gaps: dict[float, np.ndarray] = field(default_factory=dict)
    distance: np.ndarray | None = None
    stderr: dict[str, np.ndarray] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def _steps(self, times: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(times) / self.problem.dt).astype(np.int64)

    @property
    def C_steps(self) -> np.ndarray:
        """Grid indices j of the columns of C."""
        return self._steps(self.C_times)

    @property
    def R_steps(self) -> np.ndarray:
        return self._steps(self.R_times)

    @property
    def chi_steps(self) -> np.ndarray:
        return self._steps(self.chi_times)

    def summary(self) -> str:
        """A few lines on the final state, for the command line."""
        k = self.problem.steps
        n = self.diagnostics.get("samples", "?")
        lines = [f"t = {self.time[k]:g} (k = {k}), d = {self.options.dimension}, n = {n}, "
                 f"{self.options.seeds} seeds, {self.diagnostics.get('wall_time', float('nan')):.2f} s"]
        names = ["m", "self_overlap", "train_loss", "train_error", "test_error"]
        if self.distance is not None:
            names.append("distance")
        for name in names:
            value = getattr(self, name)[k]
            error = self.stderr.get(name)
            suffix = f" +- {error[k]:.2g}" if error is not None and np.isfinite(error[k]) else ""
            lines.append(f"  {name:<13}{value:.5g}{suffix}")
        for t in self.gaps:
            lines.append("  " + summarize(self.gaps[t], self.gap_time(t), self.problem.loss.margin).line())
        return "\n".join(lines)

    def gap_time(self, time: float) -> float:
        """The time of the gaps stored under ``time`` (``gaps`` is keyed by time)."""
        return time

    def gap_group_sizes(self) -> list[int]:
        """Sizes of the independent seeds whose training sets ``gaps`` pools, in order."""
        return [self.diagnostics["samples"]] * self.options.seeds
