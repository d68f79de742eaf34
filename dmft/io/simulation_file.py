"""The layout of a ``dmft simulate`` result in HDF5: written atomically, read back into a SimulationResult.

Root datasets share the names of ``dmft solve`` for the shared quantities (time, m,
train_loss, train_error, test_error, C with ``<name>_stderr`` beside each), plus
self_overlap, C_times, R, R_times, chi, chi_times, [distance], and a group ``gaps``
with one dataset per time (attribute ``time``). Root attributes: the problem
parameters under their option names, the simulation options, kind, provenance.
"""

from __future__ import annotations

import json
import os

import h5py

from ..gaps import summary_of
from ..problem import PROBLEM_KEYS, Problem
from ..result import SimulationResult
from ..simulation_options import SIMULATION_KEYS, TIME_OPTIONS, SimulationOptions
from .hdf5 import (KIND_SIMULATE, FileFormatError, atomic_h5, attribute_value, format_version, older_layout,
                   open_checked, provenance)

SIMULATION_FORMAT_VERSION = 1
_ARRAYS = ("m", "self_overlap", "C", "R", "chi", "train_loss", "train_error", "test_error", "distance")


def write_simulation(group: h5py.Group, result: SimulationResult) -> None:
    """Write ``result`` into an open HDF5 group."""
    group.create_dataset("time", data=result.time)
    for name in _ARRAYS:
        data = getattr(result, name)
        if data is None:
            continue
        group.create_dataset(name, data=data)
        if name in result.stderr:
            group.create_dataset(f"{name}_stderr", data=result.stderr[name])
    for name in ("C_times", "R_times", "chi_times"):
        group.create_dataset(name, data=getattr(result, name))
    gaps = group.create_group("gaps")
    for t, values in sorted(result.gaps.items()):
        k = int(round(t / result.problem.dt))
        dataset = gaps.create_dataset(f"step_{k}", data=values, compression="gzip", compression_opts=4)
        dataset.attrs.update(summary_of(result, t).attributes())
    for key, value in result.problem.flat().items():
        group.attrs[key] = value
    for key, value in result.options.flat().items():
        group.attrs[key] = json.dumps(value) if key in TIME_OPTIONS else value
    for key, value in result.diagnostics.items():
        group.attrs[key] = value
    group.attrs["kind"] = KIND_SIMULATE
    for key, value in provenance().items():
        group.attrs[key] = value
    group.attrs["format_version"] = SIMULATION_FORMAT_VERSION


def save_simulation(result: SimulationResult, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Write ``result`` to ``path`` atomically (refuses to replace a file unless ``overwrite``)."""
    with atomic_h5(path, overwrite=overwrite) as handle:
        write_simulation(handle, result)


def read_simulation(group: h5py.Group) -> SimulationResult:
    """Rebuild a SimulationResult from a group written by ``write_simulation``.

    A newer format is refused with the advice to upgrade; a group lacking something
    raises a FileFormatError saying what (and which older format it is).
    """
    where = group.file.filename
    attrs = {key: attribute_value(value) for key, value in group.attrs.items()}
    if attrs.get("kind") != KIND_SIMULATE:
        raise FileFormatError(f"{where}: not a `dmft simulate` result (kind = {attrs.get('kind')!r})")
    version = format_version(group.attrs, where, SIMULATION_FORMAT_VERSION, "simulation format")
    try:
        return _read_simulation(group, attrs)
    except KeyError as error:
        older = older_layout(version, SIMULATION_FORMAT_VERSION, "simulation format")
        raise FileFormatError(f"{where}: incomplete simulation file{older}, missing {error}") from None


def _read_simulation(group: h5py.Group, attrs: dict) -> SimulationResult:
    problem = Problem.from_flat(**{key: attrs[key] for key in PROBLEM_KEYS if key in attrs})
    flat = {key: attrs[key] for key in SIMULATION_KEYS if key in attrs}
    for key in TIME_OPTIONS:
        if key in flat:
            flat[key] = json.loads(flat[key])
    options = SimulationOptions.from_flat(**flat)
    arrays = {name: (group[name][()] if name in group else None) for name in _ARRAYS}
    stderr = {name: group[f"{name}_stderr"][()] for name in _ARRAYS if f"{name}_stderr" in group}
    gaps = {float(dataset.attrs["time"]): dataset[()] for dataset in group["gaps"].values()}
    diagnostics = {key: attrs[key] for key in ("wall_time", "samples") if key in attrs}
    return SimulationResult(
        problem=problem, options=options, time=group["time"][()],
        C_times=group["C_times"][()], R_times=group["R_times"][()], chi_times=group["chi_times"][()],
        gaps=gaps, stderr=stderr, diagnostics=diagnostics, **arrays,
    )


def load_simulation(path: str | os.PathLike) -> SimulationResult:
    """Read a ``dmft simulate`` file."""
    with open_checked(path, KIND_SIMULATE) as handle:
        return read_simulation(handle)
