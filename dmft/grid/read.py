"""Reading grid files: the summary table, one point's Result, the grid's axes and fixed values."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import ParameterError
from ..io import KIND_GRID, FileFormatError, attribute_value, open_checked, read_result
from ..result import Result
from .store import STATUS_FAILED, grid_format, point_status


def _open_grid(path: Path) -> h5py.File:
    """Open a grid file for reading (waiting out a writer's brief hold on the HDF5 lock)."""
    handle = open_checked(path, KIND_GRID)
    try:
        grid_format(handle, path)
    except BaseException:
        handle.close()
        raise
    return handle


def load_summary(path: str | os.PathLike) -> np.ndarray:
    """The summary table of a grid file as a structured numpy array, one row per point.

    Columns: point, group, one per grid axis, status ("pending"/"done"/"failed"), error,
    seed, wall_time, the final m, self_overlap, train_loss, train_error, test_error
    (each with a ``<name>_stderr`` column), T_eff, T_eff_stderr and T_eff_note. Strings come back as ``str``.
    """
    with _open_grid(Path(path)) as handle:
        summary = handle["summary"]
        axes = json.loads(attribute_value(handle.attrs["axes"]))
        order = json.loads(attribute_value(summary.attrs.get("columns", "[]"))) or ["point", "group", *axes]
        order += [name for name in summary if name not in order]
        columns = {}
        for name in order:
            dataset = summary[name]
            if h5py.check_string_dtype(dataset.dtype) is not None:
                columns[name] = np.array(dataset.asstr()[()], dtype=str)
            else:
                columns[name] = dataset[()]
    n = len(columns["point"])
    table = np.empty(n, dtype=[(name, column.dtype) for name, column in columns.items()])
    for name, column in columns.items():
        table[name] = column
    return table


def load_point(path: str | os.PathLike, index: int) -> Result:
    """The Result of grid point ``index`` (raises FileFormatError if it is not done)."""
    path = Path(path)
    with _open_grid(path) as handle:
        n = int(handle.attrs["n_points"])
        if not 0 <= index < n:
            raise ParameterError("point", f"must lie in 0..{n - 1}, got {index}")
        name = f"{index:0{len(str(max(n - 1, 0)))}d}"
        group = handle["points"].get(name)
        if group is None or point_status(group) is None:
            raise FileFormatError(f"{path}: point {index} has not been computed")
        if point_status(group) == STATUS_FAILED:
            raise FileFormatError(f"{path}: point {index} failed: {attribute_value(group.attrs.get('error'))}")
        return read_result(group)


def grid_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Axes (name -> values), fixed parameters and grid seed of a grid file."""
    with _open_grid(Path(path)) as handle:
        config = json.loads(attribute_value(handle.attrs["config"]))
    return {"axes": {key: values for key, values in config["axes"]}, "fixed": config["fixed"],
            "seed": config["seed"]}
