"""The layout of a ``dmft solve`` result in HDF5: written atomically, read back into a Result.

A result occupies one HDF5 group (the file root for ``dmft solve``, one group per point
for grids): datasets ``time, m, C, R, A, train_loss, train_error, test_error`` and
``<name>_stderr``, a group ``kernels`` (``Gamma_C, K, mu_hat``), a group ``diagnostics``,
a group ``gaps``, and as attributes every parameter under its option name plus provenance.
"""

from __future__ import annotations

import os
from typing import Any

import h5py
import numpy as np

from ..errors import ParameterError
from ..gaps import summary_of
from ..options import SOLVER_KEYS, SolverOptions
from ..problem import PROBLEM_KEYS, Problem
from ..result import KERNELS, OBSERVABLES, REPLICA_OBSERVABLES, Result
from .hdf5 import (FORMAT_VERSION, KIND_SOLVE, FileFormatError, atomic_h5, format_version, native, older_layout,
                   open_checked, provenance, stored_attribute, write_array)


def write_result(group: h5py.Group, result: Result) -> None:
    """Write ``result`` into an open HDF5 group (file root or a grid point)."""
    group.create_dataset("time", data=result.time)
    for name in OBSERVABLES + REPLICA_OBSERVABLES:
        data = getattr(result, name)
        if data is None:
            continue
        write_array(group, name, data)
        if name in result.stderr:
            write_array(group, f"{name}_stderr", result.stderr[name])
    kernels = group.create_group("kernels")
    for name in KERNELS:
        write_array(kernels, name, getattr(result, name))
    gaps = group.create_group("gaps")
    for step, values in result.gaps.items():
        dataset = gaps.create_dataset(f"step_{step}", data=values)
        dataset.attrs.update(summary_of(result, step).attributes())  # quantiles, fractions, smallest, histogram
        dataset.attrs["step"] = step
    diagnostics = group.create_group("diagnostics")
    for key, value in result.diagnostics.items():
        if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            for index, array in enumerate(value):
                write_array(diagnostics, f"{key}_{index}", array)
        else:
            group.attrs[key] = stored_attribute(value)
    for key, value in result.problem.flat().items():
        group.attrs[key] = stored_attribute(value)
    for key, value in result.options.flat().items():
        group.attrs[key] = stored_attribute(value)
    group.attrs["kind"] = KIND_SOLVE
    for key, value in provenance().items():
        group.attrs[key] = value


def save_result(result: Result, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Write ``result`` to ``path`` atomically (refuses to replace a file unless ``overwrite``)."""
    with atomic_h5(path, overwrite=overwrite) as handle:
        write_result(handle, result)


def read_result(group: h5py.Group) -> Result:
    """Rebuild a Result from a group written by ``write_result``.

    Every format up to FORMAT_VERSION has the same layout, so an older file (format 0:
    no ``format_version``, written before it existed) is read as a current one; if it
    lacks something, the FileFormatError says which format it is and what is missing.
    A newer format is refused with the advice to upgrade.
    """
    attrs = dict(group.attrs)
    where = group.file.filename if group.name == "/" else f"{group.file.filename} {group.name}"
    if native(attrs.get("kind")) != KIND_SOLVE:
        raise FileFormatError(f"{where}: not a `dmft solve` result (kind = {native(attrs.get('kind'))!r})")
    version = format_version(attrs, where, FORMAT_VERSION)
    incomplete = f"{where}: incomplete dmft file{older_layout(version, FORMAT_VERSION)}, missing"
    required = ["time", *OBSERVABLES, *(f"kernels/{name}" for name in KERNELS), "diagnostics"]
    missing = [name for name in required if name not in group]
    if missing:
        raise FileFormatError(f"{incomplete} {', '.join(missing)}")
    try:
        return _read_result(group, attrs)
    except KeyError as error:
        raise FileFormatError(f"{incomplete} {error}") from None
    except ParameterError as error:
        raise FileFormatError(f"{where}: unreadable parameter{older_layout(version, FORMAT_VERSION)}: "
                              f"{error}") from None


def _read_result(group: h5py.Group, attrs: dict[str, Any]) -> Result:
    problem = Problem.from_flat(**{key: native(attrs[key]) for key in PROBLEM_KEYS if key in attrs})
    options = SolverOptions.from_flat(**{key: native(attrs[key]) for key in SOLVER_KEYS if key in attrs})
    arrays = {name: group[name][()] for name in OBSERVABLES}
    arrays.update({name: group[name][()] for name in REPLICA_OBSERVABLES if name in group})
    arrays.update({name: group["kernels"][name][()] for name in KERNELS})
    stderr = {name: group[f"{name}_stderr"][()] for name in OBSERVABLES + REPLICA_OBSERVABLES
              if f"{name}_stderr" in group}
    gaps = {int(d.attrs["step"]): d[()] for d in group["gaps"].values()} if "gaps" in group else {}
    diagnostics: dict[str, Any] = {}
    for key in ("wall_time", "subpopulations", "chunk_width", "random_streams", "min_relative_pivot", "converged",
                "iterations", "memory_edge", "memory_edge_stderr", "memory_tail"):
        if key in attrs:
            diagnostics[key] = native(attrs[key])
    for name in group["diagnostics"]:
        diagnostics[name] = group["diagnostics"][name][()]
    return Result(problem=problem, options=options, time=group["time"][()], stderr=stderr,
                  diagnostics=diagnostics, gaps=gaps, **arrays)


def load(path: str | os.PathLike) -> Result:
    """Read a ``dmft solve`` file."""
    with open_checked(path, KIND_SOLVE) as handle:
        return read_result(handle)
