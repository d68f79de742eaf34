"""The effective temperature: the inverse slope of chi against Delta C over a window of lags.

Error bars. A ``dmft.solve`` result split into subpopulations stores only the mean and the
standard error of each entry of C and R; entries are strongly correlated, so propagating
them as if independent would not be honest. The honest route is to keep independent runs
(``dmft.workflows.solve_runs``) and take the jackknife over them
(``effective_temperature_from_runs``). From a single stored result only a *bound* is
available: the linearised error of T_eff with every pair of entries taken as fully
correlated in the worst direction, sum |dT/dx_e| stderr_e, which holds whatever the
correlations are (the triangle inequality on standard deviations).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..statistics import jackknife_stderr
from .sources import (FdtSource, FixedReferenceFunctions, TwoTimeFunctions, as_fdt_source, source_and_runs,
                      sources_from_file)
from .stationarity import (DEFAULT_NSIGMA, DEFAULT_TOLERANCE, ERROR_KINDS, NonStationaryError, Stationarity,
                           assess_stationarity, jsonable, percent)
from .window import Plan, final_step, plan_window

# A window in which chi changes by less than this fraction of its largest value sits on
# the plateau of the curve: its slope is Monte Carlo noise.
MIN_CHI_SPREAD = 0.05


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
            "T_eff": jsonable(self.T_eff),
            "T_eff_stderr": jsonable(self.T_eff_stderr),
            "stderr_method": self.stderr_method,
            "window": [float(self.window[0]), float(self.window[1])],
            "points": self.points,
            "final_time": float(self.final_time),
            "anchor_time": float(self.curve.anchor_time),
            "form": self.curve.form,
            "intercept": jsonable(self.intercept),
            "through_origin": self.through_origin,
            "ratio_range": [jsonable(np.nanmin(ratio)), jsonable(np.nanmax(ratio))] if ratio.size else None,
            "temperature": jsonable(self.temperature),
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
                     f"standard errors, {ERROR_KINDS[st.error_kind]}): {verdict}")
        def drift(value: float, sigma: float) -> str:
            return percent(value) + (f" (+- {percent(sigma)})" if math.isfinite(sigma) else "")

        lines.append(f"    drifts of window means: C[k,k] {drift(st.self_overlap_drift, st.self_overlap_sigma)}, "
                     f"Delta C {drift(st.delta_C_drift, st.delta_C_sigma)}, chi {drift(st.chi_drift, st.chi_sigma)}; "
                     f"times read: [{st.span[0]:g}, {st.span[1]:g}]")
        if self.temperature > 0:
            lines.append(f"  Langevin temperature T = {self.temperature:g}: "
                         f"T_eff / T = {self.T_eff / self.temperature:.4f}")
        return "\n".join(lines)


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


def _teff(source: FdtSource, plan: Plan, through_origin: bool, bound: bool = False):
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


def parametric_curve(source: Any, final_time: float | None = None, max_lag: float | None = None,
                     connected: bool = True) -> FdtCurve:
    """The FDT curve (lags, Delta C, chi) ending at ``final_time`` (default: the last step).

    DMFT form: at final step k, lags up to ``max_lag`` (default: all, back to t = 0).
    Simulation form: from the latest reference time j with j + max_lag <= final time
    (default max_lag: from the latest reference time to the final time).
    ``connected``: Delta C from the connected correlation (``connected_correlation``).
    """
    source = as_fdt_source(source, connected)
    k = final_step(source, final_time)
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


def _estimate(source: FdtSource, plan: Plan, through_origin: bool, tolerance: float, nsigma: float,
              run_sources: Sequence[FdtSource] | None, require_stationary: bool) -> TeffEstimate:
    stationarity = assess_stationarity(source, plan, tolerance, nsigma, run_sources)
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
        stderr = jackknife_stderr(replicas)
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
    The error bar from a single result is an upper bound (see ``dmft.fdt.estimate``); use
    ``effective_temperature_from_runs`` or ``dmft.workflows.teff_with_errors`` for an honest one.
    """
    source, runs = source_and_runs(source, connected)
    plan = plan_window(source, final_time, lag_window, average_over)
    return _estimate(source, plan, through_origin, tolerance, nsigma, runs, require_stationary)


def effective_temperature_from_runs(runs: Sequence[Any], final_time: float | None = None,
                                    lag_window: tuple[float, float] | None = None, *, through_origin: bool = False,
                                    average_over: float = 0.0, connected: bool = True,
                                    tolerance: float = DEFAULT_TOLERANCE, nsigma: float = DEFAULT_NSIGMA,
                                    require_stationary: bool = True) -> TeffEstimate:
    """T_eff of the pooled runs with a jackknife standard error over independent runs.

    ``runs``: results of the same problem with independent random draws
    (``dmft.workflows.solve_runs``, or simulations with different seeds), all on one grid. T_eff is fitted on the mean
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
    plan = plan_window(pooled, final_time, lag_window, average_over)
    return _estimate(pooled, plan, through_origin, tolerance, nsigma, sources, require_stationary)


def estimate_from_file(path: str | os.PathLike, final_time: float | None = None,
                       lag_window: tuple[float, float] | None = None, *, through_origin: bool = False,
                       average_over: float = 0.0, connected: bool = True, tolerance: float = DEFAULT_TOLERANCE,
                       nsigma: float = DEFAULT_NSIGMA, require_stationary: bool = True) -> TeffEstimate:
    """``effective_temperature`` of the data in a dmft HDF5 file (jackknife if it kept its runs)."""
    source, runs = sources_from_file(path, connected)
    if runs:
        source = source.mean_of(runs)
    plan = plan_window(source, final_time, lag_window, average_over)
    return _estimate(source, plan, through_origin, tolerance, nsigma, runs, require_stationary)


def estimates_json(estimates: Sequence[TeffEstimate]) -> str:
    """One JSON object: scalar values for one final time, lists (in order) for several."""
    dicts = [e.to_dict() for e in estimates]
    if len(dicts) == 1:
        return json.dumps(dicts[0])
    return json.dumps({key: [d[key] for d in dicts] for key in dicts[0]})
