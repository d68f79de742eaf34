"""Phase diagrams: an observable of a grid as a heat map over two grid axes (`dmft plot --z`).

The figure is built from the labelled Dataset of ``dmft.open_dataset``: on the left the
observable (its final value, or its value at a given time) with contour lines, on the
right its Monte Carlo standard error, or, for an observable without one, which points
are not done. Failed and pending points are blank and marked. A grid with more varying
axes than the two plotted gets one row of panels, each with its own colour scale, per
combination of the others (select a slice with ``Dataset.sel`` first to plot fewer).
An axis whose values span a decade or more is drawn on a log scale, and so is the
colour scale of values spanning two decades. Contour lines are drawn when both axes
are numeric.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib import colors, ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import ParameterError
from ..grid import STATUS_DONE, STATUS_FAILED, STATUS_PENDING
from ..io import KIND_GRID
from ..labelled import at_time, open_dataset
from .figure import SYMBOLS, describe, save_png

# At most this many rows of panels (combinations of the axes not plotted).
MAX_ROWS = 6
# Values spanning at least this ratio get a log scale (axes) or a log colour scale (observable).
AXIS_DECADES, COLOUR_DECADES = 10.0, 100.0


def observables(dataset: xr.Dataset, with_time: bool = False) -> list[str]:
    """The names ``--z`` accepts: final observables and per-point ones (T_eff, wall_time), or with
    ``with_time`` the per-step observables."""
    if with_time:
        return [name for name in dataset.data_vars if "time" in dataset[name].dims and not name.endswith("_stderr")]
    names = [name.removeprefix("final_") for name in dataset.data_vars
             if name.startswith("final_") and not name.endswith("_stderr")]
    return names + [name for name in dataset.data_vars if "time" not in dataset[name].dims
                    and dataset[name].dtype.kind == "f" and not name.startswith("final_")
                    and not name.endswith("_stderr") and name not in names]


def select(dataset: xr.Dataset, z: str, time: float | None = None) -> tuple[xr.DataArray, xr.DataArray | None, str]:
    """(values over the grid axes, their standard error or None, a label) of observable ``z``:
    its final value, or with ``time`` its value at the step nearest that time."""
    if time is not None:
        if z not in observables(dataset, with_time=True):
            raise ParameterError("z", f"with --time must be a per-step observable: "
                                      f"{', '.join(observables(dataset, with_time=True))}; got {z!r}")
        selected = at_time(dataset, time)
        values = selected[z]
        error = selected.get(f"{z}_stderr")
        return values, error, f"{dataset[z].attrs.get('long_name', z)} at t = {time:g}"
    name = f"final_{z}" if f"final_{z}" in dataset.data_vars else z
    if z not in observables(dataset):
        raise ParameterError("z", f"must be one of {', '.join(observables(dataset))} (or, with --time, "
                                  f"{', '.join(observables(dataset, with_time=True))}); got {z!r}")
    values = dataset[name]
    label = values.attrs.get("long_name", z)
    if name.startswith("final_") and np.size(dataset.attrs.get("steps")) == 1 and "dt" in dataset.attrs:
        label += f" (t = {float(dataset.attrs['steps']) * float(dataset.attrs['dt']):g})"
    return values, dataset.get(f"{name}_stderr"), label


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _placement(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool, list[str] | None]:
    """(cell centres, cell edges, log scale?, tick labels for a categorical axis) of one axis."""
    values = np.asarray(values)
    if not all(_is_number(v) for v in values.tolist()):
        centres = np.arange(len(values), dtype=float)
        return centres, np.arange(len(values) + 1) - 0.5, False, [str(v) for v in values.tolist()]
    centres = values.astype(float)
    log = bool(np.all(centres > 0) and centres.max() / centres.min() >= AXIS_DECADES)
    space = np.log(centres) if log else centres
    if len(space) == 1:
        half = 0.5 if log else 0.5 * max(abs(space[0]), 1.0)
        edges = np.array([space[0] - half, space[0] + half])
    else:
        middle = 0.5 * (space[1:] + space[:-1])
        edges = np.concatenate([[2 * space[0] - middle[0]], middle, [2 * space[-1] - middle[-1]]])
    return centres, np.exp(edges) if log else edges, log, None


def _colour_norm(data: np.ndarray) -> colors.Normalize | None:
    finite = data[np.isfinite(data)]
    if finite.size and np.all(finite > 0) and finite.max() / finite.min() >= COLOUR_DECADES:
        return colors.LogNorm(finite.min(), finite.max())
    return None


def _panel(figure: Figure, ax: Any, grid: tuple, data: np.ndarray, label: str, cmap: str,
           contours: bool = False, norm: colors.Normalize | None = None) -> None:
    (xc, xe, xlog, xticks), (yc, ye, ylog, yticks) = grid
    masked = np.ma.masked_invalid(data)
    norm = norm if norm is not None else _colour_norm(data)
    mesh = ax.pcolormesh(xe, ye, masked, cmap=cmap, norm=norm, shading="flat")
    figure.colorbar(mesh, ax=ax, label=label, shrink=0.9)
    finite = data[np.isfinite(data)]
    # Contour lines need numeric axes: between the categories of a categorical axis they mean nothing.
    numeric = xticks is None and yticks is None
    if contours and numeric and min(data.shape) >= 2 and finite.size >= 4 and np.ptp(finite) > 0:
        locator = ticker.LogLocator() if isinstance(norm, colors.LogNorm) else ticker.MaxNLocator(7)
        lines = ax.contour(xc, yc, masked, locator=locator, colors="white", linewidths=0.8)
        ax.clabel(lines, fontsize=7, fmt="%.3g")
    for centres, log, ticks, axis, set_scale in ((xc, xlog, xticks, ax.xaxis, ax.set_xscale),
                                                 (yc, ylog, yticks, ax.yaxis, ax.set_yscale)):
        if log:  # ticks at the grid's values: a log axis over a decade or two shows too few otherwise
            set_scale("log")
            axis.set_ticks(centres, [f"{value:g}" for value in centres])
            axis.set_minor_locator(ticker.NullLocator())
        if ticks is not None:
            axis.set_ticks(range(len(ticks)), ticks)
    ax.set_facecolor("0.85")  # blank cells: not done, or no value at that time


def _mark_not_done(ax: Any, grid: tuple, status: np.ndarray) -> None:
    (xc, _, _, _), (yc, _, _, _) = grid
    ys, xs = np.meshgrid(yc, xc, indexing="ij")
    for state, marker, colour in ((STATUS_FAILED, "x", "tab:red"), (STATUS_PENDING, "o", "0.4")):
        where = status == state
        if np.any(where):
            ax.scatter(xs[where], ys[where], marker=marker, color=colour, s=18, label=state,
                       facecolors="none" if marker == "o" else None)
    if np.any(status != STATUS_DONE):
        ax.legend(fontsize=7, loc="upper right", framealpha=0.7)


def _axis_label(name: str) -> str:
    return f"{name} ({SYMBOLS[name]})" if name in SYMBOLS else name


def phase_figure(dataset: xr.Dataset, x: str, y: str, z: str, time: float | None = None) -> Figure:
    """Heat map of observable ``z`` over grid axes ``x`` (horizontal) and ``y``, with contour lines,
    and beside it its standard error (or which points are not done); ``time``: at that time
    rather than the final one. ``dataset`` comes from ``dmft.open_dataset`` of a grid file."""
    axes = [str(name) for name in dataset["status"].dims] if "status" in dataset else []
    for option, name in (("x", x), ("y", y)):
        if name not in axes:
            raise ParameterError(option, f"must be a grid axis of this file: {', '.join(axes) or 'none'}; "
                                         f"got {name!r}")
    if x == y:
        raise ParameterError("y", "must differ from --x")
    values, error, label = select(dataset, z, time)
    status = dataset["status"]
    for name in axes:  # numeric axes in increasing order, for the cell edges
        if all(_is_number(v) for v in dataset[name].values.tolist()):
            values, status = values.sortby(name), status.sortby(name)
            error = error.sortby(name) if error is not None else None
    others = [name for name in axes if name not in (x, y) and dataset.sizes[name] > 1]
    combos = list(itertools.product(*(dataset[name].values.tolist() for name in others)))
    if len(combos) > MAX_ROWS:
        raise ParameterError("z", f"the grid has {len(combos)} combinations of its other axes ({', '.join(others)}): "
                                  f"plot a slice from Python, dmft.open_dataset(FILE).sel(...)")
    has_error = error is not None and bool(np.any(np.isfinite(error.values)))
    grid = (_placement(values[x].values), _placement(values[y].values))
    figure = Figure(figsize=(11.0, 0.6 + 4.0 * len(combos)), layout="constrained")
    FigureCanvasAgg(figure)  # no pyplot: see dmft.plots.figure
    rows = figure.subplots(len(combos), 2, squeeze=False)
    for row, combo in zip(rows, combos):
        where = {name: value for name, value in zip(others, combo)}

        def cut(array: xr.DataArray) -> np.ndarray:
            array = array.sel(where) if where else array
            return array.squeeze([d for d in array.dims if d not in (x, y)], drop=True).transpose(y, x).values

        cells, states = cut(values).astype(float), cut(status)
        facet = ", ".join(f"{_axis_label(name)} = {value:g}" if _is_number(value) else f"{name} = {value}"
                          for name, value in where.items())
        _panel(figure, row[0], grid, cells, label, "viridis", contours=True)
        _mark_not_done(row[0], grid, states)
        row[0].set_title(label + (f"\n{facet}" if facet else ""), fontsize=9)
        if has_error:
            assert error is not None
            _panel(figure, row[1], grid, cut(error).astype(float), "standard error", "magma")
            row[1].set_title(f"standard error of the {label}", fontsize=9)
        else:
            missing = (states != STATUS_DONE).astype(float)
            _panel(figure, row[1], grid, missing, "not done (failed or pending)", "Greys",
                   norm=colors.Normalize(0.0, 1.0))
            row[1].set_title(f"points not done: {int(missing.sum())} of {missing.size} "
                             f"({100 * missing.mean():.0f}%)", fontsize=9)
        for ax in row:
            ax.set_xlabel(_axis_label(x))
            ax.set_ylabel(_axis_label(y))
    not_done = int((dataset["status"] != STATUS_DONE).sum())
    title = describe(dataset.attrs, skip=axes)
    if not_done:
        title += f"\n{not_done} of {dataset['status'].size} points failed or pending (marked)"
    figure.suptitle(title, fontsize=9)
    return figure


def phase_file(path: str | os.PathLike, x: str | None, y: str | None, z: str, time: float | None = None,
               output_dir: str | os.PathLike | None = None) -> dict[Path, Figure]:
    """Write the phase diagram of grid file ``path`` as ``<stem>_<z>_over_<x>_<y>[_t<time>].png``
    (``output_dir``: beside the file by default); ``x`` and ``y`` default to the first two
    grid axes with several values. Returns {PNG path: Figure}."""
    path = Path(path)
    output_dir = Path(output_dir) if output_dir is not None else path.parent
    if not output_dir.is_dir():
        raise ParameterError("output_dir", f"{output_dir} is not a directory")
    dataset = open_dataset(path)
    if dataset.attrs.get("kind") != KIND_GRID:
        raise ParameterError("z", f"draws a phase diagram of a grid file; {path} is a {dataset.attrs.get('kind')} file")
    axes = [str(name) for name in dataset["status"].dims]
    varying = [name for name in axes if dataset.sizes[name] > 1] + [name for name in axes if dataset.sizes[name] == 1]
    chosen = [name for name in (x, y) if name is not None]
    defaults = [name for name in varying if name not in chosen]
    if x is None:
        x = defaults.pop(0) if defaults else None
    if y is None:
        y = defaults.pop(0) if defaults else None
    if x is None or y is None:
        raise ParameterError("z", f"a phase diagram needs two grid axes; this grid has {', '.join(axes) or 'none'}")
    figure = phase_figure(dataset, x, y, z, time)
    stem = f"{path.stem}_{z}_over_{x}_{y}" + (f"_t{time:g}" if time is not None else "")
    output = output_dir / f"{stem}.png"
    save_png(figure, output)
    return {output: figure}


__all__ = ["observables", "phase_figure", "phase_file", "select"]
