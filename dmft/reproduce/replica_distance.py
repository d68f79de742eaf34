"""Claim 4 (2022): in the over-parametrized regime the distance between two replicas measures the
noise, and behaves like T_eff as a function of the same parameters.

Two values of alpha of the same perceptron (random labels, square hinge at margin 1, no
ridge): above the capacity 0.52 (under-parametrized, ``under.alpha``) T_eff is measured
as in claim 3; below it (over-parametrized, ``alpha``) the training error vanishes and
two replicas with the same data and initial weights and independent minibatches end at
a distance D = |w^a - w^b|^2/d (docs/theory.md §7), read at ``time``. The same parameter
values are swept on both sides. Tests:

* the regimes are what they should be: training error above ``under_error`` at every
  under-parametrized point, below ``over_error`` at every over-parametrized one;
* per algorithm and parameter, and pooled over every setting: T_eff and D rank the
  settings alike (Spearman's rho, with a parametric bootstrap of both sides' Monte Carlo
  errors; holds when rho <= 0 has a bootstrap probability below the false-alarm level);
* the DMFT distance agrees with two-replica simulations at the central point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..plots.reproduce import plot_distance_curves, plot_noise_measures
from ..problem import Problem
from ..result import Result
from ..workflows import combine_runs
from .contract import Claim, Outcome, settings_dict
from .output import write_table
from .runs import (PERCEPTRON, DmftSize, SimulationSize, check_memory_window, curve_estimates, dmft_runs,
                   final_estimate, simulation_runs)
from .teff_parameters import Settings as UnderSettings
from .teff_parameters import Sweep, TeffPoints, point_problem
from .verdicts import HOLDS, INCONCLUSIVE, Estimate, Test, agreement, positive_association, rank_correlation

NAME = "replica-distance"
FIGURES = {"noise-measures": "T_eff (under-parametrized) and the replica distance (over-parametrized) against "
                             "b, tau and eta, each normalised, with their rank correlations",
           "distance-vs-time": "the replica distance against time at the central point, DMFT and simulation"}


@dataclass(frozen=True)
class Settings:
    """Claim 4's sizes: the over-parametrized point and its DMFT and simulation sizes, the
    under-parametrized settings of claim 3 (whose ``sweeps`` are the ones both sides run)."""

    alpha: float
    time: float
    under: UnderSettings
    dmft: DmftSize
    simulation: SimulationSize
    memory_window: float
    under_error: float = 0.05
    over_error: float = 0.01
    relevance: float = 0.25

    # The over-parametrized point shares the central b, tau, eta with the under-parametrized one.
    @property
    def dt(self) -> float:
        return self.under.dt

    @property
    def batch_fraction(self) -> float:
        return self.under.batch_fraction

    @property
    def persistence_time(self) -> float:
        return self.under.persistence_time


BOTH = ("sgd", "persistent-sgd")
FULL = Settings(alpha=0.3, time=100.0,
                under=UnderSettings(alpha=4.0, dt=0.2, time=100.0, batch_fraction=0.3, persistence_time=2.0, s_max=12.0,
                                    average_over=12.0,
                                    sweeps=(Sweep("batch_fraction", (0.1, 0.3, 0.5, 0.7, 0.9), BOTH),
                                            Sweep("persistence_time", (0.5, 1.0, 2.0, 4.0, 8.0), ("persistent-sgd",)),
                                            Sweep("dt", (0.1, 0.2, 0.25, 0.4), BOTH)),
                                    dmft=DmftSize(samples=64_000, runs=16, seed=2022)),
                dmft=DmftSize(samples=20_000, runs=10, seed=2022), simulation=SimulationSize(1000, 32, 2022),
                memory_window=20.0)
QUICK = Settings(alpha=0.3, time=20.0,
                 under=UnderSettings(alpha=4.0, dt=0.2, time=24.0, batch_fraction=0.3, persistence_time=2.0,
                                     s_max=4.8, average_over=4.8,
                                     sweeps=(Sweep("persistence_time", (0.5, 2.0, 4.0), ("persistent-sgd",)),),
                                     dmft=DmftSize(samples=6000, runs=6, seed=2022)),
                 dmft=DmftSize(samples=6000, runs=6, seed=2022), simulation=SimulationSize(200, 6, 2022),
                 memory_window=4.0)


class DistancePoints:
    """Two-replica DMFT runs at points of the over-parametrized perceptron, each solved once."""

    def __init__(self, s: Settings, memory_window: float = 0.0):
        self.s, self.memory_window = s, memory_window
        self.cache: dict[tuple, tuple[Problem, list[Result]]] = {}

    def get(self, algorithm: str, **changes: Any) -> tuple[Problem, list[Result]]:
        problem = point_problem(self.s, algorithm, self.s.time, **changes)
        key = tuple(sorted(problem.flat().items()))
        if key not in self.cache:
            self.cache[key] = problem, dmft_runs(problem, self.s.dmft, replicas=2, memory_window=self.memory_window)
        return self.cache[key]


def central_value(s: Settings, parameter: str) -> float:
    return {"batch_fraction": s.batch_fraction, "persistence_time": s.persistence_time, "dt": s.dt}[parameter]


def run(s: Settings, output: Path, figures: tuple[str, ...]) -> Outcome:
    tests: list[Test] = []
    findings: dict[str, Any] = {}
    drawn, written, notes = [], [], []
    exact = DistancePoints(s)
    central = {algorithm: exact.get(algorithm) for algorithm in BOTH}
    if "distance-vs-time" in figures:
        tests += _simulation_tests(s, central, output, findings)
        drawn.append("distance-vs-time.png")
    if "noise-measures" in figures:
        problem, runs = central["persistent-sgd"]
        check = check_memory_window(problem, s.dmft, s.memory_window, combine_runs(runs), replicas=2)
        notes.append(check.text())
        findings["memory_window"] = check.to_dict()
        windowed = DistancePoints(s, s.memory_window) if check.used else exact
        sweep_tests, rows, sweep_findings = _sweeps(s, TeffPoints(s.under), exact, windowed, output)
        tests += sweep_tests
        findings.update(sweep_findings)
        write_table(output / f"{NAME}.csv", rows, {**settings_dict(s), "model": PERCEPTRON},
                    "Claim 4: T_eff (under-parametrized) and the final replica distance D (over-parametrized) at the "
                    "same b, tau, eta; errors from independent DMFT runs")
        drawn.append("noise-measures.png")
        written.append(f"{NAME}.csv")
    return Outcome(tests=tuple(tests), figures=tuple(drawn), tables=tuple(written), findings=findings,
                   notes=tuple(notes))


def _sweeps(s: Settings, teffs: TeffPoints, exact: DistancePoints, windowed: DistancePoints,
            output: Path) -> tuple[list[Test], list[dict[str, Any]], dict[str, Any]]:
    sweeps = s.under.sweeps
    comparisons = sum(len(sweep.algorithms) for sweep in sweeps) + 1
    tests, rows, panels, findings, notes = [], [], [], {}, []
    pooled: dict[tuple, tuple[Estimate, Estimate]] = {}
    for sweep in sweeps:
        panel: dict[str, Any] = {"parameter": sweep.parameter, "values": list(sweep.values), "series": {}}
        for algorithm in sweep.algorithms:
            temperatures, distances = [], []
            for value in sweep.values:
                point = teffs.get(algorithm, **{sweep.parameter: value})
                source = exact if value == central_value(s, sweep.parameter) else windowed
                over_problem, runs = source.get(algorithm, **{sweep.parameter: value})
                temperature = point.as_estimate(s.under.dmft.runs)
                distance = final_estimate(runs, "distance", "DMFT")
                over_error = final_estimate(runs, "train_error", "DMFT")
                temperatures.append(temperature)
                distances.append(distance)
                flat = over_problem.flat()
                if point.estimate is not None:
                    pooled[(algorithm, flat["batch_fraction"], flat["persistence_time"], flat["dt"])] = \
                        (temperature, distance)
                else:
                    notes.append(f"{algorithm}, {sweep.parameter} = {value:g}: no T_eff ({point.failure}); "
                                 "left out of the rank correlations")
                rows.append({"algorithm": algorithm, "parameter": sweep.parameter, "value": value,
                             "T_eff": temperature.value, "T_eff_stderr": temperature.stderr,
                             "stationary": None if point.estimate is None else point.estimate.stationarity.stationary,
                             "under_train_error": point.train_error.value,
                             "under_train_error_stderr": point.train_error.stderr,
                             "D": distance.value, "D_stderr": distance.stderr,
                             "over_train_error": over_error.value, "over_train_error_stderr": over_error.stderr,
                             "over_train_loss": final_estimate(runs, "train_loss", "DMFT").value})
            kept = [(t, d) for t, d in zip(temperatures, distances) if math.isfinite(t.value)]
            quantity = f"T_eff and D rank the values of {sweep.parameter} alike ({algorithm})"
            if len(kept) >= 3:
                correlation = rank_correlation([t for t, _ in kept], [d for _, d in kept], seed=s.under.dmft.seed)
                tests.append(positive_association(quantity, correlation, comparisons,
                                                  details={"values": list(sweep.values)}))
            else:
                correlation = None
                tests.append(Test(quantity, INCONCLUSIVE, "fewer than three values with a fitted T_eff"))
            panel["series"][algorithm] = {"T_eff": temperatures, "D": distances, "rho": correlation}
            findings[f"{algorithm} vs {sweep.parameter}"] = {"values": list(sweep.values), "T_eff": temperatures,
                                                             "D": distances, "rank_correlation": correlation}
        panels.append(panel)
    temperatures, distances = (list(side) for side in zip(*pooled.values()))
    correlation = rank_correlation(temperatures, distances, seed=s.under.dmft.seed + 1)
    tests.append(positive_association(f"T_eff and D rank all {len(pooled)} settings alike (pooled)", correlation,
                                      comparisons))
    findings["pooled"] = {"settings": [list(key) for key in pooled], "rank_correlation": correlation}
    tests += _regime_tests(s, rows)
    plot_noise_measures(panels, {sweep.parameter: central_value(s, sweep.parameter) for sweep in sweeps},
                        output / "noise-measures.png",
                        f"Claim 4: T_eff at α = {s.under.alpha:g} (under-parametrized, t = {s.under.time:g}) and "
                        f"replica distance D at α = {s.alpha:g} (over-parametrized, t = {s.time:g}); random labels, "
                        f"square hinge κ = 1, λ = 0\neach divided by its value at the central point "
                        f"b = {s.batch_fraction:g}, τ = {s.persistence_time:g}, η = {s.dt:g} (bars: 2 s.e. of the "
                        "numerator)")
    findings["notes"] = notes
    return tests, rows, findings


def _regime_tests(s: Settings, rows: list[dict[str, Any]]) -> list[Test]:
    """The points are in the regimes the claim is about (bounds fixed in the settings)."""
    tests = []
    for side, key, bound, wanted in (("under", "under_train_error", s.under_error, "above"),
                                     ("over", "over_train_error", s.over_error, "below")):
        values = {(row["algorithm"], row["parameter"], row["value"]): row[key] for row in rows}
        wrong = [f"{a} {p}={v:g} ({e:.3g})" for (a, p, v), e in values.items()
                 if (e <= bound if wanted == "above" else e >= bound)]
        alpha = s.under.alpha if side == "under" else s.alpha
        quantity = f"training error {wanted} {bound:g} at every point at alpha = {alpha:g}"
        if wrong:
            tests.append(Test(quantity, INCONCLUSIVE, f"not at {len(wrong)} points: {', '.join(wrong)}",
                              details={"exceptions": wrong}))
        else:
            extreme, which = (max(values.values()), "largest") if wanted == "below" else \
                (min(values.values()), "smallest")
            tests.append(Test(quantity, HOLDS, f"at all {len(values)} points ({which} {extreme:.3g})"))
    return tests


def _simulation_tests(s: Settings, central: dict[str, tuple[Problem, list[Result]]], output: Path,
                      findings: dict[str, Any]) -> list[Test]:
    tests, series, rows = [], [], []
    for algorithm, (problem, runs) in central.items():
        sims = simulation_runs(problem, s.simulation, replicas=2, correlation_times=(0.0,), response_times=(),
                               chi_times=(), gap_times=())
        dmft, sim = final_estimate(runs, "distance", "DMFT"), final_estimate(sims, "distance", "simulation")
        tests.append(agreement(f"final distance D, DMFT against simulation ({algorithm})", dmft, sim, len(central),
                               s.relevance * dmft.value).as_check())
        curves = {"dmft": curve_estimates(runs, "distance"), "simulation": curve_estimates(sims, "distance")}
        series.append(dict(algorithm=algorithm, time=problem.time, **curves))
        findings[f"distance at t = {s.time:g} ({algorithm})"] = {"dmft": dmft, "simulation": sim}
        for k in range(0, problem.steps + 1, max(1, problem.steps // 100)):
            rows.append(dict(algorithm=algorithm, t=float(problem.time[k]), D_dmft=float(curves["dmft"][0][k]),
                             D_dmft_stderr=float(curves["dmft"][1][k]), D_simulation=float(curves["simulation"][0][k]),
                             D_simulation_stderr=float(curves["simulation"][1][k])))
    write_table(output / "distance-vs-time.csv", rows, {**settings_dict(s), "model": PERCEPTRON},
                "Claim 4: the replica distance D(t) at the central point, DMFT and two-replica simulations")
    plot_distance_curves(series, s.simulation.dimension, output / "distance-vs-time.png",
                         f"Claim 4: replica distance, random labels α = {s.alpha:g}, square hinge κ = 1, λ = 0, "
                         f"b = {s.batch_fraction:g}, τ = {s.persistence_time:g}, η = {s.dt:g}")
    return tests


CLAIM = Claim(
    name=NAME, number=4, paper="Mignacco & Urbani 2022",
    statement=("In the over-parametrized regime (training error -> 0) the noise is measured by the distance between "
               "two replicas with the same initialisation and different minibatch noise; as a function of the same "
               "parameters it behaves like T_eff."),
    figures=FIGURES, full=FULL, quick=QUICK, runner=run)
