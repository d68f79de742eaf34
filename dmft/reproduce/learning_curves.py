"""Claim 1 (2020): learning curves of GD, SGD and persistent SGD, DMFT against simulation.

The two-cluster mixture of the 2020 paper (gmm2, alpha = 2, Delta = 0.5, logistic loss,
ridge 0.1, docs/theory.md §10). For GD, SGD at several batch fractions b and persistent
SGD at several persistence times tau, the test error and the training loss against time
are solved in independent DMFT runs and simulated at finite d seed by seed. Tests:

* agreement: at every compared time, |DMFT - simulation| / combined error, the largest
  over each curve against a threshold Bonferroni-corrected over every compared point of
  the claim; inconclusive when the errors could hide a difference of ``relevance`` times
  the curve's range;
* the batch fraction and the persistence time change where the dynamics settles (the
  final test error and training loss) and how fast (the half-decay time of the training
  loss, the time at which it has made half of its total decrease), smallest against
  largest b and shortest against longest tau.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..plots.reproduce import plot_learning_curves
from .contract import Claim, Outcome, settings_dict
from .output import write_table
from .runs import MIXTURE, DmftSize, SimulationSize, curve_estimates, dmft_runs, problem_of, simulation_runs, steps_for
from .verdicts import Estimate, Test, agreement, change

NAME = "learning-curves"
OBSERVABLES = ("test_error", "train_loss")


@dataclass(frozen=True)
class Settings:
    """Claim 1's sizes. ``relevance``: the agreement test must resolve a difference of this
    fraction of a curve's range; ``change_relevance``: a change below this fraction of the
    value counts as none."""

    time: float
    dt: float
    sgd_batch_fractions: tuple[float, ...]
    persistent_batch_fraction: float
    persistence_times: tuple[float, ...]
    dmft: DmftSize
    simulation: SimulationSize
    compare_every: float
    relevance: float = 0.1
    change_relevance: float = 0.05


FULL = Settings(time=60.0, dt=0.1, sgd_batch_fractions=(0.1, 0.3, 0.7), persistent_batch_fraction=0.3,
                persistence_times=(0.5, 2.0, 8.0), dmft=DmftSize(samples=32_000, runs=16, seed=2020),
                simulation=SimulationSize(dimension=1000, seeds=16, seed=2020), compare_every=1.0)
QUICK = Settings(time=6.0, dt=0.1, sgd_batch_fractions=(0.1, 0.7), persistent_batch_fraction=0.3,
                 persistence_times=(0.5, 8.0), dmft=DmftSize(samples=6000, runs=6, seed=2020),
                 simulation=SimulationSize(dimension=200, seeds=6, seed=2020), compare_every=0.5)


def variants(s: Settings) -> list[tuple[str, str, dict[str, Any]]]:
    """(key, legend label, problem parameters) of every curve."""
    out = [("gd", "GD", dict(algorithm="gd"))]
    out += [(f"sgd b={b:g}", f"SGD b = {b:g}", dict(algorithm="sgd", batch_fraction=b)) for b in s.sgd_batch_fractions]
    b = s.persistent_batch_fraction
    out += [(f"persistent-sgd b={b:g} tau={tau:g}", f"persistent SGD b = {b:g}, τ = {tau:g}",
             dict(algorithm="persistent-sgd", batch_fraction=b, persistence_time=tau)) for tau in s.persistence_times]
    return out


def curve_runs(problem: Any, dmft_size: DmftSize, simulation_size: SimulationSize, observables: tuple[str, ...]
               ) -> tuple[list[Any], list[Any], dict[str, dict[str, Any]]]:
    """The independent DMFT runs and simulation seeds of ``problem`` (one-time observables
    only: no responses, C at t = 0 alone) and their ``side_curves``."""
    theory = dmft_runs(problem, dmft_size)
    sims = simulation_runs(problem, simulation_size, correlation_times=(0.0,), response_times=(), chi_times=(),
                           gap_times=())
    return theory, sims, side_curves(theory, sims, observables)


def side_curves(theory: list[Any], sims: list[Any], observables: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """side ("dmft", "simulation") -> observable -> (mean, stderr) over the independent runs."""
    return {side: {name: curve_estimates(runs, name) for name in observables}
            for side, runs in (("dmft", theory), ("simulation", sims))}


def curve_rows(key: str, time: np.ndarray, curves: dict[str, dict[str, Any]], compared: np.ndarray) -> list[dict]:
    """One CSV row per compared step: every observable's mean and stderr on both sides."""
    return [dict(variant=key, t=float(time[k]),
                 **{f"{name}_{side}{suffix}": float(curves[side][name][index][k])
                    for name in curves["dmft"] for side in ("dmft", "simulation")
                    for index, suffix in ((0, ""), (1, "_stderr"))})
            for k in compared]


def half_decay_time(time: np.ndarray, values: np.ndarray) -> float:
    """When ``values`` first reach halfway between their first and last value (linear interpolation)."""
    level = 0.5 * (values[0] + values[-1])
    below = np.flatnonzero(values <= level) if values[-1] < values[0] else np.flatnonzero(values >= level)
    k = int(below[0])
    if k == 0:
        return float(time[0])
    fraction = (values[k - 1] - level) / (values[k - 1] - values[k])
    return float(time[k - 1] + fraction * (time[k] - time[k - 1]))


def run(s: Settings, output: Path, figures: tuple[str, ...]) -> Outcome:
    steps = steps_for(s.time, s.dt)
    stride = max(1, int(round(s.compare_every / s.dt)))
    compared = np.arange(0, steps + 1, stride)
    series, rows, summary_rows = [], [], []
    per_run: dict[str, dict[str, tuple[Estimate, Estimate]]] = {}
    for key, label, flat in variants(s):
        problem = problem_of(MIXTURE, **flat, dt=s.dt, steps=steps)
        theory, sims, curves = curve_runs(problem, s.dmft, s.simulation, OBSERVABLES)
        series.append(dict(key=key, label=label, algorithm=flat["algorithm"], time=problem.time, **curves))
        rows += curve_rows(key, problem.time, curves, compared)
        measured = {}
        for quantity, values in (("final test error", lambda r: r.test_error[-1]),
                                 ("final training loss", lambda r: r.train_loss[-1]),
                                 ("half-decay time of the training loss",
                                  lambda r: half_decay_time(r.time, r.train_loss))):
            measured[quantity] = (Estimate.of_runs([values(r) for r in theory], "DMFT"),
                                  Estimate.of_runs([values(r) for r in sims], "simulation"))
        per_run[key] = measured
        summary_rows.append(dict(variant=key, **{f"{q} {side}{suffix}".replace(" ", "_"): getattr(e, attr)
                                                 for q, pair in measured.items()
                                                 for side, e in zip(("dmft", "simulation"), pair)
                                                 for suffix, attr in (("", "value"), ("_stderr", "stderr"))}))

    tests = curve_agreement_tests(series, compared, OBSERVABLES, s.dmft.runs, s.simulation.seeds, s.relevance)
    tests += _change_tests(per_run, s)
    parameters = {**settings_dict(s), "model": MIXTURE}
    write_table(output / f"{NAME}.csv", rows, parameters,
                "Claim 1: test error and training loss against time, DMFT (mean and stderr over independent runs) "
                "and simulation (over seeds)")
    write_table(output / f"{NAME}-summary.csv", summary_rows, parameters,
                "Claim 1: final test error, final training loss and half-decay time of the training loss per curve")
    plot_learning_curves(series, s.simulation.dimension, output / f"{NAME}.png",
                         f"Claim 1: learning curves, gmm2 α = {MIXTURE['alpha']:g}, Δ = {MIXTURE['delta']:g}, "
                         f"logistic, λ = {MIXTURE['ridge']:g}, η = {s.dt:g} (bands and bars: 2 standard errors)")
    findings = {key: {q: {"dmft": pair[0].to_dict(), "simulation": pair[1].to_dict()} for q, pair in m.items()}
                for key, m in per_run.items()}
    return Outcome(tests=tuple(tests), figures=(f"{NAME}.png",), tables=(f"{NAME}.csv", f"{NAME}-summary.csv"),
                   findings=findings)


def curve_agreement_tests(series: list[dict[str, Any]], compared: np.ndarray, observables: tuple[str, ...],
                          dmft_runs: int, simulation_seeds: int, relevance: float) -> list[Test]:
    """DMFT against simulation along every curve of ``series`` at the ``compared`` steps.

    The worst point of each curve decides, against a threshold Bonferroni-corrected over
    every compared point; the test must resolve ``relevance`` times the curve's range,
    judged on the median error along the curve.
    """
    points = len(series) * len(observables) * len(compared)
    tests = []
    for item in series:
        for name in observables:
            (dm, dse), (sm, sse) = item["dmft"][name], item["simulation"][name]
            error = np.sqrt(dse[compared] ** 2 + sse[compared] ** 2)
            z = np.abs(dm[compared] - sm[compared]) / np.maximum(error, 1e-300)
            worst = int(np.argmax(z))
            k = int(compared[worst])
            scale = float(np.ptp(dm))
            dmft = Estimate(float(dm[k]), float(dse[k]), dmft_runs, "DMFT")
            sim = Estimate(float(sm[k]), float(sse[k]), simulation_seeds, "simulation")
            tests.append(agreement(f"{name.replace('_', ' ')}, {item['key']}", dmft, sim, points, relevance * scale,
                                   details={"time_of_largest_z": float(item["time"][k]), "points": len(compared),
                                            "curve_range": scale},
                                   typical_error=float(np.median(error))))
    return tests


def _change_tests(per_run: dict[str, dict[str, tuple[Estimate, Estimate]]], s: Settings) -> list[Test]:
    pairs = []
    if len(s.sgd_batch_fractions) > 1:
        low, high = min(s.sgd_batch_fractions), max(s.sgd_batch_fractions)
        pairs.append((f"sgd b={low:g}", f"sgd b={high:g}", f"SGD, b = {low:g} against b = {high:g}"))
    if len(s.persistence_times) > 1:
        b = s.persistent_batch_fraction
        short, long = min(s.persistence_times), max(s.persistence_times)
        pairs.append((f"persistent-sgd b={b:g} tau={short:g}", f"persistent-sgd b={b:g} tau={long:g}",
                      f"persistent SGD, tau = {short:g} against tau = {long:g}"))
    comparisons = len(pairs) * 3
    tests = []
    for first, second, what in pairs:
        for quantity in per_run[first]:
            (d1, s1), (d2, s2) = per_run[first][quantity], per_run[second][quantity]
            relevance = s.change_relevance * 0.5 * (abs(d1.value) + abs(d2.value))
            tests.append(change(f"{quantity} changes ({what})", d1, d2, comparisons, relevance, what,
                                details={"simulation_first": s1.to_dict(), "simulation_second": s2.to_dict()}))
    return tests


CLAIM = Claim(
    name=NAME, number=1, paper="Mignacco, Krzakala, Urbani, Zdeborová 2020",
    statement=("The test error and training loss of GD, SGD and persistent SGD against time, for several batch "
               "fractions b and persistence times tau, agree with finite-d simulations; smaller batches and "
               "longer persistence change where and how fast the dynamics settles."),
    figures={NAME: "test error and training loss against time, DMFT lines and simulation markers"},
    full=FULL, quick=QUICK, runner=run)
