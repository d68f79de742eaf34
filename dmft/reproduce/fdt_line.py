"""Claim 2 (2022): in the under-parametrized regime SGD and persistent SGD become stationary and
chi against Delta C is a line, so T_eff is well defined.

The perceptron storing random labels with the square hinge (margin 1, no ridge) at
alpha = 4, above its capacity 0.52: the training loss stays positive. SGD and persistent
SGD are solved in independent DMFT runs and simulated seed by seed, with T_eff fitted by
``dmft.fdt`` (docs/theory.md §6) on the same lag window on both sides. Tests, on each
side and for each algorithm:

* stationary: ``dmft.fdt``'s stationarity check of the fitted window (inconclusive if it
  fails: a longer run may still become stationary);
* resolved: T_eff above zero by more than the threshold;
* a line: the slopes fitted on the first and second halves of the window agree (their
  difference jackknifed over the independent runs), and the test could see a difference
  of ``relevance`` x T_eff;
* DMFT and simulation give the same T_eff (both with jackknife errors).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..fdt import (TeffEstimate, as_fdt_source, default_lag_window, effective_temperature,
                   effective_temperature_from_runs, noise_correlation_time)
from ..plots.reproduce import plot_fdt_lines
from ..problem import Problem
from ..statistics import jackknife_stderr
from .contract import Claim, Outcome, settings_dict
from .output import write_table
from .runs import PERCEPTRON, DmftSize, SimulationSize, dmft_runs, problem_of, simulation_runs
from .verdicts import FAILS, HOLDS, INCONCLUSIVE, Estimate, Test, agreement, threshold

NAME = "fdt-line"


@dataclass(frozen=True)
class Settings:
    """Claim 2's sizes. The fit reads lags up to ``s_max`` on the curves averaged over the last
    ``average_over`` of the run (DMFT: final times; simulation: reference times)."""

    alpha: float
    dt: float
    time: float
    batch_fraction: float
    persistence_time: float
    s_max: float
    average_over: float
    reference_times: tuple[float, ...]
    dmft: DmftSize
    simulation: SimulationSize
    relevance: float = 0.25


FULL = Settings(alpha=4.0, dt=0.2, time=60.0, batch_fraction=0.3, persistence_time=2.0, s_max=12.0,
                average_over=12.0, reference_times=(12.0, 24.0, 36.0, 42.0, 48.0),
                dmft=DmftSize(samples=1_024_000, runs=16, seed=2022), simulation=SimulationSize(1000, 16, 2022))
QUICK = Settings(alpha=4.0, dt=0.2, time=24.0, batch_fraction=0.3, persistence_time=2.0, s_max=4.8,
                 average_over=4.8, reference_times=(4.8, 9.6, 14.4, 16.8, 19.2),
                 dmft=DmftSize(samples=6000, runs=6, seed=2022), simulation=SimulationSize(200, 6, 2022))


def algorithms(s: Settings) -> dict[str, dict[str, Any]]:
    return {"sgd": dict(algorithm="sgd", batch_fraction=s.batch_fraction),
            "persistent-sgd": dict(algorithm="persistent-sgd", batch_fraction=s.batch_fraction,
                                   persistence_time=s.persistence_time)}


def lag_window(problem: Problem, s_max: float) -> tuple[float, float]:
    """From ``dmft.fdt``'s default start (3 noise correlation times, at least 3 steps) to ``s_max``."""
    return default_lag_window(problem.dt, problem.time[-1], noise_correlation_time(problem))[0], s_max


def halves(window: tuple[float, float], dt: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """The two halves of a lag window, split on the grid."""
    middle = dt * round(0.5 * (window[0] + window[1]) / dt)
    return (window[0], middle), (middle, window[1])


def half_slopes(runs: Sequence[Any], window: tuple[float, float], average_over: float) -> dict[str, float]:
    """T_eff on each half of ``window`` and the jackknife error of their difference over the runs."""
    sources = [as_fdt_source(run) for run in runs]
    first, second = halves(window, sources[0].dt)

    def slopes(members: Sequence[Any]) -> tuple[float, float]:
        pooled = sources[0].mean_of(members)
        return tuple(effective_temperature(pooled, lag_window=part, average_over=average_over,
                                           require_stationary=False).T_eff for part in (first, second))

    t1, t2 = slopes(sources)
    n = len(sources)
    leave_out = np.array([np.subtract(*slopes(sources[:i] + sources[i + 1:])) for i in range(n)])
    stderr = jackknife_stderr(leave_out)
    return {"first_half": list(first), "second_half": list(second), "T_first": t1, "T_second": t2,
            "difference": t1 - t2, "difference_stderr": stderr}


def run(s: Settings, output: Path, figures: tuple[str, ...]) -> Outcome:
    estimates: dict[str, dict[str, TeffEstimate]] = {}
    linearity: dict[str, dict[str, dict[str, float]]] = {}
    for name, flat in algorithms(s).items():
        problem = problem_of(PERCEPTRON, alpha=s.alpha, dt=s.dt, time=s.time, **flat)
        window = lag_window(problem, s.s_max)
        sides = {"DMFT": dmft_runs(problem, s.dmft),
                 "simulation": simulation_runs(problem, s.simulation, correlation_times=s.reference_times,
                                               response_times=(), chi_times=s.reference_times, gap_times=())}
        estimates[name], linearity[name] = {}, {}
        for side, runs in sides.items():
            estimates[name][side] = effective_temperature_from_runs(runs, lag_window=window,
                                                                    average_over=s.average_over,
                                                                    require_stationary=False)
            linearity[name][side] = half_slopes(runs, window, s.average_over)
    tests = _tests(estimates, linearity, s)
    rows = []
    for name, sides in estimates.items():
        for side, estimate in sides.items():
            curve = estimate.curve
            for lag, delta_C, chi, inside in zip(curve.lag, curve.delta_C, curve.chi, estimate.in_window):
                rows.append(dict(algorithm=name, side=side, lag=float(lag), delta_C=float(delta_C), chi=float(chi),
                                 in_window=bool(inside), T_eff=estimate.T_eff, T_eff_stderr=estimate.T_eff_stderr,
                                 intercept=estimate.intercept))
    parameters = {**settings_dict(s), "model": PERCEPTRON}
    write_table(output / f"{NAME}.csv", rows, parameters,
                "Claim 2: the FDT curves (Delta C, chi against the lag) of SGD and persistent SGD and the fitted T_eff")
    plot_fdt_lines(estimates, linearity, s.simulation.dimension, output / f"{NAME}.png",
                   f"Claim 2: random labels α = {s.alpha:g}, square hinge κ = 1, λ = 0, η = {s.dt:g}, "
                   f"b = {s.batch_fraction:g}, τ = {s.persistence_time:g}")
    findings = {name: {side: {"T_eff": est.T_eff, "T_eff_stderr": est.T_eff_stderr, "window": list(est.window),
                              "intercept": est.intercept, "stationarity": est.stationarity.to_dict(),
                              "halves": linearity[name][side]}
                       for side, est in sides.items()} for name, sides in estimates.items()}
    notes = ("No memory window: the runs are short enough to solve the exact equations.",)
    return Outcome(tests=tuple(tests), figures=(f"{NAME}.png",), tables=(f"{NAME}.csv",), findings=findings,
                   notes=notes)


def _tests(estimates: dict[str, dict[str, TeffEstimate]], linearity: dict[str, dict[str, dict[str, float]]],
           s: Settings) -> list[Test]:
    comparisons = 5 * len(estimates)  # per algorithm: resolved and line on two sides, and one agreement
    tests: list[Test] = []
    for name, sides in estimates.items():
        for side, estimate in sides.items():
            runs = s.dmft.runs if side == "DMFT" else s.simulation.seeds
            value = Estimate(estimate.T_eff, estimate.T_eff_stderr, runs, side)
            st = estimate.stationarity
            if st.stationary:
                tests.append(Test(f"stationary window ({name}, {side})", HOLDS,
                                  f"the curve and C[k,k] do not drift over {estimate.time_label}", dmft=value
                                  if side == "DMFT" else None, simulation=value if side == "simulation" else None,
                                  details=st.to_dict()))
            else:
                tests.append(Test(f"stationary window ({name}, {side})", INCONCLUSIVE,
                                  f"not stationary at {estimate.time_label}: {st.reason}", details=st.to_dict()))
            limit = threshold(comparisons, value.dof)
            z = value.value / value.stderr
            verdict = HOLDS if z > limit else FAILS if z < -limit else INCONCLUSIVE
            tests.append(Test(f"T_eff resolved ({name}, {side})", verdict,
                              f"T_eff = {value.text()}: {z:.1f} standard errors from 0 (threshold {limit:.1f})",
                              z, limit, value if side == "DMFT" else None, value if side == "simulation" else None,
                              {"window": list(estimate.window)}))
            tests.append(_line_test(name, side, linearity[name][side], value, comparisons, s.relevance))
        dmft, sim = (Estimate(sides[side].T_eff, sides[side].T_eff_stderr, runs, side)
                     for side, runs in (("DMFT", s.dmft.runs), ("simulation", s.simulation.seeds)))
        tests.append(agreement(f"T_eff, DMFT against simulation ({name})", dmft, sim, comparisons,
                               s.relevance * abs(dmft.value), details={"window": list(sides["DMFT"].window)}
                               ).as_check())
    return tests


def _line_test(name: str, side: str, halves_: dict[str, float], value: Estimate, comparisons: int,
               relevance: float) -> Test:
    difference, error = halves_["difference"], halves_["difference_stderr"]
    limit = threshold(comparisons, value.dof)
    z = abs(difference) / error if error > 0 else math.inf
    text = (f"slopes on the two halves of the window: {halves_['T_first']:.4g} and {halves_['T_second']:.4g}, "
            f"difference {difference:.2g} ± {error:.2g} (|z| = {z:.1f}, threshold {limit:.1f})")
    if z >= limit:
        verdict, text = FAILS, text + ": the curve bends"
    elif limit * error > relevance * abs(value.value):
        verdict, text = INCONCLUSIVE, text + f": could hide a bend of {relevance:.0%} of T_eff"
    else:
        verdict = HOLDS
    return Test(f"chi against Delta C is a line ({name}, {side})", verdict, text, z, limit,
                details={**halves_, "relevance": relevance})


CLAIM = Claim(
    name=NAME, number=2, paper="Mignacco & Urbani 2022",
    statement=("In the under-parametrized regime (training error > 0) SGD and persistent SGD reach a stationary "
               "state in which chi against Delta C is a line: T_eff is well defined."),
    figures={NAME: "the FDT plot chi against Delta C of SGD and persistent SGD, DMFT and simulation, with the fits"},
    full=FULL, quick=QUICK, runner=run)
