"""Standard figures of `dmft solve` and `dmft grid` files, as matplotlib Figures and PNGs.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly, never
through pyplot: no global figure registry (no memory growth when plotting many files),
no interactive backend needed, and the functions are safe in scripts, tests and workers.

For a solve file (or one grid point): m, the training loss and the train/test errors
against time (with error bars when the ``<name>_stderr`` datasets exist), the heat map
of C(t, t'), the fluctuation-dissipation plot of chi(t, t') against
C(t, t) - C(t, t') at the final time t (THEORY.md section 6), the gap distributions and,
with two replicas, the distance D(t). A simulate file gets the same one-time figures,
gaps and distance. For a grid file: any final
observable of the summary against one grid axis, one curve per value of another.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .errors import ParameterError
from .io import FileFormatError, KIND_SOLVE, read_result
from .result import Result
from .simulate import KIND_SIMULATE, SimulationResult, read_simulation

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

_SYMBOLS = {"alpha": "α", "delta": "Δ", "rho": "ρ", "theta": "θ", "margin": "κ", "sharpness": "β",
            "batch_fraction": "b", "persistence_time": "τ", "temperature": "T", "ridge": "λ", "dt": "η",
            "steps": "N", "init_variance": "σ0²"}


def _figure(width: float = 6.4, height: float = 4.4) -> tuple[Figure, Any]:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def describe(parameters: Mapping[str, Any], skip: Iterable[str] = ()) -> str:
    """A short title naming the problem: 'gmm2 α=2 Δ=0.5 · logistic · sgd b=0.3 · λ=0.1 η=0.1 N=100'.

    Only the parameters that matter for the given dataset, loss and algorithm are shown;
    ``skip`` leaves out keys shown elsewhere (e.g. the axes of a grid plot).
    """
    p, skip = dict(parameters), set(skip)

    def part(key: str) -> str:
        if key not in p or key in skip:
            return ""
        value = p[key]
        text = f"{value:g}" if isinstance(value, float) else str(value)
        return f"{_SYMBOLS.get(key, key)}={text}"

    def join(*items: str) -> str:
        return " ".join(item for item in items if item)

    dataset = p.get("dataset", "")
    data = join("" if "dataset" in skip else str(dataset), part("alpha"), part("delta"),
                part("rho") if dataset != "random-labels" else "", part("theta") if dataset == "gmm3" else "")
    loss = p.get("loss", "")
    loss_part = join("" if "loss" in skip else str(loss), part("margin") if "hinge" in str(loss) else "",
                     part("sharpness") if loss == "smooth-hinge" else "")
    algorithm = p.get("algorithm", "")
    algo = join("" if "algorithm" in skip else str(algorithm),
                part("batch_fraction") if algorithm != "gd" else "",
                part("persistence_time") if algorithm == "persistent-sgd" else "",
                part("temperature") if p.get("temperature") else "",  # T = 0: no Langevin noise, say nothing
                "batch-avg" if p.get("batch_average") and "batch_average" not in skip else "")
    rest = join(part("ridge"), part("dt"), part("steps"))
    return " · ".join(item for item in (data, loss_part, algo, rest) if item)


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
    figure, ax = _figure()
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
    figure, ax = _figure(5.6, 4.8)
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


def integrated_response(R: np.ndarray, dt: float) -> np.ndarray:
    """chi[k, j] = dt * sum_{i=j}^{k-1} R[k, i] (THEORY.md section 6); zero for j >= k."""
    R = np.asarray(R, dtype=float)
    # Reverse cumulative sum along the row: sum_{i >= j} R[k, i]; R[k, i] = 0 for i >= k.
    tail = np.cumsum(R[:, ::-1], axis=1)[:, ::-1]
    chi = dt * tail
    return np.tril(chi, k=-1)


def plot_fdt(result: Result, k: int | None = None) -> Figure:
    """chi(t_k, t_j) against C(t_k, t_k) - C(t_k, t_j), j = 0..k, at the final time by default.

    In equilibrium at temperature T the points lie on a line of slope 1/T; the line is
    drawn when the problem has T > 0.
    """
    k = result.problem.steps if k is None else k
    chi = integrated_response(result.R, result.problem.dt)[k, : k + 1]
    difference = result.C[k, k] - result.C[k, : k + 1]
    figure, ax = _figure()
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
    """Two-replica distance D(t) = |w^a_t - w^b_t|^2 / d (THEORY.md section 7)."""
    if result.distance is None:
        raise ParameterError("replicas", "this file has no two-replica distance (solve with --replicas 2)")
    return _time_series(result, {"distance": "D(t)"}, "replica distance D(t) = |wᵃ - wᵇ|²/d",
                        "distance between two replicas")


def plot_gaps(result: Result | SimulationResult) -> Figure:
    """Histograms of the gaps y φ(h) over the training set at the kept times, with 0 and the margin."""
    figure, ax = _figure()
    margin = result.problem.loss.margin
    hinge = "hinge" in result.problem.loss.name  # the margin means something only for hinge losses
    for index, key in enumerate(sorted(result.gaps)):
        summary = result.gap_summary(key)
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
               "C": plot_correlation(result), "fdt": plot_fdt(result)}
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
    axes = tuple(axes) or tuple(name for name in names if name in _SYMBOLS or name in ("dataset", "loss", "algorithm"))
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
    figure, ax = _figure()
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


def _default_grid_axes(summary: np.ndarray, axes: Sequence[str]) -> tuple[str, str | None]:
    """x: the first numeric axis with several values (else the first axis); hue: the next varying one."""
    varying = [a for a in axes if len(np.unique(summary[a])) > 1] or list(axes)
    numeric = [a for a in varying if _is_number(summary[a][0].item())]
    x = numeric[0] if numeric else varying[0]
    rest = [a for a in varying if a != x]
    return x, rest[0] if rest else None


def _save(figures: Mapping[str, Figure], output_dir: Path, stem: str) -> dict[Path, Figure]:
    saved = {}
    for name, figure in figures.items():
        path = output_dir / f"{stem}_{name}.png"
        figure.savefig(path, dpi=120)
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
    from .grid import KIND_GRID, _open_h5, grid_metadata, load_point, load_summary

    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    output_dir = Path(output_dir) if output_dir is not None else path.parent
    if not output_dir.is_dir():
        raise ParameterError("output_dir", f"{output_dir} is not a directory")
    try:
        with _open_h5(path, "r") as handle:  # waits while a running grid holds the file for a moment
            kind = handle.attrs.get("kind")
            kind = kind.decode() if isinstance(kind, bytes) else kind
            result = read_result(handle) if kind == KIND_SOLVE else None
            simulation = read_simulation(handle) if kind == KIND_SIMULATE else None
    except OSError as error:
        raise FileFormatError(f"{path}: not a readable HDF5 file ({error})") from None
    except KeyError as error:
        raise FileFormatError(f"{path}: incomplete dmft file, missing {error}") from None
    if kind == KIND_SOLVE:
        if x or y or hue or point is not None:
            raise ParameterError("x" if x else "y" if y else "hue" if hue else "point",
                                 "applies to grid files; this is a `dmft solve` file")
        assert result is not None
        return _save(solve_figures(result), output_dir, path.stem)
    if kind == KIND_SIMULATE:
        if x or y or hue or point is not None:
            raise ParameterError("x" if x else "y" if y else "hue" if hue else "point",
                                 "applies to grid files; this is a `dmft simulate` file")
        assert simulation is not None
        return _save(simulation_figures(simulation), output_dir, path.stem)
    if kind != KIND_GRID:
        raise FileFormatError(f"{path}: not a dmft solve, simulate or grid file (kind = {kind!r})")
    if point is not None:
        if x or y or hue:
            raise ParameterError("point", "plots one point's solve figures; leave out --x, --y and --hue")
        return _save(solve_figures(load_point(path, point)), output_dir, f"{path.stem}_point{point}")
    summary = load_summary(path)
    metadata = grid_metadata(path)
    axes = list(metadata["axes"])
    if not axes:
        raise ParameterError("x", "this grid has no axis (a single point): use --point 0")
    if x is None:
        if hue is not None:
            raise ParameterError("x", "give --x together with --hue")
        x, hue = _default_grid_axes(summary, axes)
    observables = [y] if y is not None else ["train_loss", "train_error", "test_error"]
    figures = {}
    for name in observables:
        figure = grid_figure(summary, x, name, hue, axes=axes, fixed=metadata["fixed"])
        figures[f"{name}_vs_{x}" + (f"_by_{hue}" if hue else "")] = figure
    return _save(figures, output_dir, path.stem)


__all__ = [
    "GRID_OBSERVABLES", "describe", "grid_figure", "integrated_response", "plot_correlation", "plot_distance",
    "plot_errors", "plot_fdt", "plot_file", "plot_gaps", "plot_losses", "plot_overlap", "simulation_figures",
    "solve_figures",
]
