"""HDF5 storage: the one layer through which every dmft file is written and read.

``hdf5`` holds what all files share (opening and checking, atomic writes, attributes,
provenance, format versions); ``solve_file``, ``simulation_file`` and ``fdt_file`` the
layouts of a ``dmft solve`` result, a ``dmft simulate`` result and the ``fdt`` group.
Grid files (``dmft.grid``) store their points with ``write_result`` / ``read_result``.
"""

from __future__ import annotations

import os

from ..result import Result, SimulationResult
from .fdt_file import FDT_GROUP, read_fdt, write_fdt
from .hdf5 import (FORMAT_VERSION, KIND_DESCRIPTIONS, KIND_GRID, KIND_SIMULATE, KIND_SOLVE, LOCK_PATIENCE,
                   FileFormatError, atomic_h5, atomic_path, attribute_value, file_kind, format_version, native,
                   older_layout, open_checked, open_h5, provenance, stored_attribute, temporary_beside)
from .simulation_file import (SIMULATION_FORMAT_VERSION, load_simulation, read_simulation, save_simulation,
                              write_simulation)
from .solve_file import load, read_result, save_result, write_result


def save(obj: Result | SimulationResult, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Write a Result or a SimulationResult to the HDF5 file ``path``, atomically.

    Refuses to replace an existing file unless ``overwrite``. The layouts are described
    in ``dmft.io.solve_file`` and ``dmft.io.simulation_file``.
    """
    if isinstance(obj, Result):
        save_result(obj, path, overwrite=overwrite)
    elif isinstance(obj, SimulationResult):
        save_simulation(obj, path, overwrite=overwrite)
    else:
        raise TypeError(f"dmft.save writes a Result or a SimulationResult, not a {type(obj).__name__}")


def load_any(path: str | os.PathLike, description: str = "dmft result") -> Result | SimulationResult:
    """Read a ``dmft solve`` or ``dmft simulate`` file, whichever it is."""
    with open_checked(path, (KIND_SOLVE, KIND_SIMULATE), description=description) as handle:
        if file_kind(handle) == KIND_SIMULATE:
            return read_simulation(handle)
        return read_result(handle)


__all__ = [
    "FDT_GROUP", "FORMAT_VERSION", "KIND_DESCRIPTIONS", "KIND_GRID", "KIND_SIMULATE", "KIND_SOLVE", "LOCK_PATIENCE",
    "SIMULATION_FORMAT_VERSION", "FileFormatError", "atomic_h5", "atomic_path", "attribute_value", "file_kind",
    "format_version",
    "load", "load_any", "load_simulation", "native", "older_layout", "open_checked", "open_h5", "provenance",
    "read_fdt", "read_result", "read_simulation", "save", "save_result", "save_simulation", "stored_attribute",
    "temporary_beside", "write_fdt", "write_result", "write_simulation",
]
