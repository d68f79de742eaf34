"""Claim 7 (beyond the papers): the teacher-student perceptron, DMFT against simulation.

Inputs x ~ N(0, I_d), labels from a teacher perceptron, each flipped with probability
``label_noise`` (docs/theory.md §1 and §2.7); logistic loss with a small ridge. GD and
SGD are run without and with label noise, and SGD with momentum as well; the test error
(against the clean teacher), the training loss and the overlap m with the teacher are
solved in independent DMFT runs and simulated seed by seed. Tests:

* agreement along every curve (checks), as in claim 1;
* label noise raises the final test error, for GD and for SGD (the claim);
* label noise raises the final training loss (the flipped labels cannot all be fitted at
  this alpha) (the claim).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..plots.reproduce import plot_teacher_student
from .contract import Claim, Outcome, settings_dict
from .learning_curves import curve_agreement_tests, curve_rows, curve_runs
from .output import write_table
from .runs import DmftSize, SimulationSize, problem_of, steps_for
from .verdicts import Estimate, Test, ordering

NAME = "teacher-student"
OBSERVABLES = ("test_error", "train_loss", "m")
TEACHER = dict(dataset="teacher-student", loss="logistic", ridge=0.01)


@dataclass(frozen=True)
class Settings:
    """Claim 7's sizes: ``alpha`` samples per dimension, label noise ``label_noise`` against none,
    SGD at ``batch_fraction`` (and with ``momentum``), compared every ``compare_every``."""

    alpha: float
    label_noise: float
    batch_fraction: float
    momentum: float
    time: float
    dt: float
    dmft: DmftSize
    simulation: SimulationSize
    compare_every: float
    relevance: float = 0.1


FULL = Settings(alpha=3.0, label_noise=0.2, batch_fraction=0.3, momentum=0.5, time=30.0, dt=0.1,
                dmft=DmftSize(samples=64_000, runs=16, seed=2026), simulation=SimulationSize(1000, 16, 2026),
                compare_every=1.0)
QUICK = Settings(alpha=3.0, label_noise=0.2, batch_fraction=0.3, momentum=0.5, time=4.0, dt=0.1,
                 dmft=DmftSize(samples=6000, runs=6, seed=2026), simulation=SimulationSize(200, 6, 2026),
                 compare_every=0.5)


def variants(s: Settings) -> list[tuple[str, str, dict[str, Any]]]:
    """(key, legend label, problem parameters) of every curve."""
    out = []
    for eps in (0.0, s.label_noise):
        out.append((f"gd eps={eps:g}", f"GD, ε = {eps:g}", dict(algorithm="gd", label_noise=eps)))
        out.append((f"sgd eps={eps:g}", f"SGD b = {s.batch_fraction:g}, ε = {eps:g}",
                    dict(algorithm="sgd", batch_fraction=s.batch_fraction, label_noise=eps)))
    out.append((f"sgd eps={s.label_noise:g} momentum={s.momentum:g}",
                f"SGD b = {s.batch_fraction:g}, ε = {s.label_noise:g}, β = {s.momentum:g}",
                dict(algorithm="sgd", batch_fraction=s.batch_fraction, label_noise=s.label_noise,
                     momentum=s.momentum)))
    return out


def run(s: Settings, output: Path, figures: tuple[str, ...]) -> Outcome:
    steps = steps_for(s.time, s.dt)
    compared = np.arange(0, steps + 1, max(1, int(round(s.compare_every / s.dt))))
    series, rows, finals = [], [], {}
    for key, label, flat in variants(s):
        problem = problem_of(TEACHER, alpha=s.alpha, dt=s.dt, steps=steps, **flat)
        theory, _, curves = curve_runs(problem, s.dmft, s.simulation, OBSERVABLES)
        series.append(dict(key=key, label=label, time=problem.time, **flat, **curves))
        rows += curve_rows(key, problem.time, curves, compared)
        finals[key] = {name: Estimate.of_runs([float(getattr(r, name)[-1]) for r in theory], "DMFT")
                       for name in ("test_error", "train_loss")}
    tests = curve_agreement_tests(series, compared, OBSERVABLES, s.dmft.runs, s.simulation.seeds, s.relevance)
    tests += _noise_tests(finals, s)
    parameters = {**settings_dict(s), "model": TEACHER}
    write_table(output / f"{NAME}.csv", rows, parameters,
                "Claim 7: test error, training loss and overlap m of the teacher-student perceptron against time, "
                "DMFT (mean and stderr over independent runs) and simulation (over seeds)")
    plot_teacher_student(series, s.simulation.dimension, output / f"{NAME}.png",
                         f"Claim 7: teacher-student perceptron, α = {s.alpha:g}, logistic, λ = {TEACHER['ridge']:g}, "
                         f"η = {s.dt:g} (bands and bars: 2 standard errors)")
    findings = {key: {name: e.to_dict() for name, e in values.items()} for key, values in finals.items()}
    return Outcome(tests=tuple(tests), figures=(f"{NAME}.png",), tables=(f"{NAME}.csv",), findings=findings)


def _noise_tests(finals: dict[str, dict[str, Estimate]], s: Settings) -> list[Test]:
    tests = []
    for algorithm in ("gd", "sgd"):
        clean, noisy = finals[f"{algorithm} eps=0"], finals[f"{algorithm} eps={s.label_noise:g}"]
        for name, what in (("test_error", "final test error"), ("train_loss", "final training loss")):
            tests.append(ordering(f"label noise ε = {s.label_noise:g} raises the {what} ({algorithm.upper()})",
                                  noisy[name], clean[name], 4, f"ε = {s.label_noise:g} against ε = 0"))
    return tests


CLAIM = Claim(
    name=NAME, number=7, paper="beyond the papers (teacher-student perceptron, issue 26)",
    statement=("The learning curves of the teacher-student perceptron (GD, SGD, SGD with momentum) agree with "
               "finite-d simulations; label noise raises the final test error and training loss."),
    figures={NAME: "test error, training loss and overlap with the teacher against time, with and without label "
                   "noise, DMFT lines and simulation markers"},
    full=FULL, quick=QUICK, runner=run)
