"""Labelled arrays: dmft files as xarray Datasets, and their export to NetCDF and CSV.

``open_dataset`` reads a `dmft grid`, `dmft solve` or `dmft simulate` file into an
``xarray.Dataset``; xarray reaches the same function through the backend entry point
``xr.open_dataset(path, engine="dmft")`` (``DmftBackendEntrypoint``).

A grid gets one dimension per grid axis, in the order of its configuration, with the
axis values as coordinates, and:

- ``final_<name>`` and ``final_<name>_stderr`` over the axes: the summary table's final
  m, self_overlap (C[k, k]), train_loss, train_error, test_error, and ``final_distance``
  when some point has two replicas;
- ``T_eff``, ``T_eff_stderr``, ``T_eff_note``, ``status`` ("pending", "done", "failed"),
  ``error``, ``seed``, ``wall_time`` over the axes, and the coordinate ``point`` (the
  index that ``dmft.grid.load_point`` takes);
- ``<name>`` and ``<name>_stderr`` over (axes..., time) for the per-step m,
  self_overlap, train_loss, train_error, test_error and, when present, distance.

Every observable of a pending or failed point is NaN, so that a grid still being
written opens as it stands. The coordinate ``time`` is t = k dt; when dt or steps is a
grid axis the points have different times: the dimension ``time`` then has only the
coordinate ``step`` (k) and ``t`` (axes..., time) holds the times, NaN past a point's
last step. Fixed parameters and the file's provenance are attributes.

A solve or simulate file gets dimensions ``time`` and ``time2``: C, R (and C_ab, the
kernels Gamma_C and K, chi) over (time, time2), the one-time observables over time, each
with its ``_stderr``, and the gap distributions over (gap_time, gap_sample). A simulation
measures C, R and chi at a few reference times only: ``time2`` holds the union of them,
NaN in the columns an observable was not measured at. Attributes hold the parameters,
diagnostics and provenance as written in the file. Attributes are NetCDF-compatible:
booleans become 0/1, lists JSON text, None an empty string.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import h5py
import numpy as np

from .errors import DmftError, ParameterError
from .grid import STATUS_DONE, grid_metadata
from .io import (KIND_GRID, KIND_SIMULATE, KIND_SOLVE, FileFormatError, atomic_path, attribute_value, open_checked,
                 read_result, read_simulation)
from .result import Result, SimulationResult

try:
    import pandas as pd
    import xarray as xr
    from xarray.backends import BackendEntrypoint
except ImportError as error:  # a dependency of dmft: only an install without dependencies lacks it
    raise DmftError(f"labelled arrays (dmft.open_dataset, `dmft export`, `dmft plot --z`) need xarray and pandas, "
                    f"dependencies of dmft: pip install xarray h5netcdf ({error})") from None

KINDS = (KIND_GRID, KIND_SOLVE, KIND_SIMULATE)
# Per-step observables of a grid point (self_overlap is the diagonal of C).
SERIES = ("m", "self_overlap", "train_loss", "train_error", "test_error", "distance")
LONG_NAMES = {
    "m": "overlap m", "self_overlap": "C(t, t) = |w|^2/d", "train_loss": "training loss",
    "train_error": "training error", "test_error": "test error", "distance": "replica distance D",
    "T_eff": "effective temperature T_eff", "wall_time": "wall time (s)", "C": "correlation C(t, t')",
    "R": "response R(t, t')", "A": "A(t)", "chi": "integrated response chi(t, t')", "C_ab": "C_ab(t, t')",
    "Gamma_C": "kernel Gamma_C(t, t')", "K": "kernel K(t, t')", "mu_hat": "mu_hat(t)",
    "gaps": "gaps y phi(h) of the training samples",
}
# Summary columns that describe a point rather than a final observable.
_POINT_COLUMNS = ("point", "group", "status", "error", "seed", "wall_time", "T_eff", "T_eff_stderr", "T_eff_note")


# ----------------------------------------------------------------------------- opening


def open_dataset(path: str | os.PathLike) -> xr.Dataset:
    """A `dmft grid`, `dmft solve` or `dmft simulate` file as an ``xarray.Dataset`` (see the module doc).

    A grid still being written opens as it stands: its pending points are NaN.
    Raises ``FileFormatError`` for anything else.
    """
    path = Path(path)
    with open_checked(path, KINDS, description="dmft grid, solve or simulate file") as handle:
        kind = attribute_value(handle.attrs.get("kind"))
        if kind != KIND_GRID:
            dataset = to_dataset(read_result(handle) if kind == KIND_SOLVE else read_simulation(handle))
            dataset.attrs = _attributes(handle.attrs)
            return dataset
    return _grid_dataset(path)


def to_dataset(result: Result | SimulationResult) -> xr.Dataset:
    """A Result or SimulationResult as a Dataset over (time, time2); attributes: its parameters and diagnostics."""
    if isinstance(result, SimulationResult):
        return _simulation_dataset(result)
    if isinstance(result, Result):
        return _solve_dataset(result)
    raise TypeError(f"expected a dmft Result or SimulationResult, got {type(result).__name__}")


def _attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    """NetCDF-compatible attributes: numbers and strings as they are, bools as 0/1, lists as JSON, None as ''."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        value = attribute_value(value)
        if value is None:
            value = ""
        elif isinstance(value, (bool, np.bool_)):
            value = int(value)
        elif isinstance(value, (list, tuple, dict)):
            value = json.dumps(value)
        elif isinstance(value, np.ndarray):
            if value.dtype.kind not in "iuf" or value.ndim > 1:
                continue
        elif not isinstance(value, (str, int, float, np.integer, np.floating)):
            continue
        out[key] = value
    return out


def _named(data: np.ndarray, dims: tuple[str, ...], name: str) -> xr.Variable:
    base = name.removeprefix("final_").removesuffix("_stderr").removesuffix("_runs")
    long_name = LONG_NAMES.get(base, base)
    if name.startswith("final_"):
        long_name = f"final {long_name}"
    if name.endswith("_stderr"):
        long_name = f"standard error of the {long_name}"
    if name.endswith("_runs"):
        long_name = f"{long_name}, each independent subpopulation"
    return xr.Variable(dims, data, attrs={"long_name": long_name})


def _time_coords(time: np.ndarray) -> dict[str, Any]:
    return {"time": ("time", time), "step": ("time", np.arange(len(time)))}


def _gaps(gaps: Mapping[int, np.ndarray], time: np.ndarray) -> dict[str, Any]:
    """The gap distributions as one variable over (gap_time, gap_sample), NaN-padded, and its coordinates."""
    if not gaps:
        return {}
    steps = sorted(gaps)
    width = max(len(gaps[k]) for k in steps)
    data = np.full((len(steps), width), np.nan)
    for row, k in enumerate(steps):
        data[row, : len(gaps[k])] = gaps[k]
    return {"gaps": _named(data, ("gap_time", "gap_sample"), "gaps"),
            "gap_time": ("gap_time", time[steps]), "gap_step": ("gap_time", np.asarray(steps))}


def _runs(diagnostics: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Kept subpopulations (C_runs, m_runs, ...), one row per independent run, for jackknife errors:
    lists of arrays in a solved Result, arrays ``<name>_<i>`` in one read from a file."""
    lists: dict[str, list[np.ndarray]] = {}
    for key, value in diagnostics.items():
        if isinstance(value, list) and value and all(isinstance(a, np.ndarray) for a in value):
            lists[key] = list(value)
    numbered = sorted((key.rpartition("_")[0], int(key.rpartition("_")[2]), value)
                      for key, value in diagnostics.items()
                      if isinstance(value, np.ndarray) and key.rpartition("_")[2].isdigit())
    for key, index, value in numbered:
        if index == len(lists.setdefault(key, [])):
            lists[key].append(value)
    return {key: np.stack(arrays) for key, arrays in lists.items() if len({a.shape for a in arrays}) == 1}


def _solve_dataset(result: Result) -> xr.Dataset:
    time = result.time
    n = len(time)
    variables: dict[str, Any] = {}

    def add(name: str, data: np.ndarray | None) -> None:
        if data is None:
            return
        dims = ("time",) if data.shape == (n,) else ("time", "time2") if data.shape == (n, n) else None
        if dims is not None:
            variables[name] = _named(np.asarray(data), dims, name)

    for name in ("m", "self_overlap", "A", "train_loss", "train_error", "test_error", "distance", "C", "R", "C_ab",
                 "Gamma_C", "K", "mu_hat"):
        add(name, getattr(result, name))
        key = "C" if name == "self_overlap" else name
        if key in result.stderr:
            error = result.stderr[key]
            add(f"{name}_stderr", np.diagonal(error).copy() if name == "self_overlap" else error)
    for key, runs in _runs(result.diagnostics).items():
        if runs.shape[1:] in ((n,), (n, n)):
            variables[key] = _named(runs, ("run", "time") if runs.ndim == 2 else ("run", "time", "time2"), key)
    coords = {**_time_coords(time), "time2": ("time2", time)}
    gaps = _gaps(result.gaps, time)
    if gaps:
        variables["gaps"] = gaps.pop("gaps")
        coords.update(gaps)
    diagnostics = {k: v for k, v in result.diagnostics.items() if not isinstance(v, (list, np.ndarray))}
    attrs = _attributes({**diagnostics, **result.problem.flat(), **result.options.flat(), "kind": KIND_SOLVE})
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def _simulation_dataset(result: SimulationResult) -> xr.Dataset:
    time = result.time
    n = len(time)
    # time2: the union of the reference times of C, R and chi, as steps (exactly the values of `time`).
    columns = {"C": result.C_steps, "R": result.R_steps, "chi": result.chi_steps}
    steps2 = np.unique(np.concatenate(list(columns.values()))).astype(np.int64)
    variables: dict[str, Any] = {}
    for name in ("m", "self_overlap", "train_loss", "train_error", "test_error", "distance", "C", "R", "chi"):
        data = getattr(result, name)
        if data is None:
            continue
        for key, array in ((name, data), (f"{name}_stderr", result.stderr.get(name))):
            if array is None:
                continue
            if name in columns:
                full = np.full((n, len(steps2)), np.nan)
                full[:, np.searchsorted(steps2, columns[name])] = array
                variables[key] = _named(full, ("time", "time2"), key)
            else:
                variables[key] = _named(np.asarray(array), ("time",), key)
    coords = {**_time_coords(time), "time2": ("time2", time[steps2]), "step2": ("time2", steps2)}
    by_step = {int(round(t / result.problem.dt)): values for t, values in result.gaps.items()}
    gaps = _gaps(by_step, time)
    if gaps:
        variables["gaps"] = gaps.pop("gaps")
        coords.update(gaps)
    attrs = _attributes({**result.diagnostics, **result.problem.flat(), **result.options.flat(),
                         "kind": KIND_SIMULATE})
    return xr.Dataset(variables, coords=coords, attrs=attrs)


# ----------------------------------------------------------------------------- grids


def _column(dataset: h5py.Dataset) -> np.ndarray:
    if h5py.check_string_dtype(dataset.dtype) is not None:
        return np.array(dataset.asstr()[()], dtype=str)
    return dataset[()]


def _point_series(group: h5py.Group) -> dict[str, np.ndarray]:
    """The per-step observables of one done point, read from its group (the layout of a `dmft solve` file)."""
    out: dict[str, np.ndarray] = {}
    for name in SERIES:
        stored = "C" if name == "self_overlap" else name
        for suffix in ("", "_stderr"):
            if stored + suffix in group:
                data = group[stored + suffix][()]
                out[name + suffix] = np.diagonal(data).copy() if name == "self_overlap" else data
    return out


def _grid_dataset(path: Path) -> xr.Dataset:
    metadata = grid_metadata(path)  # checks the kind and the grid format
    axes = list(metadata["axes"])
    with open_checked(path, KIND_GRID) as handle:
        root = dict(handle.attrs)
        coords: dict[str, Any] = {key: (key, _column(handle["axes"][key])) for key in axes}
        summary = {name: _column(column) for name, column in handle["summary"].items()}
        shape = tuple(len(values) for _, values in coords.values())
        done = np.flatnonzero(summary["status"] == STATUS_DONE)
        series = {int(index): _point_series(handle[str(summary["group"][index])]) for index in done}
    # Points are the product of the axes, the last varying fastest: row i is np.unravel_index(i, shape).
    grids = np.meshgrid(*(values for _, values in coords.values()), indexing="ij")
    for key, values in zip(axes, grids):
        if not np.array_equal(summary[key], values.ravel()):
            raise FileFormatError(f"{path}: summary column {key} does not follow the grid's axes")
    dims = tuple(axes)
    not_done = summary["status"] != STATUS_DONE
    time, times, last = _grid_times(metadata, axes, shape)
    per_step: dict[str, np.ndarray] = {}
    for name in (f"{s}{e}" for s in SERIES for e in ("", "_stderr")):
        if not any(name in arrays for arrays in series.values()):
            continue
        data = np.full((len(not_done), len(time)), np.nan)
        for index, arrays in series.items():
            if name in arrays:
                data[index, : len(arrays[name])] = arrays[name]
        per_step[name] = data.reshape(*shape, len(time))
    finals = {name: np.where(not_done, np.nan, data).reshape(shape) for name, data in summary.items()
              if name not in _POINT_COLUMNS and name not in axes and data.dtype.kind == "f"}
    for name in ("distance", "distance_stderr"):  # not a summary column: the value at each point's last step
        if name in per_step:
            finals[name] = np.take_along_axis(per_step[name], last.reshape(*shape, 1), axis=-1)[..., 0]

    def order(name: str) -> tuple[int, bool, str]:
        base = name.removesuffix("_stderr")
        return SERIES.index(base) if base in SERIES else len(SERIES), name.endswith("_stderr"), name

    variables: dict[str, Any] = {name: _named(summary[name].reshape(shape), dims, name) for name in ("status", "error")}
    for name in sorted(finals, key=order):
        variables[f"final_{name}"] = _named(finals[name], dims, f"final_{name}")
    for name in ("T_eff", "T_eff_stderr", "T_eff_note", "seed", "wall_time"):
        data = summary[name]
        if name in ("T_eff", "T_eff_stderr"):
            data = np.where(not_done, np.nan, data)
        variables[name] = _named(data.reshape(shape), dims, name)
    for name, data in per_step.items():
        variables[name] = _named(data, (*dims, "time"), name)
    coords["point"] = (dims, summary["point"].reshape(shape))
    coords["step"] = ("time", np.arange(time.shape[-1]))
    if times is None:
        coords["time"] = ("time", time)
    else:
        coords["t"] = ((*dims, "time"), times)
    attrs = {**_attributes(metadata["fixed"]), **_attributes(root)}
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def _grid_times(metadata: Mapping[str, Any], axes: list[str], shape: tuple[int, ...]
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(time of the longest run, per-point times or None when all points share them, each point's last step).

    Times come from the configuration (t = k dt, as ``Problem.time``), so that a grid with
    no point done yet has its time axis too.
    """
    fixed, values = metadata["fixed"], metadata["axes"]
    grids = np.meshgrid(*(np.arange(len(values[key])) for key in axes), indexing="ij")
    position = {key: grid.ravel() for key, grid in zip(axes, grids)}
    n = int(np.prod(shape, dtype=np.int64))

    def per_point(key: str) -> np.ndarray:
        if key in values:
            return np.asarray(values[key])[position[key]]
        return np.full(n, fixed[key])

    dt, steps = per_point("dt").astype(float), per_point("steps").astype(np.int64)
    longest = int(steps.max()) if n else 0
    k = np.arange(longest + 1)
    time = float(dt[0]) * k if n else k.astype(float)
    if n and np.all(dt == dt[0]) and np.all(steps == steps[0]):
        return time, None, steps
    times = np.where(k[None, :] <= steps[:, None], dt[:, None] * k[None, :], np.nan)
    return time, times.reshape(*shape, len(k)), steps


# ----------------------------------------------------------------------------- selecting a time


def at_time(dataset: xr.Dataset, time: float) -> xr.Dataset:
    """The time-dependent variables of a Dataset at time ``time``: each grid point's nearest step.

    A point whose run ends before ``time`` (more than half a step) is NaN there.
    """
    if "time" not in dataset.dims:
        raise ParameterError("time", "this Dataset has no time dimension")
    t = dataset["t"] if "t" in dataset.coords else dataset["time"].broadcast_like(dataset["step"])
    if dataset.sizes["time"] > 1:
        spacing = abs(t.isel(time=1) - t.isel(time=0))
    else:
        spacing = xr.zeros_like(t.isel(time=0))
    largest = float(t.max())
    if not (0.0 <= time <= largest + 0.5 * float(spacing.max())):
        raise ParameterError("time", f"must lie in [0, {largest:g}] (the grid's times), got {time:g}")
    gap = abs(t - time)
    k = gap.fillna(np.inf).argmin("time")
    reached = gap.isel(time=k) <= 0.5 * spacing + 1e-12 * max(1.0, abs(time))
    selected = dataset[[name for name in dataset.data_vars if "time" in dataset[name].dims]].isel(time=k)
    selected = selected.where(reached)
    return selected.drop_vars([name for name in ("step", "t", "time") if name in selected.coords])


# ----------------------------------------------------------------------------- export


def _netcdf_engine() -> str:
    import importlib.util

    for engine, module in (("h5netcdf", "h5netcdf"), ("netcdf4", "netCDF4")):
        if importlib.util.find_spec(module) is not None:
            return engine
    raise DmftError("NetCDF export needs h5netcdf (a dependency of dmft, reusing h5py): pip install h5netcdf")


def tables(dataset: xr.Dataset, time_series: bool = False) -> pd.DataFrame:
    """The Dataset as one table, for CSV.

    A grid: one row per point (axes, status, notes, final observables, T_eff), or with
    ``time_series`` one row per point and step (the per-step observables; rows where all
    are NaN, pending and failed points, are left out). A solve or simulate file: one row
    per step with the one-time observables (C, R and the other two-time arrays need NetCDF).
    """
    grid = dataset.attrs.get("kind") == KIND_GRID
    if grid and not time_series:
        names = [name for name in dataset.data_vars if "time" not in dataset[name].dims]
    else:
        names = [name for name in dataset.data_vars if dataset[name].dims[-1:] == ("time",)
                 and not {"time2", "run"} & set(dataset[name].dims)]
    if not names:
        raise DmftError("this file has no per-step observables to tabulate")
    subset = dataset[names]  # with the coordinates along these variables' dimensions only
    if not subset.sizes:  # a grid of one point and no axis
        return pd.DataFrame({name: [subset[name].item()] for name in [*subset.coords, *names]})
    table = subset.to_dataframe().reset_index()
    if "time" in subset.dims and "time" not in subset.coords:  # times differ between points: "step" and "t" say when
        table = table.drop(columns="time")
    index = [str(name) for name in subset.dims if name in table.columns]
    coords = [name for name in subset.coords if name not in index]
    table = table[[*index, *coords, *names]]
    return table.dropna(how="all", subset=names) if grid and time_series else table


def export(path: str | os.PathLike, output: str | os.PathLike, format: str = "netcdf", *,
           time_series: bool = False, overwrite: bool = False) -> Path:
    """Write ``open_dataset(path)`` to ``output`` as NetCDF (everything, with the attributes) or CSV
    (``tables``); atomically: a temporary beside ``output`` replaces it when complete. Returns ``output``."""
    if format not in ("netcdf", "csv"):
        raise ParameterError("format", f"must be netcdf or csv, got {format!r}")
    output = Path(output)
    dataset = open_dataset(path)
    with atomic_path(output, overwrite) as temporary:
        if format == "netcdf":
            encoding = {name: {"zlib": True, "complevel": 4} for name, variable in dataset.variables.items()
                        if variable.dtype.kind == "f" and variable.size > 1000}
            dataset.to_netcdf(temporary, engine=_netcdf_engine(), encoding=encoding)
        else:
            tables(dataset, time_series).to_csv(temporary, index=False)
    return output


# ----------------------------------------------------------------------------- xarray backend


class DmftBackendEntrypoint(BackendEntrypoint):
    """``xr.open_dataset(path, engine="dmft")``: a dmft grid, solve or simulate file (see ``dmft.labelled``)."""

    description = "dmft grid, solve and simulate files (HDF5) as labelled arrays"
    open_dataset_parameters = ("filename_or_obj", "drop_variables")

    def open_dataset(self, filename_or_obj: Any, *, drop_variables: str | Iterable[str] | None = None
                     ) -> xr.Dataset:  # type: ignore[override]
        if not isinstance(filename_or_obj, (str, os.PathLike)):
            raise TypeError(f"engine 'dmft' reads files by path, got {type(filename_or_obj).__name__}")
        dataset = open_dataset(filename_or_obj)
        if drop_variables is not None:
            dataset = dataset.drop_vars(drop_variables, errors="ignore")
        return dataset

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        if not isinstance(filename_or_obj, (str, os.PathLike)):
            return False
        path = Path(filename_or_obj)
        if path.suffix.lower() not in (".h5", ".hdf5", ".hdf", ".he5"):
            return False
        try:
            with h5py.File(path, "r") as handle:
                return attribute_value(handle.attrs.get("kind")) in KINDS
        except Exception:
            return False


__all__ = ["DmftBackendEntrypoint", "LONG_NAMES", "SERIES", "at_time", "export", "open_dataset", "tables",
           "to_dataset"]
