"""Keep numba's on-disk caches in step with the package's numba sources.

numba checks a cached function against the modification time and size of its own file
only. The population kernels (``solvers/kernels.py``) inline helpers from ``losses.py``
and ``solvers/streams.py``: after an edit or a checkout that changes only those, numba
would go on loading kernels compiled from the old helpers, silently, and results would
name a version whose code did not run. So at import the package hashes all its numba
sources and, when the digest differs from the one recorded beside the caches, deletes
those caches first (they are rebuilt on the next call).

Covered: numba's default in-tree caches (``__pycache__`` beside the sources), which an
editable install or a checkout uses. Not covered: a cache directory set by
``NUMBA_CACHE_DIR``, or numba's per-user fallback for a read-only install; a fresh
install rewrites every source, hence every stamp numba checks, anyway. A cache file that
may not be deleted never fails the import: the next import tries again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# Every module with cached numba functions, and every module they inline from.
NUMBA_SOURCES = ("losses.py", "solvers/streams.py", "solvers/kernels.py")
STAMP_NAME = "numba-sources.sha256"


def sources_digest(package_dir: Path, sources: tuple[str, ...] = NUMBA_SOURCES) -> str:
    """SHA-256 of the names and contents of ``sources`` (paths under ``package_dir``)."""
    digest = hashlib.sha256()
    for name in sources:
        digest.update(name.encode() + b"\0" + (package_dir / name).read_bytes() + b"\0")
    return digest.hexdigest()


def clear_stale_caches(package_dir: Path, sources: tuple[str, ...] = NUMBA_SOURCES) -> bool:
    """Delete the numba caches beside ``sources`` if any source changed since they were
    last checked (or if no check is on record). Returns whether they were stale. The new
    digest is recorded only once every cache is gone.

    Safe with several processes at once: numba treats a cache file that vanished under
    it as a miss, and the stamp is replaced atomically.
    """
    digest = sources_digest(package_dir, sources)
    stamp = package_dir / "__pycache__" / STAMP_NAME
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass  # no stamp yet
    cleared = True
    for cache_dir in sorted({(package_dir / name).parent / "__pycache__" for name in sources}):
        for path in cache_dir.glob("*.nb[ic]"):  # numba's index and data files
            try:
                path.unlink(missing_ok=True)
            except OSError:  # not ours to delete (an install shared read-only): never fail the import
                cleared = False
    if not cleared:
        return True  # the stamp stays stale: the next import tries again
    try:
        stamp.parent.mkdir(exist_ok=True)
        partial = stamp.with_name(f"{STAMP_NAME}.{os.getpid()}")
        partial.write_text(digest)
        partial.replace(stamp)
    except OSError:
        pass  # read-only install: numba caches elsewhere (module docstring)
    return True
