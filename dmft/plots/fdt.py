"""Figures of the fluctuation-dissipation analysis: the parametric plot with its fit, T_eff tables."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DmftError
from ..fdt import TeffEstimate
from .figure import save_png

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    from matplotlib.axes import Axes


def plot_teff_table(table: np.ndarray, parameter: str, path: str | os.PathLike | None = None,
                    ax: Axes | None = None, labels: Mapping[str, str] | None = None) -> Axes:
    """T_eff +- stderr against ``parameter``, one series per label; open symbols: not stationary."""
    ax, figure = _axes(ax)
    for index, name in enumerate(dict.fromkeys(table["label"])):
        rows = table[table["label"] == name]
        color = f"C{index}"
        text = (labels or {}).get(name, name)
        ax.errorbar(rows["value"], rows["T_eff"], yerr=np.nan_to_num(rows["T_eff_stderr"]), color=color,
                    marker="o", capsize=3, label=text, linestyle="-")
        bad = ~rows["stationary"]
        if bad.any():
            ax.plot(rows["value"][bad], rows["T_eff"][bad], "o", mfc="white", color=color,
                    label=f"{text}: not stationary")
    ax.set_xlabel(parameter.replace("_", " "))
    ax.set_ylabel(r"$T_{\rm eff}$")
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.legend()
    _save(figure, path)
    return ax


def plot_fdt_estimate(estimates: TeffEstimate | Sequence[TeffEstimate], path: str | os.PathLike | None = None,
                      ax: Axes | None = None) -> Axes:
    """The parametric plot chi against Delta C of T_eff estimates, with the fitted lines and, for T > 0,
    the equilibrium line chi = Delta C / T (the figure of ``dmft teff --plot``)."""
    if isinstance(estimates, TeffEstimate):
        estimates = [estimates]
    ax, figure = _axes(ax)
    largest = 0.0
    for index, est in enumerate(estimates):
        color = f"C{index}"
        curve, inside = est.curve, est.in_window
        largest = max(largest, float(np.nanmax(curve.delta_C)))
        ax.plot(curve.delta_C, curve.chi, ".", color=color, alpha=0.35, ms=3)
        error = f" +- {est.T_eff_stderr:.2g}" if math.isfinite(est.T_eff_stderr) else ""
        ax.plot(curve.delta_C[inside], curve.chi[inside], ".", color=color, ms=4,
                label=f"{est.time_label}: window s in [{est.window[0]:g}, {est.window[1]:g}]")
        # Fitted Delta C = T_eff chi + intercept, drawn as chi against Delta C over the window.
        chi_line = np.linspace(0.0, float(np.max(curve.chi[inside])), 50)
        ax.plot(est.T_eff * chi_line + est.intercept, chi_line, "-", color=color,
                label=rf"fit: $T_{{\rm eff}}$ = {est.T_eff:.4g}{error}")
    temperatures = {est.temperature for est in estimates if est.temperature > 0}
    for T in sorted(temperatures):
        x = np.linspace(0.0, largest, 50)
        ax.plot(x, x / T, "k--", lw=1, label=f"equilibrium: slope 1/T, T = {T:g}")
    ax.set_xlabel(r"$\Delta C = C(t,t) - C(t,t')$")
    ax.set_ylabel(r"$\chi(t,t')$ (integrated response)")
    ax.set_title("Fluctuation-dissipation plot")
    ax.legend(fontsize=8)
    _save(figure, path)
    return ax


def _axes(ax: Axes | None):
    """An axes to draw on: the caller's, or a new figure on the Agg canvas (no pyplot state)."""
    if ax is not None:
        return ax, None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 4.5))
    FigureCanvasAgg(figure)
    return figure.add_subplot(1, 1, 1), figure


def _save(figure: Any, path: str | os.PathLike | None) -> None:
    """Write ``figure`` to ``path`` (nothing to do when drawing on the caller's axes)."""
    if figure is None or path is None:
        return
    path = Path(path)
    if not path.parent.exists():
        raise DmftError(f"cannot write {path}: directory {path.parent} does not exist")
    figure.tight_layout()
    save_png(figure, path)
