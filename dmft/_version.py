"""The package's version, and a digest of the code that ran (for output files)."""

from __future__ import annotations

import functools
from pathlib import Path

from ._numba_cache import sources_digest

__version__ = "0.2.0"


@functools.cache
def source_digest() -> str:
    """SHA-256 of every Python source of the package (names and contents).

    ``__version__`` changes only at a release; two files written by different code between
    releases carry different digests.
    """
    package_dir = Path(__file__).parent
    sources = tuple(sorted(path.relative_to(package_dir).as_posix() for path in package_dir.rglob("*.py")))
    return sources_digest(package_dir, sources)


# Once, when the package is imported: a run whose sources are edited while it runs (a
# 20-minute reproduction, say) then names the code it started with, not the edited files.
source_digest()
