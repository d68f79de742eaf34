"""Claim 6 (beyond the papers): heavy-ball momentum beta rescales time by 1/(1 - beta).

At small step, heavy ball is the plain algorithm run with step dt / (1 - beta) (the
velocity follows the gradient within a time dt / (1 - beta), docs/theory.md §2.8). Two
consequences are measured:

* Langevin dynamics with momentum (GD at temperature T, a convex loss with a ridge) relaxes
  to the Gibbs measure at T / (1 - beta): its FDT temperature, extrapolated to dt -> 0 from
  two step sizes (Richardson: the error is O(dt)), times (1 - beta) / T is 1;
* persistent SGD with momentum beta, step dt and persistence time tau is persistent SGD
  without momentum at step dt / (1 - beta) and persistence time tau / (1 - beta), with
  every time (run length, lags, averaging) stretched by 1 / (1 - beta): the same number of
  steps. So its T_eff equals that counterpart's, and grows with beta as T_eff grows with tau.
  The two have the same switching probabilities per step, so the same seed gives both the
  same selections and innovations: their difference is estimated run by run (a paired
  jackknife), free of most of the Monte Carlo noise of either.

The Langevin runs at momentum beta use the step dt (1 - beta), run length and lags
stretched alike, so that every momentum has the same effective step dt and the same O(dt)
error to extrapolate away.

The persistent-SGD model is claim 2's: the perceptron storing random labels with the
square hinge (margin 1, no ridge) at alpha = 4, above its capacity, so that it becomes
stationary. Tests: T_eff of persistent SGD with momentum, DMFT against simulation (checks);
T_eff against its counterpart without momentum (the claim; both DMFT, paired, the
difference is O(dt)); T_eff grows from the smallest to the largest beta; the Langevin
temperatures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from ..fdt import TeffEstimate, as_fdt_source, effective_temperature, effective_temperature_from_runs
from ..plots.reproduce import plot_momentum
from ..problem import Problem
from ..statistics import jackknife_stderr
from .contract import Claim, Outcome, settings_dict
from .fdt_line import lag_window
from .output import write_table
from .runs import PERCEPTRON, DmftSize, SimulationSize, dmft_runs, problem_of, simulation_runs
from .verdicts import FAILS, HOLDS, INCONCLUSIVE, Estimate, Test, agreement, change, threshold

NAME = "momentum"
# Claim 6's Langevin model: the equilibrium test of the solver (tests/test_fdt.py).
LANGEVIN = dict(dataset="gmm2", alpha=2.0, delta=0.5, rho=0.5, loss="logistic", ridge=0.5, algorithm="gd")


@dataclass(frozen=True)
class Settings:
    """Claim 6's sizes. Persistent SGD: step ``dt``, run to ``time``, T_eff fitted on lags up
    to ``s_max`` averaged over the last ``average_over`` (all stretched by 1/(1 - beta) for the
    counterparts). Langevin: temperature ``temperature`` at steps ``langevin_dts``, run to
    ``langevin_time``, FDT on lags ``langevin_lags``."""

    momenta: tuple[float, ...]
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
    temperature: float
    langevin_dts: tuple[float, float]
    langevin_time: float
    langevin_lags: tuple[float, float]
    langevin_dmft: DmftSize
    relevance: float = 0.1


FULL = Settings(momenta=(0.0, 0.3, 0.5, 0.7), alpha=4.0, dt=0.1, time=40.0, batch_fraction=0.3,
                persistence_time=2.0, s_max=8.0, average_over=8.0, reference_times=(8.0, 16.0, 24.0, 28.0, 32.0),
                dmft=DmftSize(samples=256_000, runs=16, seed=2026), simulation=SimulationSize(1000, 16, 2026),
                temperature=0.5, langevin_dts=(0.05, 0.025), langevin_time=15.0, langevin_lags=(1.0, 4.0),
                langevin_dmft=DmftSize(samples=32_000, runs=8, seed=2026))
QUICK = Settings(momenta=(0.0, 0.5), alpha=4.0, dt=0.2, time=16.0, batch_fraction=0.3, persistence_time=2.0,
                 s_max=3.2, average_over=3.2, reference_times=(3.2, 6.4, 9.6, 11.2, 12.8),
                 dmft=DmftSize(samples=6000, runs=6, seed=2026), simulation=SimulationSize(200, 6, 2026),
                 temperature=0.5, langevin_dts=(0.1, 0.05), langevin_time=8.0, langevin_lags=(1.0, 3.0),
                 langevin_dmft=DmftSize(samples=4000, runs=4, seed=2026))


def persistent(s: Settings, beta: float, counterpart: bool = False) -> Problem:
    """Persistent SGD with momentum ``beta``, or (``counterpart``) its equivalent without momentum."""
    stretch = 1.0 / (1.0 - beta) if counterpart else 1.0
    return problem_of(PERCEPTRON, alpha=s.alpha, algorithm="persistent-sgd", batch_fraction=s.batch_fraction,
                      persistence_time=s.persistence_time * stretch, dt=s.dt * stretch,
                      steps=round(s.time / s.dt), momentum=0.0 if counterpart else beta)


def _teff(runs: list[Any], window: tuple[float, float], average_over: float) -> TeffEstimate:
    return effective_temperature_from_runs(runs, lag_window=window, average_over=average_over,
                                           require_stationary=False)


def run(s: Settings, output: Path, figures: tuple[str, ...]) -> Outcome:
    # The lag window of the plain run, in the momentum runs' own time: the rescaling maps it
    # onto the counterpart's window stretched by 1/(1 - beta).
    window = lag_window(persistent(s, 0.0), s.s_max)
    rows, measured, paired = [], {}, {}
    for beta in s.momenta:
        stretch = 1.0 / (1.0 - beta)
        problem = persistent(s, beta)
        sides = {"DMFT": dmft_runs(problem, s.dmft),
                 "simulation": simulation_runs(problem, s.simulation, correlation_times=s.reference_times,
                                               response_times=(), chi_times=s.reference_times, gap_times=())}
        estimates = {side: _teff(runs, window, s.average_over) for side, runs in sides.items()}
        if beta > 0:
            twin_runs = dmft_runs(persistent(s, beta, counterpart=True), s.dmft)
            twin_window = (window[0] * stretch, window[1] * stretch)
            estimates["counterpart"] = _teff(twin_runs, twin_window, s.average_over * stretch)
            paired[beta] = paired_difference(sides["DMFT"], (window, s.average_over), twin_runs,
                                             (twin_window, s.average_over * stretch))
        measured[beta] = estimates
        for side, estimate in estimates.items():
            rows.append(dict(momentum=beta, side=side, T_eff=estimate.T_eff, T_eff_stderr=estimate.T_eff_stderr,
                             lag_min=estimate.window[0], lag_max=estimate.window[1]))
    langevin = _langevin(s)
    for beta, by_dt in langevin.items():
        for dt, estimate in by_dt.items():
            rows.append(dict(momentum=beta, side=f"Langevin DMFT, dt = {dt:g}", T_eff=estimate.T_eff,
                             T_eff_stderr=estimate.T_eff_stderr, lag_min=estimate.window[0],
                             lag_max=estimate.window[1]))
    tests = _persistent_tests(measured, paired, s) + _langevin_tests(langevin, s)
    parameters = {**settings_dict(s), "model": PERCEPTRON, "langevin_model": LANGEVIN}
    write_table(output / f"{NAME}.csv", rows, parameters,
                "Claim 6: T_eff of persistent SGD with momentum (DMFT, simulation, and the DMFT of the counterpart "
                "without momentum), and the FDT temperature of Langevin dynamics with momentum")
    plot_momentum(_plotted(measured), _plotted_langevin(langevin, s), s.simulation.dimension, output / f"{NAME}.png",
                  f"Claim 6: momentum β. Left: persistent SGD, random labels α = {s.alpha:g}, square hinge κ = 1, "
                  f"η = {s.dt:g}, b = {s.batch_fraction:g}, τ = {s.persistence_time:g}. Right: Langevin GD, "
                  f"T = {s.temperature:g}")
    findings = {f"{beta:g}": {side: {"T_eff": e.T_eff, "T_eff_stderr": e.T_eff_stderr, "window": list(e.window)}
                              for side, e in estimates.items()} for beta, estimates in measured.items()}
    for beta, (difference, error) in paired.items():
        findings[f"{beta:g}"]["paired_difference"] = {"value": difference, "stderr": error}
    findings["langevin"] = {f"{beta:g}": {f"{dt:g}": {"T_eff": e.T_eff, "T_eff_stderr": e.T_eff_stderr}
                                          for dt, e in by_dt.items()} for beta, by_dt in langevin.items()}
    notes = ("The counterpart of momentum beta is persistent SGD without momentum at step dt/(1 - beta) and "
             "persistence time tau/(1 - beta), the same number of steps, lags and averaging stretched by "
             "1/(1 - beta); the two differ at O(dt).",)
    return Outcome(tests=tuple(tests), figures=(f"{NAME}.png",), tables=(f"{NAME}.csv",), findings=findings,
                   notes=notes)


def paired_difference(runs: Sequence[Any], fit: tuple[tuple[float, float], float], twins: Sequence[Any],
                      twin_fit: tuple[tuple[float, float], float]) -> tuple[float, float]:
    """T_eff(runs) - T_eff(twins) and its jackknife error, leaving out run i of both at once.

    Run i of each family comes from the same seed, so the leave-one-out differences keep
    what the two share out of the error. ``fit`` and ``twin_fit``: (lag window, average_over).
    """
    families = [([as_fdt_source(r) for r in members], window, average)
                for members, (window, average) in ((runs, fit), (twins, twin_fit))]

    def difference(keep: Sequence[int]) -> float:
        values = [effective_temperature(sources[0].mean_of([sources[i] for i in keep]), lag_window=window,
                                        average_over=average, require_stationary=False).T_eff
                  for sources, window, average in families]
        return values[0] - values[1]

    n = len(runs)
    whole = difference(range(n))
    return whole, jackknife_stderr([difference([j for j in range(n) if j != i]) for i in range(n)])


def _langevin(s: Settings) -> dict[float, dict[float, TeffEstimate]]:
    """FDT temperature of Langevin GD with each momentum, at both step sizes (each times 1 - beta,
    with the run and the lags: the same effective step dt at every momentum)."""
    out: dict[float, dict[float, TeffEstimate]] = {}
    for beta in s.momenta:
        out[beta] = {}
        shrink = 1.0 - beta
        for dt in s.langevin_dts:
            problem = problem_of(LANGEVIN, temperature=s.temperature, momentum=beta, dt=dt * shrink,
                                 steps=round(s.langevin_time / dt))
            runs = dmft_runs(problem, s.langevin_dmft)
            # At equilibrium Delta C = T chi: the fit through the origin, whose O(dt) error is
            # also the smaller one with momentum (docs/theory.md §2.8).
            lags = (s.langevin_lags[0] * shrink, s.langevin_lags[1] * shrink)
            out[beta][dt] = effective_temperature_from_runs(runs, lag_window=lags, through_origin=True,
                                                            require_stationary=False)
    return out


def _estimate(estimate: TeffEstimate, runs: int, source: str) -> Estimate:
    return Estimate(estimate.T_eff, estimate.T_eff_stderr, runs, source)


def _persistent_tests(measured: dict[float, dict[str, TeffEstimate]], paired: dict[float, tuple[float, float]],
                      s: Settings) -> list[Test]:
    with_momentum = [beta for beta in measured if beta > 0]
    comparisons = len(measured) + len(with_momentum) + 1
    tests = []
    for beta, estimates in measured.items():
        dmft = _estimate(estimates["DMFT"], s.dmft.runs, "DMFT")
        sim = _estimate(estimates["simulation"], s.simulation.seeds, "simulation")
        tests.append(agreement(f"T_eff of persistent SGD, DMFT against simulation (β = {beta:g})", dmft, sim,
                               comparisons, s.relevance * abs(dmft.value)).as_check())
    for beta in with_momentum:
        dmft = _estimate(measured[beta]["DMFT"], s.dmft.runs, f"momentum β = {beta:g}")
        twin = _estimate(measured[beta]["counterpart"], s.dmft.runs, "the counterpart without momentum")
        difference, error = paired[beta]
        limit = threshold(comparisons, dmft.dof)
        z = abs(difference) / error if error > 0 else math.inf
        relevance = s.relevance * abs(twin.value)
        text = (f"T_eff {dmft.text()} against {twin.text()}; paired difference {difference:.3g} ± {error:.2g} "
                f"(|z| = {z:.1f}, threshold {limit:.1f})")
        if z >= limit:
            verdict, text = FAILS, text + ": they differ"
        elif limit * error > relevance:
            verdict, text = INCONCLUSIVE, text + f": the error could hide a difference of {relevance:.2g}"
        else:
            verdict = HOLDS
        tests.append(Test(f"T_eff with momentum β = {beta:g} against the counterpart without momentum", verdict, text,
                          z, limit, dmft, twin, {"paired_difference": difference, "paired_stderr": error,
                                                 "relevance": relevance}))
    low, high = min(measured), max(measured)
    first = _estimate(measured[low]["DMFT"], s.dmft.runs, "DMFT")
    last = _estimate(measured[high]["DMFT"], s.dmft.runs, "DMFT")
    tests.append(change(f"T_eff of persistent SGD changes with momentum (β = {low:g} against {high:g})", first, last,
                        comparisons, s.relevance * abs(first.value), f"β = {low:g} -> {high:g}"))
    return tests


def _langevin_tests(langevin: dict[float, dict[float, TeffEstimate]], s: Settings) -> list[Test]:
    """T_FDT (1 - beta) / T extrapolated to dt -> 0 is 1, within ``relevance`` / 4 resolved."""
    coarse, fine = s.langevin_dts
    tests = []
    for beta, by_dt in langevin.items():
        scale = (1.0 - beta) / s.temperature
        t_coarse, t_fine = by_dt[coarse], by_dt[fine]
        # Richardson for an O(dt) error: 2 T(dt/2) - T(dt) when fine = coarse / 2 (general ratio below).
        ratio = coarse / fine
        value = (ratio * t_fine.T_eff - t_coarse.T_eff) / (ratio - 1.0) * scale
        error = (ratio**2 * t_fine.T_eff_stderr**2 + t_coarse.T_eff_stderr**2) ** 0.5 / (ratio - 1.0) * scale
        estimate = Estimate(value, error, s.langevin_dmft.runs, "DMFT")
        limit = threshold(len(langevin), estimate.dof)
        z = abs(value - 1.0) / error if error > 0 else float("inf")
        bound = s.relevance / 4
        text = (f"T_FDT (1 - β) / T extrapolated to dt -> 0: {estimate.text()} (dt/(1 - β) = {coarse:g}: "
                f"{t_coarse.T_eff * scale:.4g}, {fine:g}: {t_fine.T_eff * scale:.4g}); |z| = {z:.1f}, "
                f"threshold {limit:.1f}")
        if z >= limit and abs(value - 1.0) > bound:
            verdict = FAILS
        elif limit * error > bound:
            verdict, text = INCONCLUSIVE, text + f"; the error could hide {bound:.0%}"
        else:
            verdict = HOLDS
        tests.append(Test(f"Langevin with momentum β = {beta:g} samples at T / (1 - β)", verdict, text, z, limit,
                          dmft=estimate, details={"bound": bound}).as_check())
    return tests


def _plotted(measured: dict[float, dict[str, TeffEstimate]]) -> dict[str, list[tuple[float, float, float]]]:
    """side -> [(beta, T_eff, stderr)] for the left panel."""
    out: dict[str, list[tuple[float, float, float]]] = {"DMFT": [], "simulation": [], "counterpart": []}
    for beta, estimates in measured.items():
        if beta == 0:  # without momentum the run is its own counterpart
            out["counterpart"].append((beta, estimates["DMFT"].T_eff, estimates["DMFT"].T_eff_stderr))
        for side, estimate in estimates.items():
            out[side].append((beta, estimate.T_eff, estimate.T_eff_stderr))
    return out


def _plotted_langevin(langevin: dict[float, dict[float, TeffEstimate]],
                      s: Settings) -> dict[str, list[tuple[float, float, float]]]:
    """dt -> [(beta, T_FDT / T, stderr)] for the right panel."""
    return {f"step (1 - β) × {dt:g}": [(beta, by_dt[dt].T_eff / s.temperature, by_dt[dt].T_eff_stderr / s.temperature)
                            for beta, by_dt in langevin.items()] for dt in s.langevin_dts}


CLAIM = Claim(
    name=NAME, number=6, paper="beyond the papers (heavy-ball momentum, issue 26)",
    statement=("Heavy-ball momentum beta rescales time by 1/(1 - beta) at small step: Langevin dynamics with momentum "
               "samples at temperature T/(1 - beta), and persistent SGD with momentum has the T_eff of persistent "
               "SGD without it at step dt/(1 - beta) and persistence time tau/(1 - beta), so T_eff grows with beta."),
    figures={NAME: "T_eff of persistent SGD against beta (DMFT, simulation, counterpart without momentum) and the "
                   "Langevin FDT temperature against beta with T/(1 - beta)"},
    full=FULL, quick=QUICK, runner=run)
