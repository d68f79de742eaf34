"""Make docs/figures/teff_vs_batch_fraction.png: T_eff of SGD and persistent SGD against the batch fraction.

One under-parametrized point (gmm2, alpha = 2, Delta = 0.5, rho = 0.5, logistic loss,
ridge 0.1, dt = 0.1, B = 1: the partial-sum convention of docs/theory.md §1), run to t = 60 so
that the second half is stationary. Each point is solved in 8 independent runs of 1000
effective samples (jackknife error bars); T_eff is the inverse slope of chi against
Delta C (connected correlation) over the default lag window, fitted on the curve averaged
over the final times t in [45, 60].

    python docs/figures/make_teff_figure.py            # about 3 minutes on 2 idle cores
    python docs/figures/make_teff_figure.py --quick    # coarse, to check the script

Writes the PNG and docs/figures/teff_vs_batch_fraction.csv (the numbers behind it).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import dmft
from dmft import fdt, workflows
from dmft.plots.fdt import plot_fdt_estimate, plot_teff_table

HERE = Path(__file__).resolve().parent
BASE = dict(dataset="gmm2", alpha=2.0, delta=0.5, rho=0.5, loss="logistic", ridge=0.1, dt=0.1, steps=600)
ALGORITHMS = {
    "sgd": dict(algorithm="sgd"),
    "persistent-sgd": dict(algorithm="persistent-sgd", persistence_time=2.0),
}
LABELS = {"sgd": "SGD", "persistent-sgd": r"persistent SGD, $\tau$ = 2"}
BATCH_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)
EXAMPLE = ("persistent-sgd", 0.3)  # the parametric plot shown on the right


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples and points")
    parser.add_argument("--output", default=str(HERE / "teff_vs_batch_fraction.png"))
    args = parser.parse_args()
    samples, fractions = (4000, (0.3, 0.7)) if args.quick else (8000, BATCH_FRACTIONS)
    options = dmft.SolverOptions(samples=samples, subpopulations=8, seed=2024)
    average_over = 0.25 * BASE["steps"] * BASE["dt"]

    solutions, example = [], None
    start = time.perf_counter()
    for name, algorithm in ALGORITHMS.items():
        for b in fractions:
            problem = dmft.Problem.from_flat(**BASE, **algorithm, batch_fraction=b)
            try:
                runs = workflows.solve_runs(problem, options)
            except dmft.DivergenceError as error:  # e.g. Monte Carlo noise broke C's positivity
                print(f"{name:15s} b = {b:.1f}: skipped ({error})", flush=True)
                continue
            estimate = fdt.effective_temperature_from_runs(runs, average_over=average_over, require_stationary=False)
            solutions.append((problem, estimate))
            if (name, b) == EXAMPLE:
                example = estimate
            flag = "" if estimate.stationarity.stationary else f"  NOT STATIONARY: {estimate.stationarity.reason}"
            print(f"{name:15s} b = {b:.1f}: T_eff = {estimate.T_eff:.5f} +- {estimate.T_eff_stderr:.5f} "
                  f"window {estimate.window[0]:.2f}..{estimate.window[1]:.2f} "
                  f"[{time.perf_counter() - start:.0f} s]{flag}", flush=True)
    table = fdt.teff_table(solutions, "batch_fraction")

    figure = Figure(figsize=(11.0, 4.3))
    FigureCanvasAgg(figure)
    left, right = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    plot_teff_table(table, "batch_fraction", ax=left, labels=LABELS)
    left.set_xlabel("batch fraction b")
    left.set_title(r"gmm2, $\alpha$ = 2, $\Delta$ = 0.5, logistic, $\lambda$ = 0.1, $\eta$ = 0.1")
    if example is not None:
        plot_fdt_estimate(example, ax=right)
        right.set_title(f"persistent SGD, b = {EXAMPLE[1]}: FDT plot, {example.time_label}")
    figure.tight_layout()
    figure.savefig(args.output, dpi=110)

    csv = Path(args.output).with_suffix(".csv")
    header = ",".join(table.dtype.names)
    rows = [",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row) for row in table.tolist()]
    csv.write_text(header + "\n" + "\n".join(rows) + "\n")
    print(f"wrote {args.output} and {csv} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
