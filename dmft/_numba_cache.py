"""Keep numba's on-disk caches in step with the package's numba sources.

numba checks a cached function against the modification time and size of its own file
only. The kernels (the modules of ``solvers/kernels/``) inline helpers from each other,
from ``loss_kernels.py`` and from ``solvers/streams.py``, and the constants of
``losses.py``: after an edit or a checkout that changes only those, numba would go on
loading kernels compiled from the old helpers, silently, and results would name a version
whose code did not run. So the first import of a module holding kernels
(``clear_stale_caches_once``) hashes all the package's numba sources and, in every
directory its kernels are cached in whose recorded digest differs, deletes the caches
first (they are rebuilt on the next call).

Covered: the directories numba itself chose for the package's cached functions
(``numba_cache_dirs``): ``__pycache__`` beside the sources (an editable install or a
checkout), a directory under ``NUMBA_CACHE_DIR``, or numba's per-user fallback when the
sources are read-only. Each directory records its own digest, so a read-only install
clears its per-user caches once per change, not at every import. A cache file that may
not be deleted never fails the import: the next import tries again.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Iterable
from pathlib import Path

# Every module with cached numba functions, and every module they inline from or read
# constants of: every module of the kernels package, whatever files it gains.
NUMBA_SOURCES = ("losses.py", "loss_kernels.py", "solvers/streams.py") + tuple(
    sorted(f"solvers/kernels/{path.name}" for path in (Path(__file__).parent / "solvers" / "kernels").glob("*.py")))
STAMP_NAME = "numba-sources.sha256"


def sources_digest(package_dir: Path, sources: tuple[str, ...] = NUMBA_SOURCES) -> str:
    """SHA-256 of the names and contents of ``sources`` (paths under ``package_dir``)."""
    digest = hashlib.sha256()
    for name in sources:
        digest.update(name.encode() + b"\0" + (package_dir / name).read_bytes() + b"\0")
    return digest.hexdigest()


def numba_cache_dirs(package: str, sources: tuple[str, ...] = NUMBA_SOURCES) -> set[Path]:
    """The directories numba caches the cached functions of ``package``'s ``sources`` in,
    as its dispatchers record them (importing a module compiles and loads nothing)."""
    dirs = set()
    for name in sources:
        module_path = name.removesuffix(".py").removesuffix("/__init__")  # a package's own module
        module = importlib.import_module(f"{package}.{module_path.replace('/', '.')}")
        for value in vars(module).values():
            if not str(getattr(getattr(value, "py_func", None), "__module__", "")).startswith(f"{package}."):
                continue  # not a function of the package: its caches are not ours to clear
            path = getattr(getattr(value, "_cache", None), "_cache_path", None)  # a cached dispatcher's
            if isinstance(path, str) and path:
                dirs.add(Path(path))
    return dirs


def clear_stale_caches(package_dir: Path, sources: tuple[str, ...] = NUMBA_SOURCES,
                       cache_dirs: Iterable[Path] = ()) -> bool:
    """Delete the numba caches in ``cache_dirs`` and beside ``sources`` wherever the digest
    of the sources differs from the one recorded in that directory (or none is). Returns
    whether any directory was stale. A directory's digest is recorded only once every
    cache in it is gone.

    Safe with several processes at once: numba treats a cache file that vanished under
    it as a miss, and each record is replaced atomically.
    """
    digest = sources_digest(package_dir, sources)
    beside = {(package_dir / name).parent / "__pycache__" for name in sources}
    stale = False
    for cache_dir in sorted(beside | {Path(path) for path in cache_dirs}):
        stale |= _clear_if_stale(cache_dir, digest)
    return stale


_checked = False


def clear_stale_caches_once() -> None:
    """``clear_stale_caches`` for this package, once per process.

    Called when a module holding kernels (``dmft.loss_kernels``, ``dmft.solvers``) is
    imported, before any of them can be loaded or compiled; ``import dmft`` alone imports
    no numba.
    """
    global _checked
    if _checked:
        return
    _checked = True  # first: numba_cache_dirs imports the kernel modules, which call this again
    clear_stale_caches(Path(__file__).parent, cache_dirs=numba_cache_dirs(__package__))


def _clear_if_stale(cache_dir: Path, digest: str) -> bool:
    stamp = cache_dir / STAMP_NAME
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass  # no record yet
    cleared = True
    for path in cache_dir.glob("*.nb[ic]"):  # numba's index and data files
        try:
            path.unlink(missing_ok=True)
        except OSError:  # not ours to delete (an install shared read-only): never fail the import
            cleared = False
    if not cleared:
        return True  # the record stays stale: the next import tries again
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = stamp.with_name(f"{STAMP_NAME}.{os.getpid()}")
        partial.write_text(digest)
        partial.replace(stamp)
    except OSError:
        pass  # read-only sources: numba caches elsewhere (numba_cache_dirs)
    return True
