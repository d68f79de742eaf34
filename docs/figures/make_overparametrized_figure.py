"""Make the over-parametrized figures of the documentation (docs/guides/overparametrized.md).

One over-parametrized point: random labels, alpha = 0.3, square-hinge loss with margin
kappa = 1, no ridge, dt = 0.2, t = 40 (below the margin-1 capacity alpha_c = 0.52, so
the training error reaches 0). Writes

* docs/figures/distance_vs_batch_fraction.png: left, the two-replica distance D(t) of SGD and
  persistent SGD (tau = 2) at a few batch fractions; right, D at t = 5 (near its peak) and
  at t = 40 against the batch fraction, DMFT (lines, 2 se bands) and two-replica
  simulations at d = 1000 (markers, 2 se bars);
* docs/figures/gaps_overparametrized.png: the gap distribution y h at t = 40 of GD, SGD and
  persistent SGD (b = 0.3), DMFT (lines) against the simulations (markers);
* docs/figures/distance_vs_batch_fraction.csv: the numbers behind the right panel.

    python docs/figures/make_overparametrized_figure.py            # about 2 minutes on 2 idle cores
    python docs/figures/make_overparametrized_figure.py --quick    # coarse, to check the script
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import dmft
from dmft.gaps import summary_of

HERE = Path(__file__).resolve().parent
DT, STEPS = 0.2, 200
PEAK_STEP = 25  # t = 5
BASE = dict(dataset="random-labels", alpha=0.3, loss="square-hinge", margin=1.0, ridge=0.0, dt=DT, steps=STEPS)
ALGORITHMS = {
    "sgd": dict(algorithm="sgd"),
    "persistent-sgd": dict(algorithm="persistent-sgd", persistence_time=2.0),
}
LABELS = {"gd": "GD", "sgd": "SGD", "persistent-sgd": r"persistent SGD, $\tau$ = 2"}
BATCH_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SIMULATED_FRACTIONS = (0.1, 0.3, 0.5, 0.7)
CURVE_FRACTIONS = (0.1, 0.3, 0.7)  # D(t) drawn on the left
DIMENSION, SEEDS = 1000, 16


def problem(algorithm: str, batch_fraction: float | None) -> dmft.Problem:
    extra = {} if algorithm == "gd" else dict(ALGORITHMS[algorithm], batch_fraction=batch_fraction)
    return dmft.Problem.from_flat(**BASE, **({"algorithm": "gd"} if algorithm == "gd" else extra))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples and points")
    args = parser.parse_args()
    samples, fractions, simulated = ((4000, (0.1, 0.5), (0.5,)) if args.quick
                                     else (20_000, BATCH_FRACTIONS, SIMULATED_FRACTIONS))
    options = dmft.SolverOptions(samples=samples, subpopulations=10, replicas=2, seed=2026)
    simulation_options = dmft.SimulationOptions(dimension=DIMENSION, seeds=SEEDS, replicas=2, seed=7,
                                                gap_times=(STEPS * DT,))
    start = time.perf_counter()
    theory = {(name, b): dmft.solve(problem(name, b), options) for name in ALGORITHMS for b in fractions}
    simulation = {(name, b): dmft.simulate(problem(name, b), simulation_options)
                  for name in ALGORITHMS for b in simulated}
    gaps_b = 0.3 if 0.3 in fractions else fractions[0]
    gap_theory = {"gd": dmft.solve(problem("gd", None), options),
                  **{name: theory[name, gaps_b] for name in ALGORITHMS}}
    gap_simulation = {"gd": dmft.simulate(problem("gd", None), simulation_options),
                      **{name: simulation.get((name, gaps_b)) or dmft.simulate(problem(name, gaps_b),
                                                                               simulation_options)
                         for name in ALGORITHMS}}
    print(f"solved and simulated in {time.perf_counter() - start:.0f} s")

    # ---- distance
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    styles = {"sgd": "-", "persistent-sgd": "--"}
    for name in ALGORITHMS:
        for index, b in enumerate(b for b in CURVE_FRACTIONS if b in fractions):
            result = theory[name, b]
            left.plot(result.time, result.distance, styles[name], color=f"C{index}",
                      label=f"{LABELS[name]}, b = {b:g}")
    left.set_xlabel("time t")
    left.set_ylabel(r"replica distance $D(t) = |w^a_t - w^b_t|^2/d$")
    left.set_yscale("log")
    left.set_ylim(1e-4, None)
    left.legend(fontsize=7)
    left.set_title("DMFT: the replicas separate, then the constraints pull them together", fontsize=9)
    rows = []
    for name in ALGORITHMS:
        for index, (step, marker) in enumerate(((PEAK_STEP, "o"), (STEPS, "s"))):
            color = "C0" if name == "sgd" else "C3"
            values = np.array([theory[name, b].distance[step] for b in fractions])
            errors = np.array([theory[name, b].stderr["distance"][step] for b in fractions])
            right.plot(fractions, values, "-" if step == PEAK_STEP else ":", marker=marker, mfc="none", ms=0,
                       color=color, label=f"{LABELS[name]}, t = {step * DT:g}")
            right.fill_between(fractions, values - 2 * errors, values + 2 * errors, color=color, alpha=0.2, lw=0)
            sims = [(b, simulation[name, b]) for b in simulated]
            right.errorbar([b for b, _ in sims], [s.distance[step] for _, s in sims],
                           yerr=[2 * s.stderr["distance"][step] for _, s in sims], fmt=marker, mfc="none",
                           color=color, ms=5, capsize=2)
            for b, value, error in zip(fractions, values, errors):
                sim = simulation.get((name, b))
                rows.append(dict(algorithm=name, batch_fraction=b, time=step * DT, D_dmft=value, D_dmft_stderr=error,
                                 D_sim=None if sim is None else sim.distance[step],
                                 D_sim_stderr=None if sim is None else sim.stderr["distance"][step]))
    right.set_xlabel("batch fraction b")
    right.set_ylabel("replica distance D")
    right.set_yscale("log")
    right.legend(fontsize=7, title=f"lines DMFT; markers: simulations d = {DIMENSION}, {SEEDS} seeds\n"
                 f"(circles t = {PEAK_STEP * DT:g}, squares t = {STEPS * DT:g})", title_fontsize=7)
    right.set_title("distance against the batch fraction", fontsize=9)
    figure.suptitle(r"random labels, $\alpha$ = 0.3, square hinge $\kappa$ = 1, $\lambda$ = 0, $\eta$ = 0.2",
                    fontsize=10)
    figure.savefig(HERE / "distance_vs_batch_fraction.png", dpi=110)
    with open(HERE / "distance_vs_batch_fraction.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    # ---- gaps
    figure = Figure(figsize=(6.4, 4.4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    bins = np.linspace(-0.5, 3.0, 71)
    centres = 0.5 * (bins[1:] + bins[:-1])
    for index, name in enumerate(("gd", "sgd", "persistent-sgd")):
        dmft_gaps, sim_gaps = gap_theory[name].gaps[STEPS], gap_simulation[name].gaps[STEPS * DT]
        summary = summary_of(gap_theory[name], STEPS)
        density, _ = np.histogram(dmft_gaps, bins=bins, density=True)
        axes.stairs(density, bins, color=f"C{index}",
                    label=f"{LABELS[name]}: P(gap < κ) = {summary.fraction_below_margin:.2f}, "
                          f"min {summary.smallest:.2f}")
        density, _ = np.histogram(sim_gaps, bins=bins, density=True)
        axes.plot(centres, density, "o", ms=3, mfc="none", color=f"C{index}")
    axes.axvline(1.0, color="grey", linestyle="--", linewidth=0.8, label="margin κ = 1")
    axes.axvline(0.0, color="black", linewidth=0.8)
    axes.set_xlabel("gap y h over the training set")
    axes.set_ylabel("density")
    axes.set_yscale("log")
    axes.legend(fontsize=7, title=f"lines: DMFT; markers: d = {DIMENSION}, {SEEDS} seeds", title_fontsize=7)
    axes.set_title(f"gap distributions at t = {STEPS * DT:g} (b = {gaps_b:g})\n"
                   r"random labels, $\alpha$ = 0.3, square hinge $\kappa$ = 1, $\lambda$ = 0", fontsize=9)
    figure.savefig(HERE / "gaps_overparametrized.png", dpi=110)
    print("wrote", HERE / "distance_vs_batch_fraction.png", HERE / "gaps_overparametrized.png")


if __name__ == "__main__":
    main()
