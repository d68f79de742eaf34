"""Numbers from the double-precision kernels, and which kernels a process compiled or loaded.

Used by test_solver_methods.py::test_same_numbers_from_fresh_and_cached_compilations, in
the test process and, run as a script, in a subprocess:
``python compiled_kernels.py OUTPUT.npz [SEED.json]`` saves the numbers and prints the cache
use as JSON; with SEED.json (``cache_files`` of another process) it first copies those cache
files into its own cache, so that it loads them instead of compiling them again.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import shutil
import sys
from pathlib import Path
from unittest import mock

import numpy as np
from numba.core.caching import NullCache
from numba.core.registry import CPUDispatcher

import dmft
from dmft import solvers
from dmft._numba_cache import NUMBA_SOURCES
from dmft.solvers import population


@contextlib.contextmanager
def threaded_runs():
    """Within it every solve runs as a large one on a single subpopulation would, however
    small: one subpopulation at a time and (with more than one numba thread) a threaded run
    (``THREADED_RUN_WORK`` at 0), each step on the threaded kernels where its size calls
    for them."""
    with mock.patch.object(population, "THREADED_RUN_WORK", 0), \
            mock.patch.object(solvers, "subpopulations_at_once", lambda problem, options, threads=None: 1):
        yield


def numbers() -> dict[str, np.ndarray]:
    """C, R (and C_ab) of one and two replicas in double precision.

    Threaded runs (``threaded_runs``) of two populations of 10^4 samples over 41 steps reach
    the threaded kernels from step 19 on: serial and threaded kernels of both replica
    counts are used.
    """
    problem = dmft.Problem.from_flat(dataset="gmm2", algorithm="sgd", batch_fraction=0.3, dt=0.1, steps=40)
    arrays = {}
    for replicas in (1, 2):
        with threaded_runs():
            result = dmft.solve(problem, dmft.SolverOptions(samples=20_000, subpopulations=2, seed=3,
                                                            replicas=replicas, precision="double"))
        arrays.update({f"{name}_{replicas}": getattr(result, name) for name in ("C", "R", "C_ab")
                       if getattr(result, name) is not None})
    return arrays


def _dispatchers(import_missing: bool = False):
    """(qualified name, dispatcher) of every cached numba function of the package."""
    for source in NUMBA_SOURCES:
        name = "dmft." + source.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
        module = importlib.import_module(name) if import_missing else sys.modules.get(name)
        for attribute, value in vars(module).items() if module is not None else ():
            cached = isinstance(value, CPUDispatcher) and not isinstance(getattr(value, "_cache", None), NullCache)
            if cached and value.__module__ == name:
                yield f"{name}.{attribute}", value


def cache_files() -> dict[str, list[str]]:
    """The cache files (index and data) of every function this process compiled and loaded
    none of: another process given them loads these instead of compiling them again."""
    files = {}
    for name, dispatcher in _dispatchers():
        if dispatcher._cache_misses and not dispatcher._cache_hits:
            index = Path(dispatcher._cache._cache_file._index_path)
            files[name] = [str(index)] + [str(data) for data in sorted(index.parent.glob(f"{index.stem}.*.nbc"))]
    return files


def seed_cache(files: dict[str, list[str]]) -> None:
    """Copy ``cache_files`` of another process into this process's numba cache."""
    for name, dispatcher in _dispatchers(import_missing=True):
        if name in files:
            destination = Path(dispatcher._cache._cache_path)
            destination.mkdir(parents=True, exist_ok=True)
            for path in files[name]:
                shutil.copy2(path, destination / Path(path).name)


def cache_use() -> dict[str, str]:
    """"compiled" or "loaded" (from numba's cache) for every cached numba function of the
    package and signature this process has used."""
    use = {}
    for name, dispatcher in _dispatchers():
        for signature in dispatcher._cache_hits:
            use[f"{name}{signature}"] = "loaded"
        for signature in dispatcher._cache_misses:
            use[f"{name}{signature}"] = "compiled"
    return use


if __name__ == "__main__":
    if len(sys.argv) > 2:
        seed_cache(json.loads(Path(sys.argv[2]).read_text()))
    np.savez(sys.argv[1], **numbers())
    print(json.dumps(cache_use()))
