"""Is the fitting window stationary? The curve is compared with itself one window earlier.

Stationarity is verified, not assumed: the curve used for the fit is compared with the
same curve one window earlier, and the self-overlap C[k,k] is checked for drift.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DmftError
from ..statistics import mean_and_stderr
from .sources import FdtSource, TwoTimeFunctions, source_and_runs
from .window import Plan, plan_window

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


class NonStationaryError(DmftError):
    """The fitting window is not stationary; ``stationarity.reason`` says why."""

    def __init__(self, stationarity: Stationarity):
        self.stationarity = stationarity
        super().__init__(f"no stationary window: {stationarity.reason}")


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
        return {key: jsonable(getattr(self, key)) for key in self.__dataclass_fields__}


def percent(value: float) -> str:
    """A relative drift as a percentage ('n/a' when not finite)."""
    if not math.isfinite(value):
        return "n/a"
    return f"{100 * value:.0f}%" if abs(value) >= 0.1 else f"{100 * value:.2g}%"


def jsonable(value: Any) -> Any:
    """A number or tuple as JSON takes it: numpy scalars -> Python, non-finite -> None."""
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, tuple):
        return [jsonable(v) for v in value]
    return value


def _block(source: FdtSource, anchor: int, max_lag: int) -> np.ndarray:
    """The steps one curve reads: [k - l_max, k] (DMFT form) or [j, j + l_max] (simulation form)."""
    if isinstance(source, TwoTimeFunctions):
        return np.arange(anchor - max_lag, anchor + 1)
    return np.arange(anchor, anchor + max_lag + 1)


def _blocks(source: FdtSource, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """(earlier block, fitted block) of steps whose mean self-overlaps are compared."""
    late = _block(source, plan.anchor, plan.l_max)
    if plan.earlier is not None:
        return _block(source, plan.earlier, plan.l_max), late
    half = late.size // 2  # one reference time: the first half of its block against the second
    return late[:half], late[half:]


def _drift_vectors(source: FdtSource, plan: Plan) -> dict[str, tuple[float, float]]:
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


def _drift_bounds(source: FdtSource, plan: Plan) -> dict[str, float] | None:
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
# How the drifts' standard errors were obtained, as ``TeffEstimate.describe`` says it.
ERROR_KINDS = {"runs": "from the spread of the runs' drifts", "bound": "bounded by per-entry errors",
               "none": "none known"}


def assess_stationarity(source: FdtSource, plan: Plan, tolerance: float, nsigma: float,
                        run_sources: Sequence[FdtSource] | None = None) -> Stationarity:
    """The stationarity diagnostic of ``plan`` on ``source``; ``run_sources``: the independent runs, if any."""
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
        mc = f", {nsigma:.3g} standard errors = {percent(nsigma * sigma[name])}" if math.isfinite(sigma[name]) else ""
        if name == "self_overlap":
            reasons.append(f"C[k,k] drifts by {percent(relative[name])} over the window (mean over t in "
                           f"[{early[0] * dt:g}, {early[-1] * dt:g}] vs [{late[0] * dt:g}, {late[-1] * dt:g}]; "
                           f"tolerance {percent(tolerance)}{mc})")
        else:
            reasons.append(f"{_DRIFT_LABELS[name]} changes by {percent(relative[name])} (window mean) between "
                           f"t = {plan.earlier * dt:g} and t = {plan.anchor * dt:g} "
                           f"(tolerance {percent(tolerance)}{mc})")
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


def check_stationarity(source: Any, final_time: float | None = None, lag_window: tuple[float, float] | None = None,
                       average_over: float = 0.0, tolerance: float = DEFAULT_TOLERANCE,
                       nsigma: float = DEFAULT_NSIGMA, connected: bool = True) -> Stationarity:
    """The stationarity diagnostic of the window ``effective_temperature`` would fit."""
    source, runs = source_and_runs(source, connected)
    plan = plan_window(source, final_time, lag_window, average_over)
    return assess_stationarity(source, plan, tolerance, nsigma, runs)
