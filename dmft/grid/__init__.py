"""Parameter grids: many ``dmft.solve`` runs over a Cartesian product, in one resumable HDF5 file.

A grid is a TOML file with ``[problem]``, ``[solver]`` and ``[grid]`` tables
(``GridSpec.from_toml``); ``run_grid`` computes its points, in this process, in local
worker processes or on a Dask cluster, and writes each point as it finishes; a run
killed at any moment is resumed by running it again. ``load_summary``, ``load_point``
and ``grid_metadata`` read the file.

The package is split by concern:

- ``spec``: the configuration, its validation and the points' seeds;
- ``worker``: what runs on a worker (solve one point, its T_eff summary columns);
- ``executors``: in-process, local process pool, Dask cluster;
- ``lock``: the lock file that keeps one writer per output;
- ``store``: the HDF5 layout, its creation and the writing of a point;
- ``recovery``: resuming, repairing and salvaging a file after a kill;
- ``runner``: ``run_grid``;
- ``read``: the readers;
- ``progress``: the command line's progress display.
"""

from __future__ import annotations

from ..io import KIND_GRID
from .lock import OutputLock
from .progress import GridProgress
from .read import grid_metadata, load_point, load_summary
from .runner import GridEvent, GridReport, run_grid
from .spec import GridPoint, GridSpec, point_seed
from .store import (GRID_FORMAT_VERSION, KIND_FAILED_POINT, STATUS_DONE, STATUS_FAILED, STATUS_PENDING,
                    SUMMARY_OBSERVABLES)
from .worker import PointOutcome, point_teff

__all__ = [
    "GRID_FORMAT_VERSION", "KIND_FAILED_POINT", "KIND_GRID", "STATUS_DONE", "STATUS_FAILED", "STATUS_PENDING",
    "SUMMARY_OBSERVABLES", "GridEvent", "GridPoint", "GridProgress", "GridReport", "GridSpec", "OutputLock",
    "PointOutcome", "grid_metadata", "load_point", "load_summary", "point_seed", "point_teff", "run_grid",
]
