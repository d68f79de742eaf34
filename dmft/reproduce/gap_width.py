"""Claim 5 (2022): noisier algorithms end training with wider decision boundaries.

The over-parametrized perceptron (random labels, alpha = 0.3, square hinge at margin
kappa = 1, no ridge, eta = 0.2): GD, SGD and persistent SGD are run to the end of
training, where the training loss is below ``loss_threshold``, and the gap distribution
y h of the training set is compared (docs/theory.md §5). The width of the boundary is
measured, in every independent DMFT run and every simulation seed, by

* the fraction of samples within eps of the margin, |gap - kappa| < eps, for each eps;
* the fraction deep inside, gap > kappa + ``deep``;
* the mean and quantiles of the gap; the fraction below the margin by more than
  ``violation`` (samples a hinge loss still pushes);
* the smallest gap among n = alpha d samples (the simulation's training set; the DMFT
  population is cut into groups of that size, so both sides estimate the same number).

Tests: the loss is below the threshold at the compared time (else the comparison is not
at the end of training: inconclusive); for each noisier algorithm, fewer samples within
each eps of the margin, more deep inside and a larger mean gap than GD (on each side);
DMFT and simulation agree on every measure and on the whole distribution
(``dmft.gaps.compare_gaps``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..compare import family_threshold
from ..gaps import CDF_LEVELS, compare_gaps, empirical_cdf
from ..plots.reproduce import plot_gap_width
from ..workflows import combine_runs
from .contract import Claim, Outcome, settings_dict
from .output import write_table
from .runs import (PERCEPTRON, DmftSize, SimulationSize, check_memory_window, dmft_runs, final_estimate, problem_of,
                   simulation_runs)
from .verdicts import FAILS, HOLDS, INCONCLUSIVE, Estimate, Test, agreement, ordering, threshold

NAME = "gap-width"


@dataclass(frozen=True)
class Variant:
    """One algorithm, run to ``time``."""

    key: str
    label: str
    algorithm: str
    time: float
    batch_fraction: float = 1.0
    persistence_time: float = 2.0

    def flat(self) -> dict[str, Any]:
        flat: dict[str, Any] = dict(algorithm=self.algorithm)
        if self.algorithm != "gd":
            flat["batch_fraction"] = self.batch_fraction
        if self.algorithm == "persistent-sgd":
            flat["persistence_time"] = self.persistence_time
        return flat


@dataclass(frozen=True)
class Settings:
    """Claim 5's sizes; the first variant is the reference (GD)."""

    alpha: float
    dt: float
    variants: tuple[Variant, ...]
    epsilons: tuple[float, ...]
    deep: float
    quantiles: tuple[float, ...]
    loss_threshold: float
    dmft: DmftSize
    simulation: SimulationSize
    memory_window: float
    relevance: float = 0.03
    # Samples converging onto the margin end within round-off of it, on either side (the
    # simulations pin GD's at kappa - 1e-16): only a deficit beyond this counts as below.
    violation: float = 1e-3
    # Diagnostic of the pile-up at the margin: GD at this time with random-probe and with
    # exact responses (same draws), against the simulation; None: skipped.
    response_check_time: float | None = None
    response_check: DmftSize = DmftSize(samples=2000, runs=4, seed=2022)


GD = Variant("gd", "GD", "gd", 200.0)
FULL = Settings(alpha=0.3, dt=0.2,
                variants=(GD, Variant("sgd", "SGD b = 0.3", "sgd", 200.0, 0.3),
                          Variant("persistent-sgd", "persistent SGD b = 0.3, τ = 2", "persistent-sgd", 200.0, 0.3, 2.0),
                          Variant("persistent-sgd tau=8", "persistent SGD b = 0.3, τ = 8", "persistent-sgd", 400.0,
                                  0.3, 8.0)),
                epsilons=(0.01, 0.05, 0.1), deep=0.5, quantiles=(0.1, 0.25, 0.5, 0.75, 0.9), loss_threshold=1e-4,
                dmft=DmftSize(samples=40_000, runs=10, seed=2022), simulation=SimulationSize(1000, 16, 2022),
                memory_window=20.0, response_check_time=60.0)
QUICK = Settings(alpha=0.3, dt=0.2, variants=(Variant("gd", "GD", "gd", 40.0),
                                              Variant("persistent-sgd", "persistent SGD b = 0.3, τ = 8",
                                                      "persistent-sgd", 40.0, 0.3, 8.0)),
                 epsilons=(0.05,), deep=0.5, quantiles=(0.5,), loss_threshold=1e-4,
                 dmft=DmftSize(samples=6000, runs=6, seed=2022), simulation=SimulationSize(200, 6, 2022),
                 memory_window=8.0, response_check_time=8.0, response_check=DmftSize(samples=800, runs=4, seed=2022))


def measures(groups: list[np.ndarray], s: Settings, margin: float, sample_size: int, source: str
             ) -> dict[str, Estimate]:
    """Every width measure, per independent group, as mean and standard error over the groups."""
    def per_group(function) -> Estimate:
        return Estimate.of_runs([function(g) for g in groups], source)

    out = {f"within {eps:g} of the margin": per_group(lambda g, eps=eps: np.mean(np.abs(g - margin) < eps))
           for eps in s.epsilons}
    out[f"deeper than margin + {s.deep:g}"] = per_group(lambda g: np.mean(g > margin + s.deep))
    out[f"below margin - {s.violation:g}"] = per_group(lambda g: np.mean(g < margin - s.violation))
    out["mean gap"] = per_group(np.mean)
    out.update({f"gap quantile {q:g}": per_group(lambda g, q=q: np.quantile(g, q)) for q in s.quantiles})
    out[f"smallest of {sample_size} gaps"] = per_group(lambda g: smallest_of(g, sample_size))
    return out


def smallest_of(gaps: np.ndarray, size: int) -> float:
    """The mean, over consecutive groups of ``size`` gaps, of each group's smallest gap."""
    groups = len(gaps) // size
    if groups == 0:
        return float(np.min(gaps))
    return float(np.mean(np.min(np.asarray(gaps)[:groups * size].reshape(groups, size), axis=1)))


def run(s: Settings, output: Path, figures: tuple[str, ...]) -> Outcome:
    n = int(round(s.alpha * s.simulation.dimension))
    margin = PERCEPTRON["margin"]
    data, notes, findings = {}, [], {}
    check = None
    for variant in s.variants:
        problem = problem_of(PERCEPTRON, alpha=s.alpha, dt=s.dt, time=variant.time, **variant.flat())
        window = s.memory_window if check is not None and check.used else 0.0
        runs = dmft_runs(problem, s.dmft, memory_window=window)
        if check is None and variant.algorithm == "persistent-sgd":
            check = check_memory_window(problem, s.dmft, s.memory_window, combine_runs(runs))
            notes.append(check.text() + " for the later variants")
            findings["memory_window"] = check.to_dict()
        sims = simulation_runs(problem, s.simulation, correlation_times=(0.0,), response_times=(), chi_times=(),
                               gap_times=(variant.time,))
        groups = {"DMFT": [r.gaps[problem.steps] for r in runs], "simulation": [x.gaps[variant.time] for x in sims]}
        data[variant.key] = dict(
            variant=variant, problem=problem, groups=groups,
            measures={side: measures(g, s, margin, n, side) for side, g in groups.items()},
            loss={"DMFT": final_estimate(runs, "train_loss", "DMFT"),
                  "simulation": final_estimate(sims, "train_loss", "simulation")})
    tests = _tests(data, s)
    if s.response_check_time is not None:
        diagnostic, checks = _response_check(s, margin)
        findings["responses_at_the_margin"] = diagnostic
        tests += checks
    rows, cdf_rows = [], []
    points = np.round(np.arange(0.8, 2.5001, 0.01), 2)
    for key, item in data.items():
        for side in ("DMFT", "simulation"):
            loss = item["loss"][side]
            row = dict(variant=key, side=side, time=item["variant"].time, train_loss=loss.value,
                       train_loss_stderr=loss.stderr)
            for name, estimate in item["measures"][side].items():
                row[name.replace(" ", "_")] = estimate.value
                row[name.replace(" ", "_") + "_stderr"] = estimate.stderr
            rows.append(row)
            cdf, error = empirical_cdf(item["groups"][side], points)
            item.setdefault("cdf", {})[side] = (points, cdf, error)
            cdf_rows += [dict(variant=key, side=side, gap=float(x), cdf=float(c), cdf_stderr=float(e))
                         for x, c, e in zip(points, cdf, error)]
        findings[key] = {"time": item["variant"].time, "train_loss": item["loss"],
                         "measures": item["measures"]}
    parameters = {**settings_dict(s), "model": PERCEPTRON}
    write_table(output / f"{NAME}.csv", rows, parameters,
                "Claim 5: width of the decision boundary at the end of training, per algorithm and side "
                "(mean and stderr over independent DMFT runs or simulation seeds)")
    write_table(output / f"{NAME}-cdf.csv", cdf_rows, parameters,
                "Claim 5: the fraction of training samples with gap below x, per algorithm and side")
    plot_gap_width(data, s.epsilons, s.deep, margin, s.simulation.dimension, output / f"{NAME}.png",
                   f"Claim 5: gaps at the end of training, random labels α = {s.alpha:g}, square hinge κ = {margin:g}, "
                   f"λ = 0, η = {s.dt:g}")
    return Outcome(tests=tuple(tests), figures=(f"{NAME}.png",), tables=(f"{NAME}.csv", f"{NAME}-cdf.csv"),
                   findings=findings, notes=tuple(notes))


def _tests(data: dict[str, dict[str, Any]], s: Settings) -> list[Test]:
    reference, *others = data
    gd = data[reference]["measures"]
    width = [name for name in gd["DMFT"] if name.startswith("within")]
    deeper = [name for name in gd["DMFT"] if name.startswith("deeper") or name == "mean gap"]
    orderings = len(others) * (len(width) + len(deeper)) * 2
    agreements = len(data) * len(gd["DMFT"])
    tests, ended = [], {}
    for key, item in data.items():
        loss = item["loss"]["DMFT"]
        limit = threshold(len(data), loss.dof)
        quantity = f"training loss below {s.loss_threshold:g} at t = {item['variant'].time:g} ({key})"
        ended[key] = loss.value + limit * loss.stderr < s.loss_threshold
        tests.append(Test(quantity, HOLDS if ended[key] else INCONCLUSIVE,
                          f"loss {loss.text()} (simulation {item['loss']['simulation'].text()}); "
                          + ("the end of training" if ended[key] else
                             "not the end of training: the gaps may still move"), loss.value, s.loss_threshold,
                          loss, item["loss"]["simulation"]))
    for key in others:
        label = data[key]["variant"].label
        compared = []
        for side in ("DMFT", "simulation"):
            mine = data[key]["measures"][side]
            for name in width:
                compared.append(ordering(f"fewer samples {name} ({key} vs GD, {side})", gd[side][name], mine[name],
                                         orderings, f"GD {gd[side][name].text()} against {label} {mine[name].text()}"))
            for name in deeper:
                compared.append(ordering(f"{name}: larger ({key} vs GD, {side})", mine[name], gd[side][name],
                                         orderings, f"{label} {mine[name].text()} against GD {gd[side][name].text()}"))
        if not (ended[key] and ended[reference]):  # gaps still moving say nothing about the end of training
            compared = [replace(test, verdict=INCONCLUSIVE, reason="not at the end of training; " + test.reason)
                        for test in compared]
        tests += compared
    for key, item in data.items():
        for name, dmft in item["measures"]["DMFT"].items():
            simulation = item["measures"]["simulation"][name]
            tests.append(agreement(f"{name}, DMFT against simulation ({key})", dmft, simulation, agreements,
                                   s.relevance).as_check())
        comparison = compare_gaps(item["groups"]["DMFT"], item["groups"]["simulation"], item["variant"].time)
        limit = family_threshold(len(CDF_LEVELS) * len(data), comparison.degrees_of_freedom + 1)
        tests.append(Test(f"gap distribution, DMFT against simulation ({key})",
                          HOLDS if comparison.max_z < limit else FAILS,
                          f"largest studentised CDF difference {comparison.max_z:.1f} at gap {comparison.at:.3g} "
                          f"(threshold {limit:.1f}); KS distance {comparison.ks_distance:.3g}",
                          comparison.max_z, limit, details={"ks_distance": comparison.ks_distance}, role="check"))
    return tests


def _response_check(s: Settings, margin: float) -> tuple[dict[str, Any], list[Test]]:
    """GD's pile-up at the margin with random-probe and with exact responses, against the simulation.

    The probe estimator of the response (docs/theory.md §3) is unbiased but noisy; near the
    margin that noise reaches the gaps. The same draws are solved with exact responses.
    """
    problem = problem_of(PERCEPTRON, alpha=s.alpha, dt=s.dt, time=s.response_check_time, algorithm="gd")
    sims = simulation_runs(problem, s.simulation, correlation_times=(0.0,), response_times=(), chi_times=(),
                           gap_times=(s.response_check_time,))
    sides = {"DMFT, probe responses": dmft_runs(problem, s.response_check),
             "DMFT, exact responses": dmft_runs(problem, s.response_check, response="exact")}
    groups = {side: [r.gaps[problem.steps] for r in runs] for side, runs in sides.items()}
    groups["simulation"] = [x.gaps[s.response_check_time] for x in sims]
    levels = (0.05, 0.2, 0.5)
    out: dict[str, Any] = {"time": s.response_check_time, "size": s.response_check}
    for side, values in groups.items():
        out[side] = {f"gap - kappa quantile {q:g}": Estimate.of_runs([np.quantile(g - margin, q) for g in values], side)
                     for q in levels}
        out[side][f"within {s.epsilons[0]:g} of the margin"] = Estimate.of_runs(
            [np.mean(np.abs(g - margin) < s.epsilons[0]) for g in values], side)
    tests = []
    for side in sides:
        for name, dmft in out[side].items():
            relevance = s.violation if "quantile" in name else s.relevance
            tests.append(agreement(f"GD at t = {s.response_check_time:g}, {name}, {side} against simulation", dmft,
                                   out["simulation"][name], 2 * len(out[side]), relevance).as_check())
    return out, tests


CLAIM = Claim(
    name=NAME, number=5, paper="Mignacco & Urbani 2022",
    statement=("Noisier algorithms find wider decision boundaries: at the end of training, the gap distribution of "
               "persistent SGD and SGD holds fewer samples at the margin and more deep inside than GD's."),
    figures={NAME: "the gap distributions at the end of training and the width measures, DMFT and simulation"},
    full=FULL, quick=QUICK, runner=run)
