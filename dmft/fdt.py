"""Fluctuation-dissipation relations and the effective temperature of SGD (THEORY.md section 6).

The integrated response is chi[k,j] = dt sum_{i=j}^{k-1} R[k,i]: the response of w_k to a
constant field switched on at update j. In a stationary regime (C[k+s, j+s] = C[k,j]) the
parametric curve chi against Delta C = C[k,k] - C[k,j] is, at equilibrium at temperature
T, the straight line chi = Delta C / T. Out of equilibrium (SGD, persistent SGD) its
inverse slope defines an effective temperature T_eff, which may differ between short and
long time lags.

Two forms of two-time data are handled:

* the DMFT form (``dmft.solve``): C[k,j] and R[k,j] on the whole grid. The curve is taken
  at a *final* step k, the earlier time j = k - l running over the lags l.
* the simulation form (``dmft.simulate``): C[k, j] and chi[k, j] at a few *reference*
  steps j only (chi measured by a twin run with a constant field switched on at update j),
  for every k. The curve is taken at a fixed reference j, the final time k = j + l running.

In a stationary regime both give the same curve Delta C(s), chi(s) of the time lag s = l dt.

Stationarity is verified, not assumed: the curve used for the fit is compared with the
same curve one window earlier, and the self-overlap C[k,k] is checked for drift.

Error bars. A ``dmft.solve`` result split into subpopulations stores only the mean and the
standard error of each entry of C and R; entries are strongly correlated, so propagating
them as if independent would not be honest. The honest route is to keep independent runs
(``solve_runs``) and take the jackknife over them (``effective_temperature_from_runs``).
From a single stored result only a *bound* is available: the linearised error of T_eff
with every pair of entries taken as fully correlated in the worst direction,
sum |dT/dx_e| stderr_e, which holds whatever the correlations are (the triangle inequality
on standard deviations).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DmftError, ParameterError
from .statistics import mean_and_stderr

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    from matplotlib.axes import Axes

    from .options import SolverOptions
    from .problem import Problem
    from .result import Result

# Relative drift of the curve (or of C[k,k]) above which a window is not stationary,
# unless the drift is within DEFAULT_NSIGMA Monte Carlo standard errors.
DEFAULT_TOLERANCE = 0.02
DEFAULT_NSIGMA = 3.0
# From this many independent runs on, the drifts' errors come from the spread of the runs'
# own drifts, with nsigma widened to the Student-t quantile of n - 1 degrees of freedom
# (for 3 sigma: 9.2 at 4 runs, 6.6 at 5, 4.1 at 10). Below it that quantile (236 at 2
# runs, 19 at 3) left the check next to toothless: fewer runs get the bound from per-entry
# errors instead, as a single result does.
MIN_RUNS_FOR_SPREAD = 4
# The default window starts this many noise correlation times (and grid steps) after
# lag 0: below it the coloured noise of persistent SGD bends the curve (the motion is
# ballistic over a correlation time, Delta C ~ s^2 while chi ~ s), and on the first few
# steps the discrete-time map differs most from its continuous limit.
SHORT_LAG_CORRELATION_TIMES = 3.0
SHORT_LAG_STEPS = 3
# The default window ends at this fraction of the final time: the stationarity check then
# compares the second half of the run with itself shifted by a quarter.
DEFAULT_MAX_LAG_FRACTION = 0.25
MIN_FIT_POINTS = 3
# A window in which chi changes by less than this fraction of its largest value sits on
# the plateau of the curve: its slope is Monte Carlo noise.
MIN_CHI_SPREAD = 0.05

KIND_SOLVE = "dmft-solve"
KIND_SIMULATE = "dmft-simulate"
FDT_GROUP = "fdt"


class NonStationaryError(DmftError):
    """The fitting window is not stationary; ``stationarity.reason`` says why."""

    def __init__(self, stationarity: Stationarity):
        self.stationarity = stationarity
        super().__init__(f"no stationary window: {stationarity.reason}")


# --------------------------------------------------------------------------------------
# Integrated response
# --------------------------------------------------------------------------------------


def integrated_response(R: np.ndarray, dt: float) -> np.ndarray:
    """chi[k,j] = dt * sum_{i=j}^{k-1} R[k,i] for j <= k (0 for j >= k), in O(N^2).

    R is causal (R[k,i] = 0 for i >= k), so chi[k,j] is the tail sum of row k from
    column j: one reversed cumulative sum per row. Entries of R on or above the diagonal
    are ignored rather than trusted.
    """
    R = np.tril(np.asarray(R, dtype=float), -1)
    return dt * np.cumsum(R[:, ::-1], axis=1)[:, ::-1]


def noise_correlation_time(problem: Problem) -> float:
    """Correlation time of the minibatch noise: 0 for GD/Langevin, dt for SGD, b tau for persistent SGD.

    Persistent SGD's selection is a two-state Markov chain with join rate 1/tau and leave
    rate (1-b)/(b tau); its autocorrelation decays at the sum of the rates, 1/(b tau).
    SGD draws a fresh batch every step: white noise on the grid, correlated over one step.
    """
    algorithm = problem.algorithm
    if algorithm.name == "persistent-sgd" and algorithm.batch_fraction < 1:
        return algorithm.batch_fraction * algorithm.persistence_time
    if algorithm.name == "sgd" and algorithm.batch_fraction < 1:
        return problem.dt
    return 0.0


def default_lag_window(dt: float, final_time: float, correlation_time: float = 0.0) -> tuple[float, float]:
    """(s_min, s_max): from 3 noise correlation times (and >= 3 steps) to a quarter of ``final_time``."""
    s_min = max(SHORT_LAG_CORRELATION_TIMES * correlation_time, SHORT_LAG_STEPS * dt)
    return s_min, DEFAULT_MAX_LAG_FRACTION * final_time


# --------------------------------------------------------------------------------------
# Two-time data in the two forms
# --------------------------------------------------------------------------------------


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

    C[k,j] = sigma0^2 A_k A_j + m_k m_j + (noise part) (THEORY.md section 2). In a stationary
    regime m_k and A_k no longer depend on k (A_k -> 0 with a ridge), so Delta C is the same
    with or without these terms; but in a finite Monte Carlo population m_k wanders a little
    in time, and m (m_k - m_j) adds to Delta C a noise as large as the Delta C of SGD itself.
    Subtracting them removes that noise (by 3-4x in T_eff's error bar in our runs) and not
    the signal. The stationarity check still reads the full C[k,k].
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


# --------------------------------------------------------------------------------------
# Curves, stationarity, the fit
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FdtCurve:
    """The parametric FDT curve at one anchor: time lags s, Delta C(s), chi(s).

    DMFT form: ``anchor_time`` is the final time t_k, the earlier times are t_k - s.
    Simulation form: ``anchor_time`` is the reference time t_j, the later times t_j + s.
    In a ``TeffEstimate`` fitted with ``average_over`` it is the mean of the curves over the
    averaged anchors, ``anchor_time`` the latest.
    """

    lag: np.ndarray
    delta_C: np.ndarray
    chi: np.ndarray
    anchor_time: float
    form: str

    @property
    def ratio(self) -> np.ndarray:
        """The time-lag-resolved (C[k,k] - C[k,j]) / chi[k,j] (NaN at lag 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.chi != 0, self.delta_C / np.where(self.chi != 0, self.chi, 1.0), np.nan)

    @property
    def final_time(self) -> float:
        """The latest time the curve reads."""
        return self.anchor_time if self.form == "final-time" else self.anchor_time + float(self.lag[-1])


@dataclass(frozen=True)
class Stationarity:
    """Does the fitting window sit in a stationary regime? Drifts are relative, one number each.

    The fitted curve (at ``compared_times[0]``) is compared with the same curve one window
    earlier (at ``compared_times[1]``):

    ``self_overlap_drift``: change of the mean of C[k,k] over the times each curve reads,
    relative to C[k,k]. ``delta_C_drift`` / ``chi_drift``: change of the mean over the
    window's lags of Delta C(s) / chi(s), relative to that mean (so a small Delta C, as in
    SGD, is judged on its own scale, not on C[k,k]'s). The ``*_sigma`` entries are the Monte
    Carlo standard errors of the drifts (NaN when unknown); a drift passes when it is
    below ``tolerance`` or within ``nsigma`` of them (Student-t widened when the errors come
    from the spread of the runs' drifts: ``error_kind`` "runs", from ``MIN_RUNS_FOR_SPREAD``
    runs on; "bound": from per-entry errors; "none": tolerance only). ``span``: first and
    last time read.
    """

    stationary: bool
    reason: str
    compared_times: tuple[float, float] | None
    span: tuple[float, float]
    self_overlap_drift: float
    delta_C_drift: float
    chi_drift: float
    self_overlap_sigma: float
    delta_C_sigma: float
    chi_sigma: float
    tolerance: float
    nsigma: float
    error_kind: str  # "runs", "bound", "none"

    def to_dict(self) -> dict[str, Any]:
        return {key: _jsonable(getattr(self, key)) for key in self.__dataclass_fields__}


@dataclass(frozen=True)
class TeffEstimate:
    """T_eff (inverse slope of chi against Delta C over ``window``) with its error and checks.

    ``T_eff_stderr`` is a jackknife standard error over independent runs
    (``stderr_method`` "jackknife over n runs"), or, from one stored result, an upper bound
    on the linearised error ("upper bound"), or NaN. ``intercept`` is the fitted Delta C at
    chi = 0 (0 through the origin). ``temperature`` is the problem's Langevin T.
    """

    T_eff: float
    T_eff_stderr: float
    stderr_method: str
    intercept: float
    through_origin: bool
    window: tuple[float, float]
    points: int
    curve: FdtCurve
    stationarity: Stationarity
    temperature: float
    runs: int
    average_over: float = 0.0
    connected: bool = False

    @property
    def final_time(self) -> float:
        return self.curve.final_time

    @property
    def time_label(self) -> str:
        """'t = 60', or 't in [45, 60] (mean curve)' when averaged over final times."""
        if not self.average_over:
            return f"t = {self.final_time:g}"
        return f"t in [{self.final_time - self.average_over:g}, {self.final_time:g}] (mean curve)"

    @property
    def in_window(self) -> np.ndarray:
        """Boolean mask of the curve's lags inside the fitting window."""
        return (self.curve.lag >= self.window[0] - 1e-9) & (self.curve.lag <= self.window[1] + 1e-9)

    @property
    def ratio(self) -> np.ndarray:
        """Lag-resolved Delta C / chi inside the window."""
        return self.curve.ratio[self.in_window]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no arrays but the window's lag-resolved ratio range)."""
        ratio = self.ratio
        return {
            "T_eff": _jsonable(self.T_eff),
            "T_eff_stderr": _jsonable(self.T_eff_stderr),
            "stderr_method": self.stderr_method,
            "window": [float(self.window[0]), float(self.window[1])],
            "points": self.points,
            "final_time": float(self.final_time),
            "anchor_time": float(self.curve.anchor_time),
            "form": self.curve.form,
            "intercept": _jsonable(self.intercept),
            "through_origin": self.through_origin,
            "ratio_range": [_jsonable(np.nanmin(ratio)), _jsonable(np.nanmax(ratio))] if ratio.size else None,
            "temperature": _jsonable(self.temperature),
            "runs": self.runs,
            "average_over": self.average_over,
            "connected": self.connected,
            "stationarity": self.stationarity.to_dict(),
        }

    def describe(self) -> str:
        """A few lines for the command line."""
        error = f" +- {self.T_eff_stderr:.2g} ({self.stderr_method})" if math.isfinite(self.T_eff_stderr) else \
            f" (no error bar: {self.stderr_method})"
        st = self.stationarity
        ratio = self.ratio
        fit = ("through the origin" if self.through_origin
               else f"with intercept (Delta C at chi = 0: {self.intercept:.3g})")
        if self.connected:
            part = "C - m m' - sigma0^2 A A'" if self.curve.form == "final-time" else "C - m m'"
            fit += f"; Delta C from the connected {part}"
        lines = [
            f"T_eff = {self.T_eff:.5g}{error} at {self.time_label}",
            f"  window: lags s in [{self.window[0]:g}, {self.window[1]:g}] ({self.points} points), fit {fit}",
            f"  lag-resolved Delta C / chi in the window: {np.nanmin(ratio):.4g} .. {np.nanmax(ratio):.4g}",
        ]
        if st.compared_times is not None:
            compared = f"curve at t = {st.compared_times[0]:g} vs t = {st.compared_times[1]:g}"
        else:
            compared = "one reference time: curve not compared"
        verdict = "stationary" if st.stationary else f"NOT stationary: {st.reason}"
        lines.append(f"  stationarity ({compared}; tolerance {100 * st.tolerance:g}% or {st.nsigma:.3g} "
                     f"standard errors, {_ERROR_KINDS[st.error_kind]}): {verdict}")
        def drift(value: float, sigma: float) -> str:
            return _percent(value) + (f" (+- {_percent(sigma)})" if math.isfinite(sigma) else "")

        lines.append(f"    drifts of window means: C[k,k] {drift(st.self_overlap_drift, st.self_overlap_sigma)}, "
                     f"Delta C {drift(st.delta_C_drift, st.delta_C_sigma)}, chi {drift(st.chi_drift, st.chi_sigma)}; "
                     f"times read: [{st.span[0]:g}, {st.span[1]:g}]")
        if self.temperature > 0:
            lines.append(f"  Langevin temperature T = {self.temperature:g}: "
                         f"T_eff / T = {self.T_eff / self.temperature:.4f}")
        return "\n".join(lines)


def _percent(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{100 * value:.0f}%" if abs(value) >= 0.1 else f"{100 * value:.2g}%"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _final_step(source: FdtSource, final_time: float | None) -> int:
    if final_time is None:
        return source.steps
    step = round(final_time / source.dt)
    if not (0 < step <= source.steps) or abs(step * source.dt - final_time) > 1e-6 * max(1.0, final_time):
        raise ParameterError("final_time", f"must be a grid time in (0, {source.steps * source.dt:g}] "
                                           f"(multiple of dt = {source.dt:g}), got {final_time}")
    return step


def _lag_steps(source: FdtSource, final_step: int, lag_window: tuple[float, float] | None) -> tuple[int, int]:
    """(l_min, l_max) in steps; the default window is ``default_lag_window``."""
    dt = source.dt
    if lag_window is None:
        s_min, s_max = default_lag_window(dt, final_step * dt, source.correlation_time)
    else:
        s_min, s_max = (float(v) for v in lag_window)
        if not (0 <= s_min < s_max and math.isfinite(s_max)):
            raise ParameterError("lag_window", f"need 0 <= s_min < s_max, got ({s_min:g}, {s_max:g})")
    # Grid lags inside [s_min, s_max]; the tolerance absorbs round-off in s / dt.
    l_min, l_max = math.ceil(s_min / dt - 1e-9), math.floor(s_max / dt + 1e-9)
    if l_max - l_min + 1 < MIN_FIT_POINTS:
        raise ParameterError("lag_window", f"[{s_min:g}, {s_max:g}] holds {max(l_max - l_min + 1, 0)} grid lags "
                                           f"(dt = {dt:g}); need >= {MIN_FIT_POINTS}: widen it or run longer")
    if l_max > final_step:
        raise ParameterError("lag_window", f"s_max = {s_max:g} exceeds the final time {final_step * dt:g}")
    return l_min, l_max


def _fit(delta_C: np.ndarray, chi: np.ndarray, through_origin: bool):
    """Least squares of Delta C on chi: T_eff is the slope, with the gradients of T_eff.

    Regressing Delta C on chi (rather than chi on Delta C) gives T_eff directly as a
    slope, which stays well defined as T_eff -> 0 (GD at T = 0, SGD with b -> 1).
    """
    x, y = chi, delta_C
    if through_origin:
        sxx = x @ x
        slope = (x @ y) / sxx
        intercept = 0.0
        grad_y = x / sxx
        grad_x = (y - 2 * slope * x) / sxx
    else:
        xc, yc = x - x.mean(), y - y.mean()
        sxx = xc @ xc
        slope = (xc @ yc) / sxx
        intercept = y.mean() - slope * x.mean()
        grad_y = xc / sxx
        grad_x = (yc - 2 * slope * xc) / sxx
    return float(slope), float(intercept), grad_y, grad_x


@dataclass(frozen=True)
class _Plan:
    """Where and on which lags to fit: shared by a pooled estimate and its jackknife replicas."""

    fit_anchors: tuple[int, ...]
    earlier: int | None
    span: tuple[int, int]
    l_min: int
    l_max: int

    @property
    def anchor(self) -> int:
        """The latest fit anchor: the curve that is compared, plotted and stored."""
        return self.fit_anchors[-1]


def _plan(source: FdtSource, final_time: float | None, lag_window: tuple[float, float] | None,
          average_over: float = 0.0) -> _Plan:
    final_step = _final_step(source, final_time)
    if not (average_over >= 0 and math.isfinite(average_over)):
        raise ParameterError("average_over", f"must be >= 0 and finite, got {average_over}")
    average_steps = round(average_over / source.dt)
    l_min, l_max = _lag_steps(source, final_step - average_steps, lag_window)
    anchors, earlier, first, last = source.anchors(final_step, l_max, average_steps)
    return _Plan(tuple(anchors), earlier, (first, last), l_min, l_max)


def _teff(source: FdtSource, plan: _Plan, through_origin: bool, bound: bool = False):
    """(T_eff, intercept, stderr bound or NaN, Delta C, chi) from the curve averaged over the fit anchors.

    Averaging the curves (not the fitted slopes) keeps the fit and the curve one shows or
    stores consistent.
    """
    lags = np.arange(plan.l_min, plan.l_max + 1)
    curves = [source.curve_arrays(anchor, plan.l_max) for anchor in plan.fit_anchors]
    delta_C = np.mean([c[0] for c in curves], axis=0)
    chi = np.mean([c[1] for c in curves], axis=0)
    window_chi = chi[lags]
    if np.ptp(window_chi) < MIN_CHI_SPREAD * max(np.max(np.abs(chi)), 1e-300):
        raise ParameterError("lag_window", f"chi hardly changes over [{plan.l_min * source.dt:g}, "
                                           f"{plan.l_max * source.dt:g}]: the window sits on the plateau of the "
                                           "curve; move s_min down")
    slope, intercept, grad_y, grad_x = _fit(delta_C[lags], window_chi, through_origin)
    stderr_bound = math.nan
    if bound:
        # Each anchor's entries enter with 1/n of the gradient; summing |coefficient| x stderr over
        # anchors bounds the error even where anchors share entries (triangle inequality).
        stderr_bound = float(np.mean([source.teff_stderr_bound(anchor, lags, grad_y, grad_x)
                                      for anchor in plan.fit_anchors]))
    return slope, intercept, stderr_bound, delta_C, chi


def _block(source: FdtSource, anchor: int, max_lag: int) -> np.ndarray:
    """The steps one curve reads: [k - l_max, k] (DMFT form) or [j, j + l_max] (simulation form)."""
    if isinstance(source, TwoTimeFunctions):
        return np.arange(anchor - max_lag, anchor + 1)
    return np.arange(anchor, anchor + max_lag + 1)


def _blocks(source: FdtSource, plan: _Plan) -> tuple[np.ndarray, np.ndarray]:
    """(earlier block, fitted block) of steps whose mean self-overlaps are compared."""
    late = _block(source, plan.anchor, plan.l_max)
    if plan.earlier is not None:
        return _block(source, plan.earlier, plan.l_max), late
    half = late.size // 2  # one reference time: the first half of its block against the second
    return late[:half], late[half:]


def _drift_vectors(source: FdtSource, plan: _Plan) -> dict[str, tuple[float, float]]:
    """Signed drifts and their scales, one number each (a mean over a block of times or lags).

    Means, not maxima: the maximum over many noisy points is a multiple comparison that
    refuses stationary runs by Monte Carlo chance, while a mean is one comparison with a
    clean error bar, and a transient (monotone relaxation) moves the means as much.
    """
    so = source.drift_self_overlap
    early, late = _blocks(source, plan)
    out = {"self_overlap": (float(so[late].mean() - so[early].mean()), abs(float(so[plan.span[1]])))}
    if plan.earlier is not None:
        lags = np.arange(plan.l_min, plan.l_max + 1)
        dC, chi = source.curve_arrays(plan.anchor, plan.l_max)
        dC_e, chi_e = source.curve_arrays(plan.earlier, plan.l_max)
        out["delta_C"] = (float((dC - dC_e)[lags].mean()), abs(float(dC[lags].mean())))
        out["chi"] = (float((chi - chi_e)[lags].mean()), abs(float(chi[lags].mean())))
    return out


def _drift_bounds(source: FdtSource, plan: _Plan) -> dict[str, float] | None:
    """Upper bounds on the standard errors of the drifts (single result with per-entry stderr)."""
    so_se = source.drift_self_overlap_stderr
    if so_se is None:
        return None
    early, late = _blocks(source, plan)
    out = {"self_overlap": float(so_se[late].mean() + so_se[early].mean())}
    if plan.earlier is not None:
        now = source.curve_stderr_bounds(plan.anchor, plan.l_max)
        before = source.curve_stderr_bounds(plan.earlier, plan.l_max)
        if now is None or before is None:
            return None
        lags = np.arange(plan.l_min, plan.l_max + 1)
        out["delta_C"] = float((now[0] + before[0])[lags].mean())
        out["chi"] = float((now[1] + before[1])[lags].mean())
    return out


_DRIFT_LABELS = {"self_overlap": "C[k,k]", "delta_C": "Delta C(s)", "chi": "chi(s)"}
_ERROR_KINDS = {"runs": "from the spread of the runs' drifts", "bound": "bounded by per-entry errors",
                "none": "none known"}


def _stationarity(source: FdtSource, plan: _Plan, tolerance: float, nsigma: float,
                  run_sources: Sequence[FdtSource] | None = None) -> Stationarity:
    drifts = _drift_vectors(source, plan)
    if run_sources is not None and len(run_sources) >= MIN_RUNS_FOR_SPREAD:
        # Honest errors of the drifts: the spread of each run's drift.
        per_run = [_drift_vectors(r, plan) for r in run_sources]
        sigmas = {name: float(mean_and_stderr([p[name][0] for p in per_run])[1]) for name in drifts}
        error_kind = "runs"
        # A standard error from n runs is itself uncertain: widen nsigma to the Student-t
        # quantile (n - 1 degrees of freedom) with the normal tail probability of nsigma.
        from scipy.stats import norm
        from scipy.stats import t as student_t

        nsigma = float(student_t.ppf(norm.cdf(nsigma), df=len(run_sources) - 1))
    else:
        # Too few runs for their drifts' spread: bound the drifts' errors by the per-entry
        # errors (from the runs' spread entry by entry, if any), as for a single result.
        if run_sources is not None and len(run_sources) > 1:
            source = source.mean_of(run_sources, with_stderr=True)
        sigmas = _drift_bounds(source, plan)
        error_kind = "bound" if sigmas is not None else "none"
    dt = source.dt
    early, late = _blocks(source, plan)
    relative, sigma, reasons = {}, {}, []
    for name, (value, scale) in drifts.items():
        scale = scale if scale > 0 else 1.0
        relative[name] = abs(value) / scale
        sigma[name] = sigmas[name] / scale if sigmas is not None else math.nan
        passes = relative[name] <= tolerance or (math.isfinite(sigma[name]) and relative[name] <= nsigma * sigma[name])
        if passes:
            continue
        mc = f", {nsigma:.3g} standard errors = {_percent(nsigma * sigma[name])}" if math.isfinite(sigma[name]) else ""
        if name == "self_overlap":
            reasons.append(f"C[k,k] drifts by {_percent(relative[name])} over the window (mean over t in "
                           f"[{early[0] * dt:g}, {early[-1] * dt:g}] vs [{late[0] * dt:g}, {late[-1] * dt:g}]; "
                           f"tolerance {_percent(tolerance)}{mc})")
        else:
            reasons.append(f"{_DRIFT_LABELS[name]} changes by {_percent(relative[name])} (window mean) between "
                           f"t = {plan.earlier * dt:g} and t = {plan.anchor * dt:g} "
                           f"(tolerance {_percent(tolerance)}{mc})")
    compared = None if plan.earlier is None else (plan.anchor * dt, plan.earlier * dt)
    if plan.earlier is None:
        reasons.append("only one reference time before the window: the curve cannot be compared with an earlier one "
                       "(simulate with more reference times)")
    return Stationarity(
        stationary=not reasons, reason="; ".join(reasons), compared_times=compared,
        span=(plan.span[0] * dt, plan.span[1] * dt),
        self_overlap_drift=relative["self_overlap"], delta_C_drift=relative.get("delta_C", math.nan),
        chi_drift=relative.get("chi", math.nan), self_overlap_sigma=sigma["self_overlap"],
        delta_C_sigma=sigma.get("delta_C", math.nan), chi_sigma=sigma.get("chi", math.nan),
        tolerance=tolerance, nsigma=nsigma, error_kind=error_kind,
    )


def parametric_curve(source: Any, final_time: float | None = None, max_lag: float | None = None,
                     connected: bool = True) -> FdtCurve:
    """The FDT curve (lags, Delta C, chi) ending at ``final_time`` (default: the last step).

    DMFT form: at final step k, lags up to ``max_lag`` (default: all, back to t = 0).
    Simulation form: from the latest reference time j with j + max_lag <= final time
    (default max_lag: from the latest reference time to the final time).
    ``connected``: Delta C from the connected correlation (``connected_correlation``).
    """
    source = as_fdt_source(source, connected)
    k = _final_step(source, final_time)
    if isinstance(source, TwoTimeFunctions):
        l_max = k if max_lag is None else min(k, math.floor(max_lag / source.dt + 1e-9))
        anchor = k
    else:
        refs = source.reference_steps
        if max_lag is None:
            refs = refs[refs < k]
            if refs.size == 0:
                raise ParameterError("final_time", f"no reference time before t = {k * source.dt:g}")
            anchor = int(refs[-1])
            l_max = k - anchor
        else:
            l_max = math.floor(max_lag / source.dt + 1e-9)
            anchor = source.anchors(k, l_max)[0][-1]
    delta_C, chi = source.curve_arrays(anchor, l_max)
    return FdtCurve(lag=source.dt * np.arange(l_max + 1), delta_C=delta_C, chi=chi, anchor_time=anchor * source.dt,
                    form=source.form)


def parametric_curves(source: Any, final_times: Iterable[float | None], max_lag: float | None = None,
                      connected: bool = True) -> list[FdtCurve]:
    """``parametric_curve`` at several final times."""
    source = as_fdt_source(source, connected)
    return [parametric_curve(source, t, max_lag) for t in final_times]


def check_stationarity(source: Any, final_time: float | None = None, lag_window: tuple[float, float] | None = None,
                       average_over: float = 0.0, tolerance: float = DEFAULT_TOLERANCE,
                       nsigma: float = DEFAULT_NSIGMA, connected: bool = True) -> Stationarity:
    """The stationarity diagnostic of the window ``effective_temperature`` would fit."""
    source, runs = _source_and_runs(source, connected)
    return _stationarity(source, _plan(source, final_time, lag_window, average_over), tolerance, nsigma, runs)


def _source_and_runs(obj: Any, connected: bool) -> tuple[FdtSource, list[FdtSource] | None]:
    """The FDT source of ``obj`` and the runs kept in it (``_runs_of``). With runs, the
    source pools their own connected parts, as ``effective_temperature_from_runs`` does."""
    runs = _runs_of(obj, connected)
    source = as_fdt_source(obj, connected)
    return (source.mean_of(runs) if runs else source), runs


def _runs_of(obj: Any, connected: bool = True) -> list[FdtSource] | None:
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


def _estimate(source: FdtSource, plan: _Plan, through_origin: bool, tolerance: float, nsigma: float,
              run_sources: Sequence[FdtSource] | None, require_stationary: bool) -> TeffEstimate:
    stationarity = _stationarity(source, plan, tolerance, nsigma, run_sources)
    if require_stationary and not stationarity.stationary:
        raise NonStationaryError(stationarity)
    use_runs = run_sources is not None and len(run_sources) > 1
    slope, intercept, bound, delta_C, chi = _teff(source, plan, through_origin, bound=not use_runs)
    n_runs = len(run_sources) if run_sources is not None else 1
    if use_runs:
        # Jackknife over independent runs: leave-one-out pooled curves, same anchor and lags.
        n = len(run_sources)
        replicas = []
        for i in range(n):
            rest = [r for index, r in enumerate(run_sources) if index != i]
            replicas.append(_teff(source.mean_of(rest), plan, through_origin)[0])
        replicas = np.asarray(replicas)
        stderr = float(math.sqrt((n - 1) / n * np.sum((replicas - replicas.mean()) ** 2)))
        method = f"jackknife over {n} independent runs"
    else:
        stderr = bound
        method = ("upper bound from per-entry standard errors (their correlations are not stored)"
                  if math.isfinite(stderr) else "no Monte Carlo error available")
    dt = source.dt
    curve = FdtCurve(lag=dt * np.arange(plan.l_max + 1), delta_C=delta_C, chi=chi, anchor_time=plan.anchor * dt,
                     form=source.form)
    return TeffEstimate(T_eff=slope, T_eff_stderr=stderr, stderr_method=method, intercept=intercept,
                        through_origin=through_origin, window=(plan.l_min * dt, plan.l_max * dt),
                        points=plan.l_max - plan.l_min + 1, curve=curve, stationarity=stationarity,
                        temperature=float(source.temperature), runs=n_runs,
                        average_over=(plan.fit_anchors[-1] - plan.fit_anchors[0]) * dt,
                        connected=source.full_self_overlap is not None)


def effective_temperature(source: Any, final_time: float | None = None,
                          lag_window: tuple[float, float] | None = None, *, through_origin: bool = False,
                          average_over: float = 0.0, connected: bool = True, tolerance: float = DEFAULT_TOLERANCE,
                          nsigma: float = DEFAULT_NSIGMA, require_stationary: bool = True) -> TeffEstimate:
    """T_eff at ``final_time`` (default: the last step) from a Result or a simulation result.

    ``lag_window = (s_min, s_max)`` in time units; default ``default_lag_window``: from
    3 noise correlation times (at least 3 steps) to a quarter of the final time.

    The fit is least squares of Delta C against chi *with an intercept* by default: at
    equilibrium the line goes through the origin (and the fitted intercept, reported, is
    then ~0: a check), but with coloured noise (persistent SGD) the short-lag part of the
    curve bends, so the long-lag straight part no longer extrapolates to the origin and a
    fit forced through it would mix the two regimes. ``through_origin=True`` fits
    Delta C = T chi.

    ``average_over`` > 0 fits the curve averaged over every final time in
    [final_time - average_over, final_time] (simulation form: over the reference times
    within ``average_over`` of the latest usable one): in a stationary regime they are the
    same curve, and their Monte Carlo fluctuations decorrelate over a relaxation time, so
    the average is less noisy. The stationarity check then compares
    the latest curve with one a window before the earliest.

    Raises ``NonStationaryError`` when the window is not stationary (unless
    ``require_stationary=False``; the diagnostic is in the estimate either way).
    The error bar from a single result is an upper bound (module docstring); use
    ``effective_temperature_from_runs`` or ``teff_with_errors`` for an honest one.
    """
    source, runs = _source_and_runs(source, connected)
    plan = _plan(source, final_time, lag_window, average_over)
    return _estimate(source, plan, through_origin, tolerance, nsigma, runs, require_stationary)


def effective_temperature_from_runs(runs: Sequence[Any], final_time: float | None = None,
                                    lag_window: tuple[float, float] | None = None, *, through_origin: bool = False,
                                    average_over: float = 0.0, connected: bool = True,
                                    tolerance: float = DEFAULT_TOLERANCE, nsigma: float = DEFAULT_NSIGMA,
                                    require_stationary: bool = True) -> TeffEstimate:
    """T_eff of the pooled runs with a jackknife standard error over independent runs.

    ``runs``: results of the same problem with independent random draws (``solve_runs``,
    or simulations with different seeds), all on one grid. T_eff is fitted on the mean
    curve (the same estimate as from one solve with the runs as subpopulations); the
    jackknife re-fits leave-one-out means, which handles the nonlinearity of the slope.
    The stationarity drifts get honest errors from the spread of the runs.
    """
    sources = [as_fdt_source(r, connected) for r in runs]
    if len(sources) < 2:
        raise ParameterError("runs", f"need >= 2 independent runs for an error bar, got {len(sources)}")
    forms = {type(s) for s in sources}
    if len(forms) != 1:
        raise ParameterError("runs", "runs mix DMFT results and simulations")
    first = sources[0]
    for s in sources[1:]:
        if s.dt != first.dt or s.steps != first.steps:
            raise ParameterError("runs", "runs must share dt and the number of steps")
        if isinstance(s, FixedReferenceFunctions) and not (np.array_equal(s.C_steps, first.C_steps)
                                                           and np.array_equal(s.chi_steps, first.chi_steps)):
            raise ParameterError("runs", "simulation runs must share their reference times")
    pooled = first.mean_of(sources)
    plan = _plan(pooled, final_time, lag_window, average_over)
    return _estimate(pooled, plan, through_origin, tolerance, nsigma, sources, require_stationary)


# --------------------------------------------------------------------------------------
# Independent runs of the DMFT
# --------------------------------------------------------------------------------------


def run_seeds(seed: int, runs: int) -> list[int]:
    """Independent integer seeds derived from ``seed`` (numpy SeedSequence spawning)."""
    return [int(child.generate_state(1)[0]) for child in np.random.SeedSequence(seed).spawn(runs)]


def solve_runs(problem: Problem, options: SolverOptions | None = None, runs: int | None = None) -> list[Result]:
    """``runs`` independent DMFT solutions (default ``options.subpopulations``), each with samples / runs.

    The same total population as one ``dmft.solve(problem, options)``, but every
    subpopulation is kept, so nonlinear functionals (T_eff) get honest error bars.
    """
    from .options import SolverOptions
    from .solvers import solve

    options = options or SolverOptions()
    runs = options.subpopulations if runs is None else runs
    if runs < 2:
        raise ParameterError("runs", f"need >= 2 independent runs for an error bar, got {runs}")
    samples = options.samples // runs
    return [solve(problem, replace(options, samples=samples, subpopulations=1, seed=seed))
            for seed in run_seeds(options.seed, runs)]


def combine_runs(runs: Sequence[Result]) -> Result:
    """One Result from independent runs: their mean, and standard errors from their spread."""
    from .result import KERNELS, OBSERVABLES

    if len(runs) < 2:
        raise ParameterError("runs", f"need >= 2 runs, got {len(runs)}")
    arrays, stderr = {}, {}
    for name in OBSERVABLES + KERNELS:
        values = [getattr(r, name) for r in runs]
        if name in OBSERVABLES:
            arrays[name], stderr[name] = mean_and_stderr(values)
        else:
            arrays[name] = np.mean(np.asarray(values, dtype=float), axis=0)
    first = runs[0]
    gaps = getattr(first, "gaps", None)
    if gaps:  # the pooled population's gap distribution
        arrays["gaps"] = {step: np.concatenate([r.gaps[step] for r in runs]) for step in gaps}
    samples = sum(r.options.samples for r in runs)
    diagnostics = {"wall_time": sum(r.diagnostics.get("wall_time", 0.0) for r in runs), "subpopulations": len(runs)}
    return replace(first, options=replace(first.options, samples=samples, subpopulations=len(runs)),
                   stderr=stderr, diagnostics=diagnostics, **arrays)


def teff_with_errors(problem: Problem, options: SolverOptions | None = None, runs: int | None = None,
                     **kwargs: Any) -> TeffEstimate:
    """Solve in independent runs and return T_eff with its jackknife error (kwargs as ``effective_temperature``)."""
    return effective_temperature_from_runs(solve_runs(problem, options, runs), **kwargs)


# --------------------------------------------------------------------------------------
# T_eff against a parameter
# --------------------------------------------------------------------------------------

TABLE_FIELDS = ("label", "value", "T_eff", "T_eff_stderr", "stationary", "s_min", "s_max", "final_time")


def teff_table(solutions: Iterable[Any], parameter: str, label: str = "algorithm", **kwargs: Any) -> np.ndarray:
    """T_eff against ``parameter`` (a flat problem option: batch_fraction, persistence_time, alpha, ...).

    Each item of ``solutions`` is a Result, a simulation result, a list of independent runs
    of one problem (jackknife errors), or a ready ``TeffEstimate`` paired with its problem
    as ``(problem, estimate)``. Returns a structured array with fields ``TABLE_FIELDS``,
    sorted by label then value; a point whose window is not stationary is kept with
    ``stationary = False`` (and its T_eff as fitted) rather than dropped.
    """
    kwargs = {**kwargs, "require_stationary": False}
    rows = []
    for item in solutions:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], TeffEstimate):
            problem, estimate = item
        elif isinstance(item, (list, tuple)):
            problem, estimate = item[0].problem, effective_temperature_from_runs(item, **kwargs)
        else:
            problem, estimate = item.problem, effective_temperature(item, **kwargs)
        flat = problem.flat()
        if parameter not in flat:
            raise ParameterError("parameter", f"unknown problem parameter {parameter!r}; known: {', '.join(flat)}")
        rows.append((str(flat.get(label, "")), float(flat[parameter]), estimate.T_eff, estimate.T_eff_stderr,
                     estimate.stationarity.stationary, estimate.window[0], estimate.window[1], estimate.final_time))
    dtype = [("label", "U32"), ("value", float), ("T_eff", float), ("T_eff_stderr", float), ("stationary", bool),
             ("s_min", float), ("s_max", float), ("final_time", float)]
    table = np.array(rows, dtype=dtype)
    return np.sort(table, order=["label", "value"])


def teff_sweep(problem: Problem, parameter: str, values: Iterable[float], options: SolverOptions | None = None,
               runs: int | None = None, **kwargs: Any) -> np.ndarray:
    """Solve ``problem`` at each value of ``parameter`` in independent runs; return ``teff_table``."""
    solutions = [solve_runs(problem.replace(**{parameter: value}), options, runs) for value in values]
    return teff_table(solutions, parameter, **kwargs)


def plot_teff_table(table: np.ndarray, parameter: str, path: str | os.PathLike | None = None,
                    ax: Axes | None = None, labels: Mapping[str, str] | None = None) -> Axes:
    """T_eff +- stderr against ``parameter``, one series per label; open symbols: not stationary."""
    ax, figure = _axes(ax)
    for index, name in enumerate(dict.fromkeys(table["label"])):
        rows = table[table["label"] == name]
        color = f"C{index}"
        text = (labels or {}).get(name, name)
        ax.errorbar(rows["value"], rows["T_eff"], yerr=np.nan_to_num(rows["T_eff_stderr"]), color=color,
                    marker="o", capsize=3, label=text, linestyle="-")
        bad = ~rows["stationary"]
        if bad.any():
            ax.plot(rows["value"][bad], rows["T_eff"][bad], "o", mfc="white", color=color,
                    label=f"{text}: not stationary")
    ax.set_xlabel(parameter.replace("_", " "))
    ax.set_ylabel(r"$T_{\rm eff}$")
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.legend()
    _save(figure, path)
    return ax


def plot_fdt(estimates: TeffEstimate | Sequence[TeffEstimate], path: str | os.PathLike | None = None,
             ax: Axes | None = None) -> Axes:
    """The parametric plot chi against Delta C, with the fitted line and, for T > 0, chi = Delta C / T."""
    if isinstance(estimates, TeffEstimate):
        estimates = [estimates]
    ax, figure = _axes(ax)
    largest = 0.0
    for index, est in enumerate(estimates):
        color = f"C{index}"
        curve, inside = est.curve, est.in_window
        largest = max(largest, float(np.nanmax(curve.delta_C)))
        ax.plot(curve.delta_C, curve.chi, ".", color=color, alpha=0.35, ms=3)
        error = f" +- {est.T_eff_stderr:.2g}" if math.isfinite(est.T_eff_stderr) else ""
        ax.plot(curve.delta_C[inside], curve.chi[inside], ".", color=color, ms=4,
                label=f"{est.time_label}: window s in [{est.window[0]:g}, {est.window[1]:g}]")
        # Fitted Delta C = T_eff chi + intercept, drawn as chi against Delta C over the window.
        chi_line = np.linspace(0.0, float(np.max(curve.chi[inside])), 50)
        ax.plot(est.T_eff * chi_line + est.intercept, chi_line, "-", color=color,
                label=rf"fit: $T_{{\rm eff}}$ = {est.T_eff:.4g}{error}")
    temperatures = {est.temperature for est in estimates if est.temperature > 0}
    for T in sorted(temperatures):
        x = np.linspace(0.0, largest, 50)
        ax.plot(x, x / T, "k--", lw=1, label=f"equilibrium: slope 1/T, T = {T:g}")
    ax.set_xlabel(r"$\Delta C = C(t,t) - C(t,t')$")
    ax.set_ylabel(r"$\chi(t,t')$ (integrated response)")
    ax.set_title("Fluctuation-dissipation plot")
    ax.legend(fontsize=8)
    _save(figure, path)
    return ax


def _axes(ax: Axes | None):
    """An axes to draw on: the caller's, or a new figure on the Agg canvas (no pyplot state)."""
    if ax is not None:
        return ax, None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 4.5))
    FigureCanvasAgg(figure)
    return figure.add_subplot(1, 1, 1), figure


def _save(figure: Any, path: str | os.PathLike | None) -> None:
    if figure is None or path is None:
        return
    path = Path(path)
    if not path.parent.exists():
        raise DmftError(f"cannot write {path}: directory {path.parent} does not exist")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def _load(path: str | os.PathLike, connected: bool = True) -> tuple[FdtSource, list[FdtSource] | None]:
    """(source, independent runs or None) from a ``dmft solve`` or ``dmft simulate`` HDF5 file."""
    import h5py

    from .io import FileFormatError, load

    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    try:
        handle = h5py.File(path, "r")
    except OSError:
        raise FileFormatError(f"{path}: not an HDF5 file, so not a dmft output") from None
    with handle:
        kind = handle.attrs.get("kind")
        kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == KIND_SIMULATE:
        return _read_simulation(path, connected), None
    if kind != KIND_SOLVE:
        raise FileFormatError(f"{path}: not a dmft result (kind = {kind!r}; "
                              f"expected {KIND_SOLVE!r} or {KIND_SIMULATE!r})")
    result = load(path)
    return TwoTimeFunctions.from_result(result, connected), _runs_of(result, connected)


def load_source(path: str | os.PathLike, connected: bool = True) -> FdtSource:
    """Two-time data from a ``dmft solve`` or ``dmft simulate`` HDF5 file; refuses anything else."""
    return _load(path, connected)[0]


def _read_simulation(path: Path, connected: bool = True) -> FixedReferenceFunctions:
    from .simulate import load_simulation

    return FixedReferenceFunctions.from_simulation(load_simulation(path), connected=connected)


def estimate_from_file(path: str | os.PathLike, final_time: float | None = None,
                       lag_window: tuple[float, float] | None = None, *, through_origin: bool = False,
                       average_over: float = 0.0, connected: bool = True, tolerance: float = DEFAULT_TOLERANCE,
                       nsigma: float = DEFAULT_NSIGMA, require_stationary: bool = True) -> TeffEstimate:
    """``effective_temperature`` of the data in a dmft HDF5 file (jackknife if it kept its runs)."""
    source, runs = _load(path, connected)
    if runs:
        source = source.mean_of(runs)
    plan = _plan(source, final_time, lag_window, average_over)
    return _estimate(source, plan, through_origin, tolerance, nsigma, runs, require_stationary)


def write_fdt(path: str | os.PathLike, estimates: TeffEstimate | Sequence[TeffEstimate],
              overwrite: bool = False) -> None:
    """Add a group ``fdt`` to an existing dmft HDF5 file, atomically (a copy replaces the file on success).

    ``fdt`` holds one subgroup per estimate, ``fdt/0``, ``fdt/1``, ... (attributes T_eff,
    T_eff_stderr, stderr_method, window, final_time, intercept, through_origin, runs and
    the stationarity diagnostic as ``stationarity_*``; datasets lag, delta_C, chi, ratio),
    and the attribute ``final_times``.
    """
    import h5py

    from .io import temporary_beside

    if isinstance(estimates, TeffEstimate):
        estimates = [estimates]
    path = Path(path)
    tmp_name = temporary_beside(path)
    try:
        shutil.copy2(path, tmp_name)
        with h5py.File(tmp_name, "r+") as handle:
            if FDT_GROUP in handle:
                if not overwrite:
                    raise DmftError(f"{path} already has a group {FDT_GROUP!r}; pass --overwrite to replace it")
                del handle[FDT_GROUP]
            group = handle.create_group(FDT_GROUP)
            group.attrs["final_times"] = np.array([e.final_time for e in estimates])
            for index, est in enumerate(estimates):
                sub = group.create_group(str(index))
                summary = est.to_dict()
                stationarity = summary.pop("stationarity")
                for key, value in summary.items():
                    sub.attrs[key] = _h5_attribute(value)
                for key, value in stationarity.items():
                    sub.attrs[f"stationarity_{key}"] = _h5_attribute(value)
                sub.create_dataset("lag", data=est.curve.lag)
                sub.create_dataset("delta_C", data=est.curve.delta_C)
                sub.create_dataset("chi", data=est.curve.chi)
                sub.create_dataset("ratio", data=est.curve.ratio)
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def _h5_attribute(value: Any) -> Any:
    if value is None:
        return np.nan
    if isinstance(value, (list, tuple)):
        return np.array([np.nan if v is None else v for v in value], dtype=float)
    return value


def read_fdt(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The estimates stored by ``write_fdt``: one dict per final time (attributes and arrays)."""
    import h5py

    from .io import _native

    with h5py.File(path, "r") as handle:
        if FDT_GROUP not in handle:
            raise DmftError(f"{path}: no {FDT_GROUP!r} group (run `dmft teff {path} --write`)")
        group = handle[FDT_GROUP]
        out = []
        for index in range(len(group)):
            sub = group[str(index)]
            entry = {key: _native(value) for key, value in sub.attrs.items()}
            entry.update({name: sub[name][()] for name in sub})
            out.append(entry)
        return out


def estimates_json(estimates: Sequence[TeffEstimate]) -> str:
    """One JSON object: scalar values for one final time, lists (in order) for several."""
    dicts = [e.to_dict() for e in estimates]
    if len(dicts) == 1:
        return json.dumps(dicts[0])
    return json.dumps({key: [d[key] for d in dicts] for key in dicts[0]})


__all__ = [
    "FdtCurve", "FixedReferenceFunctions", "NonStationaryError", "Stationarity", "TeffEstimate", "TwoTimeFunctions",
    "as_fdt_source", "check_stationarity", "combine_runs", "connected_correlation", "default_lag_window",
    "effective_temperature", "effective_temperature_from_runs", "estimate_from_file", "estimates_json",
    "integrated_response", "load_source",
    "noise_correlation_time", "parametric_curve", "parametric_curves", "plot_fdt", "plot_teff_table", "read_fdt",
    "run_seeds", "solve_runs", "teff_sweep", "teff_table", "teff_with_errors", "write_fdt",
]
