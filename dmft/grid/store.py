"""The grid's HDF5 file: its layout, its creation and the writing of one point.

Layout::

    /                    attrs: kind = "dmft-grid", config (canonical JSON), config_toml, axes, shape, ...
    /axes/<key>          the values of each grid axis, in grid order
    /points/<index>      one group per point, zero-padded index, created empty with the file;
                         once computed, the layout of a `dmft solve` file (``dmft.io.write_result``)
                         plus grid_index, grid_coords, status ("done"/"failed", written LAST:
                         a non-empty group without it is incomplete)
    /summary/<column>    one 1-D dataset per column, all along the dimension scale
                         /summary/point (opens as a table with ``load_summary`` or xarray)

HDF5 has no journal, so the layout keeps a kill in the middle of a write from reaching
earlier points: point groups all exist from the file's (atomic) creation, so a write
changes only its own group and never the shared link table; summary strings that are
rewritten are fixed-length (no global-heap references).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np

from ..io import KIND_GRID, atomic_h5, attribute_value, format_version, provenance, read_result, write_result
from ..result import Result
from .spec import GridPoint, GridSpec
from .worker import PointOutcome

KIND_FAILED_POINT = "dmft-grid-failed-point"
GRID_FORMAT_VERSION = 1

# Final-time observables in the summary; each also gets a <name>_stderr column.
SUMMARY_OBSERVABLES = ("m", "self_overlap", "train_loss", "train_error", "test_error")
STATUS_PENDING, STATUS_DONE, STATUS_FAILED = "pending", "done", "failed"


def fsync(path: Path) -> None:
    """Push the point to the disk: h5py's flush hands data to the OS, not to the platter."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _column_values(values: Sequence[Any]) -> list[Any]:
    """Axis values as stored in columns: list-valued options (gap_steps) as JSON text."""
    return [json.dumps(list(v)) if isinstance(v, tuple) else v for v in values]


def _column_dtype(values: Sequence[Any]) -> Any:
    sample = _column_values(values)[0]
    if isinstance(sample, bool):
        return np.bool_
    if isinstance(sample, int):
        return np.int64
    if isinstance(sample, float):
        return np.float64
    return h5py.string_dtype()


# Columns rewritten point by point hold FIXED-length strings: a variable-length string
# lives in HDF5's global heap, and a kill between the dataset write and the heap's flush
# leaves a dangling heap reference ("bad heap index") that makes the column unreadable.
# Fixed-length elements are plain bytes at fixed offsets; the full texts stay in the
# point groups' attributes.
_STATUS_DTYPE = h5py.string_dtype("utf-8", 8)
_TEXT_DTYPE = h5py.string_dtype("utf-8", 240)


def _fit_text(text: str, size: int = 240) -> bytes:
    """UTF-8 bytes cut to ``size`` without splitting a character."""
    data = text.encode("utf-8")
    if len(data) <= size:
        return data
    return data[: size - 3].decode("utf-8", errors="ignore").encode("utf-8") + b"..."


def _as_array(data: Sequence[Any], dtype: Any) -> np.ndarray:
    """Values in the numpy form h5py writes to ``dtype`` (strings: variable or fixed length)."""
    info = h5py.check_string_dtype(np.dtype(dtype))
    if info is None:
        return np.array(data, dtype=dtype)
    if info.length is None:
        return np.array(data, dtype=object)
    return np.array([_fit_text(text, info.length) for text in data], dtype=dtype)


def _summary_columns(spec: GridSpec) -> list[tuple[str, Any]]:
    """(name, dtype) of the summary table, in order."""
    string = h5py.string_dtype()  # written once, atomically, when the file is created
    columns: list[tuple[str, Any]] = [("group", string)]
    columns += [(key, _column_dtype(values)) for key, values in spec.axes.items()]
    columns += [("status", _STATUS_DTYPE), ("error", _TEXT_DTYPE), ("seed", np.int64), ("wall_time", np.float64)]
    for name in SUMMARY_OBSERVABLES:
        columns += [(name, np.float64), (f"{name}_stderr", np.float64)]
    columns += [("T_eff", np.float64), ("T_eff_stderr", np.float64), ("T_eff_note", _TEXT_DTYPE)]
    return columns


def create_file(path: Path, spec: GridSpec) -> None:
    """Write the empty grid (axes, pending summary) atomically: no half-created file, ever."""
    with atomic_h5(path, overwrite=False) as handle:
        initialize(handle, spec)


def initialize(handle: h5py.File, spec: GridSpec) -> None:
    """Root attributes, axes and an all-pending summary in a new file (this is the file format)."""
    handle.attrs["kind"] = KIND_GRID
    handle.attrs["grid_format_version"] = GRID_FORMAT_VERSION
    handle.attrs["config"] = json.dumps(spec.identity(), sort_keys=True)
    handle.attrs["config_toml"] = spec.source
    handle.attrs["grid_seed"] = spec.seed
    handle.attrs["axes"] = json.dumps(list(spec.axes))
    handle.attrs["shape"] = json.dumps(list(spec.shape))
    handle.attrs["n_points"] = len(spec)
    for key, value in provenance().items():
        handle.attrs[key] = value
    axes = handle.create_group("axes")
    for key, values in spec.axes.items():
        dtype = _column_dtype(values)
        axes.create_dataset(key, data=_as_array(_column_values(values), dtype), dtype=dtype)
    points = handle.create_group("points")
    # Every point's group exists from the start, empty: writing a point then changes
    # only its own group, never the link table shared by all points, so that a kill
    # in the middle of a write cannot make earlier points unreachable.
    for point in spec.points:
        points.create_group(spec.group_name(point.index))
    summary = handle.create_group("summary")
    summary.attrs["columns"] = json.dumps(["point"] + [name for name, _ in _summary_columns(spec)])
    n = len(spec)
    # The dimension scale named like its dimension: xarray / netCDF readers see a
    # table along "point".
    scale = summary.create_dataset("point", data=np.arange(n, dtype=np.int64))
    scale.make_scale("point")
    values = {"group": [f"points/{spec.group_name(p.index)}" for p in spec.points],
              "status": [STATUS_PENDING] * n, "error": [""] * n, "T_eff_note": [""] * n,
              "seed": [p.options.seed for p in spec.points], "wall_time": [math.nan] * n}
    for key in spec.axes:
        values[key] = _column_values([p.coords[key] for p in spec.points])
    for name, dtype in _summary_columns(spec):
        data = values.get(name, [math.nan] * n)
        column = summary.create_dataset(name, data=_as_array(data, dtype), dtype=dtype)
        column.dims[0].attach_scale(scale)


def grid_format(handle: h5py.File, path: Path, resume: bool = False) -> int:
    """The grid format of an open grid file; refuses, in one line, a format this dmft cannot read.

    Format 0 stands for a file without ``grid_format_version`` (written before the
    attribute existed). Formats 0 .. GRID_FORMAT_VERSION share one layout, so they are
    read, and resumed, as they are (a resumed file keeps its version: the points added
    have the same layout). A newer format is refused: upgrade dmft. When the layout
    changes, bump GRID_FORMAT_VERSION and refuse (or convert) the older formats here,
    saying which version and why; the points' own layout is checked by ``read_result``.
    """
    again = " (or pass --overwrite to discard it)" if resume else ""
    return format_version(handle.attrs, str(path), GRID_FORMAT_VERSION, "grid format", "grid_format_version", again)


def point_status(group: h5py.Group) -> str | None:
    """The status of a finished point group ("done" or "failed"); None otherwise."""
    status = attribute_value(group.attrs.get("status"))
    return status if status in (STATUS_DONE, STATUS_FAILED) else None


def clear_group(group: h5py.Group) -> None:
    """Empty a point group in place (its link in /points stays untouched)."""
    for name in list(group.attrs):
        del group.attrs[name]
    for name in list(group):
        del group[name]


def _summary_row(status: str, wall_time: float, error: str, result: Result | None,
                 t_eff: tuple[float, float, str] = (math.nan, math.nan, "")) -> dict[str, Any]:
    row: dict[str, Any] = {"status": status, "error": error, "wall_time": wall_time,
                           "T_eff": t_eff[0], "T_eff_stderr": t_eff[1], "T_eff_note": t_eff[2]}
    if result is not None:
        k = result.problem.steps
        finals = {"m": result.m[k], "self_overlap": result.C[k, k], "train_loss": result.train_loss[k],
                  "train_error": result.train_error[k], "test_error": result.test_error[k]}
        for name, value in finals.items():
            row[name] = float(value)
            key = "C" if name == "self_overlap" else name
            error_array = result.stderr.get(key)
            if error_array is not None:
                row[f"{name}_stderr"] = float(error_array[k, k] if key == "C" else error_array[k])
    return row


def write_summary_row(handle: h5py.File, index: int, row: Mapping[str, Any]) -> None:
    """Overwrite one row in place; ``status`` last, so that a row cut short by a kill still
    reads as not finished and is rebuilt from its group on the next start."""
    summary = handle["summary"]
    for name in sorted(row, key=lambda name: name == "status"):
        value = row[name]
        column = summary[name]
        if isinstance(value, str):  # the array carries the UTF-8 tag: HDF5 will not convert ASCII to it
            value = np.array(_fit_text(value, column.dtype.itemsize), dtype=column.dtype)
        column[index] = value


def write_point(handle: h5py.File, spec: GridSpec, point: GridPoint, outcome: PointOutcome) -> None:
    """One point group, complete, then its status, then its summary row; flushed in that order."""
    points = handle["points"]
    name = spec.group_name(point.index)
    group = points.get(name)
    if group is None:  # only after a salvage that could not rebuild it; normally created with the file
        group = points.create_group(name)
    elif len(group) or len(group.attrs):  # should have been cleared on start
        clear_group(group)
    if outcome.result is not None:
        write_result(group, outcome.result)
        status = STATUS_DONE
    else:
        for key, value in point.parameters().items():
            group.attrs[key] = value
        group.attrs["kind"] = KIND_FAILED_POINT
        group.attrs["error"] = outcome.error
        group.attrs["error_type"] = outcome.error_type
        group.attrs["traceback"] = outcome.traceback
        group.attrs["wall_time"] = outcome.wall_time
        for key, value in provenance().items():
            group.attrs[key] = value
        status = STATUS_FAILED
    group.attrs["grid_index"] = point.index
    group.attrs["grid_coords"] = json.dumps(point.coords)
    group.attrs["grid_seed"] = spec.seed
    group.attrs["computed_by"] = outcome.host
    group.attrs["grid_wall_time"] = outcome.wall_time  # solve + T_eff, as in the summary
    group.attrs["T_eff"] = outcome.t_eff
    group.attrs["T_eff_stderr"] = outcome.t_eff_stderr
    group.attrs["T_eff_note"] = outcome.t_eff_note
    handle.flush()
    # Written last: a group without a status (a kill before this point) is incomplete.
    # Fixed-length, so that it sits in the object header and not in the global heap.
    group.attrs.create("status", np.array(status.encode(), dtype=_STATUS_DTYPE))
    handle.flush()
    error = f"{outcome.error_type}: {outcome.error}" if status == STATUS_FAILED else ""
    t_eff = (outcome.t_eff, outcome.t_eff_stderr, outcome.t_eff_note)
    write_summary_row(handle, point.index, _summary_row(status, outcome.wall_time, error, outcome.result, t_eff))
    handle.flush()


def row_from_group(group: h5py.Group) -> dict[str, Any]:
    """Rebuild a summary row from a finished group (a kill fell between the two writes)."""
    status = point_status(group)
    wall_time = float(group.attrs.get("grid_wall_time", group.attrs.get("wall_time", math.nan)))
    if status == STATUS_DONE:
        t_eff = (float(group.attrs.get("T_eff", math.nan)), float(group.attrs.get("T_eff_stderr", math.nan)),
                 str(attribute_value(group.attrs.get("T_eff_note", ""))))
        return _summary_row(status, wall_time, "", read_result(group), t_eff)
    error = f"{attribute_value(group.attrs.get('error_type', ''))}: {attribute_value(group.attrs.get('error', ''))}"
    return _summary_row(STATUS_FAILED, wall_time, error, None)
