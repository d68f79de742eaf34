"""The standard figures of one result: time series, the C heat map, the FDT curve, distance, gaps.

For a solve file (or one grid point): m, the training loss and the train/test errors
against time (with error bars when the ``<name>_stderr`` datasets exist), the heat map
of C(t, t'), the fluctuation-dissipation plot of chi(t, t') against C(t, t) - C(t, t')
at the final time t (docs/theory.md §6), the gap distributions and, with two replicas,
the distance D(t). A simulate file gets the same one-time figures, gaps and distance.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from matplotlib.figure import Figure

from ..errors import ParameterError
from ..fdt import integrated_response
from ..gaps import summary_of
from ..result import Result, SimulationResult
from .figure import describe, new_figure


def _parameters(result: Result | SimulationResult) -> dict[str, Any]:
    return result.problem.flat()


def _curve(ax: Any, time: np.ndarray, values: np.ndarray, error: np.ndarray | None, label: str, **style: Any) -> None:
    """A line, with error bars (thinned to ~20 per curve) when a finite standard error exists."""
    if error is not None and np.any(np.isfinite(error)):
        every = max(1, len(time) // 20)
        ax.errorbar(time, values, yerr=np.where(np.isfinite(error), error, 0.0), errorevery=every,
                    capsize=2, label=label, **style)
    else:
        ax.plot(time, values, label=label, **style)


def _time_series(result: Result | SimulationResult, curves: Mapping[str, str], ylabel: str, title: str) -> Figure:
    """Observables against time, with their error bars: ``curves`` maps attribute -> label."""
    figure, ax = new_figure()
    for name, label in curves.items():
        _curve(ax, result.time, getattr(result, name), result.stderr.get(name), label)
    ax.set_xlabel("time t")
    ax.set_ylabel(ylabel)
    if len(curves) > 1:
        ax.legend()
    ax.set_title(f"{title}\n{describe(_parameters(result))}", fontsize=9)
    return figure


def plot_overlap(result: Result | SimulationResult) -> Figure:
    """m(t) = w_t . v / d against time."""
    source = "DMFT" if isinstance(result, Result) else "simulation"
    return _time_series(result, {"m": source}, "overlap m(t) = w·v/d", "overlap with the centre")


def plot_losses(result: Result | SimulationResult) -> Figure:
    return _time_series(result, {"train_loss": "training loss"}, "training loss (1/n) Σ l", "training loss")


def plot_errors(result: Result | SimulationResult) -> Figure:
    return _time_series(result, {"train_error": "training error", "test_error": "test error"},
                        "classification error", "training and test errors")


def plot_correlation(result: Result) -> Figure:
    """Heat map of C(t, t') = w_t . w_t' / d."""
    figure, ax = new_figure(5.6, 4.8)
    # Pixel k is centred on t_k.
    half, t_max = 0.5 * result.problem.dt, float(result.time[-1])
    image = ax.imshow(result.C, origin="lower", extent=(-half, t_max + half, -half, t_max + half), aspect="equal",
                      interpolation="nearest", cmap="viridis")
    colorbar = figure.colorbar(image, ax=ax)
    colorbar.set_label("C(t, t')")
    ax.set_xlabel("time t'")
    ax.set_ylabel("time t")
    ax.set_title(f"correlation C(t, t')\n{describe(_parameters(result))}", fontsize=9)
    return figure


def plot_fdt_curve(result: Result, k: int | None = None) -> Figure:
    """chi(t_k, t_j) against C(t_k, t_k) - C(t_k, t_j), j = 0..k, at the final time by default.

    In equilibrium at temperature T the points lie on a line of slope 1/T; the line is
    drawn when the problem has T > 0.
    """
    k = result.problem.steps if k is None else k
    chi = integrated_response(result.R, result.problem.dt)[k, : k + 1]
    difference = result.C[k, k] - result.C[k, : k + 1]
    figure, ax = new_figure()
    ax.plot(difference, chi, "o-", markersize=3, label=f"t = {result.time[k]:g}, t' = 0..t")
    temperature = result.problem.algorithm.temperature
    if temperature > 0:
        span = np.linspace(0.0, float(np.nanmax(difference)) if difference.size else 1.0, 2)
        ax.plot(span, span / temperature, "--", color="grey", label=f"equilibrium, slope 1/T = {1 / temperature:g}")
    ax.set_xlabel("C(t, t) - C(t, t')")
    ax.set_ylabel("integrated response χ(t, t')")
    ax.legend(fontsize=8)
    ax.set_title(f"fluctuation-dissipation plot at t = {result.time[k]:g}\n{describe(_parameters(result))}", fontsize=9)
    return figure


def plot_distance(result: Result | SimulationResult) -> Figure:
    """Two-replica distance D(t) = |w^a_t - w^b_t|^2 / d (docs/theory.md §7)."""
    if result.distance is None:
        raise ParameterError("replicas", "this file has no two-replica distance (solve with --replicas 2)")
    return _time_series(result, {"distance": "D(t)"}, "replica distance D(t) = |wᵃ - wᵇ|²/d",
                        "distance between two replicas")


def plot_gaps(result: Result | SimulationResult) -> Figure:
    """Histograms of the gaps y φ(h) over the training set at the kept times, with 0 and the margin."""
    figure, ax = new_figure()
    margin = result.problem.loss.margin
    hinge = "hinge" in result.problem.loss.name  # the margin means something only for hinge losses
    for index, key in enumerate(sorted(result.gaps)):
        summary = summary_of(result, key)
        below = (f"P(gap < κ) = {summary.fraction_below_margin:.3g}" if hinge
                 else f"P(gap ≤ 0) = {summary.fraction_nonpositive:.3g}")
        ax.stairs(summary.histogram_density, summary.histogram_edges, color=f"C{index}",
                  label=f"t = {summary.time:g}: {below}, min {summary.smallest:.3g}")
    ax.axvline(0.0, color="black", linewidth=0.8)
    if hinge:
        ax.axvline(margin, color="grey", linestyle="--", linewidth=0.8, label=f"margin κ = {margin:g}")
    ax.set_xlabel("gap y φ(h)")
    ax.set_ylabel("density over the training set")
    ax.legend(fontsize=7)
    ax.set_title(f"gap distribution\n{describe(_parameters(result))}", fontsize=9)
    return figure


def solve_figures(result: Result) -> dict[str, Figure]:
    """The standard figures of one result, by short name (used in the PNG file names)."""
    figures = {"m": plot_overlap(result), "loss": plot_losses(result), "errors": plot_errors(result),
               "C": plot_correlation(result), "fdt": plot_fdt_curve(result)}
    if result.gaps:
        figures["gaps"] = plot_gaps(result)
    if result.distance is not None:
        figures["distance"] = plot_distance(result)
    return figures


def simulation_figures(result: SimulationResult) -> dict[str, Figure]:
    """The figures of a `dmft simulate` file: one-time observables, gaps, distance."""
    figures = {"m": plot_overlap(result), "loss": plot_losses(result), "errors": plot_errors(result)}
    if result.gaps:
        figures["gaps"] = plot_gaps(result)
    if result.distance is not None:
        figures["distance"] = plot_distance(result)
    return figures
