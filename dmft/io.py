"""HDF5 storage of results: one layout, written atomically, read back into objects.

A result occupies one HDF5 group (the file root for ``dmft solve``, one group per point
for grids): datasets ``time, m, C, R, A, train_loss, train_error, test_error`` and
``<name>_stderr``, a group ``kernels`` (``Gamma_C, K, mu_hat``), a group ``diagnostics``,
and as attributes every parameter under its option name plus provenance.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import platform
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from ._version import __version__, source_digest
from .errors import DmftError, ParameterError
from .problem import PROBLEM_KEYS, Problem
from .result import KERNELS, OBSERVABLES, REPLICA_OBSERVABLES, Result
from .options import SOLVER_KEYS, SolverOptions

FORMAT_VERSION = 1
KIND_SOLVE = "dmft-solve"


class FileFormatError(DmftError):
    """A file that is not a readable dmft output of the expected kind."""


def provenance() -> dict[str, Any]:
    """Who wrote the file, with what, and when."""
    import numba
    import scipy

    return {
        "dmft_version": __version__,
        "dmft_source_sha256": source_digest(),
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host_python": platform.python_version(),
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "numba_version": numba.__version__,
        "h5py_version": h5py.__version__,
    }


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike, overwrite: bool = False) -> Iterator[h5py.File]:
    """Open a temporary HDF5 file beside ``path``; it replaces ``path`` only on success.

    A crash mid-write leaves the previous file (or none), never a truncated one.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise DmftError(f"{path} exists; pass --overwrite (overwrite=True) to replace it")
    if not path.parent.exists():
        raise DmftError(f"cannot write {path}: directory {path.parent} does not exist")
    tmp_name = temporary_beside(path)
    try:
        with h5py.File(tmp_name, "w") as handle:
            yield handle
        os.chmod(tmp_name, _default_mode())  # mkstemp makes 0600; outputs are ordinary files
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def temporary_beside(path: Path) -> str:
    """Create an empty file beside ``path`` to write its replacement into, and return its name:
    ``.<name>.<host>+<pid>+<random>.tmp``, hidden, and saying which process writes it.

    A process killed while writing (SIGKILL, a power cut) leaves its temporary behind; those
    of processes of this host that no longer run are removed here, at the next write of the
    same file. Other hosts' (a shared file system) and running processes' are left alone.
    """
    prefix = f".{path.name}.{socket.gethostname()}+"
    for stale in path.parent.glob(glob.escape(prefix) + "*+*.tmp"):
        pid = stale.name[len(prefix):].split("+", 1)[0]
        if pid.isdigit() and not _process_running(int(pid)):
            with contextlib.suppress(OSError):
                stale.unlink()
    fd, name = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}+", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return name


def _process_running(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would send CTRL_C_EVENT on Windows: assume it runs
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _default_mode() -> int:
    """The mode ``open`` would give a new file: 0666 less the process umask."""
    return 0o666 & ~_umask()


def _umask() -> int:
    # Linux reports the umask in /proc; elsewhere it can only be read by setting it, which
    # briefly changes it for every thread of the process.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _attribute(value: Any) -> Any:
    """HDF5 attributes take numbers, strings and bools; None becomes an empty string."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return value


def write_result(group: h5py.Group, result: Result) -> None:
    """Write ``result`` into an open HDF5 group (file root or a grid point)."""
    compress = {"compression": "gzip", "compression_opts": 4}
    group.create_dataset("time", data=result.time)
    for name in OBSERVABLES + REPLICA_OBSERVABLES:
        data = getattr(result, name)
        if data is None:
            continue
        group.create_dataset(name, data=data, **(compress if data.ndim == 2 else {}))
        if name in result.stderr:
            error = result.stderr[name]
            group.create_dataset(f"{name}_stderr", data=error, **(compress if error.ndim == 2 else {}))
    kernels = group.create_group("kernels")
    for name in KERNELS:
        data = getattr(result, name)
        kernels.create_dataset(name, data=data, **(compress if data.ndim == 2 else {}))
    gaps = group.create_group("gaps")
    for step, values in result.gaps.items():
        dataset = gaps.create_dataset(f"step_{step}", data=values)
        dataset.attrs.update(result.gap_summary(step).attributes())  # quantiles, fractions, smallest, histogram
        dataset.attrs["step"] = step
    diagnostics = group.create_group("diagnostics")
    for key, value in result.diagnostics.items():
        if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            for index, array in enumerate(value):
                diagnostics.create_dataset(f"{key}_{index}", data=array)
        else:
            group.attrs[key] = _attribute(value)
    for key, value in result.problem.flat().items():
        group.attrs[key] = _attribute(value)
    for key, value in result.options.flat().items():
        group.attrs[key] = _attribute(value)
    group.attrs["kind"] = KIND_SOLVE
    for key, value in provenance().items():
        group.attrs[key] = value


def save_result(result: Result, path: str | os.PathLike, overwrite: bool = False) -> None:
    with atomic_h5(path, overwrite=overwrite) as handle:
        write_result(handle, result)


def format_version(attrs: Any, where: str, current: int, what: str = "format", attribute: str = "format_version",
                   advice: str = "") -> int:
    """The ``attribute`` (``format_version``) of a dmft file or group, checked against ``current``.

    A missing attribute is format 0 (a file written before format versions existed); a
    version newer than ``current`` is refused, in one line, with the advice to upgrade
    (and ``advice`` after it). Older versions are returned: the caller reads them if
    their layout is the same, and otherwise says why not (see ``older_layout``).
    """
    raw = _native(attrs.get(attribute, 0))
    try:
        version = int(raw)
    except (TypeError, ValueError):
        version = -1
    if version < 0:
        raise FileFormatError(f"{where}: {attribute} {raw!r} is not a version number; not a dmft file "
                              "this dmft can read")
    if version > current:
        writer = _native(attrs.get("dmft_version", "?"))
        raise FileFormatError(f"{where}: written by dmft {writer} in {what} {version}; this dmft {__version__} "
                              f"reads {what} <= {current}: upgrade dmft{advice}")
    return version


def older_layout(version: int, current: int, what: str = "format") -> str:
    """' (format 0, written before format versions, read with the layout of format N)' or ''."""
    if version >= current:
        return ""
    name = f"{what} 0, written before format versions" if version == 0 else f"{what} {version}"
    return f" ({name}, read with the layout of {what} {current})"


def read_result(group: h5py.Group) -> Result:
    """Rebuild a Result from a group written by ``write_result``.

    Every format up to FORMAT_VERSION has the same layout, so an older file (format 0:
    no ``format_version``, written before it existed) is read as a current one; if it
    lacks something, the FileFormatError says which format it is and what is missing.
    A newer format is refused with the advice to upgrade.
    """
    attrs = dict(group.attrs)
    where = group.file.filename if group.name == "/" else f"{group.file.filename} {group.name}"
    if _native(attrs.get("kind")) != KIND_SOLVE:
        raise FileFormatError(f"{where}: not a `dmft solve` result (kind = {_native(attrs.get('kind'))!r})")
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
    problem = Problem.from_flat(**{key: _native(attrs[key]) for key in PROBLEM_KEYS if key in attrs})
    options = SolverOptions.from_flat(**{key: _native(attrs[key]) for key in SOLVER_KEYS if key in attrs})
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
            diagnostics[key] = _native(attrs[key])
    for name in group["diagnostics"]:
        diagnostics[name] = group["diagnostics"][name][()]
    return Result(problem=problem, options=options, time=group["time"][()], stderr=stderr,
                  diagnostics=diagnostics, gaps=gaps, **arrays)


def load(path: str | os.PathLike) -> Result:
    """Read a ``dmft solve`` file."""
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise FileFormatError(f"{path}: not a readable HDF5 file ({error})") from None
    with handle:
        try:
            return read_result(handle)
        except KeyError as error:
            raise FileFormatError(f"{path}: incomplete dmft file, missing {error}") from None


def attribute_value(value: Any) -> Any:
    """An h5py attribute as a Python value: numpy scalars -> Python scalars, bytes -> str."""
    if isinstance(value, np.generic):
        value = value.item()  # np.bytes_ gives bytes
    if isinstance(value, bytes):
        return value.decode()
    return value


def _native(value: Any) -> Any:
    """A stored parameter: ``attribute_value``, and JSON lists (see _attribute) -> tuples."""
    value = attribute_value(value)
    if isinstance(value, str) and value.startswith("["):
        return tuple(json.loads(value))
    return value
