"""Figures of a grid file: a final observable against one grid axis, one curve per value of another."""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..errors import ParameterError
from ..grid import grid_metadata, load_summary
from .figure import SYMBOLS, describe, new_figure

# Summary columns that can go on the y axis of a grid plot, with their axis labels.
GRID_OBSERVABLES = {
    "train_loss": "final training loss",
    "train_error": "final training error",
    "test_error": "final test error",
    "m": "final overlap m",
    "self_overlap": "final C(t, t) = |w|²/d",
    "T_eff": "effective temperature T_eff",
    "wall_time": "wall time per point (s)",
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def grid_figure(summary: np.ndarray, x: str, y: str, hue: str | None = None, axes: Sequence[str] = (),
                fixed: Mapping[str, Any] | None = None) -> Figure:
    """A final observable ``y`` against grid axis ``x``, one curve per value of ``hue``.

    ``summary`` is ``dmft.grid.load_summary``'s table; ``axes`` the grid axes (other
    varying axes than x and hue give further curves, told apart by line style);
    ``fixed`` the fixed parameters, for the title. Failed and pending points are left
    out and counted in the title.
    """
    names = summary.dtype.names or ()
    axes = tuple(axes) or tuple(name for name in names if name in SYMBOLS or name in ("dataset", "loss", "algorithm"))
    if x not in axes:
        raise ParameterError("x", f"must be a grid axis of this file: {', '.join(axes)}; got {x!r}")
    if y not in GRID_OBSERVABLES or y not in names:
        choices = [name for name in GRID_OBSERVABLES if name in names]
        raise ParameterError("y", f"must be one of {', '.join(choices)}; got {y!r}")
    if hue is not None:
        if hue not in axes:
            raise ParameterError("hue", f"must be a grid axis of this file: {', '.join(axes)}; got {hue!r}")
        if hue == x:
            raise ParameterError("hue", "must differ from --x")
    done = summary[summary["status"] == "done"]
    others = [a for a in axes if a not in (x, hue) and len(np.unique(summary[a])) > 1]
    x_values = list(dict.fromkeys(summary[x].tolist()))
    numeric = all(_is_number(v) for v in x_values)
    position = {value: (value if numeric else i) for i, value in enumerate(x_values)}
    hue_values = list(dict.fromkeys(summary[hue].tolist())) if hue else [None]
    other_combos = list(dict.fromkeys(tuple(row[a].item() if hasattr(row[a], "item") else row[a] for a in others)
                                      for row in summary)) if others else [()]
    colours = [f"C{i % 10}" for i in range(len(hue_values))]
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v", "x"]
    error_name = f"{y}_stderr"
    figure, ax = new_figure()
    for h, hue_value in enumerate(hue_values):
        for c, combo in enumerate(other_combos):
            mask = np.ones(len(done), dtype=bool)
            if hue is not None:
                mask &= done[hue] == hue_value
            for axis, value in zip(others, combo):
                mask &= done[axis] == value
            rows = done[mask]
            if not len(rows):
                continue
            order = np.argsort([x_values.index(v) for v in rows[x].tolist()])
            rows = rows[order]
            xs = np.array([position[v] for v in rows[x].tolist()], dtype=float)
            ys = rows[y].astype(float)
            label_parts = ([f"{hue}={_fmt(hue_value)}"] if hue is not None else []) + \
                          [f"{a}={_fmt(v)}" for a, v in zip(others, combo)]
            style = dict(color=colours[h], linestyle=styles[c % len(styles)], marker=markers[c % len(markers)],
                         markersize=4, label=", ".join(label_parts) or None)
            errors = rows[error_name].astype(float) if error_name in names else None
            if errors is not None and np.any(np.isfinite(errors)):
                ax.errorbar(xs, ys, yerr=np.where(np.isfinite(errors), errors, 0.0), capsize=2, **style)
            else:
                ax.plot(xs, ys, **style)
    if not numeric:
        ax.set_xticks(range(len(x_values)), [str(v) for v in x_values])
    ax.set_xlabel(x)
    ax.set_ylabel(GRID_OBSERVABLES[y])
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, title=hue if hue and not others else None)
    missing = len(summary) - len(done)
    note = f" ({missing} of {len(summary)} points failed or pending, not shown)" if missing else ""
    if y == "T_eff" and len(done) and not np.any(np.isfinite(done["T_eff"].astype(float))):
        reason = str(done["T_eff_note"][0]) if "T_eff_note" in names else ""
        ax.text(0.5, 0.5, f"T_eff not available\n{reason}", transform=ax.transAxes, ha="center", va="center",
                fontsize=8, wrap=True)
    at = ""
    if fixed and "steps" in fixed and "dt" in fixed and y not in ("wall_time", "T_eff"):
        at = f" at t = {fixed['steps'] * fixed['dt']:g}"
    title = f"{GRID_OBSERVABLES[y]}{at} against {x}{note}"
    if fixed:
        title += "\n" + describe(fixed, skip=axes)
    ax.set_title(title, fontsize=9)
    return figure


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def default_grid_axes(summary: np.ndarray, axes: Sequence[str]) -> tuple[str, str | None]:
    """x: the first numeric axis with several values (else the first axis); hue: the next varying one."""
    varying = [a for a in axes if len(np.unique(summary[a])) > 1] or list(axes)
    numeric = [a for a in varying if _is_number(summary[a][0].item())]
    x = numeric[0] if numeric else varying[0]
    rest = [a for a in varying if a != x]
    return x, rest[0] if rest else None


def grid_file_figures(path: str | os.PathLike, x: str | None = None, y: str | None = None,
                      hue: str | None = None) -> dict[str, Figure]:
    """The grid figures of a grid file, by name ``<y>_vs_<x>[_by_<hue>]`` (defaults as ``plot_file``'s)."""
    summary = load_summary(path)
    metadata = grid_metadata(path)
    axes = list(metadata["axes"])
    if not axes:
        raise ParameterError("x", "this grid has no axis (a single point): use --point 0")
    if x is None:
        if hue is not None:
            raise ParameterError("x", "give --x together with --hue")
        x, hue = default_grid_axes(summary, axes)
    observables = [y] if y is not None else ["train_loss", "train_error", "test_error"]
    figures = {}
    for name in observables:
        figure = grid_figure(summary, x, name, hue, axes=axes, fixed=metadata["fixed"])
        figures[f"{name}_vs_{x}" + (f"_by_{hue}" if hue else "")] = figure
    return figures
