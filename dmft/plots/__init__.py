"""Standard figures of dmft files, as matplotlib Figures and PNGs.

``plot_file`` writes the PNGs of a ``dmft solve``, ``dmft simulate`` or ``dmft grid``
file. The figures themselves: ``solve`` (one result: time series, the C heat map, the
FDT curve, distance, gaps), ``fdt`` (the T_eff fit and T_eff tables of ``dmft.fdt``),
``grid`` (a final observable across a grid), ``phase`` (two-dimensional phase diagrams).
All are drawn on the Agg canvas without pyplot (see ``dmft.plots.figure``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from matplotlib.figure import Figure

from ..errors import ParameterError
from ..grid import load_point
from ..io import KIND_GRID, KIND_SIMULATE, KIND_SOLVE, file_kind, open_checked, read_result, read_simulation
from .fdt import plot_fdt_estimate, plot_teff_table
from .figure import describe, save_png
from .grid import GRID_OBSERVABLES, grid_figure, grid_file_figures
from .solve import (plot_correlation, plot_distance, plot_errors, plot_fdt_curve, plot_gaps, plot_losses,
                    plot_overlap, simulation_figures, solve_figures)


def _save(figures: Mapping[str, Figure], output_dir: Path, stem: str) -> dict[Path, Figure]:
    saved = {}
    for name, figure in figures.items():
        path = output_dir / f"{stem}_{name}.png"
        save_png(figure, path)
        saved[path] = figure
    return saved


def plot_file(path: str | os.PathLike, output_dir: str | os.PathLike | None = None, x: str | None = None,
              y: str | None = None, hue: str | None = None, point: int | None = None) -> dict[Path, Figure]:
    """Write the standard PNGs of a solve or grid file; returns {PNG path: Figure}.

    Solve file: ``<stem>_{m,loss,errors,C,fdt,gaps}.png`` (and ``_distance`` with two replicas);
    simulate file: ``<stem>_{m,loss,errors,gaps}.png`` (and ``_distance``).
    Grid file: ``<stem>_<y>_vs_<x>[_by_<hue>].png``
    for the observable ``y`` (default: train_loss, train_error, test_error) against axis
    ``x`` (default: the first varying numeric axis), one curve per value of ``hue``
    (default: the next varying axis); with ``point``, the solve figures of that point.
    ``output_dir`` defaults to the directory of ``path``.
    """
    path = Path(path)
    # Waits while a running grid holds the file for a moment.
    with open_checked(path, (KIND_SOLVE, KIND_SIMULATE, KIND_GRID),
                      description="dmft solve, simulate or grid file") as handle:
        kind = file_kind(handle)
        output_dir = Path(output_dir) if output_dir is not None else path.parent
        if not output_dir.is_dir():
            raise ParameterError("output_dir", f"{output_dir} is not a directory")
        result = read_result(handle) if kind == KIND_SOLVE else None
        simulation = read_simulation(handle) if kind == KIND_SIMULATE else None
    if kind in (KIND_SOLVE, KIND_SIMULATE):
        if x or y or hue or point is not None:
            command = "`dmft solve`" if kind == KIND_SOLVE else "`dmft simulate`"
            raise ParameterError("x" if x else "y" if y else "hue" if hue else "point",
                                 f"applies to grid files; this is a {command} file")
        if result is not None:
            return _save(solve_figures(result), output_dir, path.stem)
        assert simulation is not None
        return _save(simulation_figures(simulation), output_dir, path.stem)
    if point is not None:
        if x or y or hue:
            raise ParameterError("point", "plots one point's solve figures; leave out --x, --y and --hue")
        return _save(solve_figures(load_point(path, point)), output_dir, f"{path.stem}_point{point}")
    return _save(grid_file_figures(path, x, y, hue), output_dir, path.stem)


__all__ = [
    "GRID_OBSERVABLES", "describe", "grid_figure", "grid_file_figures", "plot_correlation", "plot_distance",
    "plot_errors", "plot_fdt_curve", "plot_fdt_estimate", "plot_file", "plot_gaps", "plot_losses", "plot_overlap",
    "plot_teff_table", "simulation_figures", "solve_figures",
]
