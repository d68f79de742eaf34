"""The ``fdt`` group of a dmft HDF5 file: effective-temperature estimates stored beside the data.

``fdt`` holds one subgroup per estimate, ``fdt/0``, ``fdt/1``, ... (attributes T_eff,
T_eff_stderr, stderr_method, window, final_time, intercept, through_origin, runs and
the stationarity diagnostic as ``stationarity_*``; datasets lag, delta_C, chi, ratio),
and the attribute ``final_times``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from ..errors import DmftError
from .hdf5 import native, open_checked, temporary_beside

FDT_GROUP = "fdt"


class _Curve(Protocol):
    lag: np.ndarray
    delta_C: np.ndarray
    chi: np.ndarray
    ratio: np.ndarray


class StoredEstimate(Protocol):
    """What ``write_fdt`` reads of an estimate (``dmft.fdt.TeffEstimate`` has it)."""

    final_time: float
    curve: _Curve

    def to_dict(self) -> dict[str, Any]: ...


def write_fdt(path: str | os.PathLike, estimates: StoredEstimate | Sequence[StoredEstimate],
              overwrite: bool = False) -> None:
    """Add a group ``fdt`` to an existing dmft HDF5 file, atomically (a copy replaces the file on success).

    The layout is in this module's docstring. An existing ``fdt`` group is replaced only
    with ``overwrite``.
    """
    if not isinstance(estimates, Sequence):
        estimates = [estimates]
    path = Path(path)
    tmp_name = temporary_beside(path)
    try:
        shutil.copy2(path, tmp_name)
        with h5py.File(tmp_name, "r+") as handle:
            if FDT_GROUP in handle:
                if not overwrite:
                    raise DmftError(f"{path} already has a group {FDT_GROUP!r}; pass --overwrite to replace it")
                del handle[FDT_GROUP]
            group = handle.create_group(FDT_GROUP)
            group.attrs["final_times"] = np.array([e.final_time for e in estimates])
            for index, est in enumerate(estimates):
                sub = group.create_group(str(index))
                summary = est.to_dict()
                stationarity = summary.pop("stationarity")
                for key, value in summary.items():
                    sub.attrs[key] = _fdt_attribute(value)
                for key, value in stationarity.items():
                    sub.attrs[f"stationarity_{key}"] = _fdt_attribute(value)
                sub.create_dataset("lag", data=est.curve.lag)
                sub.create_dataset("delta_C", data=est.curve.delta_C)
                sub.create_dataset("chi", data=est.curve.chi)
                sub.create_dataset("ratio", data=est.curve.ratio)
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def _fdt_attribute(value: Any) -> Any:
    """None (a JSON null: not finite) -> NaN; lists -> float arrays."""
    if value is None:
        return np.nan
    if isinstance(value, (list, tuple)):
        return np.array([np.nan if v is None else v for v in value], dtype=float)
    return value


def read_fdt(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The estimates stored by ``write_fdt``: one dict per final time (attributes and arrays)."""
    with open_checked(path) as handle:
        if FDT_GROUP not in handle:
            raise DmftError(f"{path}: no {FDT_GROUP!r} group (run `dmft teff {path} --write`)")
        group = handle[FDT_GROUP]
        out = []
        for index in range(len(group)):
            sub = group[str(index)]
            entry = {key: native(value) for key, value in sub.attrs.items()}
            entry.update({name: sub[name][()] for name in sub})
            out.append(entry)
        return out
