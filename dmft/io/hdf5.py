"""What every dmft HDF5 file shares: opening and checking, atomic writing, attributes, provenance.

Every reader opens its file through ``open_checked`` (exists, readable HDF5, of the
expected ``kind``, format not newer than this dmft reads) and every writer through
``atomic_h5`` (a temporary beside the file replaces it only on success).
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from .._version import __version__, source_digest
from ..errors import DmftError

# The layout version of a result (a `dmft solve` file, a grid point), written with the provenance.
FORMAT_VERSION = 1
KIND_SOLVE = "dmft-solve"
KIND_SIMULATE = "dmft-simulate"
KIND_GRID = "dmft-grid"
# What a file of each kind is called in a refusal: "<path>: not a `dmft solve` result (kind = ...)".
KIND_DESCRIPTIONS = {KIND_SOLVE: "`dmft solve` result", KIND_SIMULATE: "`dmft simulate` result",
                     KIND_GRID: "dmft grid file"}
# Seconds to wait for another process's HDF5 file lock (a grid writing a point) before giving up.
LOCK_PATIENCE = 60.0


class FileFormatError(DmftError):
    """A file that is not a readable dmft output of the expected kind."""


def open_h5(path: str | os.PathLike, mode: str) -> h5py.File:
    """Open with patience: a reader holding the HDF5 file lock delays the writer, it does not kill the run."""
    deadline = time.monotonic() + LOCK_PATIENCE
    delay = 0.05
    while True:
        try:
            return h5py.File(path, mode)
        except OSError as error:
            text = str(error).lower()
            if "lock" not in text or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 1.0)


def open_checked(path: str | os.PathLike, kind: str | Sequence[str] | None = None, *, mode: str = "r",
                 description: str | None = None, current_format: int | None = None, what: str = "format",
                 attribute: str = "format_version", advice: str = "") -> h5py.File:
    """Open a dmft HDF5 file, refusing in one line anything that is not what the caller reads.

    The file must exist and open as HDF5 (waiting out another process's brief hold on
    its lock, see ``open_h5``); its root attribute ``kind`` must be ``kind`` (or one of
    them; None: any); with ``current_format``, its ``attribute`` must not be newer (see
    ``format_version``). ``description`` names the expected file in the refusal (default
    from ``KIND_DESCRIPTIONS``). Returns the open file (use it in a ``with``); it is
    closed when refused.
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    try:
        handle = open_h5(path, mode)
    except OSError as error:
        raise FileFormatError(f"{path}: not a readable HDF5 file ({error})") from None
    try:
        if kind is not None:
            kinds = (kind,) if isinstance(kind, str) else tuple(kind)
            found = attribute_value(handle.attrs.get("kind"))
            if found not in kinds:
                name = description or " or ".join(KIND_DESCRIPTIONS.get(k, f"{k} file") for k in kinds)
                expected = "" if len(kinds) == 1 else f"; expected {' or '.join(repr(k) for k in kinds)}"
                raise FileFormatError(f"{path}: not a {name} (kind = {found!r}{expected})")
        if current_format is not None:
            format_version(handle.attrs, str(path), current_format, what, attribute, advice)
    except BaseException:
        handle.close()
        raise
    return handle


def file_kind(handle: h5py.Group) -> Any:
    """The root attribute ``kind`` of an open file (None when absent)."""
    return attribute_value(handle.file.attrs.get("kind"))


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
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[str]:
    """The name of a temporary file beside ``path`` to write into; it replaces ``path`` only on success.

    A crash mid-write leaves the previous file (or none), never a truncated one.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise DmftError(f"{path} exists; pass --overwrite (overwrite=True) to replace it")
    if not path.parent.is_dir():
        raise DmftError(f"cannot write {path}: directory {path.parent} does not exist")
    tmp_name = temporary_beside(path)
    try:
        yield tmp_name
        os.chmod(tmp_name, _default_mode())  # mkstemp makes 0600; outputs are ordinary files
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike, overwrite: bool = False) -> Iterator[h5py.File]:
    """An HDF5 file written beside ``path`` that replaces it only on success (``atomic_path``)."""
    with atomic_path(path, overwrite) as tmp_name, h5py.File(tmp_name, "w") as handle:
        yield handle


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


# Side of the square chunks of a two-dimensional array with zero chunks: 32 KB of float64.
CHUNK_SIDE = 64


def write_array(group: h5py.Group, name: str, data: np.ndarray) -> h5py.Dataset:
    """Store ``data`` as the dataset ``name`` of ``group``, uncompressed; return the dataset.

    A two-dimensional array with a zero block of ``CHUNK_SIDE`` squared entries (the upper
    triangles of R and K, of their errors) is stored in chunks of that size, and its zero
    chunks are not written: HDF5 reads them back as the fill value 0.0, so every reader
    gets the same array while they take no room. Other arrays are stored contiguously:
    gzip saved little room on Monte Carlo data for a long write.
    """
    data = np.ascontiguousarray(data)
    if data.ndim != 2 or data.size == 0 or data.dtype.itemsize not in (1, 2, 4, 8):
        return group.create_dataset(name, data=data)
    rows, columns = min(CHUNK_SIDE, data.shape[0]), min(CHUNK_SIDE, data.shape[1])
    row_starts, column_starts = range(0, data.shape[0], rows), range(0, data.shape[1], columns)
    # Zero bits, not == 0: a -0.0 must be written, or it would read back as +0.0.
    nonzero = data.view(f"u{data.dtype.itemsize}") != 0
    written = np.logical_or.reduceat(np.logical_or.reduceat(nonzero, row_starts, axis=0), column_starts, axis=1)
    if written.all():
        return group.create_dataset(name, data=data)
    dataset = group.create_dataset(name, shape=data.shape, dtype=data.dtype, chunks=(rows, columns))
    for band, row in zip(written, row_starts):  # each band of chunks from its first to its last nonzero one
        used = np.flatnonzero(band)
        if used.size:
            part = np.s_[row:row + rows, column_starts[used[0]]:column_starts[used[-1]] + columns]
            dataset.write_direct(data, part, part)
    return dataset


def stored_attribute(value: Any) -> Any:
    """A parameter as an HDF5 attribute (numbers, strings, bools): None -> '', lists -> JSON."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return value


def attribute_value(value: Any) -> Any:
    """An h5py attribute as a Python value: numpy scalars -> Python scalars, bytes -> str."""
    if isinstance(value, np.generic):
        value = value.item()  # np.bytes_ gives bytes
    if isinstance(value, bytes):
        return value.decode()
    return value


def native(value: Any) -> Any:
    """A stored parameter: ``attribute_value``, and JSON lists (see ``stored_attribute``) -> tuples."""
    value = attribute_value(value)
    if isinstance(value, str) and value.startswith("["):
        return tuple(json.loads(value))
    return value


def format_version(attrs: Any, where: str, current: int, what: str = "format", attribute: str = "format_version",
                   advice: str = "") -> int:
    """The ``attribute`` (``format_version``) of a dmft file or group, checked against ``current``.

    A missing attribute is format 0 (a file written before format versions existed); a
    version newer than ``current`` is refused, in one line, with the advice to upgrade
    (and ``advice`` after it). Older versions are returned: the caller reads them if
    their layout is the same, and otherwise says why not (see ``older_layout``).
    """
    raw = native(attrs.get(attribute, 0))
    try:
        version = int(raw)
    except (TypeError, ValueError):
        version = -1
    if version < 0:
        raise FileFormatError(f"{where}: {attribute} {raw!r} is not a version number; not a dmft file "
                              "this dmft can read")
    if version > current:
        writer = native(attrs.get("dmft_version", "?"))
        raise FileFormatError(f"{where}: written by dmft {writer} in {what} {version}; this dmft {__version__} "
                              f"reads {what} <= {current}: upgrade dmft{advice}")
    return version


def older_layout(version: int, current: int, what: str = "format") -> str:
    """' (format 0, written before format versions, read with the layout of format N)' or ''."""
    if version >= current:
        return ""
    name = f"{what} 0, written before format versions" if version == 0 else f"{what} {version}"
    return f" ({name}, read with the layout of {what} {current})"
