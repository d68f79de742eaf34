"""The two-time data an FDT analysis reads, in its two forms, and where it comes from.

* ``TwoTimeFunctions``, the DMFT form (``dmft.solve``): C[k,j] and R[k,j] on the whole
  grid. The curve is taken at a *final* step k, the earlier time j = k - l running over
  the lags l.
* ``FixedReferenceFunctions``, the simulation form (``dmft.simulate``): C[k, j] and
  chi[k, j] at a few *reference* steps j only (chi measured by a twin run with a constant
  field switched on at update j), for every k. The curve is taken at a fixed reference j,
  the final time k = j + l running.

Either comes from a Result, a SimulationResult (``as_fdt_source``) or a file
(``sources_from_file``, through ``dmft.io``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import DmftError, ParameterError
from ..io import load_any
from ..problem import Problem
from ..result import Result, SimulationResult
from ..statistics import mean_and_stderr


def integrated_response(R: np.ndarray, dt: float) -> np.ndarray:
    """chi[k,j] = dt * sum_{i=j}^{k-1} R[k,i] for j <= k (0 for j >= k), in O(N^2) (docs/theory.md §6).

    R is causal (R[k,i] = 0 for i >= k), so chi[k,j] is the tail sum of row k from
    column j: one reversed cumulative sum per row. Entries of R on or above the diagonal
    are ignored rather than trusted.
    """
    R = np.tril(np.asarray(R, dtype=float), -1)
    return dt * np.cumsum(R[:, ::-1], axis=1)[:, ::-1]


def noise_correlation_time(problem: Problem) -> float:
    """Correlation time of the minibatch noise: 0 for GD/Langevin, dt for SGD, b tau for persistent SGD;
    at least the inertia time dt / (1 - beta) with momentum beta > 0.

    Persistent SGD's selection is a two-state Markov chain with join rate 1/tau and leave
    rate (1-b)/(b tau); its autocorrelation decays at the sum of the rates, 1/(b tau).
    SGD draws a fresh batch every step: white noise on the grid, correlated over one step.
    Heavy-ball momentum carries each kick forward, decaying by beta per step
    (docs/theory.md §2.8).
    """
    algorithm = problem.algorithm
    inertia = problem.dt / (1.0 - algorithm.momentum) if algorithm.momentum > 0 else 0.0
    if algorithm.name == "persistent-sgd" and algorithm.batch_fraction < 1:
        return max(algorithm.batch_fraction * algorithm.persistence_time, inertia)
    if algorithm.name == "sgd" and algorithm.batch_fraction < 1:
        return max(problem.dt, inertia)
    return inertia


def _mean_of_runs(arrays: Sequence[np.ndarray], with_stderr: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The mean of independent runs' arrays and, if asked, its standard error from their spread."""
    if not with_stderr:
        return np.mean(np.asarray(arrays, dtype=float), axis=0), None
    return mean_and_stderr(arrays)


def _stderr_or_none(array: Any) -> np.ndarray | None:
    """A standard-error array, or None when absent or not finite (one subpopulation: NaN)."""
    if array is None:
        return None
    array = np.asarray(array, dtype=float)
    return array if np.all(np.isfinite(array)) else None


@dataclass(frozen=True)
class TwoTimeFunctions:
    """The DMFT form: C[k,j] and R[k,j] on the whole grid k, j = 0..N.

    ``C_stderr``/``R_stderr`` are per-entry Monte Carlo standard errors (optional; used
    only for bounds). ``temperature`` is the Langevin T of the problem (for the equilibrium
    line), ``correlation_time`` the noise correlation time (for the default window).
    """

    dt: float
    C: np.ndarray
    R: np.ndarray
    C_stderr: np.ndarray | None = None
    R_stderr: np.ndarray | None = None
    temperature: float = 0.0
    correlation_time: float = 0.0
    full_self_overlap: np.ndarray | None = None
    full_self_overlap_stderr: np.ndarray | None = None
    problem: Any = field(default=None, compare=False, repr=False)

    form = "final-time"

    def __post_init__(self) -> None:
        C, R = np.asarray(self.C, dtype=float), np.asarray(self.R, dtype=float)
        if C.ndim != 2 or C.shape[0] != C.shape[1] or R.shape != C.shape:
            raise ParameterError("C", f"C and R must be square arrays of one shape, got {C.shape} and {R.shape}")
        object.__setattr__(self, "C", C)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "C_stderr", _stderr_or_none(self.C_stderr))
        object.__setattr__(self, "R_stderr", _stderr_or_none(self.R_stderr))
        object.__setattr__(self, "full_self_overlap_stderr", _stderr_or_none(self.full_self_overlap_stderr))

    @classmethod
    def from_result(cls, result: Result, connected: bool = True) -> TwoTimeFunctions:
        """From a ``dmft.solve`` Result; ``connected``: use C - m m' - sigma0^2 A A' (see ``connected_correlation``)."""
        problem, stderr = result.problem, result.stderr
        C, C_stderr = result.C, stderr.get("C")
        if connected:
            C, C_stderr = connected_correlation(C, result.m, result.A, problem.init_variance, C_stderr,
                                                stderr.get("m"), stderr.get("A"))
        return cls(dt=problem.dt, C=C, R=result.R, C_stderr=C_stderr, R_stderr=stderr.get("R"),
                   temperature=problem.algorithm.temperature, correlation_time=noise_correlation_time(problem),
                   full_self_overlap=np.diagonal(result.C).copy() if connected else None,
                   full_self_overlap_stderr=(np.diagonal(stderr["C"]).copy() if connected and "C" in stderr
                                             else None),
                   problem=problem)

    @property
    def steps(self) -> int:
        return self.C.shape[0] - 1

    @property
    def self_overlap(self) -> np.ndarray:
        return np.diagonal(self.C).copy()

    @property
    def self_overlap_stderr(self) -> np.ndarray | None:
        return None if self.C_stderr is None else np.diagonal(self.C_stderr).copy()

    def curve_arrays(self, anchor: int, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
        """(Delta C, chi) at final step k = ``anchor`` for lags l = 0..max_lag (j = k - l)."""
        k = anchor
        lags = np.arange(max_lag + 1)
        delta_C = self.C[k, k] - self.C[k, k - lags]
        # chi[k, k-l] = dt (R[k,k-1] + ... + R[k,k-l]): a cumulative sum walking back from k-1.
        chi = np.zeros(max_lag + 1)
        if max_lag:
            chi[1:] = self.dt * np.cumsum(self.R[k, k - 1::-1][:max_lag])
        return delta_C, chi

    def curve_stderr_bounds(self, anchor: int, max_lag: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Upper bounds on the standard errors of Delta C and chi along the curve (any correlation)."""
        if self.C_stderr is None or self.R_stderr is None:
            return None
        k = anchor
        lags = np.arange(max_lag + 1)
        delta_C = self.C_stderr[k, k] + self.C_stderr[k, k - lags]
        delta_C[0] = 0.0
        chi = np.zeros(max_lag + 1)
        if max_lag:
            chi[1:] = self.dt * np.cumsum(self.R_stderr[k, k - 1::-1][:max_lag])
        return delta_C, chi

    def teff_stderr_bound(self, anchor: int, lags: np.ndarray, grad_delta_C: np.ndarray,
                          grad_chi: np.ndarray) -> float:
        """sum_e |dT/dx_e| stderr_e over the entries x_e of C and R that the fit reads."""
        if self.C_stderr is None or self.R_stderr is None:
            return math.nan
        k = anchor
        # Delta C_l = C[k,k] - C[k,k-l]: C[k,k] enters every point, so its coefficient is the
        # sum of the gradients (0 for a fit with intercept: a common shift changes no slope).
        bound = abs(grad_delta_C.sum()) * self.C_stderr[k, k]
        bound += np.abs(grad_delta_C) @ self.C_stderr[k, k - lags]
        # chi_l = dt sum_{q=1}^{l} R[k,k-q]: R[k,k-q] enters every point with l >= q.
        max_lag = int(lags.max())
        per_lag = np.zeros(max_lag + 1)
        per_lag[lags] = grad_chi
        tail = np.cumsum(per_lag[::-1])[::-1]  # tail[q] = sum_{l >= q} grad_chi_l
        q = np.arange(1, max_lag + 1)
        bound += self.dt * np.abs(tail[q]) @ self.R_stderr[k, k - q]
        return float(bound)

    @property
    def drift_self_overlap(self) -> np.ndarray:
        """C[k,k] as the user knows it (with the mean part m_k^2): what the drift check reads."""
        return self.self_overlap if self.full_self_overlap is None else self.full_self_overlap

    @property
    def drift_self_overlap_stderr(self) -> np.ndarray | None:
        return self.self_overlap_stderr if self.full_self_overlap is None else self.full_self_overlap_stderr

    def mean_of(self, runs: Sequence[TwoTimeFunctions], with_stderr: bool = False) -> TwoTimeFunctions:
        """The mean of independent runs; ``with_stderr``: with per-entry errors from their spread."""
        C, C_se = _mean_of_runs([r.C for r in runs], with_stderr)
        R, R_se = _mean_of_runs([r.R for r in runs], with_stderr)
        full, full_se = (None, None) if self.full_self_overlap is None else \
            _mean_of_runs([r.full_self_overlap for r in runs], with_stderr)
        return replace(self, C=C, R=R, C_stderr=C_se, R_stderr=R_se, full_self_overlap=full,
                       full_self_overlap_stderr=full_se)

    def anchors(self, final_step: int, max_lag: int, average_steps: int = 0) -> tuple[list[int], int | None, int, int]:
        """(fit anchors, earlier anchor, first step used, last step used) for a window ending at ``final_step``.

        The fit anchors are the final steps k - average_steps .. k. The earlier curve, for
        the stationarity check, ends ``shift`` = max_lag steps before the first of them
        (less when the run is too short, but at least half a window, or the comparison
        would say little).
        """
        k = final_step
        first_fit = k - average_steps
        shift = min(max_lag, first_fit - max_lag)
        if shift < max(1, max_lag // 2):
            raise ParameterError("lag_window", f"s_max = {max_lag * self.dt:g} needs a final time >= "
                                               f"{(1.5 * max_lag + average_steps) * self.dt:g} to check stationarity "
                                               f"(got t = {k * self.dt:g})")
        return list(range(first_fit, k + 1)), first_fit - shift, first_fit - shift - max_lag, k


@dataclass(frozen=True)
class FixedReferenceFunctions:
    """The simulation form: C[k, j] and chi[k, j] at a few reference steps j, for every step k.

    ``C[:, a]`` is C[k, C_steps[a]] (NaN for k < j is fine: never read), ``chi[:, a]`` the
    integrated response at step k to a constant field switched on at update
    ``chi_steps[a]``; ``self_overlap[k]`` = C[k,k]. Steps are grid indices, not times.
    """

    dt: float
    self_overlap: np.ndarray
    C: np.ndarray
    C_steps: np.ndarray
    chi: np.ndarray
    chi_steps: np.ndarray
    self_overlap_stderr: np.ndarray | None = None
    C_stderr: np.ndarray | None = None
    chi_stderr: np.ndarray | None = None
    temperature: float = 0.0
    correlation_time: float = 0.0
    full_self_overlap: np.ndarray | None = None
    full_self_overlap_stderr: np.ndarray | None = None
    problem: Any = field(default=None, compare=False, repr=False)

    form = "reference-time"

    def __post_init__(self) -> None:
        so = np.asarray(self.self_overlap, dtype=float)
        C, chi = np.asarray(self.C, dtype=float), np.asarray(self.chi, dtype=float)
        C_steps = np.asarray(self.C_steps, dtype=int).ravel()
        chi_steps = np.asarray(self.chi_steps, dtype=int).ravel()
        if so.ndim != 1 or C.shape != (so.size, C_steps.size) or chi.shape != (so.size, chi_steps.size):
            raise ParameterError("C", f"expected self_overlap (N+1,), C (N+1, {C_steps.size}), chi (N+1, "
                                      f"{chi_steps.size}); got {so.shape}, {C.shape}, {chi.shape}")
        for name, value in (("self_overlap", so), ("C", C), ("C_steps", C_steps), ("chi", chi),
                            ("chi_steps", chi_steps)):
            object.__setattr__(self, name, value)
        for name in ("self_overlap_stderr", "C_stderr", "chi_stderr"):
            # C is NaN before its reference step in simulations: only finiteness where read matters,
            # so keep the array and let NaN propagate to the (unused) entries.
            value = getattr(self, name)
            object.__setattr__(self, name, None if value is None else np.asarray(value, dtype=float))
        if self.self_overlap_stderr is not None and not np.all(np.isfinite(self.self_overlap_stderr)):
            # One seed: NaN standard errors everywhere, i.e. none.
            for name in ("self_overlap_stderr", "C_stderr", "chi_stderr"):
                object.__setattr__(self, name, None)
        object.__setattr__(self, "full_self_overlap_stderr", _stderr_or_none(self.full_self_overlap_stderr))

    @classmethod
    def from_simulation(cls, simulation: Any, connected: bool = True) -> FixedReferenceFunctions:
        """From a ``dmft.simulate.SimulationResult`` (duck-typed: self_overlap, C, C_times, chi, chi_times, m, stderr).

        ``connected``: subtract m_k m_j from C[k,j] (the simulation has no A_k; with a
        ridge its term decays like exp(-lam t) and is gone in a stationary window).
        """
        stderr = getattr(simulation, "stderr", None) or {}

        def error(name: str) -> Any:
            # Accept both stderr["C"] and stderr["C_stderr"] spellings.
            return stderr.get(name, stderr.get(f"{name}_stderr"))

        problem = simulation.problem
        dt = problem.dt
        C_steps = np.rint(np.asarray(simulation.C_times) / dt).astype(int)
        so, C = np.asarray(simulation.self_overlap, float), np.asarray(simulation.C, float)
        so_se, C_se = error("self_overlap"), error("C")
        full, full_se = None, None
        if connected:
            m, m_se = np.asarray(simulation.m, float), error("m")
            full, full_se = so, so_se
            so, C = so - m * m, C - np.outer(m, m[C_steps])
            if so_se is not None and C_se is not None and m_se is not None:
                # Linearised, with every pair of errors taken as fully correlated (a bound).
                so_se = np.asarray(so_se) + 2 * np.abs(m) * np.asarray(m_se)
                C_se = np.asarray(C_se) + np.outer(np.abs(m), np.asarray(m_se)[C_steps]) \
                    + np.outer(np.asarray(m_se), np.abs(m[C_steps]))
            else:
                so_se = C_se = None
        return cls(dt=dt, self_overlap=so, C=C, C_steps=C_steps, chi=simulation.chi,
                   chi_steps=np.rint(np.asarray(simulation.chi_times) / dt),
                   self_overlap_stderr=so_se, C_stderr=C_se, chi_stderr=error("chi"),
                   temperature=problem.algorithm.temperature, correlation_time=noise_correlation_time(problem),
                   full_self_overlap=full, full_self_overlap_stderr=full_se, problem=problem)

    @property
    def drift_self_overlap(self) -> np.ndarray:
        return self.self_overlap if self.full_self_overlap is None else self.full_self_overlap

    @property
    def drift_self_overlap_stderr(self) -> np.ndarray | None:
        return self.self_overlap_stderr if self.full_self_overlap is None else self.full_self_overlap_stderr

    @property
    def steps(self) -> int:
        return self.self_overlap.size - 1

    @property
    def reference_steps(self) -> np.ndarray:
        """Reference steps where both C and chi are known, increasing."""
        return np.intersect1d(self.C_steps, self.chi_steps)

    def _columns(self, anchor: int) -> tuple[int, int]:
        return int(np.flatnonzero(self.C_steps == anchor)[0]), int(np.flatnonzero(self.chi_steps == anchor)[0])

    def curve_arrays(self, anchor: int, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
        """(Delta C, chi) from reference step j = ``anchor`` for lags l = 0..max_lag (k = j + l)."""
        rc, rx = self._columns(anchor)
        k = anchor + np.arange(max_lag + 1)
        return self.self_overlap[k] - self.C[k, rc], self.chi[k, rx].copy()

    def curve_stderr_bounds(self, anchor: int, max_lag: int) -> tuple[np.ndarray, np.ndarray] | None:
        if self.self_overlap_stderr is None or self.C_stderr is None or self.chi_stderr is None:
            return None
        rc, rx = self._columns(anchor)
        k = anchor + np.arange(max_lag + 1)
        return self.self_overlap_stderr[k] + self.C_stderr[k, rc], self.chi_stderr[k, rx].copy()

    def teff_stderr_bound(self, anchor: int, lags: np.ndarray, grad_delta_C: np.ndarray,
                          grad_chi: np.ndarray) -> float:
        bounds = self.curve_stderr_bounds(anchor, int(lags.max()))
        if bounds is None:
            return math.nan
        # Every point reads its own entries (C[k,k], C[k,j], chi[k,j] at k = j + l): no sharing.
        return float(np.abs(grad_delta_C) @ bounds[0][lags] + np.abs(grad_chi) @ bounds[1][lags])

    def mean_of(self, runs: Sequence[FixedReferenceFunctions], with_stderr: bool = False) -> FixedReferenceFunctions:
        """The mean of independent runs; ``with_stderr``: with per-entry errors from their spread."""
        so, so_se = _mean_of_runs([r.self_overlap for r in runs], with_stderr)
        C, C_se = _mean_of_runs([r.C for r in runs], with_stderr)
        chi, chi_se = _mean_of_runs([r.chi for r in runs], with_stderr)
        full, full_se = (None, None) if self.full_self_overlap is None else \
            _mean_of_runs([r.full_self_overlap for r in runs], with_stderr)
        return replace(self, self_overlap=so, C=C, chi=chi, self_overlap_stderr=so_se, C_stderr=C_se,
                       chi_stderr=chi_se, full_self_overlap=full, full_self_overlap_stderr=full_se)

    def anchors(self, final_step: int, max_lag: int, average_steps: int = 0) -> tuple[list[int], int | None, int, int]:
        """Fit anchors: the reference steps j with j + max_lag <= final_step, the latest ones within
        ``average_steps`` of each other; earlier anchor: the latest reference at least a window
        (else half a window) before the first of them, for the stationarity check.
        """
        refs = self.reference_steps
        usable = refs[refs + max_lag <= final_step]
        if usable.size == 0:
            raise ParameterError("lag_window", f"no reference time j with j + s_max <= t = {final_step * self.dt:g} "
                                               f"(reference times {', '.join(f'{r * self.dt:g}' for r in refs)})")
        j = int(usable[-1])
        fit = [int(r) for r in usable if r >= j - average_steps]
        earlier = refs[refs <= fit[0] - max(1, max_lag // 2)]
        if earlier.size == 0:
            return fit, None, fit[0], j + max_lag
        # Prefer a reference at least one window earlier (disjoint times); else the latest one half a window earlier.
        disjoint = earlier[earlier <= fit[0] - max_lag]
        j_earlier = int(disjoint[-1] if disjoint.size else earlier[-1])
        return fit, j_earlier, j_earlier, j + max_lag


FdtSource = TwoTimeFunctions | FixedReferenceFunctions


def connected_correlation(C: np.ndarray, m: np.ndarray, A: np.ndarray, init_variance: float,
                          C_stderr: np.ndarray | None = None, m_stderr: np.ndarray | None = None,
                          A_stderr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """C - m m' - sigma0^2 A A' (and a bound on its standard error), the fluctuating part of C.

    C[k,j] = sigma0^2 A_k A_j + m_k m_j + (noise part) (docs/theory.md §2). In a stationary
    regime m_k and A_k no longer depend on k (A_k -> 0 with a ridge), so Delta C is the same
    with or without these terms; but in a finite Monte Carlo population m_k wanders a little
    in time, and m (m_k - m_j) adds to Delta C a noise as large as the Delta C of SGD itself.
    Subtracting them removes that noise and not the signal. The stationarity check still
    reads the full C[k,k].
    """
    C = np.asarray(C, dtype=float)
    m, A = np.asarray(m, dtype=float), np.asarray(A, dtype=float)
    connected = C - np.outer(m, m) - init_variance * np.outer(A, A)
    if C_stderr is None or m_stderr is None or A_stderr is None:
        return connected, None
    m_se, A_se = np.asarray(m_stderr, dtype=float), np.asarray(A_stderr, dtype=float)
    # Linearised, with every pair of errors taken as fully correlated: a bound, like the others.
    bound = (np.asarray(C_stderr, dtype=float) + np.outer(np.abs(m), m_se) + np.outer(m_se, np.abs(m))
             + init_variance * (np.outer(np.abs(A), A_se) + np.outer(A_se, np.abs(A))))
    return connected, bound


def as_fdt_source(obj: Any, connected: bool = True) -> FdtSource:
    """A ``Result``, a simulation result, or already a TwoTimeFunctions/FixedReferenceFunctions.

    ``connected`` (Results and simulations): take the curve from the connected correlation
    (``connected_correlation``); False: from the full C.
    """
    if isinstance(obj, (TwoTimeFunctions, FixedReferenceFunctions)):
        return obj
    if hasattr(obj, "chi_times") and hasattr(obj, "self_overlap"):
        return FixedReferenceFunctions.from_simulation(obj, connected=connected)
    if hasattr(obj, "R") and hasattr(obj, "C") and hasattr(obj, "problem"):
        return TwoTimeFunctions.from_result(obj, connected=connected)
    raise DmftError(f"cannot take an FDT curve from a {type(obj).__name__}: need a dmft Result or a simulation result")


def source_and_runs(obj: Any, connected: bool) -> tuple[FdtSource, list[FdtSource] | None]:
    """The FDT source of ``obj`` and the runs kept in it (``runs_of``). With runs, the
    source pools their own connected parts, as ``effective_temperature_from_runs`` does."""
    runs = runs_of(obj, connected)
    source = as_fdt_source(obj, connected)
    return (source.mean_of(runs) if runs else source), runs


def runs_of(obj: Any, connected: bool = True) -> list[FdtSource] | None:
    """Per-subpopulation arrays kept in a Result, if the solver stored them.

    Hook for a proposed core change: ``dmft.solve`` keeping ``diagnostics["C_runs"]``,
    ``["R_runs"]``, ``["m_runs"]`` and ``["A_runs"]`` (lists of per-subpopulation arrays;
    after an HDF5 round trip they come back as ``C_runs_0``, ``C_runs_1``, ...).
    Without them: None.
    """
    diagnostics = getattr(obj, "diagnostics", None)
    problem = getattr(obj, "problem", None)
    if not diagnostics or problem is None or not hasattr(obj, "R"):
        return None

    def collect(name: str) -> list[np.ndarray] | None:
        if isinstance(diagnostics.get(name), (list, tuple)):
            return [np.asarray(a) for a in diagnostics[name]]
        arrays, index = [], 0
        while f"{name}_{index}" in diagnostics:
            arrays.append(np.asarray(diagnostics[f"{name}_{index}"]))
            index += 1
        return arrays or None

    Cs, Rs, ms, As = (collect(f"{name}_runs") for name in ("C", "R", "m", "A"))
    if not Cs or not Rs or len(Cs) != len(Rs) or len(Cs) < 2:
        return None
    if connected and not (ms and As and len(ms) == len(As) == len(Cs)):
        return None  # cannot take each run's connected part
    base = TwoTimeFunctions.from_result(obj, connected=connected)
    runs = []
    for index, (C, R) in enumerate(zip(Cs, Rs)):
        full = np.diagonal(C).copy() if connected else None
        if connected:
            C = connected_correlation(C, ms[index], As[index], problem.init_variance)[0]
        runs.append(replace(base, C=C, R=R, C_stderr=None, R_stderr=None, full_self_overlap=full,
                            full_self_overlap_stderr=None))
    return runs


def sources_from_file(path: str | os.PathLike, connected: bool = True) -> tuple[FdtSource, list[FdtSource] | None]:
    """(source, independent runs or None) from a ``dmft solve`` or ``dmft simulate`` HDF5 file."""
    data = load_any(path)
    if isinstance(data, SimulationResult):
        return FixedReferenceFunctions.from_simulation(data, connected=connected), None
    return TwoTimeFunctions.from_result(data, connected), runs_of(data, connected)


def load_source(path: str | os.PathLike, connected: bool = True) -> FdtSource:
    """Two-time data from a ``dmft solve`` or ``dmft simulate`` HDF5 file; refuses anything else."""
    return sources_from_file(path, connected)[0]
