"""Figures of ``dmft reproduce``: one function per claim, DMFT as lines, simulations as markers.

Every band and error bar is two Monte Carlo standard errors (independent DMFT runs,
simulation seeds). The functions take plain arrays and dicts prepared by the claim
modules of ``dmft.reproduce`` and write a PNG.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .figure import save_png

DPI = 110
SYMBOL = {"batch_fraction": "batch fraction b", "persistence_time": "persistence time τ", "dt": "step η",
          "alpha": "α = n/d"}
ALGORITHM_LABELS = {"gd": "GD", "sgd": "SGD", "persistent-sgd": "persistent SGD"}
ALGORITHM_COLORS = {"gd": "0.25", "sgd": "C0", "persistent-sgd": "C3"}


def _figure(width: float, height: float, rows: int = 1, columns: int = 1) -> tuple[Figure, np.ndarray]:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).reshape(rows, columns)
    return figure, axes


def _band(ax: Any, x: np.ndarray, mean: np.ndarray, error: np.ndarray, color: str, label: str | None,
          **style: Any) -> None:
    ax.plot(x, mean, color=color, label=label, **style)
    error = np.nan_to_num(error)
    ax.fill_between(x, mean - 2 * error, mean + 2 * error, color=color, alpha=0.2, lw=0)


def _markers(ax: Any, x: np.ndarray, mean: np.ndarray, error: np.ndarray, color: str, count: int = 16,
             label: str | None = None, marker: str = "o", log: bool = False) -> None:
    """About ``count`` markers with 2-standard-error bars, evenly spaced (in log x with ``log``)."""
    if log:
        chosen = np.unique(np.round(np.geomspace(1, len(x) - 1, count)).astype(int))
    else:
        chosen = np.arange(0, len(x), max(1, len(x) // count))
    ax.errorbar(x[chosen], mean[chosen], yerr=2 * np.nan_to_num(error[chosen]), fmt=marker, ms=3.5,
                mfc="white", color=color, capsize=1.5, lw=0.8, label=label)


def _log_axis(ax: Any, values: np.ndarray) -> None:
    """A logarithmic x axis labelled at ``values`` in plain numbers."""
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(values))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())


def plot_learning_curves(series: Sequence[Mapping[str, Any]], dimension: int, path: str | os.PathLike,
                         title: str) -> Figure:
    """Claim 1: test error and training loss against time (both axes logarithmic); SGD curves on
    top, persistent SGD below, GD in both."""
    groups = [("sgd", "SGD: batch fraction b"), ("persistent-sgd", "persistent SGD: persistence time τ")]
    figure, axes = _figure(11.0, 7.6, 2, 2)
    for row, (algorithm, heading) in enumerate(groups):
        members = [item for item in series if item["algorithm"] in ("gd", algorithm)]
        for index, item in enumerate(members):
            color = "0.2" if item["algorithm"] == "gd" else f"C{index}"
            for column, name in enumerate(("test_error", "train_loss")):
                ax = axes[row, column]
                (dm, dse), (sm, sse) = item["dmft"][name], item["simulation"][name]
                time = item["time"][1:]  # t = 0 has no place on a log axis
                _band(ax, time, dm[1:], dse[1:], color, f"{item['label']} (DMFT)")
                _markers(ax, time, sm[1:], sse[1:], color, count=14, log=True)
        for column, ylabel in enumerate(("test error", "training loss")):
            ax = axes[row, column]
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("time t")
            ax.set_ylabel(ylabel)
            ax.set_title(heading, fontsize=9)
        axes[row, 0].legend(fontsize=7, title=f"markers: simulation, d = {dimension}", title_fontsize=7)
    figure.suptitle(title, fontsize=10)
    save_png(figure, path, dpi=DPI)
    return figure


def plot_fdt_lines(estimates: Mapping[str, Mapping[str, Any]], halves: Mapping[str, Mapping[str, Mapping[str, Any]]],
                   dimension: int, path: str | os.PathLike, title: str) -> Figure:
    """Claim 2, one column per algorithm. Top: chi against Delta C, DMFT dots and simulation
    circles, the window's fit (solid) and the fits on its two halves (dashed). Bottom: what
    the window's line leaves over, Delta C - (T_eff chi + intercept), against the lag: a
    straight curve leaves noise around zero, a bent one a systematic arc."""
    figure, axes = _figure(11.0, 8.4, 2, len(estimates))
    for column, (name, sides) in enumerate(estimates.items()):
        ax, below = axes[0, column], axes[1, column]
        for side, color in (("DMFT", "C0"), ("simulation", "C1")):
            est = sides[side]
            curve, inside = est.curve, est.in_window
            marker = {"DMFT": {"marker": ".", "ms": 3, "ls": "none"},
                      "simulation": {"marker": "o", "ms": 3.5, "mfc": "white", "ls": "none"}}[side]
            ax.plot(curve.delta_C, curve.chi, color=color, alpha=0.3, **marker)
            label = "DMFT" if side == "DMFT" else f"simulation, d = {dimension}"
            ax.plot(curve.delta_C[inside], curve.chi[inside], color=color, **marker,
                    label=f"{label}: T_eff = {est.T_eff:.3g} ± {est.T_eff_stderr:.2g}")
            chi = np.linspace(0.0, float(np.max(curve.chi[inside])), 50)
            ax.plot(est.T_eff * chi + est.intercept, chi, color=color, lw=1.2)
            split = halves[name][side]
            residual = curve.delta_C - (est.T_eff * curve.chi + est.intercept)
            below.plot(curve.lag[inside], residual[inside], color=color, **marker, label=label)
            for part, slope in (("first_half", split["T_first"]), ("second_half", split["T_second"])):
                lags = (curve.lag >= split[part][0] - 1e-9) & (curve.lag <= split[part][1] + 1e-9)
                x, y = curve.delta_C[lags], curve.chi[lags]
                intercept = float(np.mean(x) - slope * np.mean(y))
                ax.plot(slope * y + intercept, y, color=color, ls="--", lw=1.6)
                below.plot(curve.lag[lags], slope * y + intercept - (est.T_eff * y + est.intercept), color=color,
                           ls="--", lw=1.6)
        ax.set_xlabel(r"$\Delta C = C(t,t) - C(t,t')$ (connected)")
        ax.set_ylabel(r"$\chi(t,t')$")
        window = sides["DMFT"].window
        ax.set_title(f"{ALGORITHM_LABELS[name]}: fit over lags s in [{window[0]:g}, {window[1]:g}] "
                     f"(dashed: its two halves)", fontsize=9)
        ax.legend(fontsize=7)
        below.axhline(0.0, color="0.6", lw=0.8)
        below.set_xlabel("lag s = t - t'")
        below.set_ylabel(r"$\Delta C - (T_{\rm eff}\,\chi + a)$")
        below.set_title("residual of the window's line (dashed: the two halves' lines)", fontsize=9)
        below.legend(fontsize=7)
    figure.suptitle(title + " (faded: lags outside the window)", fontsize=10)
    save_png(figure, path, dpi=DPI)
    return figure


def plot_parameter_sweep(tables: Mapping[str, np.ndarray], path: str | os.PathLike, title: str) -> Figure:
    """Claim 3: T_eff (error bars: 1 standard error) against each parameter, one panel per
    ``dmft.fdt.teff_table``; open symbols mark windows that are not stationary."""
    from .fdt import plot_teff_table

    figure, axes = _figure(max(6.4, 5.2 * len(tables)), 4.6, 1, len(tables))
    for ax, (parameter, table) in zip(axes[0], tables.items()):
        plot_teff_table(table, parameter, ax=ax, labels=ALGORITHM_LABELS)
        ax.set_xlabel(SYMBOL.get(parameter, parameter))
        if parameter == "persistence_time":
            _log_axis(ax, np.unique(table["value"]))
    figure.suptitle(title, fontsize=9)
    save_png(figure, path, dpi=DPI)
    return figure


def plot_distance_curves(series: Sequence[Mapping[str, Any]], dimension: int, path: str | os.PathLike,
                         title: str) -> Figure:
    """Claim 4: the replica distance D(t) per algorithm, DMFT bands and simulation markers (log scale)."""
    figure, axes = _figure(6.6, 4.6)
    ax = axes[0, 0]
    for index, item in enumerate(series):
        color = ALGORITHM_COLORS[item["algorithm"]]
        (dm, dse), (sm, sse) = item["dmft"], item["simulation"]
        _band(ax, item["time"], dm, dse, color, f"{ALGORITHM_LABELS[item['algorithm']]} (DMFT)")
        _markers(ax, item["time"], sm, sse, color, count=25,
                 label=f"simulations, d = {dimension} (markers)" if index == 0 else None)
    ax.set_yscale("log")
    ax.set_xlabel("time t")
    ax.set_ylabel(r"replica distance $D = |w^a - w^b|^2/d$")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=8)
    save_png(figure, path, dpi=DPI)
    return figure


def plot_noise_measures(panels: Sequence[Mapping[str, Any]], centrals: Mapping[str, float], path: str | os.PathLike,
                        title: str) -> Figure:
    """Claim 4: T_eff and the replica distance against each parameter, each divided by its value
    at the central point; Spearman's rho of the two per algorithm in the legend."""
    figure, axes = _figure(max(7.0, 5.0 * len(panels)), 4.8, 1, len(panels))
    for ax, panel in zip(axes[0], panels):
        values = np.asarray(panel["values"], dtype=float)
        centre = int(np.argmin(np.abs(values - centrals[panel["parameter"]])))
        for algorithm, data in panel["series"].items():
            color = ALGORITHM_COLORS[algorithm]
            rho = data["rho"]
            for measure, style, marker in (("T_eff", "-", "o"), ("D", "--", "s")):
                estimates = data[measure]
                base = estimates[centre].value
                mean = np.array([e.value for e in estimates]) / base
                error = 2 * np.nan_to_num(np.array([e.stderr for e in estimates])) / abs(base)
                label = f"{ALGORITHM_LABELS[algorithm]}: {measure}"
                if measure == "D" and rho is not None:
                    label += f"  (ρ = {rho.rho:.2f} ± {rho.stderr:.2f})"
                ax.errorbar(values, mean, yerr=error, color=color, ls=style, marker=marker, mfc="white", ms=5,
                            capsize=2, label=label)
        ax.axhline(1.0, color="0.7", lw=0.8)
        ax.set_xlabel(SYMBOL.get(panel["parameter"], panel["parameter"]))
        ax.set_ylabel("value / value at the central point")
        if panel["parameter"] == "persistence_time":
            _log_axis(ax, values)
        ax.legend(fontsize=7)
    figure.suptitle(title, fontsize=8)
    save_png(figure, path, dpi=DPI)
    return figure


def plot_gap_width(data: Mapping[str, Mapping[str, Any]], epsilons: Sequence[float], deep: float, margin: float,
                   dimension: int, path: str | os.PathLike, title: str) -> Figure:
    """Claim 5: left, the fraction of training samples with gap below x (DMFT lines, simulation
    markers); right, the width measures per algorithm (filled: DMFT, open: simulation)."""
    figure, axes = _figure(12.0, 4.8, 1, 2)
    left, right = axes[0]
    names = [f"within {eps:g} of the margin" for eps in epsilons] + [f"deeper than margin + {deep:g}"]
    offsets = np.linspace(-0.3, 0.3, len(data))
    for index, (key, item) in enumerate(data.items()):
        color = "0.2" if index == 0 else f"C{index - 1}"
        label = f"{item['variant'].label}, t = {item['variant'].time:g}"
        x, cdf, error = item["cdf"]["DMFT"]
        _band(left, x, cdf, error, color, label)
        x, cdf, error = item["cdf"]["simulation"]
        _markers(left, x, cdf, error, color, count=34)
        for side, fill in (("DMFT", color), ("simulation", "white")):
            estimates = [item["measures"][side][name] for name in names]
            shift = 0.04 if side == "simulation" else -0.04
            right.errorbar(np.arange(len(names)) + offsets[index] + shift, [e.value for e in estimates],
                           yerr=[2 * np.nan_to_num(e.stderr) for e in estimates], fmt="o", color=color, mfc=fill,
                           ms=5, capsize=2, label=item["variant"].label if side == "DMFT" else None)
    left.axvline(margin, color="0.5", ls=":", lw=0.8)
    left.set_xlabel("gap y h")
    left.set_ylabel("fraction of training samples with a smaller gap")
    left.legend(fontsize=7, title=f"lines: DMFT; markers: simulation, d = {dimension}", title_fontsize=7)
    right.set_xticks(np.arange(len(names)), [name.replace(" of the margin", " of κ").replace("margin", "κ")
                                             for name in names], fontsize=8)
    right.set_ylabel("fraction of training samples")
    right.legend(fontsize=7, title="filled: DMFT; open: simulation", title_fontsize=7)
    right.set_title("width of the boundary (bars: 2 standard errors)", fontsize=9)
    figure.suptitle(title, fontsize=10)
    save_png(figure, path, dpi=DPI)
    return figure


def plot_momentum(persistent: Mapping[str, Sequence[tuple[float, float, float]]],
                  langevin: Mapping[str, Sequence[tuple[float, float, float]]], dimension: int,
                  path: str | os.PathLike, title: str) -> Figure:
    """Claim 6. Left: T_eff of persistent SGD against the momentum beta, DMFT, simulation and the
    counterpart without momentum (step and persistence time stretched by 1/(1 - beta)). Right:
    the Langevin FDT temperature over T against beta at each step, and 1/(1 - beta).
    Each mapping gives (beta, value, stderr) per point."""
    figure, axes = _figure(11.0, 4.4, 1, 2)
    left, right = axes[0]
    styles = {"DMFT": dict(color="C0", marker="o", ls="-", label="DMFT"),
              "simulation": dict(color="C1", marker="s", ls="none", mfc="white",
                                 label=f"simulation, d = {dimension}"),
              "counterpart": dict(color="0.35", marker="^", ls="--", mfc="white",
                                  label="DMFT without momentum, η/(1-β), τ/(1-β)")}
    for side, points in persistent.items():
        if points:
            beta, value, error = (np.array(column) for column in zip(*points))
            left.errorbar(beta, value, yerr=2 * np.nan_to_num(error), ms=4.5, capsize=2, lw=1, **styles[side])
    left.set_xlabel("momentum β")
    left.set_ylabel("T_eff")
    left.set_title("persistent SGD", fontsize=9)
    left.legend(fontsize=7)
    for index, (label, points) in enumerate(langevin.items()):
        beta, value, error = (np.array(column) for column in zip(*points))
        right.errorbar(beta, value, yerr=2 * np.nan_to_num(error), color=f"C{index + 2}", marker="o", ms=4, lw=1,
                       capsize=2, ls="none", label=f"DMFT FDT temperature, {label}")
    grid = np.linspace(0.0, max(max(b for b, _, _ in points) for points in langevin.values()), 50)
    right.plot(grid, 1.0 / (1.0 - grid), color="0.2", lw=1, label="1/(1-β)")
    right.set_xlabel("momentum β")
    right.set_ylabel("T_FDT / T")
    right.set_title("Langevin GD with momentum", fontsize=9)
    right.legend(fontsize=7)
    figure.suptitle(title, fontsize=9)
    save_png(figure, path, dpi=DPI)
    return figure


def plot_teacher_student(series: Sequence[Mapping[str, Any]], dimension: int, path: str | os.PathLike,
                         title: str) -> Figure:
    """Claim 7: test error, training loss and overlap m against time, one colour per curve
    (dashed: with momentum); DMFT bands, simulation markers."""
    figure, axes = _figure(13.0, 4.4, 1, 3)
    for index, item in enumerate(series):
        color = f"C{index}"
        style = {"ls": "--"} if item.get("momentum") else {}
        for column, name in enumerate(("test_error", "train_loss", "m")):
            ax = axes[0, column]
            (dm, dse), (sm, sse) = item["dmft"][name], item["simulation"][name]
            _band(ax, item["time"], dm, dse, color, f"{item['label']} (DMFT)" if column == 0 else None, **style)
            _markers(ax, item["time"], sm, sse, color, count=12)
    for column, ylabel in enumerate(("test error (against the clean teacher)", "training loss",
                                     "overlap m with the teacher")):
        axes[0, column].set_xlabel("time t")
        axes[0, column].set_ylabel(ylabel)
    axes[0, 0].legend(fontsize=7, title=f"markers: simulation, d = {dimension}", title_fontsize=7)
    figure.suptitle(title, fontsize=10)
    save_png(figure, path, dpi=DPI)
    return figure
