"""Claim 3 (2022): T_eff as a function of the problem parameters b, tau, eta and alpha.

The under-parametrized perceptron of claim 2 (random labels, square hinge at margin 1,
no ridge, alpha = 4), one parameter varied at a time around b = 0.3, tau = 2,
eta = 0.2. Each point is solved in independent DMFT runs; T_eff is fitted by
``dmft.fdt`` on the curve averaged over the end of the run, with the jackknife error over
the runs. Tests, for each algorithm and parameter:

* stationary at every value (``dmft.fdt``'s check; inconclusive where it fails);
* T_eff depends on the parameter: the largest |z| over all pairs of values, against a
  threshold Bonferroni-corrected over every pair of every sweep.

The direction of each dependence (Spearman's rho of T_eff against the parameter, with its
bootstrap error) is reported as a finding: the claim is that T_eff measures the noise
as a function of these parameters, not which way each one goes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path
from typing import Any

from ..errors import ParameterError
from ..fdt import TeffEstimate, effective_temperature_from_runs, teff_table
from ..plots.reproduce import plot_parameter_sweep
from ..problem import Problem
from .contract import Claim, Outcome, settings_dict
from .fdt_line import lag_window
from .output import write_table
from .runs import PERCEPTRON, DmftSize, dmft_runs, final_estimate, problem_of
from .verdicts import FAILS, HOLDS, INCONCLUSIVE, Estimate, Test, change, rank_correlation

NAME = "teff-parameters"
FIGURES = {"batch_fraction": "teff-vs-b", "persistence_time": "teff-vs-tau", "dt": "teff-vs-eta",
           "alpha": "teff-vs-alpha"}


@dataclass(frozen=True)
class Sweep:
    """One parameter's values, and the algorithms swept over them."""

    parameter: str
    values: tuple[float, ...]
    algorithms: tuple[str, ...]


@dataclass(frozen=True)
class Settings:
    """Claim 3's sizes: the central point, the sweeps, the DMFT population and the fit."""

    alpha: float
    dt: float
    time: float
    batch_fraction: float
    persistence_time: float
    s_max: float
    average_over: float
    sweeps: tuple[Sweep, ...]
    dmft: DmftSize
    relevance: float = 0.1
    bootstrap_draws: int = 4000


BOTH = ("sgd", "persistent-sgd")
FULL = Settings(alpha=4.0, dt=0.2, time=100.0, batch_fraction=0.3, persistence_time=2.0, s_max=12.0, average_over=12.0,
                sweeps=(Sweep("batch_fraction", (0.1, 0.3, 0.5, 0.7, 0.9), BOTH),
                        Sweep("persistence_time", (0.5, 1.0, 2.0, 4.0, 8.0), ("persistent-sgd",)),
                        Sweep("dt", (0.1, 0.2, 0.25, 0.4), BOTH),
                        Sweep("alpha", (3.0, 4.0, 6.0, 8.0), BOTH)),
                dmft=DmftSize(samples=64_000, runs=16, seed=2022))
QUICK = Settings(alpha=4.0, dt=0.2, time=24.0, batch_fraction=0.3, persistence_time=2.0, s_max=4.8, average_over=4.8,
                 sweeps=(Sweep("batch_fraction", (0.1, 0.3, 0.5), ("persistent-sgd",)),
                         Sweep("persistence_time", (0.5, 2.0, 4.0), ("persistent-sgd",))),
                 dmft=DmftSize(samples=6000, runs=6, seed=2022))


def point_problem(s: Any, algorithm: str, time: float, **changes: Any) -> Problem:
    """The problem at the central point of ``s`` with ``changes`` (any of its swept parameters)."""
    flat = dict(alpha=s.alpha, dt=s.dt, batch_fraction=s.batch_fraction, algorithm=algorithm)
    if algorithm == "persistent-sgd":
        flat["persistence_time"] = s.persistence_time
    return problem_of(PERCEPTRON, **{**flat, **changes}, time=time)


@dataclass(frozen=True)
class TeffPoint:
    """T_eff at one point (None where no fit exists: ``failure`` says why), and the final
    training error of its runs (> 0: under-parametrized)."""

    problem: Problem
    estimate: TeffEstimate | None
    train_error: Estimate
    failure: str = ""

    @property
    def value(self) -> float:
        return math.nan if self.estimate is None else self.estimate.T_eff

    def as_estimate(self, runs: int) -> Estimate:
        if self.estimate is None:
            return Estimate(math.nan, math.nan, runs, "DMFT")
        return Estimate(self.estimate.T_eff, self.estimate.T_eff_stderr, runs, "DMFT")


class TeffPoints:
    """T_eff at points of the under-parametrized perceptron, each solved once per run."""

    def __init__(self, s: Any):
        self.s = s
        self.cache: dict[tuple, TeffPoint] = {}

    def get(self, algorithm: str, **changes: Any) -> TeffPoint:
        problem = point_problem(self.s, algorithm, self.s.time, **changes)
        key = tuple(sorted(problem.flat().items()))
        if key not in self.cache:
            runs = dmft_runs(problem, self.s.dmft)
            train_error = final_estimate(runs, "train_error", "DMFT")
            try:
                estimate = effective_temperature_from_runs(runs, lag_window=lag_window(problem, self.s.s_max),
                                                           average_over=self.s.average_over, require_stationary=False)
            except ParameterError as error:  # e.g. a window on the plateau of chi: no slope to fit
                self.cache[key] = TeffPoint(problem, None, train_error, str(error))
            else:
                self.cache[key] = TeffPoint(problem, estimate, train_error)
        return self.cache[key]


def run(s: Settings, output: Path, figures: tuple[str, ...]) -> Outcome:
    points = TeffPoints(s)
    sweeps = [sweep for sweep in s.sweeps if FIGURES[sweep.parameter] in figures]
    pairs = sum(len(sweep.algorithms) * len(sweep.values) * (len(sweep.values) - 1) // 2 for sweep in sweeps)
    tests: list[Test] = []
    rows, findings, drawn, written, notes = [], {}, [], [], []
    for sweep in sweeps:
        solutions = {algorithm: [points.get(algorithm, **{sweep.parameter: value}) for value in sweep.values]
                     for algorithm in sweep.algorithms}
        for algorithm, items in solutions.items():
            measured = [(value, point) for value, point in zip(sweep.values, items) if point.estimate is not None]
            notes += [f"{algorithm}, {sweep.parameter} = {value:g}: no T_eff ({point.failure})"
                      for value, point in zip(sweep.values, items) if point.estimate is None]
            estimates = [point.as_estimate(s.dmft.runs) for _, point in measured]
            values = [value for value, _ in measured]
            tests.append(_stationary_test(sweep, algorithm, items))
            tests.append(_dependence_test(sweep, algorithm, values, estimates, pairs, s.relevance))
            finding: dict[str, Any] = {"values": list(sweep.values),
                                       "T_eff": [point.as_estimate(s.dmft.runs) for point in items],
                                       "stationary": [None if p.estimate is None else p.estimate.stationarity.stationary
                                                      for p in items]}
            if len(measured) >= 3:
                finding["rank_correlation_with_the_parameter"] = rank_correlation(
                    [Estimate(v, 0.0, s.dmft.runs) for v in values], estimates, draws=s.bootstrap_draws,
                    seed=s.dmft.seed)
            findings[f"{algorithm} vs {sweep.parameter}"] = finding
            for value, point in zip(sweep.values, items):
                e = point.estimate
                rows.append({"parameter": sweep.parameter, "value": value, "algorithm": algorithm,
                             "T_eff": point.value, "T_eff_stderr": math.nan if e is None else e.T_eff_stderr,
                             "stationary": None if e is None else e.stationarity.stationary,
                             "s_min": math.nan if e is None else e.window[0],
                             "s_max": math.nan if e is None else e.window[1],
                             "train_error": point.train_error.value, "no_fit": point.failure})
        table = teff_table([(point.problem, point.estimate) for items in solutions.values() for point in items
                            if point.estimate is not None], sweep.parameter)
        name = FIGURES[sweep.parameter]
        plot_parameter_sweep({sweep.parameter: table}, output / f"{name}.png",
                             f"Claim 3: T_eff against {sweep.parameter.replace('_', ' ')} (DMFT, 1 s.e.)\n"
                             f"random labels, square hinge κ = 1, λ = 0, t = {s.time:g}; elsewhere "
                             f"b = {s.batch_fraction:g}, τ = {s.persistence_time:g}, η = {s.dt:g}, α = {s.alpha:g}")
        drawn.append(f"{name}.png")
    if rows:
        write_table(output / f"{NAME}.csv", rows, {**settings_dict(s), "model": PERCEPTRON},
                    "Claim 3: T_eff (jackknife error over independent DMFT runs) against each parameter")
        written.append(f"{NAME}.csv")
    notes.append("No memory window: the runs are short enough to solve the exact equations.")
    return Outcome(tests=tuple(tests), figures=tuple(drawn), tables=tuple(written), findings=findings,
                   notes=tuple(notes))


def _stationary_test(sweep: Sweep, algorithm: str, items: list[TeffPoint]) -> Test:
    missing = [f"{value:g}" for value, point in zip(sweep.values, items) if point.estimate is None]
    moving = [f"{value:g}" for value, point in zip(sweep.values, items)
              if point.estimate is not None and not point.estimate.stationarity.stationary]
    quantity = f"stationary with a fitted T_eff at every {sweep.parameter} ({algorithm})"
    if moving or missing:
        reason = "; ".join(part for part in (f"not stationary at {sweep.parameter} = {', '.join(moving)} (a longer "
                                             "run may settle)" if moving else "",
                                             f"no slope to fit at {sweep.parameter} = {', '.join(missing)}"
                                             if missing else "") if part)
        return Test(quantity, INCONCLUSIVE, reason, details={"not_stationary": moving, "no_fit": missing})
    return Test(quantity, HOLDS, f"every one of the {len(items)} windows is stationary")


def _dependence_test(sweep: Sweep, algorithm: str, values: list[float], estimates: list[Estimate],
                     comparisons: int, relevance: float) -> Test:
    """Every pair of values is compared; the most significant difference decides that T_eff
    depends on the parameter, and only a difference bounded below ``relevance`` (times the
    largest T_eff) for every pair decides that it does not."""
    quantity = f"T_eff depends on {sweep.parameter} ({algorithm})"
    if len(estimates) < 2:
        return Test(quantity, INCONCLUSIVE, "fewer than two values with a fitted T_eff")
    scale = max(abs(e.value) for e in estimates)
    tests = [change(quantity, a, b, comparisons, relevance * scale,
                    f"{sweep.parameter} = {values[i]:g} against {values[j]:g}")
             for (i, a), (j, b) in combinations(enumerate(estimates), 2)]
    best = max(tests, key=lambda test: test.statistic)
    if best.verdict == FAILS and not all(test.verdict == FAILS for test in tests):
        return replace(best, verdict=INCONCLUSIVE)
    return best


CLAIM = Claim(
    name=NAME, number=3, paper="Mignacco & Urbani 2022",
    statement="T_eff measures the noise of SGD and persistent SGD as a function of the problem parameters: "
              "the batch fraction b, the persistence time tau, the step eta and alpha.",
    figures={figure: f"T_eff against {parameter.replace('_', ' ')}" for parameter, figure in FIGURES.items()},
    full=FULL, quick=QUICK, runner=run)
