"""Numbers from the double-precision kernels, and which kernels a process compiled or loaded.

Used by test_solver_methods.py::test_same_numbers_from_fresh_and_cached_compilations, in
the test process and, run as a script, in a subprocess:
``python compiled_kernels.py OUTPUT.npz`` saves the numbers and prints the cache use as JSON.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from numba.core.caching import NullCache
from numba.core.registry import CPUDispatcher

import dmft
from dmft._numba_cache import NUMBA_SOURCES


def numbers() -> dict[str, np.ndarray]:
    """C, R (and C_ab) of one and two replicas in double precision.

    Two populations of 10^4 samples over 41 steps reach the threaded kernels from step 19
    on: serial and threaded kernels of both replica counts are used.
    """
    problem = dmft.Problem.from_flat(dataset="gmm2", algorithm="sgd", batch_fraction=0.3, dt=0.1, steps=40)
    arrays = {}
    for replicas in (1, 2):
        result = dmft.solve(problem, dmft.SolverOptions(samples=20_000, subpopulations=2, seed=3, replicas=replicas,
                                                        precision="double"))
        arrays.update({f"{name}_{replicas}": getattr(result, name) for name in ("C", "R", "C_ab")
                       if getattr(result, name) is not None})
    return arrays


def cache_use() -> dict[str, str]:
    """"compiled" or "loaded" (from numba's cache) for every cached numba function of the
    package and signature this process has used."""
    use = {}
    for source in NUMBA_SOURCES:
        name = "dmft." + source.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
        module = sys.modules.get(name)
        for attribute, value in vars(module).items() if module is not None else ():
            if not isinstance(value, CPUDispatcher) or value.__module__ != name or isinstance(value._cache, NullCache):
                continue
            for signature in value._cache_hits:
                use[f"{name}.{attribute}{signature}"] = "loaded"
            for signature in value._cache_misses:
                use[f"{name}.{attribute}{signature}"] = "compiled"
    return use


if __name__ == "__main__":
    np.savez(sys.argv[1], **numbers())
    print(json.dumps(cache_use()))
